"""Accept balance: how the requests (and connections) of a wrk run spread
over two workers on two CPUs.

Each server runs 2 workers on `pid_app:counting` (a bare WSGI hello that
counts, per process, the requests it served and the client ports it saw,
in a memory-mapped file: no system call per request). Nothing is pinned:
the two workers, the master and wrk share the machine's two CPUs, as on a
small production host. For each mode (keep-alive, and a new connection per
request) wrk runs `-t2 -c16` for --seconds; then the files are read.

Printed per server and mode: requests/s, the requests and connections of
each worker, and the busier worker's share of the requests (50 % is an even
split, 100 % means one worker served everything).

    benchmarks/.venv/bin/python benchmarks/accept_balance.py
    benchmarks/.venv/bin/python benchmarks/accept_balance.py --servers cppgunicorn,cppgunicorn-reuse-port

`cppgunicorn-reuse-port` is cppgunicorn with `--reuse-port` (the master
still binds one socket, which both workers accept from: the flag sets
SO_REUSEPORT on it, it does not give each worker a socket of its own).
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (server commands and process helpers, shared with the benchmark)

COUNTER = struct.Struct("<QQ")  # as pid_app.counting writes it
EXTRA = {"cppgunicorn-reuse-port": ("cppgunicorn", ["--reuse-port"])}


def read_counts(d):
    out = {}
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read(COUNTER.size)
        if len(data) == COUNTER.size:
            out[int(name)] = COUNTER.unpack(data)
    return out


def wrk(port, seconds, mode, threads, conns):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s"]
    if mode == "close":
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    return run.parse_wrk(out)


def measure(label, a, mode):
    name, extra = EXTRA.get(label, (label, []))
    d = tempfile.mkdtemp(prefix="balance-")
    os.environ["PID_APP_DIR"] = d  # the servers inherit it
    srv = run.Server(name, "pid_app:counting", 2)
    if srv.cmd is None:
        return {"server": label, "mode": mode, "error": "no multi-worker command"}
    srv.cmd += extra
    try:
        err = srv.start()
        if err:
            return {"server": label, "mode": mode, "error": err}
        time.sleep(1.0)  # every worker booted and listening
        wrk(srv.port, 1, mode, a.threads, a.conns)  # warm-up
        workers = run.workers_of(srv.proc.pid)
        before = read_counts(d)  # the warm-up's: subtracted
        r = wrk(srv.port, a.seconds, mode, a.threads, a.conns)
        counts = {p: tuple(x - y for x, y in zip(c, before.get(p, (0, 0)))) for p, c in read_counts(d).items()}
        return {"server": label, "mode": mode, "rps": r.get("rps"), "workers": workers,
                "counts": {str(p): c for p, c in counts.items() if c[0] > 0}}
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="cppgunicorn,cppgunicorn-reuse-port,gunicorn-sync,granian")
    ap.add_argument("--modes", default="ka,close")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    rows = []
    for mode in a.modes.split(","):
        for label in a.servers.split(","):
            row = measure(label, a, mode)
            rows.append(row)
            if "error" in row:
                print(f"{label:24} {mode:5} error: {row['error']}")
                continue
            c = sorted(row["counts"].values(), key=lambda v: -v[0])
            total = sum(v[0] for v in c) or 1
            per = "  ".join(f"{v[0]:>7,} req / {v[1]:>5,} conn" for v in c)
            print(f"{label:24} {mode:5} {row['rps'] or 0:8.0f} req/s  busier worker {100 * c[0][0] / total:5.1f} %"
                  f"  [{per}]")
            # A counting file per worker that served; a worker that served
            # nothing has no file.
            if len(c) < 2:
                print(f"{'':24} {mode:5} only {len(c)} of 2 workers served")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
