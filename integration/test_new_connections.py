"""New TCP connections: TCP_DEFER_ACCEPT on the sockets the server binds
(docs/http.md, "New connections"), and the request read as soon as the
connection is accepted."""
import json
import socket
import time

from conftest import APPS

FEATURES = APPS / "features"
SYN_RECV = "03"


def server_side_state(server_port, client_port):
    """The state (/proc/net/tcp's hex code) of the server's end of the
    connection from client_port, or None if the kernel lists none."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                return state
    return None


def test_a_connection_that_has_sent_nothing_waits_in_the_kernel(start_server):
    srv = start_server("app:app", chdir=FEATURES)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        # The client's connect() has returned, but the server's end is not
        # handed to accept() (no worker wakes up) before the first bytes.
        time.sleep(0.3)
        assert server_side_state(srv.port, c.getsockname()[1]) == SYN_RECV
        c.sendall(b"GET /reason HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 299") and data.endswith(b"custom")


def test_a_silent_connection_is_still_accepted_and_then_times_out(start_server):
    # After about a second the kernel hands a silent connection over anyway
    # (one SYN-ACK retransmission); then the usual deadlines apply: with
    # --keep-alive 1, the idle sweep closes it. A long TCP_DEFER_ACCEPT
    # would keep it in the kernel, unseen, far longer.
    srv = start_server("app:app", "--keep-alive", "1", chdir=FEATURES)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
        start = time.monotonic()
        assert c.recv(1) == b""  # closed by the server
        assert time.monotonic() - start < 8


def test_a_client_that_speaks_after_the_deferral_is_served(start_server):
    srv = start_server("app:app", chdir=FEATURES)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        time.sleep(1.5)  # past the deferral: accepted by now, request not sent yet
        c.sendall(b"GET /reason HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 299") and data.endswith(b"custom")


def test_a_request_larger_than_one_read_sent_with_the_connection(start_server):
    # The first read at accept takes at most the worker's 64 KiB read
    # buffer; the rest of what the client sent at once comes from the loop.
    srv = start_server("app:app", chdir=FEATURES)
    body = b"x" * (300 * 1024)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
        c.sendall(b"POST /input HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        c.shutdown(socket.SHUT_WR)  # and the end of input right behind it
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == [body.decode()]
