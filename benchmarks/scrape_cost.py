"""What serving /metrics costs the server: the master's CPU per scrape.

The workers count the same with metrics on or off (their counters are
always written; docs/design.md, "Metrics"), so the one thing
`--metrics-bind` adds is the master's work when it is scraped: summing the
workers' blocks, reading each worker's /proc files, the listen backlog,
and writing the text. This measures that work without a load generator
to blur it: N workers serve a Flask hello, the script scrapes /metrics
--scrapes times in a row, and divides the master's CPU time (utime+stime,
from /proc) by the scrapes. Then, for Prometheus' default interval (15 s)
and the benchmark's (1 s), the share of one CPU it amounts to.

    benchmarks/.venv/bin/python benchmarks/scrape_cost.py
    benchmarks/.venv/bin/python benchmarks/scrape_cost.py --workers 8 --scrapes 5000
"""
import argparse
import http.client
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (server commands and process helpers, shared with the benchmark)


def master_cpu_s(pid):
    total, _ = run.cpu_ticks([pid])
    return total / os.sysconf("SC_CLK_TCK")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--scrapes", type=int, default=3000)
    a = ap.parse_args(argv)
    port, mport = run.free_port(), run.free_port()
    cmd = run.server_cmd("cppgunicorn-metrics", run.WORKLOADS["flask"][0], port, a.workers, metrics_port=mport)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if run.probe(port, "GET", "/", timeout=2) is None:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        # Every worker booted and has served (the first requests warm up).
        for _ in range(200):
            run.probe(port, "GET", "/", timeout=5)
        conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        conn.close()
        time.sleep(0.5)
        before, wall = master_cpu_s(p.pid), time.monotonic()
        for _ in range(a.scrapes):
            # A new connection per scrape, as Prometheus' scraper does
            # once its idle connection has been closed.
            conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            conn.close()
        after, wall = master_cpu_s(p.pid), time.monotonic() - wall
    finally:
        run.kill_group(p)
    per_scrape_us = (after - before) / a.scrapes * 1e6
    print(f"workers {a.workers}, {a.scrapes} scrapes in {wall:.1f} s, page {len(body)} bytes")
    print(f"master CPU per scrape: {per_scrape_us:.0f} µs")
    for interval in (15, 1):
        print(f"scraped every {interval} s: {per_scrape_us / interval / 1e6 * 100:.4f} % of one CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
