"""Where the memory of an idle worker goes, mapping by mapping.

Starts each server as run.py does (its `rss` workload: Flask hello, same
flags), waits for one good answer, sleeps 0.5 s, then reads the worker's
VmRSS and /proc/PID/smaps and sums Rss by kind of mapping, split into file
pages (shared with the page cache) and anonymous pages. Also prints Pss and
USS (private pages) per worker and for the whole process tree, which is what
N workers cost together. Not timing-sensitive: fine on a busy machine.

    .venv/bin/python benchmarks/idle_rss.py                       # cppgunicorn, gunicorn-sync
    .venv/bin/python benchmarks/idle_rss.py --workers 4           # tree totals with 4 workers
    .venv/bin/python benchmarks/idle_rss.py --binary old=/tmp/cppgunicorn-old   # compare builds
    .venv/bin/python benchmarks/idle_rss.py --server-args=--preload           # the app imported before fork
"""
import argparse
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (server commands and process helpers, shared with the benchmark)


def group(path):
    """The row of the table a mapping belongs to."""
    base = os.path.basename(path)
    if not path:
        return "anonymous (Python arenas, large mallocs)"
    if path == "[heap]":
        return "[heap] (malloc)"
    if path.startswith("["):
        return "stack, vdso"
    if base.startswith("cppgunicorn"):
        return "our binary"
    if base.startswith("python3"):
        return "python executable"
    if base.startswith("libpython"):
        return "libpython"
    if base.startswith(("libstdc++", "libgcc_s")):
        return "libstdc++, libgcc_s"
    if base.startswith("libuv"):
        return "libuv"
    if base.startswith(("libcrypto", "libssl", "_ssl.", "_hashlib.")):
        return "OpenSSL (libcrypto, libssl, _ssl, _hashlib)"
    if base.startswith(("libc.so", "libm.so", "ld-linux", "libpthread")):
        return "libc, libm, ld.so"
    if ".cpython-" in base:
        return "other extension modules"
    return "other libraries, locale files"


def smaps(pid):
    """[(path, {field: kB})] for each mapping of pid."""
    out = []
    for line in open(f"/proc/{pid}/smaps"):
        f = line.split()
        if f[0].endswith(":") and len(f) >= 2 and f[1].isdigit():
            out[-1][1][f[0][:-1]] = int(f[1])
        elif "-" in f[0]:
            out.append((f[5] if len(f) > 5 else "", {}))
    return out


def rollup(pid):
    v = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        f = line.split()
        if len(f) >= 2 and f[1].isdigit():
            v[f[0][:-1]] = int(f[1])
    return {"rss": v["Rss"], "pss": v["Pss"], "uss": v["Private_Clean"] + v["Private_Dirty"]}


def measure(name, binary, workers, extra):
    srv = run.Server(name if binary is None else "cppgunicorn", run.WORKLOADS["flask"][0], workers)
    if binary is not None:
        srv.cmd[0] = os.path.abspath(binary)
    srv.cmd += extra
    err = srv.start()
    try:
        if err:
            sys.exit(f"{name}: {err}")
        for _ in range(4 * workers - 1):  # with several workers, most get a request
            run.head_probe(srv.port)
        time.sleep(0.5)
        pid = srv.proc.pid
        ws = run.workers_of(pid)
        rows = collections.defaultdict(lambda: [0, 0])
        for path, v in smaps(ws[0]):
            anon = v.get("Anonymous", 0)
            rows[group(path)][0] += v.get("Rss", 0) - anon
            rows[group(path)][1] += anon
        tree = [rollup(p) for p in run.tree(pid)]
        return {"vmrss": run.rss_kb(ws[0]), "rows": dict(rows), "worker": rollup(ws[0]),
                "tree": {k: sum(t[k] for t in tree) for k in ("rss", "pss", "uss")}, "processes": len(tree)}
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="cppgunicorn,gunicorn-sync")
    ap.add_argument("--binary", action="append", default=[], metavar="LABEL=PATH",
                    help="also measure this cppgunicorn binary (repeatable)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--server-args", default="", help="more arguments for every server, e.g. --preload")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    todo = [(s, None) for s in a.servers.split(",") if s]
    todo += [(b.split("=", 1)[0], b.split("=", 1)[1]) for b in a.binary]
    res = {label: measure(label, path, a.workers, a.server_args.split()) for label, path in todo}
    labels = list(res)
    order = sorted({g for r in res.values() for g in r["rows"]},
                   key=lambda g: -max(sum(r["rows"].get(g, [0, 0])) for r in res.values()))
    print("| kB, one idle worker | " + " | ".join(f"{n} file | {n} anon" for n in labels) + " |")
    print("| --- |" + " ---: |" * (2 * len(labels)))
    for g in order:
        cells = [res[n]["rows"].get(g, [0, 0]) for n in labels]
        print(f"| {g} | " + " | ".join(f"{c[0]:,} | {c[1]:,}" for c in cells) + " |")
    tot = [[sum(c[i] for c in res[n]["rows"].values()) for i in (0, 1)] for n in labels]
    print("| **total** | " + " | ".join(f"**{t[0]:,}** | **{t[1]:,}**" for t in tot) + " |")
    print()
    for n in labels:
        r = res[n]
        print(f"{n:16} worker VmRSS {r['vmrss'] / 1024:5.1f} MiB  Pss {r['worker']['pss'] / 1024:5.1f}  "
              f"USS {r['worker']['uss'] / 1024:5.1f} | tree of {r['processes']}: Pss {r['tree']['pss'] / 1024:6.1f} "
              f"USS {r['tree']['uss'] / 1024:6.1f}")
    if "gunicorn-sync" in res:
        ref = res["gunicorn-sync"]["vmrss"]
        for n in labels:
            print(f"{n:16} VmRSS / gunicorn-sync: {res[n]['vmrss'] / ref:.3f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
