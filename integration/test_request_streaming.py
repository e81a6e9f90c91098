"""Request bodies streamed to the app as they arrive (--no-request-buffering),
and the default that buffers them: raw-socket clients that send a piece of
body, wait for the app's echo of it, then send the next; other connections
while one waits; an app that answers first; a client that stalls or leaves
mid-body; limit_request_body; and buffering still buffering."""
import hashlib
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import APPS, server_binary
from http_helpers import read_until_close, status_of, vm_rss_kib

STREAMING = APPS / "streaming"
IO_TIMEOUT = 10.0


def start_streaming(start_server, tmp_path, *flags):
    log = tmp_path / "calls.log"
    log.touch()
    srv = start_server("app:app", *flags, chdir=STREAMING, env={"CALL_LOG": str(log)})
    srv.call_log = log
    return srv


def calls(srv):
    return srv.call_log.read_text(encoding="latin-1").splitlines()


def wait_until(check, timeout=IO_TIMEOUT, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class ChunkedResponse:
    """Reads a chunked response from a raw socket one chunk at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.settimeout(IO_TIMEOUT)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower(), head
        return status_of(head)

    def chunk(self):
        """The next chunk's bytes, or None after the last chunk."""
        size = int(self._line().split(b";")[0], 16)
        if size == 0:
            assert self._line() == b""
            return None
        while len(self.buf) < size + 2:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        return data


def chunk_of(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


PIECES = [b"first piece.", b"second one..", b"third, last."]  # 12 bytes each


@pytest.mark.parametrize("threads", ["1", "4"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_each_read_returns_the_piece_the_client_just_sent(start_server, tmp_path, threads, framing):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering", "--threads", threads)
    total = sum(len(p) for p in PIECES)
    framing_header = (b"Content-Length: %d" % total if framing == "content-length"
                      else b"Transfer-Encoding: chunked")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /echo?n=12 HTTP/1.1\r\nHost: a\r\n" + framing_header + b"\r\n\r\n")
        response = ChunkedResponse(sock)
        for i, piece in enumerate(PIECES):
            sock.sendall(piece if framing == "content-length" else chunk_of(piece))
            if i == 0:
                assert response.head() == 200
            # The app's read(12) returned this piece before the next was sent.
            assert response.chunk() == piece
        if framing == "chunked":
            sock.sendall(b"0\r\n\r\n")
        assert response.chunk() is None
        # The connection goes on: the next request on it is served.
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data, closed = read_until_close(sock)
    assert response.buf + data and b"hello" in response.buf + data
    assert calls(srv)[:2] == ["POST /echo", "/echo done"]


def test_read_n_waits_for_n_bytes_as_gunicorn_does(start_server, tmp_path):
    # gunicorn's Body.read(n) returns n bytes unless the body ends first.
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /echo?n=10 HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n12345")
        response = ChunkedResponse(sock)
        wait_until(lambda: "POST /echo" in calls(srv), what="the app call")
        # The head goes out with the first chunk (PEP 3333), and read(10)
        # does not return the 5 bytes at hand: nothing comes yet.
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        sock.sendall(b"67890")
        assert response.head() == 200
        assert response.chunk() == b"1234567890"
        sock.sendall(b"abc")
        assert response.chunk() == b"abc"  # the body ended: fewer bytes
        assert response.chunk() is None


def test_readline_and_iteration_return_each_line_as_it_completes(start_server, tmp_path):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /echo-lines HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunk_of(b"one\ntw"))
        response = ChunkedResponse(sock)
        assert response.head() == 200
        assert response.chunk() == b"one\n"
        sock.sendall(chunk_of(b"o\nthree"))
        assert response.chunk() == b"two\n"
        sock.sendall(b"0\r\n\r\n")
        assert response.chunk() == b"three"  # the last line has no newline
        assert response.chunk() is None
    # readline(size) stops at size; readlines() reads to the end.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /readline?size=4 HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab\ncdefgh")
        response = ChunkedResponse(sock)
        assert response.head() == 200
        assert [response.chunk(), response.chunk(), response.chunk()] == [b"ab\n", b"cdef", b"gh"]
    r = requests.post(srv.url + "/readlines", data=iter([b"a\nbb\n", b"ccc"]), timeout=IO_TIMEOUT)
    assert r.text == "3 8"


@pytest.mark.parametrize("threads", ["1", "4"])
def test_other_connections_are_served_while_a_request_waits_for_body_bytes(start_server, tmp_path,
                                                                           threads):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering", "--threads", threads)
    body = b"x" * 100000
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as slow:
        slow.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body[:1000])
        wait_until(lambda: "POST /slurp" in calls(srv), what="the app call")
        # The app now waits in read() for the rest.
        if threads == "4":
            # Another thread serves other clients meanwhile.
            for _ in range(5):
                assert requests.get(srv.url + "/hello", timeout=IO_TIMEOUT).text == "hello"
        else:
            # One app call at a time, but the loop is not held: it reads,
            # parses and refuses on other connections, and queues their
            # requests for the thread.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as bad:
                bad.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n")
                data, closed = read_until_close(bad)
                assert status_of(data) == 400 and closed
            queued = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
            queued.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        slow.sendall(body[1000:])
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(hashlib.sha256(body).hexdigest().encode()):
            chunk = slow.recv(65536)
            assert chunk
            data += chunk
        assert status_of(data) == 200
    if threads == "1":
        with queued:
            data, closed = read_until_close(queued)
        assert data.endswith(b"hello")
        assert calls(srv).index("/slurp read 100000") < calls(srv).index("GET /hello")


def test_an_app_that_answers_before_reading_the_body_and_the_rest_is_drained(start_server, tmp_path):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + b"y" * 5000)
        sock.settimeout(IO_TIMEOUT)
        data = b""
        while not data.endswith(b"early"):
            data += sock.recv(4096)
        assert status_of(data) == 200
        # The rest of the body is read and dropped; the connection then
        # serves the next request.
        sock.sendall(b"y" * 195000)
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data, closed = read_until_close(sock)
    assert data.endswith(b"hello") and closed
    assert calls(srv) == ["POST /early", "GET /hello"]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_client_that_stalls_mid_body_is_closed_at_the_timeout_and_the_thread_freed(
        start_server, tmp_path, threads):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering", "--threads", threads,
                          "--timeout", "2")
    pid = requests.get(srv.url + "/pid", timeout=IO_TIMEOUT).text
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"z" * 10)
        data, closed = read_until_close(sock, deadline=15)
    assert closed and data == b""
    # The app's read raised (as a socket read with a timeout would).
    wait_until(lambda: "/slurp TimeoutError" in calls(srv), what="the app's TimeoutError")
    # Its thread serves the next request; the worker was not aborted (the
    # wait for the client is not the app being stuck).
    assert requests.get(srv.url + "/pid", timeout=IO_TIMEOUT).text == pid
    assert "WORKER TIMEOUT" not in srv.stderr()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_client_that_disconnects_mid_body(start_server, tmp_path, framing):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering")
    if framing == "content-length":
        raw = b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"z" * 300
    else:
        raw = (b"POST /slurp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunk_of(b"z" * 300))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(raw)
        wait_until(lambda: "POST /slurp" in calls(srv), what="the app call")
    # gunicorn: a Content-Length body reads short; a chunked one raises
    # (NoMoreData, an IOError).
    expected = "/slurp short 300" if framing == "content-length" else "/slurp OSError"
    wait_until(lambda: expected in calls(srv), what=expected)
    assert requests.get(srv.url + "/hello", timeout=IO_TIMEOUT).text == "hello"


def test_limit_request_body_when_streaming(start_server, tmp_path):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering",
                          "--limit-request-body", "1000")
    # Content-Length says so: refused before the app is called.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")
        data, closed = read_until_close(sock)
    assert status_of(data) == 413 and closed
    assert calls(srv) == []
    # A chunked body that grows past it: the app, reading, gets an error and
    # the client a 413.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunk_of(b"x" * 600))
        wait_until(lambda: "POST /slurp" in calls(srv), what="the app call")
        sock.sendall(chunk_of(b"x" * 600))
        data, closed = read_until_close(sock)
    assert status_of(data) == 413 and closed
    wait_until(lambda: "/slurp OSError" in calls(srv), what="the app's OSError")
    # At the limit exactly is fine.
    r = requests.post(srv.url + "/slurp", data=iter([b"y" * 500, b"y" * 500]), timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.text.startswith("1000 ")


def test_expect_100_continue_is_answered_when_the_app_is_called(start_server, tmp_path):
    srv = start_streaming(start_server, tmp_path, "--no-request-buffering")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /echo?n=5 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        sock.settimeout(IO_TIMEOUT)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        # As gunicorn: sent as the app is called, before any body byte.
        wait_until(lambda: calls(srv) == ["POST /echo"], what="the app call")
        sock.sendall(b"hello")
        response = ChunkedResponse(sock)
        assert response.head() == 200
        assert response.chunk() == b"hello"


@pytest.mark.parametrize("how", ["default", "flag", "conf", "toml"])
def test_request_buffering_calls_the_app_only_after_the_whole_body(start_server, tmp_path, how):
    flags = {"default": [], "flag": ["--request-buffering"]}.get(how, [])
    if how == "conf":
        (tmp_path / "conf.py").write_text("request_buffering = True\n")
        flags = ["-c", tmp_path / "conf.py"]
    if how == "toml":
        (tmp_path / "conf.toml").write_text("request_buffering = true\n")
        flags = ["-c", tmp_path / "conf.toml"]
    srv = start_streaming(start_server, tmp_path, *flags)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + b"b" * 1000)
        # A request served in the meantime shows the first part was read.
        assert requests.get(srv.url + "/hello", timeout=IO_TIMEOUT).text == "hello"
        assert calls(srv) == ["GET /hello"]
        sock.sendall(b"b" * 1000)
        sock.settimeout(IO_TIMEOUT)
        data = b""
        while not data.endswith(hashlib.sha256(b"b" * 2000).hexdigest().encode()):
            data += sock.recv(4096)
    assert calls(srv) == ["GET /hello", "POST /slurp", "/slurp read 2000"]


