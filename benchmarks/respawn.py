"""Worker respawn time: from `kill -9` of a worker until its replacement
serves a request.

Each server runs one worker on the Flask app of pid_app.py (`/` answers
the pid of the process that served it), with the flags run.py gives it.
For each of --rounds rounds: read the worker's pid, SIGKILL it, and at once
send `GET /` on a new connection. The listening socket belongs to the
master, so the connection waits in its backlog until the new worker accepts
it; the time from the kill to the answer (from a pid other than the killed
one) is the respawn time: the master noticing the death, forking, the new
worker's boot and app import, its first accept and the request itself.
Prints the median, the minimum and the maximum per server.

    .venv/bin/python benchmarks/respawn.py                        # cppgunicorn, gunicorn-sync
    .venv/bin/python benchmarks/respawn.py --rounds 30 --server-args=--preload

Timing on a shared machine: compare the servers of one run, as a ratio,
and prefer the median. The servers are measured in alternating rounds so
that a busy spell hits both.
"""
import argparse
import os
import signal
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (server commands and process helpers, shared with the benchmark)


LIFETIME_S = 5.5


def get_pid(port, timeout=30.0):
    """GET / on a new connection; the pid in the answer (int)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(f"unexpected answer: {head[:80]!r}")
    return int(body.strip())


def one_round(srv):
    """Seconds from SIGKILL of the worker to an answer from its replacement."""
    ws = run.workers_of(srv.proc.pid)
    if len(ws) != 1:
        raise RuntimeError(f"expected one worker, found {ws}")
    old = ws[0]
    t0 = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    pid = get_pid(srv.port)
    dt = time.perf_counter() - t0
    if pid == old:
        raise RuntimeError("answered by the killed worker")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="cppgunicorn,gunicorn-sync")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--server-args", default="", help="more arguments for every server, e.g. --preload")
    a = ap.parse_args()
    names = [s for s in a.servers.split(",") if s]
    servers = {}
    try:
        for n in names:
            srv = run.Server(n, "pid_app:flask_pid", 1)
            srv.cmd += a.server_args.split()
            err = srv.start()
            if err:
                sys.exit(f"{n}: {err}")
            servers[n] = srv
        times = {n: [] for n in names}
        last_kill = {n: 0.0 for n in names}
        for i in range(a.rounds):
            for n in (names if i % 2 == 0 else names[::-1]):
                # A worker that dies within 5 s of its spawn counts towards
                # cppgunicorn's crash-loop back-off: let each one live longer.
                time.sleep(max(0.0, last_kill[n] + LIFETIME_S - time.monotonic()))
                last_kill[n] = time.monotonic()
                times[n].append(one_round(servers[n]))
        ref = statistics.median(times[names[-1]]) if "gunicorn-sync" not in times else \
            statistics.median(times["gunicorn-sync"])
        for n in names:
            t = times[n]
            med = statistics.median(t)
            print(f"{n:16} respawn, median of {len(t)}: {med * 1000:7.1f} ms  "
                  f"(min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f})  x{med / ref:.2f} of "
                  f"{'gunicorn-sync' if 'gunicorn-sync' in times else names[-1]}")
    finally:
        for srv in servers.values():
            srv.stop()


if __name__ == "__main__":
    main()
