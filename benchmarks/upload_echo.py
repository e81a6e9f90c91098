"""1 MiB uploads echoed back: request buffering on and off, against gunicorn.

    .venv/bin/python benchmarks/upload_echo.py [--seconds 5] [--connections 8]

Each server runs one worker of the app below on a free port; wrk posts a
1 MiB body on keep-alive connections (a Lua script) and the app reads it
in 64 KiB reads and answers it whole. cppgunicorn runs with the default
--request-buffering and with --no-request-buffering, at --threads 1 and 4;
gunicorn 27 (from the same venv) with its sync worker (--threads 1) and
gthread (--threads 4). Prints requests/s per row, best of --repeat runs.
The machine is shared: compare rows of one run only.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = '''
def app(environ, start_response):
    read = environ["wsgi.input"].read
    body = b"".join(iter(lambda: read(65536), b""))
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''
LUA = '''
wrk.method = "POST"
wrk.body = string.rep("u", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
'''
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, proc):
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def run(name, argv, workdir, lua, seconds, connections):
    port = free_port()
    proc = subprocess.Popen([*argv, "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--chdir", workdir, "echo_app:app"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, proc)
        time.sleep(0.5)  # the worker imports the app
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", lua,
                              f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
        return rps, errors.group(0) if errors else ""
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="upload-echo-")
    Path(workdir, "echo_app.py").write_text(APP)
    lua = str(Path(workdir, "post.lua"))
    Path(lua).write_text(LUA)
    cpp, gun = str(BIN / "cppgunicorn"), str(BIN / "gunicorn")
    rows = [
        ("cppgunicorn buffered, --threads 1", [cpp, "--threads", "1"]),
        ("cppgunicorn streamed, --threads 1", [cpp, "--threads", "1", "--no-request-buffering"]),
        ("gunicorn 27 sync", [gun, "--worker-class", "sync"]),
        ("cppgunicorn buffered, --threads 4", [cpp, "--threads", "4"]),
        ("cppgunicorn streamed, --threads 4", [cpp, "--threads", "4", "--no-request-buffering"]),
        ("gunicorn 27 gthread, --threads 4", [gun, "--worker-class", "gthread", "--threads", "4"]),
    ]
    print(f"1 MiB POST echoed, 1 worker, wrk -t1 -c{args.connections} -d{args.seconds}s, "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    best = {name: (0.0, "") for name, _ in rows}
    for _ in range(args.repeat):
        for name, argv in rows:  # rounds interleaved: the machine's speed drifts
            rps, errors = run(name, argv, workdir, lua, args.seconds, args.connections)
            if rps > best[name][0]:
                best[name] = (rps, errors)
    for name, _ in rows:
        rps, errors = best[name]
        print(f"| {name:36} | {rps:8.1f} req/s | {errors}")


if __name__ == "__main__":
    main()
