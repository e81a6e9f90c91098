#!/usr/bin/env python3
"""Syscalls per request on the new-connection path, for each server.

Each server of run.py serves the raw hello (or --app) with one worker;
`strace -c -f` is attached to its whole process tree while wrk runs with
`Connection: close` (a new connection per request), and each syscall's count
is divided by the requests wrk completed. strace slows every server down a
lot: the counts are what to read, not the rates.

    benchmarks/.venv/bin/python benchmarks/conn_syscalls.py --only cppgunicorn,granian,fastwsgi,bjoern
    # another cppgunicorn package (a copy of site-packages/cppgunicorn of an older build):
    benchmarks/.venv/bin/python benchmarks/conn_syscalls.py --only cppgunicorn --pythonpath before=/tmp/base
    # behind nginx's default proxy_pass: the server's syscalls for what nginx sends
    benchmarks/.venv/bin/python benchmarks/conn_syscalls.py --nginx
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import behind_nginx
import run


def strace_summary(path):
    """{syscall: calls} from strace -c's table."""
    counts = {}
    for line in open(path):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m and m.group(2) != "total":
            counts[m.group(2)] = int(m.group(1))
    return counts


def measure(name, label, app, seconds, wrk, tmp, nginx):
    srv = run.Server(name, app, 1)
    err = srv.start()
    if err:
        srv.stop()
        return {"error": err}
    ng = None
    try:
        port = srv.port
        if nginx:
            ports = {"default": run.free_port(), "tuned": run.free_port()}
            ng = behind_nginx.Nginx(os.path.join(tmp, f"nginx-{label}"), f"127.0.0.1:{srv.port}", ports,
                                    lambda c: run.pinned(c, "client"), os.path.join(tmp, f"nginx-{label}.log"))
            err = ng.start()
            if err:
                return {"error": err}
            port = ports["default"]
        mode = "ka" if nginx else "close"
        wrk.run(port, "/", 1, mode, tag=f"syscalls-{label}-warmup")
        out = os.path.join(tmp, f"strace-{label}.txt")
        cmd = ["strace", "-c", "-f", "-o", out]
        for pid in run.tree(srv.proc.pid):
            cmd += ["-p", str(pid)]
        st = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
        r = wrk.run(port, "/", seconds, mode, tag=f"syscalls-{label}")
        st.send_signal(signal.SIGINT)
        st.wait(30)
        counts = strace_summary(out)
        n = r["requests"] or 1
        return {"requests": r["requests"], "per_request": {k: v / n for k, v in counts.items()}}
    finally:
        if ng:
            ng.stop()
        srv.stop()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="cppgunicorn,granian,fastwsgi,bjoern,gunicorn-sync")
    ap.add_argument("--app", default="apps:raw")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--pythonpath", action="append", default=[],
                    help="LABEL=DIR: also measure cppgunicorn with DIR first on PYTHONPATH")
    ap.add_argument("--nginx", action="store_true",
                    help="behind nginx's default proxy_pass (wrk keeps its connections to nginx)")
    a = ap.parse_args(argv)
    run.check_pinning()
    os.makedirs(run.LOG_DIR, exist_ok=True)
    runs = [(s, s, None) for s in a.only.split(",") if s]
    runs += [("cppgunicorn", label, d) for label, d in (p.split("=", 1) for p in a.pythonpath)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="syscalls-") as tmp:
        wrk = run.Wrk(tmp, argparse.Namespace())
        for name, label, pythonpath in runs:
            old = os.environ.get("PYTHONPATH")
            if pythonpath:
                os.environ["PYTHONPATH"] = pythonpath
            try:
                results[label] = measure(name, label, a.app, a.seconds, wrk, tmp, a.nginx)
            finally:
                if pythonpath:
                    if old is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = old
            run.kill_all()
    names = sorted({k for r in results.values() for k in r.get("per_request", {})},
                   key=lambda k: -max(r.get("per_request", {}).get(k, 0) for r in results.values()))
    names = [k for k in names if max(r.get("per_request", {}).get(k, 0) for r in results.values()) >= 0.01]
    labels = list(results)
    print("| syscall | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for k in names:
        print(f"| {k} | " + " | ".join(f"{results[l].get('per_request', {}).get(k, 0):.2f}" for l in labels) + " |")
    print("| **total** | " + " | ".join(f"{sum(results[l].get('per_request', {}).values()):.2f}" for l in labels) + " |")
    print("| requests | " + " | ".join(str(results[l].get("requests", results[l].get("error"))) for l in labels) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
