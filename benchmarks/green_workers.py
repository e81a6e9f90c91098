"""The gevent/eventlet worker classes against gunicorn's and our thread
pool, in one run:

* wall time of 50 concurrent requests that each sleep 1 s (time.sleep,
  patched by the worker), one worker;
* wrk hello-world requests per second (wrk -t1 -c16, one worker; the
  server pinned to CPU 0, wrk to CPU 1);
* what mapping the classes to the thread pool (threads = worker
  connections) would cost: a worker's RSS with 1000 threads against 1000
  greenlets' worth of pool, and whether a greenlet spawned by the app
  runs after the response.

Run from the repository with the development venv (gunicorn, gevent and
eventlet come from requirements-dev.txt):

    .venv/bin/python benchmarks/green_workers.py [--seconds 5] [--repeat 3]

The machine is shared: compare the rows of one run, as ratios.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, argv, env=None):
        self.name = name
        self.port = free_port()
        argv = [a.replace("$PORT", str(self.port)) for a in argv]
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") and os.cpu_count() >= 2 else []
        self.proc = subprocess.Popen(pin + argv, cwd=HERE, env={**os.environ, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} did not start: {self.proc.stderr.read().decode()[-500:]}")
            try:
                if get(self.port, "/") == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer")

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def body(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    data = c.getresponse().read()
    c.close()
    return data


def fifty_sleeps(port):
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(get(port, "/sleep?1"))) for _ in range(50)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert statuses == [200] * 50, statuses
    return elapsed


def wrk(port, seconds):
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and os.cpu_count() >= 2 else []
    out = subprocess.run(pin + ["wrk", "-t1", "-c16", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return float(m.group(1)) if m else 0.0, errors.group(0) if errors else ""


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


OURS = str(BIN / "cppgunicorn")
GUNICORN = str(BIN / "gunicorn")
COMMON = ["-b", "127.0.0.1:$PORT", "-w", "1", "green_app:app"]

SLEEP_SERVERS = {
    "cppgunicorn -k gevent": [OURS, "-k", "gevent"] + COMMON,
    "cppgunicorn -k eventlet": [OURS, "-k", "eventlet"] + COMMON,
    "gunicorn -k gevent": [GUNICORN, "-k", "gevent"] + COMMON,
    "(b) cppgunicorn -k gthread --threads 50": [OURS, "-k", "gthread", "--threads", "50"] + COMMON,
}
WRK_SERVERS = {
    "cppgunicorn -k gevent": [OURS, "-k", "gevent"] + COMMON,
    "cppgunicorn -k eventlet": [OURS, "-k", "eventlet"] + COMMON,
    "cppgunicorn -k gthread --threads 4": [OURS, "-k", "gthread", "--threads", "4"] + COMMON,
    "cppgunicorn (sync, loop thread)": [OURS] + COMMON,
    "gunicorn -k gevent": [GUNICORN, "-k", "gevent"] + COMMON,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gunicorn-eventlet", metavar="GUNICORN",
                    help="a gunicorn that still has -k eventlet (23.x; 27 dropped it), "
                         "installed beside eventlet, e.g. in a scratch venv")
    args = ap.parse_args()
    if args.gunicorn_eventlet:
        argv = [args.gunicorn_eventlet, "-k", "eventlet"] + COMMON
        SLEEP_SERVERS["gunicorn 23 -k eventlet"] = argv
        WRK_SERVERS["gunicorn 23 -k eventlet"] = argv
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    print("\n50 concurrent requests x time.sleep(1), one worker: wall time (median of "
          f"{args.repeat})")
    for name, argv in SLEEP_SERVERS.items():
        try:
            srv = Server(name, argv)
        except RuntimeError as e:
            print(f"  {name:42s} not available: {str(e).splitlines()[-1] if str(e) else e}")
            continue
        try:
            times = [fifty_sleeps(srv.port) for _ in range(args.repeat)]
            print(f"  {name:42s} {statistics.median(times):.3f} s")
        finally:
            srv.stop()

    print(f"\nwrk -t1 -c16 -d{args.seconds}s, hello world, one worker: requests/s "
          f"(median of {args.repeat}, rounds rotated)")
    results = {name: [] for name in WRK_SERVERS}
    for _ in range(args.repeat):
        for name, argv in WRK_SERVERS.items():
            srv = Server(name, argv)
            try:
                wrk(srv.port, 1)  # warm-up
                rps, errors = wrk(srv.port, args.seconds)
                results[name].append(rps)
                if errors:
                    print(f"  ({name}: {errors})")
            finally:
                srv.stop()
    for name, values in results.items():
        print(f"  {name:42s} {statistics.median(values):9.0f}")

    print("\nDesign (b), the thread pool with threads = worker_connections:")
    for name, argv in {
        "-k gevent --worker-connections 1000": [OURS, "-k", "gevent", "--worker-connections", "1000"] + COMMON,
        "-k gthread --threads 1000": [OURS, "-k", "gthread", "--threads", "1000"] + COMMON,
    }.items():
        start = time.monotonic()
        srv = Server(name, argv)
        up = time.monotonic() - start
        try:
            time.sleep(1)
            pid = srv.worker_pids()[0]
            print(f"  {name:42s} worker RSS {rss_kib(pid) / 1024:6.1f} MiB, "
                  f"threads {len(os.listdir(f'/proc/{pid}/task'))}, up in {up:.2f} s")
        finally:
            srv.stop()
    for name, argv, env in [
        ("-k gevent, gevent.spawn_later(0.1) in the app", [OURS, "-k", "gevent"] + COMMON, None),
        ("-k gthread --threads 50, app patches at import", [OURS, "-k", "gthread", "--threads", "50"] + COMMON,
         {"PATCH": "gevent"}),
    ]:
        srv = Server(name, argv, env)
        try:
            get(srv.port, "/spawn")
            time.sleep(1.0)
            ran = body(srv.port, "/background").decode()
            print(f"  {name:48s} background greenlets run 1 s later: {ran}")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
