"""Connection-level HTTP/1.x behaviour over raw sockets: keep-alive,
pipelining, HEAD, HTTP/1.0, Connection: close, clients that go away."""
import socket
import time

import pytest
import requests

from conftest import APPS
from proc_tools import alive, wait_for_workers, workers

FEATURES = APPS / "features"


class RawClient:
    """A socket that reads whole HTTP/1.x responses (Content-Length, chunked,
    or until close)."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self, head_request=False):
        status = self._line().decode("latin-1")
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers[k.strip().lower()] = v.strip()
        code = int(status.split()[1])
        if head_request or code in (204, 304) or 100 <= code < 200:
            body = b""
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                assert self._take(2) == b"\r\n"
        else:
            body = self.read_to_close()
        return status, headers, body

    def read_to_close(self):
        while True:
            try:
                self._fill()
            except EOFError:
                out, self.buf = self.buf, b""
                return out

    def closed_by_peer(self, timeout=3):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture(params=["1", "4"], ids=["threads1", "threads4"])
def server(start_server, request):
    return start_server("app:app", "--threads", request.param, chdir=FEATURES)


def get(path, extra=b"", version=b"HTTP/1.1"):
    return b"GET " + path + b" " + version + b"\r\nHost: t\r\n" + extra + b"\r\n"


def test_keep_alive_serves_many_requests_on_one_connection(server):
    c = RawClient(server.port)
    for i in range(20):
        c.send(get(b"/reason"))
        status, headers, body = c.response()
        assert status.startswith("HTTP/1.1 299") and body == b"custom"
        assert headers.get("connection") != "close"
    c.close()
    with requests.Session() as s:
        for _ in range(20):
            assert s.get(server.url + "/reason", timeout=5).status_code == 299
    # requests' pool reused one connection: the access log is off, so count
    # via the server's view of REMOTE_PORT instead.
    with requests.Session() as s:
        ports = {s.get(server.url + "/environ", timeout=5).json()["REMOTE_PORT"] for _ in range(10)}
    assert len(ports) == 1


def test_pipelined_requests_are_answered_in_order(server):
    c = RawClient(server.port)
    c.send(get(b"/reason") + get(b"/nowhere-1") + b"POST /input HTTP/1.1\r\nHost: t\r\n"
           b"Content-Length: 3\r\n\r\nabc" + get(b"/nowhere-2"))
    assert c.response()[2] == b"custom"
    assert c.response()[2] == b"not found: /nowhere-1"
    assert c.response()[2] == b'["abc"]'
    assert c.response()[2] == b"not found: /nowhere-2"
    c.close()


def test_a_burst_of_100_pipelined_requests(server):
    c = RawClient(server.port)
    c.send(b"".join(get(b"/n%d" % i) for i in range(100)))
    for i in range(100):
        assert c.response()[2] == b"not found: /n%d" % i
    c.close()


def _pattern(n):
    return (b"%08d" % (n % 10**8) + b"0123456789abcdef" * (n // 16 + 1))[:n]


def test_small_and_large_responses_mixed_on_many_connections_stay_in_order(server):
    # Small responses are held until the loop has served every ready
    # connection, then written together; a large one in the same batch is
    # written at once behind them. Order and bytes must not change, also when
    # a streamed, a file and a failing body follow in the same pipeline.
    sizes = [10, 300_000, 0, 5_000, 20_000, 1, 70_000, 16_384]
    clients = [RawClient(server.port, timeout=10) for _ in range(8)]
    for k, c in enumerate(clients):
        order = sizes[k:] + sizes[:k]
        c.order = order
        c.send(b"".join(get(b"/bytes?%d" % n) for n in order) + get(b"/write")
               + get(b"/file-wrapper") + get(b"/reason"))
    for c in clients:
        for n in c.order:
            status, headers, body = c.response()
            assert status.startswith("HTTP/1.1 200") and body == _pattern(n), n
        assert c.response()[2] == b"written-then-iterated"
        assert c.response()[2] == (FEATURES / "app.py").read_bytes()
        assert c.response()[2] == b"custom"
    for c in clients:
        c.send(get(b"/bytes?7") + get(b"/fail-mid-body"))
    for c in clients:
        assert c.response()[2] == _pattern(7)
        # The failing body's first chunk still reaches the client.
        rest = c.read_to_close()
        assert rest.startswith(b"HTTP/1.1 200") and b"\r\na\r\n" in rest
        c.close()


def test_a_streamed_chunk_reaches_the_client_before_the_app_makes_the_next(server, tmp_path):
    # The app waits for a file the test creates only once it has read the
    # first event: a server that held the first chunk until the second was
    # made would deadlock here (the read times out).
    flag = tmp_path / "go"
    c = RawClient(server.port, timeout=8)
    c.send(get(b"/stream-until-flag?" + str(flag).encode()))
    while b"first event" not in c.buf:
        c._fill()
    flag.touch()
    status, headers, body = c.response()
    assert body == b"first eventsecond event"
    c.close()


def test_a_response_goes_out_before_the_next_pipelined_request_is_served(server, tmp_path):
    flag = tmp_path / "go"
    c = RawClient(server.port, timeout=8)
    c.send(get(b"/reason") + get(b"/wait-for-flag?" + str(flag).encode()))
    assert c.response()[2] == b"custom"
    flag.touch()
    assert c.response()[2] == b"flag seen"
    c.close()


def test_head_has_headers_but_no_body_and_keeps_the_connection(server):
    c = RawClient(server.port)
    c.send(b"HEAD /reason HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, body = c.response(head_request=True)
    assert status.startswith("HTTP/1.1 299")
    assert headers["content-length"] == "6"
    c.send(get(b"/reason"))
    assert c.response()[2] == b"custom"
    c.close()


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_head_answered_with_an_empty_body_claims_no_length(server, version):
    # The app leaves the body out for HEAD (Werkzeug does): "Content-Length:
    # 0" would tell a client or a cache that the GET body is empty, so no
    # length is sent, as gunicorn does.
    c = RawClient(server.port)
    c.send(b"HEAD /body-left-out-for-head " + version + b"\r\nHost: t\r\n"
           b"Connection: keep-alive\r\n\r\n")
    status, headers, body = c.response(head_request=True)
    assert status.startswith(version.decode() + " 200")
    assert "content-length" not in headers and "transfer-encoding" not in headers
    c.send(get(b"/body-left-out-for-head", version=version))
    assert c.response()[2] == b"the GET body"
    c.close()


def test_date_and_server_headers(server):
    r = requests.get(server.url + "/reason", timeout=5)
    assert r.headers["Server"] == "cppgunicorn"
    from email.utils import parsedate_to_datetime
    assert abs(parsedate_to_datetime(r.headers["Date"]).timestamp() - time.time()) < 5


def test_connection_close_from_the_client_closes_after_the_response(server):
    c = RawClient(server.port)
    c.send(get(b"/reason", b"Connection: close\r\n"))
    status, headers, body = c.response()
    assert headers["connection"] == "close" and body == b"custom"
    assert c.closed_by_peer()


def test_http10_closes_by_default_and_keeps_alive_on_request(server):
    c = RawClient(server.port)
    c.send(get(b"/reason", version=b"HTTP/1.0"))
    status, headers, body = c.response()
    assert status.startswith("HTTP/1.0 299") and body == b"custom"
    assert c.closed_by_peer()
    c = RawClient(server.port)
    c.send(get(b"/reason", b"Connection: keep-alive\r\n", version=b"HTTP/1.0"))
    status, headers, body = c.response()
    assert headers["connection"] == "keep-alive"
    c.send(get(b"/reason", b"Connection: keep-alive\r\n", version=b"HTTP/1.0"))
    assert c.response()[2] == b"custom"
    c.close()


def the_worker(srv):
    """The pid of the server's one worker, once it runs."""
    (pid,) = wait_for_workers(srv.proc.pid, 1)
    return pid


