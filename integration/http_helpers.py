"""Raw-socket helpers for the HTTP hardening tests: one server running
apps/hardening with a call log, and a response reader bounded in time."""
import os
import re
import socket
import time
from pathlib import Path

from conftest import APPS

HARDENING = APPS / "hardening"
# The keys of BAD_HEADERS in apps/hardening/app.py.
BAD_HEADER_KINDS = ["crlf-value", "lf-value", "cr-value", "nul-value", "crlf-name", "space-name",
                    "colon-name", "empty-name", "nonascii-name", "ctl-value"]
IO_TIMEOUT = 5.0


def start_hardening(start_server, tmp_path, *flags, env=None):
    log = tmp_path / "calls.log"
    log.touch()
    srv = start_server("app:app", *flags, chdir=HARDENING, env={"CALL_LOG": str(log), **(env or {})})
    srv.call_log = log
    return srv


def app_calls(srv):
    return srv.call_log.read_text(encoding="latin-1").splitlines()


def read_until_close(sock, deadline=IO_TIMEOUT):
    """Everything the server sends until it closes: (bytes, closed). closed is
    False when the deadline passed with the connection still open."""
    end = time.monotonic() + deadline
    data = bytearray()  # bytes += would copy the whole body on every recv
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return bytes(data), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk


def silent_for(sock, seconds):
    """What the server sent within `seconds` on `sock`, or None if nothing
    (a client left waiting: not answered, not closed)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except socket.timeout:
        return None


def status_of(response):
    line = response.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def exchange(port, raw, half_close=True, deadline=IO_TIMEOUT):
    """Sends raw bytes, then reads to close: (status or None, bytes, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        data, closed = read_until_close(sock, deadline)
    return status_of(data), data, closed


def serving_worker_pid(port):
    """The pid of the worker that answers (the app's /pid route): the port
    accepts as soon as the master binds it, before any worker runs."""
    import requests
    return int(requests.get(f"http://127.0.0.1:{port}/pid", timeout=20).text)


def worker_pids(master_pid):
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        return [int(p) for p in f.read().split()]


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class SyscallTrace:
    """strace attached to a running process, every thread of it and any it
    starts, recording some system calls with the path of each descriptor
    (-y). Use as a context manager; inside it, after the requests,
    ``wait_for_bytes`` until strace has written down the calls that moved
    a file (a client may have all the bytes before strace has seen the
    call return), then read ``calls()`` or ``bytes_by_call()``."""

    def __init__(self, pid, out_dir, syscalls=("sendfile", "read", "pread64", "readv", "preadv")):
        import shutil
        import subprocess
        if shutil.which("strace") is None:
            raise AssertionError("strace is not installed (./dev.sh setup installs it)")
        self.pid = pid
        # strace's own messages and the calls, in one unbuffered stream
        # (-o would hold the calls in a buffer until strace exits).
        self.log = Path(out_dir) / f"strace-{pid}.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-y", "-s", "0", "-e", "trace=" + ",".join(syscalls),
             "-e", "signal=none", "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)

    def text(self):
        return self.log.read_text(errors="replace")

    def __enter__(self):
        # "Process N attached [with M threads]" comes once every thread
        # is seized: the calls made from then on are traced.
        deadline = time.monotonic() + 20
        while f"Process {self.pid} attached" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise AssertionError(f"strace did not attach to {self.pid}: {self.text()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        import signal as _signal
        if self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGINT)  # detaches, the process goes on
            self.proc.wait(timeout=20)
        self._log.close()

    def calls(self, path):
        """(name, result) of every finished call on a descriptor of ``path``."""
        found = []
        pending = {}  # thread -> a call on path that strace split ("<unfinished ...>")
        lines = self.text().split("\n")[:-1]  # whole lines only
        for line in lines:
            # "[pid  N] " before a call when strace traces several threads.
            thread = re.match(r"\[pid\s+(\d+)\]\s+", line)
            tid = thread.group(1) if thread else "-"
            line = line[thread.end():] if thread else line
            m = re.match(r"(\w+)\((.*)", line)
            resumed = re.match(r"<\.\.\. (\w+) resumed>(.*)", line)
            if resumed:
                name, rest = resumed.groups()
                if not pending.pop(tid, False):
                    continue
            elif m:
                name, rest = m.groups()
                if f"<{path}>" not in rest:
                    continue
                if rest.endswith("<unfinished ...>"):
                    pending[tid] = True
                    continue
            else:
                continue
            result = re.search(r"\)\s+=\s+(-?\d+)", rest)
            if result:
                found.append((name, int(result.group(1))))
        return found

    def bytes_by_call(self, path):
        """Bytes moved from ``path``, by system call name."""
        out = {}
        for name, result in self.calls(path):
            if result > 0:
                out[name] = out.get(name, 0) + result
        return out

    def wait_for_bytes(self, path, n, timeout=20.0):
        """Waits until the calls strace has written down moved ``n`` bytes
        of ``path`` (whatever the calls)."""
        deadline = time.monotonic() + timeout
        while sum(self.bytes_by_call(path).values()) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"strace saw {self.bytes_by_call(path)} of {path}, "
                                     f"not {n} bytes:\n{self.text()[-3000:]}")
            time.sleep(0.05)
