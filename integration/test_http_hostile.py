"""Hostile and malformed requests over raw sockets (RFC 9112, gunicorn's
rules). Each must be answered with its status, must never reach the app, and
the server must close the connection by itself (the client keeps its side
open)."""
import pytest

from conftest import Server, free_port, server_binary, wait_for_port
from http_helpers import HARDENING, app_calls, exchange

H = b"Host: example.com\r\n"


def post(*headers, body=b"", version=b"HTTP/1.1"):
    return b"POST /p " + version + b"\r\n" + H + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def get_with(*headers, line=b"GET / HTTP/1.1"):
    return line + b"\r\n" + H + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def chunked(body):
    return post(b"Transfer-Encoding: chunked", body=body)


CASES = [
    # Body framing (RFC 9112 section 6)
    ("cl-and-te", post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    ("te-and-cl", post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"), 400),
    ("two-differing-cl", post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"), 400),
    ("two-equal-cl", post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello"), 400),
    ("cl-list", post(b"Content-Length: 5, 5", body=b"hello"), 400),
    ("cl-negative", post(b"Content-Length: -1"), 400),
    ("cl-plus-sign", post(b"Content-Length: +5", body=b"hello"), 400),
    ("cl-hex", post(b"Content-Length: 0x5", body=b"hello"), 400),
    ("cl-inner-space", post(b"Content-Length: 5 5", body=b"hello"), 400),
    ("cl-overflow", post(b"Content-Length: 99999999999999999999999"), 400),
    # RFC 9112 sections 6.1 and 7: a transfer coding we do not decode is a
    # 501 (gunicorn passes gzip on to the app, and 400s some others)
    ("te-not-ending-chunked", post(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), 501),
    ("te-gzip-then-chunked", post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 501),
    ("te-gzip-only", post(b"Transfer-Encoding: gzip", body=b"abc"), 501),
    ("te-identity", post(b"Transfer-Encoding: identity", body=b"abc"), 501),
    ("te-only-empty-elements", post(b"Transfer-Encoding: ,", body=b"abc"), 400),
    # RFC 9112 section 3.2: exactly one valid Host on HTTP/1.1 (stricter
    # than gunicorn, as nginx and h2o are)
    ("http11-without-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("host-with-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host-with-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("host-with-userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
    ("host-bad-port", b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400),
    ("host-open-bracket", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    ("te-chunked-http10", post(b"Transfer-Encoding: chunked", body=b"0\r\n\r\n", version=b"HTTP/1.0"), 400),
    ("te-unknown-coding", post(b"Transfer-Encoding: foo, chunked", body=b"0\r\n\r\n"), 501),
    ("te-chunked-twice", post(b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"), 400),
    ("te-chunked-two-lines", post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
                                  body=b"0\r\n\r\n"), 400),
    # Chunked framing (RFC 9112 section 7.1)
    ("chunk-size-not-hex", chunked(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-leading-space", chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-negative", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-overflow", chunked(b"1" * 17 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext-control-char", chunked(b"5;a\x01b\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-without-crlf", chunked(b"5\r\nhelloXX0\r\n\r\n"), 400),
    ("chunk-size-bare-lf", chunked(b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-trailer-content-length", chunked(b"0\r\nContent-Length: 5\r\n\r\n"), 400),
    ("chunk-trailer-host", chunked(b"0\r\nHost: evil\r\n\r\n"), 400),
    # Line ends (RFC 9112 section 2.2)
    ("bare-lf-request-line", b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    ("bare-lf-header-line", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
    ("bare-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    ("bare-cr-in-value", get_with(b"X: a\rb"), 400),
    ("bare-cr-line-end", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
    ("bare-cr-request-line", b"GET /\r HTTP/1.1\r\n" + H + b"\r\n", 400),
    # Header fields (RFC 9112 section 5, RFC 9110 section 5)
    ("obs-fold", get_with(b"X-Long: one", b" two"), 400),
    ("obs-fold-tab", get_with(b"X-Long: one", b"\ttwo"), 400),
    ("space-before-colon", get_with(b"X-A : 1"), 400),
    ("tab-before-colon", get_with(b"X-A\t: 1"), 400),
    ("nul-in-name", get_with(b"X-\x00A: 1"), 400),
    ("space-in-name", get_with(b"X A: 1"), 400),
    ("non-token-name", get_with(b"X(A): 1"), 400),
    ("non-ascii-name", get_with(b"X-\xe9: 1"), 400),
    ("empty-name", get_with(b": 1"), 400),
    ("no-colon", get_with(b"X-A"), 400),
    ("ctl-in-value", get_with(b"X-A: a\x01b"), 400),
    ("nul-in-value", get_with(b"X-A: a\x00b"), 400),
    ("del-in-value", get_with(b"X-A: a\x7fb"), 400),
    ("escape-in-value", get_with(b"X-A: a\x1bb"), 400),
    ("duplicate-host", get_with(b"Host: other.example"), 400),
    ("duplicate-content-type", post(b"Content-Type: a/b", b"Content-Type: c/d",
                                    b"Content-Length: 0"), 400),
    ("expect-unknown", post(b"Expect: teapot", b"Content-Length: 0"), 417),
    # Request line (RFC 9112 section 3)
    ("method-bad-char", b"G@T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-lowercase", b"get / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-too-long", b"A" * 21 + b" / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-too-short", b"GT / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("version-lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("version-three-parts", b"GET / HTTP/1.1.1\r\n" + H + b"\r\n", 400),
    ("version-no-minor", b"GET / HTTP/1\r\n" + H + b"\r\n", 400),
    ("version-0.9", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 400),
    ("version-2.0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("version-missing", b"GET /\r\n" + H + b"\r\n", 400),
    ("double-space", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-relative", b"GET foo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-asterisk-not-options", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-absolute-bad-scheme", b"GET 1http://a/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-control-char", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("connect-origin-form", b"CONNECT /x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("connect-no-port", b"CONNECT example.com HTTP/1.1\r\n" + H + b"\r\n", 400),
    # Leniencies of llhttp 8.1 fixed later upstream (CRLF strictness, chunk
    # size whitespace, folded or listed Transfer-Encoding)
    ("chunk-size-trailing-space", chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-end-bare-cr", chunked(b"5\r\nhello\rX0\r\n\r\n"), 400),
    ("te-folded-onto-next-line", post(b"Transfer-Encoding: chunked", b" , gzip", body=b"0\r\n\r\n"), 400),
    ("version-trailing-space", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("whitespace-first-header-line", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    ("cr-cr-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400),
    # gunicorn's limits
    ("request-line-too-long", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("too-many-fields", get_with(*[b"X-%d: 1" % i for i in range(101)]), 431),
    ("field-too-large", get_with(b"X-Big: " + b"a" * 9000), 431),
]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    log = tmp / "calls.log"
    log.touch()
    port = free_port()
    srv = Server([server_binary(), "--bind", f"127.0.0.1:{port}", "--chdir", str(HARDENING),
                  "app:app"], env={"CALL_LOG": str(log)}, port=port)
    srv.call_log = log
    assert wait_for_port(port, srv.proc), srv.stderr()
    yield srv
    srv.stop()
    assert "AddressSanitizer" not in srv.stderr() and "runtime error:" not in srv.stderr()


@pytest.mark.parametrize("raw,status", [pytest.param(r, s, id=n) for n, r, s in CASES])
def test_hostile_request_is_refused_and_closed(hostile_server, raw, status):
    before = len(app_calls(hostile_server))
    got, data, closed = exchange(hostile_server.port, raw, half_close=False)
    assert got == status, data[:300]
    assert b"Connection: close" in data.split(b"\r\n\r\n", 1)[0]
    assert closed, "the server kept the connection open after refusing the request"
    assert len(app_calls(hostile_server)) == before, "the request reached the app"


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs no Host
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n",  # empty: a target without authority
    b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
    # RFC 9110 section 5.6.1: empty list elements do not count
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
], ids=["http10-no-host", "empty-host", "ipv6-host", "te-empty-elements"])
def test_what_the_rfc_allows_is_served(hostile_server, raw):
    raw = raw.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    before = len(app_calls(hostile_server))
    got, data, closed = exchange(hostile_server.port, raw, half_close=False)
    assert got == 200, data[:300]
    assert len(app_calls(hostile_server)) == before + 1


def test_a_valid_request_still_reaches_the_app(hostile_server):
    before = len(app_calls(hostile_server))
    got, data, closed = exchange(hostile_server.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                                 half_close=False)
    assert got == 200 and data.endswith(b"ok") and closed
    assert len(app_calls(hostile_server)) == before + 1