def assert_same_worker(srv, pid):
    """The worker that was serving is still the master's one worker: it
    neither crashed (to be replaced) nor was restarted."""
    assert workers(srv.proc.pid) == [pid], f"worker {pid} was replaced:\n{srv.stderr()}"
    assert alive(pid)
    assert srv.stderr().count("Booting worker with pid") == 1, srv.stderr()


def test_a_client_that_disconnects_mid_body_does_not_hurt_the_worker(server):
    worker = the_worker(server)
    for _ in range(3):
        c = RawClient(server.port)
        c.send(get(b"/slow-closing"))
        c.sock.recv(1000)
        c.close()
    for _ in range(5):
        assert requests.get(server.url + "/reason", timeout=5).status_code == 299
    assert_same_worker(server, worker)


def test_a_client_that_sends_half_a_request_and_leaves(server):
    worker = the_worker(server)
    c = RawClient(server.port)
    c.send(b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
    c.close()
    assert requests.get(server.url + "/reason", timeout=5).status_code == 299
    assert_same_worker(server, worker)


def test_a_bad_request_gets_400_and_the_connection_closes(server):
    c = RawClient(server.port)
    c.send(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
    status, headers, body = c.response()
    assert status.startswith("HTTP/1.1 400")
    assert headers["connection"] == "close"
    assert c.closed_by_peer()


def test_idle_keep_alive_connections_close_after_keep_alive_seconds(start_server):
    srv = start_server("app:app", "--keep-alive", "1", chdir=FEATURES)
    c = RawClient(srv.port)
    c.send(get(b"/reason"))
    c.response()
    assert c.closed_by_peer(timeout=5)


@pytest.mark.parametrize("threads", ["1", "4"])
@pytest.mark.parametrize("version, extra", [(b"HTTP/1.1", b""),
                                            (b"HTTP/1.0", b"Connection: keep-alive\r\n")])
def test_keep_alive_0_closes_after_each_response_and_says_so(start_server, threads, version,
                                                             extra):
    # gunicorn's --keep-alive 0 turns persistent connections off: every
    # response says Connection: close and the connection ends. Kept open,
    # it would be dropped at the next idle sweep, just as a proxy's pool
    # (nginx upstream keepalive) sends its next request on it: a reset.
    srv = start_server("app:app", "--keep-alive", "0", "--threads", threads, chdir=FEATURES)
    c = RawClient(srv.port)
    c.send(get(b"/reason", extra, version=version))
    status, headers, body = c.response()
    assert body == b"custom" and headers.get("connection") == "close"
    assert c.closed_by_peer(timeout=5)


def test_keep_alive_0_still_waits_for_a_first_request(start_server):
    # With persistent connections off, a new connection still waits for its
    # request (up to --timeout): the idle sweeps (every 250 ms) that pass
    # before it arrives must not close it.
    srv = start_server("app:app", "--keep-alive", "0", chdir=FEATURES)
    c = RawClient(srv.port)
    time.sleep(1.0)
    c.send(get(b"/reason"))
    assert c.response()[2] == b"custom"
    assert c.closed_by_peer(timeout=5)
