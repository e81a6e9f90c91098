"""Accept balance between workers (docs/design.md, "Accept balance"): every
worker is woken by a new connection, and one that holds more connections
than a peer leaves it to that peer, unless the peers are busy."""
import collections
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import APPS, server_binary
from http_helpers import silent_for

PROC = APPS / "proc"


def ask(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1].startswith(b"pid="):
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                 .split(b":")[1])
    while len(body) < length:
        body += sock.recv(4096)
    return body.decode().split()[0]  # "pid=N"


def open_all(port, n):
    """n connections, connected at once (a client filling its pool)."""
    socks = [None] * n

    def connect(i):
        socks[i] = socket.create_connection(("127.0.0.1", port), timeout=30)

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return socks


def test_a_burst_of_keep_alive_connections_is_shared_between_workers(start_server):
    srv = start_server("app:app", "--workers", "2", chdir=PROC)
    both_workers_serving(srv.port)  # booted and listening
    # Three bursts: a split can be even by chance once.
    for _ in range(3):
        socks = open_all(srv.port, 16)
        try:
            # Held open, one request each: where each connection landed.
            served = collections.Counter(ask(s, "/pid") for s in socks)
        finally:
            for s in socks:
                s.close()
        # The first worker to wake would otherwise take most of the burst.
        assert len(served) == 2 and min(served.values()) >= 4, served
        time.sleep(0.2)  # the closes reach the workers


def both_workers_serving(port):
    seen = set()
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            seen.add(ask(s, "/pid"))
    assert len(seen) == 2
    return {int(p.split("=")[1]) for p in seen}


def test_a_peer_that_does_not_run_does_not_keep_new_connections_waiting(start_server):
    # A stopped worker (SIGSTOP: as one the scheduler does not run) looks
    # idle on the board; the other yields to it only for a moment.
    srv = start_server("app:app", "--workers", "2", "--keep-alive", "30", chdir=PROC)
    stopped = min(both_workers_serving(srv.port))
    os.kill(stopped, signal.SIGSTOP)
    try:
        socks = []
        start = time.monotonic()
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            socks.append(s)
            assert ask(s, "/pid") != f"pid={stopped}"
        elapsed = time.monotonic() - start
        for s in socks:
            s.close()
        assert elapsed < 4, f"new connections waited {elapsed:.1f} s for the stopped worker"
    finally:
        os.kill(stopped, signal.SIGCONT)


def test_a_busy_peer_does_not_keep_new_connections_waiting(start_server, tmp_path):
    # (A long keep-alive: no idle connection closes meanwhile and makes room.)
    srv = start_server("app:app", "--workers", "2", "--keep-alive", "30", chdir=PROC)
    inside = tmp_path / "inside"
    busy = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        # One worker is held in the app for 8 s with one connection...
        busy.sendall(f"GET /sleep?s=8&touch={inside} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        deadline = time.monotonic() + 10
        while not inside.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # ...so the other takes every new one, though it then holds more
        # than its busy peer: it leaves each for the peer only a moment.
        socks = []
        start = time.monotonic()
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            socks.append(s)
            ask(s, "/pid")
        elapsed = time.monotonic() - start
        for s in socks:
            s.close()
        assert elapsed < 4, f"new connections waited {elapsed:.1f} s for the busy worker"
    finally:
        busy.close()


def sanitized():
    libs = subprocess.run(["ldd", server_binary()], capture_output=True, text=True).stdout
    return "libasan" in libs or "libubsan" in libs


def test_out_of_descriptors_clients_wait_in_the_backlog(start_server):
    if sanitized():
        # UBSan's vptr check opens a pipe to test whether memory is
        # readable: with no descriptor left it reports every virtual call
        # as one on an invalid object.
        pytest.skip("the sanitizer runtime needs descriptors of its own")
    # EMFILE at accept: the client is neither dropped nor refused; it waits
    # in the kernel's queue until the worker has a descriptor again.
    srv = start_server("app:app", "--keep-alive", "30", chdir=APPS / "fd_hog",
                       prefix=["prlimit", "--nofile=128:128", "--"])
    # The start-up probe's connection sent nothing: the kernel hands it to
    # the worker only after the deferral (TCP_DEFER_ACCEPT, 1 s), and its
    # close would free a descriptor after the hog below.
    time.sleep(1.5)
    owner = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        assert exchange_on(owner, "/hog").startswith(b"holding ")
        waiting = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        early = silent_for(waiting, 1.0)
        assert early is None, f"answered or dropped while out of descriptors: {early!r}"
        assert exchange_on(owner, "/release") == b"released"
        waiting.settimeout(10)
        data = b""
        while chunk := waiting.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok")
        waiting.close()
    finally:
        owner.close()
    assert "accept() failed" in srv.stderr()


def exchange_on(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                 .split(b":")[1])
    while len(body) < length:
        body += sock.recv(4096)
    return body
