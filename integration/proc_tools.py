"""Helpers for the process-management tests: the process tree read from
/proc, bounded polling, a raw HTTP/1.1 client that says which worker served
it, and client threads that hammer a server and count failures."""
import os
import signal
import socket
import threading
import time
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent / "apps" / "proc"


def wait_until(predicate, timeout=15.0, interval=0.05, what="condition"):
    """Polls ``predicate`` until it returns a truthy value; fails after
    ``timeout`` seconds with ``what`` in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _stat(pid):
    """(state, ppid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def cmdline(pid):
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def parent_of(pid):
    st = _stat(pid)
    return st[1] if st else None


def alive(pid):
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def children(pid):
    """Pids whose parent is ``pid`` (zombies included)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] == pid:
                out.append(int(entry))
    return out


def zombies(pid):
    return [c for c in children(pid) if (_stat(c) or ("?",))[0] == "Z"]


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def workers(master):
    """Live worker pids of ``master`` (by their process title)."""
    return sorted(c for c in children(master)
                  if alive(c) and cmdline(c).startswith("cppgunicorn: worker"))


def wait_for_workers(master, count, timeout=20.0):
    found = []

    def have_count():
        found[:] = workers(master)
        return len(found) == count

    wait_until(have_count, timeout, what=f"{count} workers of master {master}")
    return list(found)


def terminate_tree(pid, timeout=10.0):
    """Stops a master that is not a child of ours (daemonized or
    re-executed), and anything it left behind."""
    tree = descendants(pid)
    for p in [pid] + tree:
        try:
            os.kill(p, signal.SIGTERM if p == pid else signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in [pid] + tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_pid(pidfile):
    """The pid in ``pidfile``, or None: while a master renames or writes it,
    it may be missing for a moment."""
    try:
        return int(Path(pidfile).read_text().strip())
    except (TypeError, OSError, ValueError):
        return None


def wait_for_new_master(pidfile, old_master, timeout=20.0):
    """After USR2: the pid the re-executed master wrote to ``pidfile``."""
    return wait_until(lambda: (lambda p: p if p not in (None, old_master) else None)(
        read_pid(pidfile)), timeout, what="the new master's pid file")


def stop_new_masters(old_master, new_master=None, pidfile=None):
    """Cleanup after a USR2 test: stops the re-executed master, whether the
    test learnt its pid, it is named in ``pidfile``, or it is still a child
    of the old master."""
    candidates = set(c for c in children(old_master)
                     if cmdline(c).startswith("cppgunicorn: master"))
    candidates.update(p for p in (new_master, read_pid(pidfile)) if p is not None)
    candidates.discard(old_master)
    for pid in candidates:
        if alive(pid) and cmdline(pid).startswith("cppgunicorn: master"):
            terminate_tree(pid)


class HttpClient:
    """One keep-alive HTTP/1.1 connection (TCP, or unix with ``path``)."""

    def __init__(self, port=None, path=None, timeout=20.0):
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(path))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.pid = None      # the worker this connection landed on
        self.closed = False  # the server said Connection: close

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def get(self, target="/pid", close=False):
        """Returns (status, headers, body); raises OSError on a failed
        exchange."""
        extra = b"Connection: close\r\n" if close else b""
        self.sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
        return self.response(close)

    def response(self, close=False):
        """Reads the response to a request already sent."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        body = body.decode()
        if body.startswith("pid="):
            self.pid = int(body.split()[0][4:])
        if close or headers.get("connection", "").lower() == "close":
            self.closed = True
        return status, headers, body


def get_once(port, target="/pid", timeout=20.0, path=None):
    c = HttpClient(port, path=path, timeout=timeout)
    try:
        return c.get(target, close=True)
    finally:
        c.close()


def clients_on_every_worker(port, count, timeout=20.0):
    """Keep-alive connections, one on each of ``count`` workers, by pid.
    Each new connection is opened while every worker found so far is busy
    in a slow request, so that only a worker not found yet can accept it.
    (Start the server with a long --keep-alive if they are to sit idle.)"""
    found = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"found only workers {sorted(found)}"
        for busy in found.values():
            busy.sock.sendall(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: t\r\n\r\n")
        client = HttpClient(port)
        client.get("/pid")
        for busy in found.values():
            busy.response()
        if client.pid in found:
            client.close()
        else:
            found[client.pid] = client
    return found


class Load:
    """Client threads hammering ``/pid`` until :meth:`stop`.

    ``keepalive`` threads keep one connection open as long as the server
    allows; ``fresh`` threads open a new connection for every request (so a
    refused connection shows). A failure is any request that did not get a
    200, except connection errors on a keep-alive connection whose worker
    pid is in ``tolerated_pids`` (a worker the test killed on purpose).
    Serve them with a long --keep-alive: a client thread starved of CPU for
    the default 2 s would race the server closing its idle connection.
    """

    def __init__(self, port, keepalive=3, fresh=0, path=None, tolerated_pids=()):
        self.port, self.path = port, path
        self.tolerated_pids = set(tolerated_pids)
        self.lock = threading.Lock()
        self.ok = 0
        self.by_pid = {}
        self.failures = []
        self.tolerated = []
        self._stop = threading.Event()
        self._generation = 0
        self.current = [None] * keepalive  # the worker each keep-alive thread is on
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=(None,), daemon=True)
                         for _ in range(fresh)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a client thread is stuck"

    def count(self):
        with self.lock:
            return self.ok

    def served_by(self):
        with self.lock:
            return dict(self.by_pid)

    def spread(self, workers=2, timeout=20.0):
        """Waits until the keep-alive clients sit on at least ``workers``
        different workers (reconnecting them all now and then: one worker
        may have accepted every connection) and returns their pids."""
        deadline = time.monotonic() + timeout
        while True:
            attempt_end = min(deadline, time.monotonic() + 2.0)
            while time.monotonic() < attempt_end:
                with self.lock:
                    pids = set(p for p in self.current if p is not None)
                if len(pids) >= workers:
                    return pids
                time.sleep(0.05)
            if time.monotonic() >= deadline:
                raise AssertionError(f"clients did not spread over {workers} workers")
            with self.lock:
                self._generation += 1
                self.current = [None] * len(self.current)

    def wait_for_requests(self, n, timeout=20.0):
        start = self.count()
        wait_until(lambda: self.count() >= start + n, timeout,
                   what=f"{n} more answered requests")

    def _record(self, pid):
        with self.lock:
            self.ok += 1
            self.by_pid[pid] = self.by_pid.get(pid, 0) + 1

    def _run(self, index):
        keepalive = index is not None
        client = None
        generation = self._generation
        while not self._stop.is_set():
            try:
                if client is not None and generation != self._generation:
                    client.closed = True
                    generation = self._generation
                if client is None or client.closed:
                    if client is not None:
                        client.close()
                    client = HttpClient(self.port, path=self.path)
                status, _, _ = client.get("/pid", close=not keepalive)
                if status != 200:
                    raise ConnectionError(f"status {status}")
                self._record(client.pid)
                if keepalive:
                    with self.lock:
                        self.current[index] = client.pid
            except OSError as e:
                pid = client.pid if client is not None else None
                with self.lock:
                    if pid is not None and pid in self.tolerated_pids:
                        self.tolerated.append((pid, repr(e)))
                    else:
                        self.failures.append((pid, repr(e)))
                if client is not None:
                    client.close()
                client = None
        if client is not None:
            client.close()
