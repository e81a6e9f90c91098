"""wsgi.file_wrapper: a real file is sent whole with sendfile(2) and a
Content-Length the server works out; a file-like object without fileno() is
read in blocks; close() is called either way."""
import hashlib
import os
import socket

import pytest
import requests

from http_helpers import (SyscallTrace, read_until_close, serving_worker_pid, start_hardening,
                          status_of)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "big.bin"
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(48):
            f.write(block[i:] + block[:i])
    return path


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_a_large_file_is_sent_whole_with_a_content_length(start_server, tmp_path, big_file):
    # One app thread: the loop thread sends a file body itself.
    srv = start_hardening(start_server, tmp_path, "--threads", "1")
    worker = serving_worker_pid(srv.port)
    with SyscallTrace(worker, tmp_path) as trace:
        r = requests.get(srv.url + "/file", params={"path": str(big_file)}, timeout=30)
        trace.wait_for_bytes(str(big_file), big_file.stat().st_size)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(big_file.stat().st_size)
    assert "Transfer-Encoding" not in r.headers
    assert hashlib.sha256(r.content).hexdigest() == _sha(big_file)
    # With sendfile(2), but for pieces read with pread(2) when the socket
    # was full; never read in blocks by the file wrapper.
    moved = trace.bytes_by_call(str(big_file))
    assert moved.get("sendfile", 0) > 0 and moved.get("read", 0) == 0, moved
    assert moved.get("sendfile", 0) + moved.get("pread64", 0) == big_file.stat().st_size, moved
    # The connection is reused afterwards: the framing was exact.
    with requests.Session() as s:
        for _ in range(2):
            assert s.get(srv.url + "/file", params={"path": str(big_file), "len": "1"},
                         timeout=30).content[:16] == big_file.read_bytes()[:16]
            assert s.get(srv.url + "/", timeout=5).text == "ok"


def test_a_head_request_for_a_file_gets_its_length_and_no_body(start_server, tmp_path, big_file):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"HEAD /file?path=" + str(big_file).encode() + b" HTTP/1.1\r\nHost: a\r\n"
                     b"Connection: close\r\n\r\n")
        data, closed = read_until_close(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert status_of(head) == 200 and body == b"" and closed
    assert b"Content-Length: %d" % big_file.stat().st_size in head


def test_a_bytesio_without_fileno_is_read_in_blocks(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    r = requests.get(srv.url + "/bytesio", timeout=10)
    assert r.status_code == 200
    assert r.content == bytes(range(256)) * 4096


def test_http10_file_response_is_complete(start_server, tmp_path, big_file):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET /file?path=" + str(big_file).encode() + b" HTTP/1.0\r\n\r\n")
        data, closed = read_until_close(sock, deadline=30)
    head, _, body = data.partition(b"\r\n\r\n")
    assert status_of(head) == 200 and closed
    assert hashlib.sha256(body).hexdigest() == _sha(big_file)
