"""Instruction counts per request of one worker, under callgrind.

    python benchmarks/profile_request.py [--app raw|flask_app] [--out DIR]

Starts the installed ``cppgunicorn`` (one worker, ``--threads 1`` unless
``--threads`` says otherwise) under
``valgrind --tool=callgrind`` twice, sends N1 and then N2 keep-alive GET
requests one after the other from a single connection, and reports
(Ir(N2) - Ir(N1)) / (N2 - N1): the worker's user-space instructions per
request, with start-up and shutdown cancelled out. Then it splits the N2
profile by object file (Python, our code, libc, libuv) and lists the
functions with the most exclusive instructions. Kernel time is not seen by
callgrind; ``--syscalls`` counts the worker's syscalls per request with
strace instead (natively, not under valgrind).

``--inprocess`` measures ``cppgunicorn.serve(app)`` instead: the same app
served from the Python process that imported it (no master, no fork),
whose whole process is then counted; compare it with a run without.

``--close`` sends each request on a new connection (``Connection: close``):
the cost of the new-connection path.

Set $CPPGUNICORN_BIN to an unstripped binary (the one in build/cp*/) to see
our own function names.

Not a benchmark: it measures work, not speed, so it is stable on a shared
machine. It is slow (valgrind), a minute or so per app.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N1, N2 = 500, 2500


def server_binary():
    # The build tree's binary keeps its symbols; the installed one is stripped.
    if os.environ.get("CPPGUNICORN_BIN"):
        return os.environ["CPPGUNICORN_BIN"]
    beside = Path(sys.executable).parent / "cppgunicorn"
    return str(beside) if beside.exists() else shutil.which("cppgunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


CLOSE = False  # --close: a new connection per request


def send_requests(port, n, path="/"):
    """n sequential keep-alive requests on one connection (with --close, each
    on its own connection, `Connection: close`); checks each."""
    if CLOSE:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        for i in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
                s.sendall(req)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                assert data.startswith(b"HTTP/1.1 200"), data[:100]
        return
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        buf = b""

        def more():
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"server closed the connection after {i} requests")
            return data

        for i in range(n):
            s.sendall(req)
            while b"\r\n\r\n" not in buf:
                buf += more()
            head, buf = buf.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            while len(buf) < length:
                buf += more()
            buf = buf[length:]


def children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


THREADS = "1"
INPROCESS = False


def start(app, port, prefix):
    if INPROCESS:
        python = Path(server_binary()).parent / "python"
        code = (f"import cppgunicorn, apps; cppgunicorn.serve(apps.{app}, "
                f"bind='127.0.0.1:{port}', threads={THREADS}, keepalive=60)")
        args = [str(python if python.exists() else sys.executable), "-c", code]
        proc = subprocess.Popen(prefix + args, cwd=HERE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for_port(port)
        return proc
    args = [server_binary(), "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--threads", THREADS, "--keep-alive", "60",  # valgrind is slow on a busy machine
            "--graceful-timeout", "300",  # a worker killed before it exits writes no profile
            "--timeout", "600",  # nor one killed while it imports the app, slowly
            "--chdir", str(HERE), f"apps:{app}"]
    proc = subprocess.Popen(prefix + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    wait_for_port(port)
    return proc


def stop(proc):
    # serve() returns on Ctrl-C; the command's master stops on TERM.
    proc.send_signal(signal.SIGINT if INPROCESS else signal.SIGTERM)
    proc.wait(timeout=400)


def callgrind_run(app, n, outdir):
    port = free_port()
    pattern = str(outdir / f"{app}-{n}.%p")
    proc = start(app, port, ["valgrind", "--tool=callgrind", "--trace-children=yes",
                             f"--callgrind-out-file={pattern}"])
    send_requests(port, 20)  # warm-up: imports and caches on first use
    worker = [proc.pid] if INPROCESS else children(proc.pid)
    send_requests(port, n)
    stop(proc)
    files = [outdir / f"{app}-{n}.{pid}" for pid in worker]
    assert len(files) == 1 and files[0].exists(), files
    return files[0]


def total_ir(path):
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def exclusive_costs(path):
    """Exclusive Ir per (object, function) from a callgrind output file."""
    names = {"ob": {}, "fn": {}}
    ob = fn = None
    skip_next = False
    costs = collections.Counter()

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?:\s(.*))?", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), rest)

    for line in path.read_text(errors="replace").splitlines():
        if not line:
            continue
        c = line[0]
        if line.startswith("ob="):
            ob = name("ob", line[3:])
        elif line.startswith("fn="):
            fn = name("fn", line[3:])
        elif line.startswith(("cob=", "cfi=", "cfl=", "fi=", "fe=", "fl=")):
            if line.startswith("cob="):
                name("ob", line[4:])
        elif line.startswith("cfn="):
            name("fn", line[4:])
        elif line.startswith("calls="):
            skip_next = True
        elif c.isdigit() or c in "+-*":
            if skip_next:  # the inclusive cost of a call, not ours
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                costs[(ob, fn)] += int(parts[1])
    return costs


def report(app, outdir, top):
    f1 = callgrind_run(app, N1, outdir)
    f2 = callgrind_run(app, N2, outdir)
    ir1, ir2 = total_ir(f1), total_ir(f2)
    per_request = (ir2 - ir1) / (N2 - N1)
    print(f"== {app}: {per_request:,.0f} instructions per request "
          f"(worker total {ir1:,} for {N1}, {ir2:,} for {N2})")
    c1, c2 = exclusive_costs(f1), exclusive_costs(f2)
    delta = collections.Counter()
    for key in set(c1) | set(c2):
        delta[key] = (c2.get(key, 0) - c1.get(key, 0)) / (N2 - N1)
    by_object = collections.Counter()
    for (ob, _), v in delta.items():
        by_object[Path(ob or "?").name] += v
    print("   per request, by object file:")
    for ob, v in by_object.most_common(8):
        print(f"   {v:10,.0f}  {100 * v / per_request:5.1f}%  {ob}")
    print(f"   top {top} functions (exclusive, per request):")
    for (ob, fn), v in delta.most_common(top):
        print(f"   {v:10,.0f}  {100 * v / per_request:5.1f}%  {fn}  [{Path(ob or '?').name}]")
    return per_request


def syscalls(app, n=2000):
    port = free_port()
    proc = start(app, port, [])
    try:
        send_requests(port, 20)
        worker = proc.pid if INPROCESS else children(proc.pid)[0]
        out = Path(tempfile.mkstemp(prefix="strace-")[1])
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(worker)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        send_requests(port, n)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        print(f"== {app}: syscalls per request ({n} {'new connections' if CLOSE else 'keep-alive requests'})")
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[3].isdigit():
                print(f"   {int(parts[3]) / n:6.2f}  {parts[-1]}")
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--app", action="append", help="raw, flask_app (default: both)")
    ap.add_argument("--out", help="keep the callgrind files here")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--syscalls", action="store_true", help="also count syscalls (strace)")
    ap.add_argument("--threads", default="1", help="--threads of the worker (default 1)")
    ap.add_argument("--inprocess", action="store_true",
                    help="cppgunicorn.serve(app) in one process instead of the command's worker")
    ap.add_argument("--close", action="store_true",
                    help="a new connection per request (Connection: close) instead of keep-alive")
    args = ap.parse_args()
    global THREADS, INPROCESS, CLOSE
    THREADS, INPROCESS, CLOSE = args.threads, args.inprocess, args.close
    outdir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="callgrind-"))
    outdir.mkdir(parents=True, exist_ok=True)
    for app in args.app or ["raw", "flask_app"]:
        report(app, outdir, args.top)
        if args.syscalls:
            syscalls(app)
    print(f"callgrind files: {outdir}")


if __name__ == "__main__":
    main()