@pytest.mark.parametrize("how", ["flag", "conf", "toml"])
def test_no_request_buffering_from_each_source_calls_the_app_before_the_body_ends(
        start_server, tmp_path, how):
    flags = ["--no-request-buffering"]
    if how == "conf":
        (tmp_path / "conf.py").write_text("request_buffering = False\n")
        flags = ["-c", tmp_path / "conf.py"]
    if how == "toml":
        (tmp_path / "conf.toml").write_text("request_buffering = false\n")
        flags = ["-c", tmp_path / "conf.toml"]
    srv = start_streaming(start_server, tmp_path, *flags)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /slurp HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + b"b" * 1000)
        wait_until(lambda: calls(srv) == ["POST /slurp"], what="the app call")
        sock.sendall(b"b" * 1000)
        data, closed = read_until_close(sock, deadline=3)
    assert data.endswith(hashlib.sha256(b"b" * 2000).hexdigest().encode())


def test_print_config_shows_request_buffering_and_a_bad_value_is_named(tmp_path):
    out = subprocess.run([server_binary(), "--no-request-buffering", "--print-config", "app:app"],
                         cwd=STREAMING, capture_output=True, text=True, timeout=30)
    assert "request_buffering" in out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("request_buffering")][0]
    assert "False" in line and "command line" in line
    (tmp_path / "bad.toml").write_text('request_buffering = "sometimes"\n')
    bad = subprocess.run([server_binary(), "-c", str(tmp_path / "bad.toml"), "app:app"],
                         cwd=STREAMING, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1
    assert "request_buffering" in bad.stderr and "sometimes" in bad.stderr


def test_a_streamed_upload_to_a_slower_app_keeps_worker_memory_bounded(start_server, tmp_path):
    # The loop stops reading while the app is a channel's limit behind, so
    # the worker holds about that much, not the body.
    # Under AddressSanitizer freed memory waits in a quarantine before reuse:
    # keep it small so RSS measures what we hold.
    asan = os.environ.get("ASAN_OPTIONS", "")
    srv = start_server("app:app", "--no-request-buffering", "--threads", "2", "--timeout", "60",
                       chdir=STREAMING, env={
                           "ASAN_OPTIONS": asan + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"})
    pid = int(requests.get(srv.url + "/pid", timeout=IO_TIMEOUT).text)
    baseline = vm_rss_kib(pid)
    block = bytes(range(256)) * 256  # 64 KiB
    count = 1024  # 64 MiB
    peak = [baseline]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss_kib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as sock:
            sock.sendall(b"POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (len(block) * count))
            for _ in range(count):
                sock.sendall(block)
            data, closed = read_until_close(sock, deadline=60)
    finally:
        done.set()
        watcher.join(timeout=5)
    expected = hashlib.sha256(block * count).hexdigest().encode()
    assert data.endswith(b"%d %s" % (len(block) * count, expected))
    growth_mib = (peak[0] - baseline) / 1024
    print(f"worker RSS growth {growth_mib:.1f} MiB for a 64 MiB streamed upload")
    assert growth_mib < 24, f"the worker grew {growth_mib:.1f} MiB"


def test_a_uwsgi_packets_body_is_streamed_too(start_server, tmp_path):
    # --protocol uwsgi (nginx's uwsgi_pass with uwsgi_request_buffering off):
    # the body after the packet reaches the app as it arrives.
    import struct
    srv = start_streaming(start_server, tmp_path, "--protocol", "uwsgi", "--no-request-buffering")
    variables = [("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo?n=12"), ("PATH_INFO", "/echo"),
                 ("QUERY_STRING", "n=12"), ("SERVER_PROTOCOL", "HTTP/1.1"),
                 ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"),
                 ("CONTENT_LENGTH", str(sum(len(p) for p in PIECES)))]
    block = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
                     for k, v in variables)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"\0" + struct.pack("<H", len(block)) + b"\0" + block)
        received = b""
        for piece in PIECES:
            sock.sendall(piece)
            # The response has no length: its body is the pieces as they come.
            while not received.endswith(piece):
                data = sock.recv(65536)
                assert data, received
                received += data
        data, closed = read_until_close(sock)
    head, _, body = (received + data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"".join(PIECES) and closed
