"""Streamed responses (generators, no length known up front): chunks the app
produces back to back are gathered into fewer, larger writes, and that must
never change what the client receives, nor delay a chunk when the app stops
producing (docs/http.md, "Streamed responses")."""
import socket
import sys
import time

import pytest

from conftest import APPS

APP_DIR = APPS / "streamed_responses"
sys.path.insert(0, str(APP_DIR))
from app import pattern  # noqa: E402

# Where the app runs: on the loop thread (chunks gathered while the
# generator produces them, a stall flusher for when it stops), on pool
# threads or greenlets (the loop writes what the channel holds).
MODES = {"loop thread": (), "threads": ("--threads", "4"), "gevent": ("-k", "gevent")}


@pytest.fixture(params=list(MODES))
def server(request, start_server):
    return start_server("app:app", "--chdir", APP_DIR, *MODES[request.param])


class Client:
    """Reads HTTP/1.1 responses off one socket, checking chunked framing byte
    by byte (sizes in hex, CRLF after each size line and each chunk, the
    last chunk, no trailer)."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def get(self, path, version=b"HTTP/1.1", method=b"GET"):
        self.send(method + b" " + path + b" " + version + b"\r\nHost: t\r\n\r\n")

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    def take(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        out = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return out

    def head(self):
        status = self.line()
        headers = {}
        while True:
            line = self.line()
            if not line:
                return status, headers
            k, v = line.split(b":", 1)
            headers[k.strip().lower().decode()] = v.strip().decode()

    def chunked_body(self):
        body = bytearray()
        while True:
            size_line = self.line()
            assert size_line and all(c in b"0123456789abcdefABCDEF" for c in size_line), size_line
            size = int(size_line, 16)
            if size == 0:
                assert self.take(2) == b"\r\n"  # no trailer fields
                return bytes(body)
            body += self.take(size)
            assert self.take(2) == b"\r\n"

    def read_to_close(self):
        while True:
            try:
                self._fill()
            except (EOFError, ConnectionResetError):
                out = bytes(self.buf)
                self.buf.clear()
                return out

    def close(self):
        self.sock.close()


def expected(sizes):
    return b"".join(pattern(i, n) for i, n in enumerate(sizes))


def sizes_query(sizes):
    return ",".join(str(n) for n in sizes).encode()


# Events (under 16 KiB), bulk chunks, a run that fills a batch (1 MiB)
# and overflows it, a chunk larger than a batch, and a body ending right
# after a full batch.
SIZE_SETS = [
    [65536] * 16,
    [65536] * 20,
    [1, 65536, 3, 20000, 16383, 16384, 300000, 5, 65536, 7, 900000, 9],
    [700000],
    [1200000, 65536],
    [16384] * 16,
    [100] * 50,
    [65536, 65536, 65536, 65536],
]


@pytest.mark.parametrize("sizes", SIZE_SETS, ids=lambda s: f"{len(s)}chunks-{sum(s)}B")
def test_gathered_chunks_arrive_whole_and_in_order_as_valid_chunked_framing(server, sizes):
    c = Client(server.port)
    for _ in range(2):  # and the connection stays usable after each
        c.get(b"/sizes?" + sizes_query(sizes))
        status, headers = c.head()
        assert status == b"HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        assert c.chunked_body() == expected(sizes)
    c.close()


def test_a_fast_generators_mebibyte_goes_out_in_one_write(start_server, tmp_path):
    # 16 chunks of 64 KiB made back to back are one batch: one write per
    # response (docs/http.md, "Streamed responses"). Counted with strace on
    # the worker over ten responses; a loaded machine may let the stall
    # flusher write a part on its own now and then, so the bound leaves
    # room for that, and a batch of 256 KiB (four writes each) is over it.
    import re
    from http_helpers import SyscallTrace, worker_pids
    srv = start_server("app:app", "--chdir", APP_DIR)
    sizes = [65536] * 16
    c = Client(srv.port)
    c.get(b"/sizes?" + sizes_query(sizes))  # warm: the app imported, the route cached
    c.head()
    assert c.chunked_body() == expected(sizes)
    [worker] = worker_pids(srv.proc.pid)
    with SyscallTrace(worker, tmp_path, syscalls=("write", "writev", "sendmsg", "sendto")) as trace:
        for _ in range(10):
            c.get(b"/sizes?" + sizes_query(sizes))
            status, _ = c.head()
            assert status == b"HTTP/1.1 200 OK"
            assert c.chunked_body() == expected(sizes)
        deadline = time.monotonic() + 10
        writes = []
        while time.monotonic() < deadline:
            # a write to the client's socket (strace -y: <socket:[inode]>), finished or split
            # by strace across threads ("<unfinished ...>")
            writes = re.findall(r"(?:write|writev|sendmsg|sendto)\(\d+<socket:", trace.text())
            if len(writes) >= 10:
                break
            time.sleep(0.05)
    c.close()
    assert 10 <= len(writes) <= 15, trace.text()[-2000:]


def test_pipelined_streams_are_answered_in_order(server):
    c = Client(server.port)
    sets = [[65536] * 5, [10, 20], [300000, 1]]
    c.send(b"".join(b"GET /sizes?" + sizes_query(s) + b" HTTP/1.1\r\nHost: t\r\n\r\n" for s in sets))
    for s in sets:
        status, headers = c.head()
        assert status == b"HTTP/1.1 200 OK"
        assert c.chunked_body() == expected(s)
    c.close()


def test_a_bulk_chunk_reaches_the_client_while_the_generator_waits(server, tmp_path):
    # The generator yields 64 KiB, then waits for a file that the test
    # creates only once it has read those bytes. A server that held the
    # chunk until the generator made the next one would make it give up.
    flag = tmp_path / "go"
    c = Client(server.port)
    c.get(b"/bulk-then-flag?" + str(flag).encode())
    status, headers = c.head()
    assert status == b"HTTP/1.1 200 OK"
    assert int(c.line(), 16) == 65536
    assert c.take(65536) == pattern(0, 65536)
    assert c.take(2) == b"\r\n"
    flag.touch()
    rest = c.chunked_body()
    assert rest == b"flag seen"
    c.close()


def test_head_of_a_streamed_response_has_no_body_and_keeps_the_connection(server):
    c = Client(server.port)
    c.get(b"/sizes?65536,65536,65536,65536,65536", method=b"HEAD")
    status, headers = c.head()
    assert status == b"HTTP/1.1 200 OK"
    assert "content-length" not in headers
    c.get(b"/sizes?70000,3")
    status, headers = c.head()
    assert status == b"HTTP/1.1 200 OK"  # no body bytes of the HEAD in between
    assert c.chunked_body() == expected([70000, 3])
    c.close()


def test_a_generator_under_its_content_length_is_sent_as_it_is(server):
    sizes = [65536, 100000, 5, 65536]
    c = Client(server.port)
    c.get(b"/sizes-length?" + sizes_query(sizes))
    status, headers = c.head()
    assert headers["content-length"] == str(sum(sizes)) and "transfer-encoding" not in headers
    assert c.take(sum(sizes)) == expected(sizes)
    c.get(b"/sizes?1")
    assert c.head()[0] == b"HTTP/1.1 200 OK"
    assert c.chunked_body() == expected([1])
    c.close()


def test_a_generator_past_its_content_length_is_cut_there_and_closed(server):
    sizes = [65536, 65536]
    c = Client(server.port)
    c.get(b"/sizes-length?" + sizes_query(sizes) + b"&extra=70000")
    status, headers = c.head()
    assert headers["content-length"] == str(sum(sizes))
    assert c.read_to_close() == expected(sizes)


def test_http10_streams_until_the_close(server):
    sizes = [65536] * 6 + [9]
    c = Client(server.port)
    c.get(b"/sizes?" + sizes_query(sizes), version=b"HTTP/1.0")
    status, headers = c.head()
    assert status == b"HTTP/1.0 200 OK" and "transfer-encoding" not in headers
    assert c.read_to_close() == expected(sizes)


def test_an_error_mid_stream_delivers_what_came_before_and_cuts_the_body(server):
    c = Client(server.port)
    c.get(b"/fail-after?5")
    status, headers = c.head()
    assert status == b"HTTP/1.1 200 OK"
    rest = c.read_to_close()
    # Every chunk made before the error, then no last chunk: the client
    # can tell the body is incomplete.
    body = bytearray()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        assert size > 0, "a cut body must not end with the last chunk"
        body += rest[:size]
        assert rest[size:size + 2] == b"\r\n"
        rest = rest[size + 2:]
    assert bytes(body) == expected([65536] * 5)


def worker_pid(port):
    c = Client(port)
    c.get(b"/pid")
    status, headers = c.head()
    pid = c.take(int(headers["content-length"]))
    c.close()
    return pid


@pytest.mark.parametrize("leave", ["reset", "close"])
def test_a_client_leaving_mid_stream_closes_the_iterable_and_the_worker_serves_on(server, tmp_path,
                                                                                   leave):
    pid = worker_pid(server.port)
    for i in range(4):
        trace = tmp_path / f"trace{i}"
        c = Client(server.port)
        c.get(b"/endless?" + str(trace).encode())
        c.head()
        c._fill()  # a part of the stream, then hang up
        if leave == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        deadline = time.monotonic() + 10
        while not trace.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trace.exists() and trace.read_text() == "closed"
    d = Client(server.port)
    d.get(b"/sizes?65536,65536")
    assert d.head()[0] == b"HTTP/1.1 200 OK"
    assert d.chunked_body() == expected([65536, 65536])
    d.close()
    assert worker_pid(server.port) == pid  # the same worker: it did not crash
