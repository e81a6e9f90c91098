"""Deadlines and per-worker limits over real sockets: idle keep-alive, a
request head that trickles in (slowloris), a client that stops reading,
--worker-connections, and running out of file descriptors."""
import socket
import time

import requests

from conftest import Server, free_port, server_binary, wait_for_port
from http_helpers import HARDENING, serving_worker_pid, silent_for, app_calls, exchange, read_until_close, start_hardening, status_of, worker_pids


def test_idle_keep_alive_connection_is_closed_after_keep_alive_seconds(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--keep-alive", "1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = b""
        while not first.endswith(b"ok"):
            first += sock.recv(4096)
        assert status_of(first) == 200
        data, closed = read_until_close(sock, deadline=5)
        assert closed and data == b""


def test_a_head_trickling_in_past_the_timeout_gets_408_and_is_closed(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--timeout", "2", "--keep-alive", "30")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        deadline = time.monotonic() + 6
        answer = b""
        # One header byte every 0.2 s: never idle, never complete.
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.2)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        assert status_of(answer) == 408, answer
    assert app_calls(srv) == []


def test_an_idle_partial_body_is_dropped_after_the_timeout(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--timeout", "1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        data, closed = read_until_close(sock, deadline=5)
    assert closed and status_of(data) == 408
    assert app_calls(srv) == []


def test_a_client_that_stops_reading_is_dropped_and_others_are_served(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--timeout", "1")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", srv.port))
    try:
        sock.sendall(b"GET /big?mb=256 HTTP/1.1\r\nHost: a\r\n\r\n")
        # Others are served while it stalls.
        assert requests.get(srv.url + "/", timeout=5).text == "ok"
        time.sleep(3.5)
        received, closed = read_until_close(sock, deadline=10)
        assert closed
        assert len(received) < 256 * 1024 * 1024, "the whole body was sent: nothing stalled"
    finally:
        sock.close()
    assert requests.get(srv.url + "/", timeout=5).text == "ok"


def _idle_keep_alive_connections(port, count):
    """`count` connections, opened one at a time, each after one request."""
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status_of(s.recv(4096)) == 200
        time.sleep(0.05)  # the first is the one idle longest
    return held


def test_worker_connections_caps_clients_per_worker(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--worker-connections", "2", "--keep-alive", "30")
    held = _idle_keep_alive_connections(srv.port, 2)
    try:
        for s in held:
            # Half a request: not idle, so not a connection to close for room.
            s.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(0.3)  # read by the worker before the third client comes
        third = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        third.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert silent_for(third, 1.0) in (None, b""), "a third client was served beyond --worker-connections 2"
        held.pop().close()  # a slot frees: the waiting client is accepted
        data, closed = read_until_close(third, deadline=5)
        assert status_of(data) == 200 and closed
        third.close()
    finally:
        for s in held:
            s.close()


def test_at_worker_connections_the_longest_idle_connection_makes_room(start_server, tmp_path):
    # nginx's behaviour: idle keep-alive connections are closed first, so a
    # new client is served at once instead of waiting out --keep-alive.
    srv = start_hardening(start_server, tmp_path, "--worker-connections", "3", "--keep-alive", "60")
    held = _idle_keep_alive_connections(srv.port, 3)
    try:
        start = time.monotonic()
        status, _, closed = exchange(srv.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                                     half_close=False)
        assert status == 200 and time.monotonic() - start < 3
        assert read_until_close(held[0], deadline=2)[1], "the longest idle one was closed"
        for s in held[1:]:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert status_of(s.recv(4096)) == 200, "the others still serve"
    finally:
        for s in held:
            s.close()


def test_a_low_open_files_limit_lowers_the_cap_instead_of_spinning(tmp_path):
    log = tmp_path / "calls.log"
    log.touch()
    port = free_port()
    srv = Server(["prlimit", "--nofile=64:64", server_binary(), "--bind", f"127.0.0.1:{port}",
                  "--keep-alive", "30", "--chdir", str(HARDENING), "app:app"],
                 env={"CALL_LOG": str(log)}, port=port)
    clients = []
    try:
        assert wait_for_port(port, srv.proc), srv.stderr()
        pid = serving_worker_pid(port)
        for _ in range(80):  # more than the 64 descriptors the worker may have
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        time.sleep(0.5)
        with open(f"/proc/{pid}/stat") as f:
            before = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        time.sleep(1.0)
        with open(f"/proc/{pid}/stat") as f:
            after = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        # Clock ticks (1/100 s): a loop spinning on accept() burns ~100.
        assert after - before < 50, f"the worker used {after - before} ticks in 1 s"
        for c in clients:
            c.close()
        clients = []
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
        assert worker_pids(srv.proc.pid) == [pid]
        assert "worker_connections 1000 lowered to 32" in srv.stderr()
    finally:
        for c in clients:
            c.close()
        srv.stop()


def _drip_until_closed(sock, drip, every, limit, fin_is_close=True):
    """Sends `drip` every `every` seconds until the server closes the
    connection; returns how long that took, or None after `limit` s. With
    fin_is_close=False the server's FIN (a half-close) is not enough: the
    socket must be gone, so that a write is refused."""
    start = time.monotonic()
    sock.settimeout(every)
    while time.monotonic() - start < limit:
        try:
            sock.sendall(drip)
            if sock.recv(4096) == b"":
                if fin_is_close:
                    return time.monotonic() - start
                time.sleep(every)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
    return None


def test_empty_lines_dripping_before_a_request_do_not_hold_the_connection(start_server, tmp_path):
    # RFC 9112 section 2.2 lets a server ignore empty lines before a request
    # line; they advance no request, so they do not refresh the idle
    # deadline: the connection goes at --keep-alive, not never.
    srv = start_hardening(start_server, tmp_path, "--keep-alive", "2", "--timeout", "10")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        took = _drip_until_closed(sock, b"\r\n", 1.0, 20)
    assert took is not None and took < 12, took
    assert app_calls(srv) == []


def test_a_lingering_close_ends_on_time_whatever_the_client_sends(start_server, tmp_path):
    # A refused request (400) is followed by a lingering close that reads and
    # drops what the client still sends: for a bounded time, not for as long
    # as the client keeps writing.
    srv = start_hardening(start_server, tmp_path, "--keep-alive", "30", "--timeout", "30")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        assert status_of(answer) == 400
        took = _drip_until_closed(sock, b"x", 0.3, 20, fin_is_close=False)
    assert took is not None and took < 6, took
