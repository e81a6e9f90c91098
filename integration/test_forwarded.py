"""--forwarded-allow-ips and secure_scheme_headers: wsgi.url_scheme as
gunicorn sets it for trusted and untrusted peers; REMOTE_ADDR is always the
peer; SCRIPT_NAME from the environment."""
import json
import socket

import pytest
import requests

from conftest import APPS, free_port, server_binary, Server, wait_for_port

APP_DIR = APPS / "cmdlines"


def get(srv, path="/", **headers):
    return requests.get(srv.url + path, headers=headers, timeout=5)


@pytest.mark.parametrize("flags, headers, scheme", [
    ([], {"X-Forwarded-Proto": "https"}, "https"),          # 127.0.0.1 is trusted by default
    ([], {"X-Forwarded-Ssl": "on"}, "https"),
    ([], {"X-Forwarded-Protocol": "ssl"}, "https"),
    ([], {"X-Forwarded-Proto": "http"}, "http"),
    ([], {}, "http"),
    (["--forwarded-allow-ips", "10.0.0.1"], {"X-Forwarded-Proto": "https"}, "http"),
    (["--forwarded-allow-ips", "10.0.0.0/8,192.168.0.0/16"], {"X-Forwarded-Proto": "https"},
     "http"),
    (["--forwarded-allow-ips", "127.0.0.0/8"], {"X-Forwarded-Proto": "https"}, "https"),
    (["--forwarded-allow-ips", "*"], {"X-Forwarded-Proto": "https"}, "https"),
])
def test_url_scheme_follows_trusted_peers_only(start_server, flags, headers, scheme):
    srv = start_server("app:app", *flags, chdir=APP_DIR)
    body = get(srv, **headers).json()
    assert body["wsgi.url_scheme"] == scheme
    assert body["REMOTE_ADDR"] == "127.0.0.1"


def test_contradicting_scheme_headers_from_a_trusted_peer_are_rejected(start_server):
    srv = start_server("app:app", "--forwarded-allow-ips", "*", chdir=APP_DIR)
    r = get(srv, **{"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"})
    assert r.status_code == 400


def test_contradicting_scheme_headers_from_an_untrusted_peer_are_ignored(start_server):
    srv = start_server("app:app", "--forwarded-allow-ips", "10.0.0.1", chdir=APP_DIR)
    r = get(srv, **{"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"})
    assert r.status_code == 200 and r.json()["wsgi.url_scheme"] == "http"


def test_remote_addr_is_the_peer_whatever_x_forwarded_for_says(start_server):
    srv = start_server("app:app", "--forwarded-allow-ips", "*", chdir=APP_DIR)
    assert get(srv, **{"X-Forwarded-For": "203.0.113.9"}).json()["REMOTE_ADDR"] == "127.0.0.1"


def test_secure_scheme_headers_from_a_config_file(start_server, tmp_path):
    conf = tmp_path / "c.py"
    conf.write_text("secure_scheme_headers = {'X-Scheme': 'https'}\n")
    srv = start_server("app:app", "-c", str(conf), chdir=APP_DIR)
    assert get(srv, **{"X-Scheme": "https"}).json()["wsgi.url_scheme"] == "https"
    # The defaults are replaced, not extended.
    assert get(srv, **{"X-Forwarded-Proto": "https"}).json()["wsgi.url_scheme"] == "http"


def test_ipv6_loopback_is_trusted_by_default(tmp_path):
    port = free_port()
    srv = Server([server_binary(), "--bind", f"[::1]:{port}", "--chdir", str(APP_DIR), "app:app"],
                 port=port)
    try:
        import time
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("::1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        r = requests.get(f"http://[::1]:{port}/", headers={"X-Forwarded-Proto": "https"},
                         timeout=5)
        assert r.json()["wsgi.url_scheme"] == "https"
        assert r.json()["REMOTE_ADDR"] == "::1"
    finally:
        srv.stop()


def test_unix_socket_peers_are_trusted(tmp_path):
    path = tmp_path / "s.sock"
    srv = Server([server_binary(), "--bind", f"unix:{path}", "--forwarded-allow-ips", "10.0.0.1",
                  "--chdir", str(APP_DIR), "app:app"])
    try:
        import time
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        body = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert body["wsgi.url_scheme"] == "https"
    finally:
        srv.stop()


def test_script_name_from_the_environment(start_server):
    srv = start_server("app:app", chdir=APP_DIR, env={"SCRIPT_NAME": "/mount"})
    body = get(srv, "/mount/page").json()
    assert body["SCRIPT_NAME"] == "/mount" and body["PATH_INFO"] == "/page"


def raw_get(port, target, headers):
    """A request with header names requests would not send as is."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall((head + "\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


FORWARDER = {"SCRIPT_NAME": "/mount", "PATH_INFO": "/ignored", "X_Other": "x"}


@pytest.mark.parametrize("flags", [[], ["--forwarded-allow-ips", "127.0.0.0/8"],
                                   ["--header-map", "refuse"]])
def test_script_name_header_from_a_trusted_proxy_sets_script_name(start_server, flags):
    # gunicorn's forwarder_headers (default SCRIPT_NAME,PATH_INFO): a peer in
    # forwarded_allow_ips may send them though their names hold '_'. PATH_INFO
    # still comes from the request path; other '_' names obey header_map.
    srv = start_server("app:app", *flags, chdir=APP_DIR)
    headers = dict(FORWARDER)
    if "refuse" in flags:
        del headers["X_Other"]
    status, data = raw_get(srv.port, "/mount/page", headers)
    assert status == 200
    body = json.loads(data)
    assert body["SCRIPT_NAME"] == "/mount" and body["PATH_INFO"] == "/page"
    assert body["HTTP_SCRIPT_NAME"] == "/mount" and body["HTTP_PATH_INFO"] == "/ignored"
    assert body["HTTP_X_OTHER"] is None


def test_script_name_header_from_an_untrusted_peer_is_dropped_or_refused(start_server):
    srv = start_server("app:app", "--forwarded-allow-ips", "10.0.0.1", chdir=APP_DIR)
    status, data = raw_get(srv.port, "/mount/page", FORWARDER)
    assert status == 200
    body = json.loads(data)
    assert body["SCRIPT_NAME"] == "" and body["PATH_INFO"] == "/mount/page"
    assert body["HTTP_SCRIPT_NAME"] is None and body["HTTP_PATH_INFO"] is None
    refusing = start_server("app:app", "--forwarded-allow-ips", "10.0.0.1", "--header-map",
                            "refuse", chdir=APP_DIR)
    assert raw_get(refusing.port, "/mount/page", {"SCRIPT_NAME": "/mount"})[0] == 400


def test_forwarder_headers_setting_limits_what_a_trusted_proxy_may_send(start_server):
    srv = start_server("app:app", "--forwarder-headers", "X_OTHER", chdir=APP_DIR)
    status, data = raw_get(srv.port, "/mount/page", FORWARDER)
    body = json.loads(data)
    assert status == 200 and body["SCRIPT_NAME"] == "" and body["HTTP_X_OTHER"] == "x"
    assert body["HTTP_SCRIPT_NAME"] is None
