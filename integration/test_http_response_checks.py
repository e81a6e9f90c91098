"""What the app sends is checked before it reaches the wire: header names
and values that could split the response are refused with a 500, and a body
that breaks its own Content-Length closes the connection with an error
logged."""
import socket
import time

import pytest

from http_helpers import BAD_HEADER_KINDS, read_until_close, start_hardening, status_of


@pytest.mark.parametrize("kind", BAD_HEADER_KINDS)
def test_a_header_that_could_split_the_response_is_refused_with_500(start_server, tmp_path, kind):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET /headers?bad=" + kind.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(sock)
    assert status_of(data) == 500
    assert closed
    assert b"must not be sent" not in data and b"evil" not in data
    assert b"Set-Cookie" not in data and b"X-Split" not in data
    deadline = time.monotonic() + 5
    while "Error handling request" not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Error handling request" in srv.stderr()


def _read_declared(sock):
    data, closed = read_until_close(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, closed


def test_a_body_shorter_than_its_content_length_closes_the_connection(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
        head, body, closed = _read_declared(sock)
    assert b"Content-Length: 100" in head
    assert body == b"only ten.." and closed
    time.sleep(0.2)
    assert "ended after 10 of 100 bytes" in srv.stderr()


def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_closed(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET /long HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        head, body, closed = _read_declared(sock)
    assert b"Content-Length: 5" in head
    # Nothing after the 5 promised bytes, not even the pipelined response.
    assert body == b"12345" and closed
    time.sleep(0.2)
    assert "longer than its Content-Length" in srv.stderr()


def _get(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        return _read_some(sock)


def _read_some(sock):
    data = b""
    sock.settimeout(2)
    try:
        while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def _wait_for_log(srv, text):
    deadline = time.monotonic() + 5
    while text not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in srv.stderr()


def test_a_status_without_reason_phrase_gets_the_standard_one_and_one_warning(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    for _ in range(2):
        data = _get(srv.port, b"/status?s=200")
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:40]
    data = _get(srv.port, b"/status?s=299")
    assert data.startswith(b"HTTP/1.1 299 \r\n"), data[:40]  # unknown code: the space stays
    assert _wait_for_log(srv, "has no reason phrase; sending '200 OK'")
    assert srv.stderr().count("has no reason phrase") == 1


@pytest.mark.parametrize("status", [b"200%20O%01K", b"200%20OK%7F", b"200%20O%1BK"])
def test_a_reason_phrase_with_a_control_character_is_a_500(start_server, tmp_path, status):
    srv = start_hardening(start_server, tmp_path)
    data = _get(srv.port, b"/status?s=" + status)
    assert status_of(data) == 500
    assert _wait_for_log(srv, "status contains a control character")


@pytest.mark.parametrize("values", [
    [b"5", b"5"], [b"5", b"6"], [b"99999999999999999999999"],
])
def test_content_length_from_the_app_must_be_one_valid_number(start_server, tmp_path, values):
    srv = start_hardening(start_server, tmp_path)
    query = b"&".join(b"v=" + v for v in values)
    data = _get(srv.port, b"/lengths?" + query)
    assert status_of(data) == 500, data[:200]
    assert b"12345" not in data
    assert _wait_for_log(srv, "Content-Length header")
