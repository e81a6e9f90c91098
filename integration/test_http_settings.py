"""The HTTP settings from the command line, end to end: values that change
what is accepted, and bad values refused with a message naming them."""
import pytest

from http_helpers import app_calls, exchange, start_hardening

PROXIED = b"PROXY TCP4 203.0.113.7 10.0.0.1 4321 80\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def test_a_proxy_header_from_a_peer_not_allowed_is_refused_403(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8")
    status, data, closed = exchange(srv.port, PROXIED, half_close=False)
    assert status == 403 and closed
    assert app_calls(srv) == []
    # Without a PROXY header the same peer is served.
    status, data, closed = exchange(srv.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status == 200


def test_a_proxy_header_from_an_allowed_peer_is_accepted(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--proxy-protocol", "--proxy-allow-from", "*")
    status, data, closed = exchange(srv.port, PROXIED, half_close=False)
    assert status == 200 and data.endswith(b"ok")


def _proxy_v2_tcp4(src, dst, sport, dport):
    import socket
    import struct
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def test_proxy_protocol_v1_mode_takes_v1_and_refuses_v2(start_server, tmp_path):
    # gunicorn 24+'s value form; the app URI after it is still the app.
    srv = start_hardening(start_server, tmp_path, "--proxy-allow-from", "*", "--proxy-protocol", "v1")
    status, data, closed = exchange(srv.port, PROXIED, half_close=False)
    assert status == 200 and data.endswith(b"ok")
    v2 = _proxy_v2_tcp4("203.0.113.7", "10.0.0.1", 4321, 80) + PROXIED.split(b"\r\n", 1)[1]
    status, data, closed = exchange(srv.port, v2, half_close=False)
    assert status == 400 and closed
    assert len(app_calls(srv)) == 1


def test_proxy_protocol_alone_before_the_app_uri_means_auto(start_server, tmp_path):
    # gunicorn 23's switch form: "--proxy-protocol app:app" names the app.
    srv = start_hardening(start_server, tmp_path, "--proxy-allow-from", "*", "--proxy-protocol")
    v2 = _proxy_v2_tcp4("203.0.113.7", "10.0.0.1", 4321, 80) + PROXIED.split(b"\r\n", 1)[1]
    status, data, closed = exchange(srv.port, v2, half_close=False)
    assert status == 200 and data.endswith(b"ok")


def test_header_map_refuse_answers_400(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--header-map", "refuse")
    status, data, closed = exchange(srv.port, b"GET / HTTP/1.1\r\nHost: a\r\nX_A: 1\r\n\r\n", half_close=False)
    assert status == 400 and closed
    assert app_calls(srv) == []


def test_limit_request_line_zero_is_unlimited(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--limit-request-line", "0")
    target = b"/?" + b"a" * 20000
    status, data, closed = exchange(srv.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status == 200


def test_limit_request_fields_is_applied(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--limit-request-fields", "3")
    ok = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nConnection: close\r\n\r\n"
    assert exchange(srv.port, ok)[0] == 200
    too_many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
    assert exchange(srv.port, too_many, half_close=False)[0] == 431


@pytest.mark.parametrize("flags,named", [
    (["--header-map", "keep"], "header_map"),
    (["--proxy-protocol=v3"], "proxy_protocol"),
    (["--proxy-allow-from", "10.0.0.1,not-an-ip"], "proxy_allow_ips"),
    (["--worker-connections", "0"], "worker_connections"),
    (["--limit-request-line", "-1"], "limit_request_line"),
])
def test_a_bad_value_is_refused_naming_the_setting(start_server, flags, named):
    srv = start_server("app:app", *flags, wait=False)
    assert srv.wait(timeout=10) != 0
    assert named in srv.stderr()
