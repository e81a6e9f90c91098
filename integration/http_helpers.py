"""Raw-socket helpers for the HTTP hardening tests: one server running
apps/hardening with a call log, and a response reader bounded in time."""
import socket
import time

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
    data = b""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


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
