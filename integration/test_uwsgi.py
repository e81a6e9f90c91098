"""--protocol uwsgi behind real nginx: Debian's /usr/sbin/nginx, started
here with its own prefix and config, `uwsgi_pass` with the uwsgi_params
Debian ships, over TCP and over a unix socket. The same nginx config runs
in front of gunicorn 27 `--protocol uwsgi` where both should behave the
same (the example app's routes, bad packets, the allow list, framing).
Bad packets are sent straight to the server's socket."""
import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import APPS, EXAMPLES, Server, free_port, server_binary, wait_for_port
from proc_tools import wait_until
from nginx import Nginx

UWSGI_PARAMS = "/etc/nginx/uwsgi_params"
UWSGI_APP = APPS / "uwsgi"
EXAMPLE = EXAMPLES / "flask_app"

# The server block in front of the backend; integration/nginx.py writes
# the rest of the configuration and runs nginx.
NGINX_SERVER = """
  client_max_body_size 64m;
  server {{
    listen 127.0.0.1:{port};
    server_name example.test;
    root {www};
    location / {{
      include {params};
      uwsgi_param HTTP_X_FROM_NGINX yes;
      uwsgi_param DEPLOY_STAGE canary;
      uwsgi_pass {upstream};
    }}
    location /secure/ {{
      include {params};
      uwsgi_param HTTPS on;
      uwsgi_pass {upstream};
    }}
  }}
"""


class UwsgiNginx(Nginx):
    """nginx with `uwsgi_pass` to `upstream`, under a directory of its own."""

    def __init__(self, upstream):
        directory = Path(tempfile.mkdtemp(prefix="uwsgi-nginx-"))
        port = free_port()
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        (directory / "www").mkdir()
        super().__init__(directory, NGINX_SERVER.format(
            port=port, www=directory / "www", upstream=upstream, params=UWSGI_PARAMS),
            ports=[port])
        self.start()

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def gunicorn_binary():
    return str(Path(sys.executable).parent / "gunicorn")


class Backend:
    """cppgunicorn or gunicorn with --protocol uwsgi, on TCP or a unix socket."""

    def __init__(self, kind, transport, app_dir, app, *flags, env=None):
        self.kind = kind
        self.sockdir = Path(tempfile.mkdtemp(prefix="uw"))  # short: sun_path is 108 bytes
        if transport == "tcp":
            self.port = free_port()
            bind = f"127.0.0.1:{self.port}"
            self.upstream = bind
        else:
            self.port = None
            self.path = self.sockdir / "s.sock"
            bind = f"unix:{self.path}"
            self.upstream = bind
        binary = server_binary() if kind == "cppgunicorn" else gunicorn_binary()
        self.srv = Server([binary, "--protocol", "uwsgi", "--bind", bind, "--chdir", str(app_dir),
                           *flags, app], env=env)
        if self.port:
            assert wait_for_port(self.port, self.srv.proc), self.srv.stderr()
        else:
            wait_until(self._unix_ready, 20, what=f"{kind} to listen on {self.path}")

    def _unix_ready(self):
        assert self.srv.proc.poll() is None, self.srv.stderr()
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.path))
            return True
        except OSError:
            return False

    def connect(self):
        if self.port:
            return socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(str(self.path))
        return s

    def stop(self):
        self.srv.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)
        err = self.srv.stderr()
        for marker in ("ERROR: AddressSanitizer", "runtime error:"):
            assert marker not in err, err[-4000:]


# --- the uwsgi packet, by hand -------------------------------------------------

def packet(variables, modifier1=0, modifier2=0):
    block = b""
    for key, value in variables:
        key, value = key.encode("latin-1"), value.encode("latin-1")
        block += struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value
    return bytes([modifier1]) + struct.pack("<H", len(block)) + bytes([modifier2]) + block


def get_vars(path="/", query=""):
    return [("REQUEST_METHOD", "GET"), ("REQUEST_URI", path + ("?" + query if query else "")),
            ("PATH_INFO", path), ("QUERY_STRING", query), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"), ("HTTP_HOST", "localhost")]


def exchange(sock, data, half_close=True):
    """Sends `data`, reads to the server's close; (response bytes, closed by it)."""
    sock.sendall(data)
    if half_close:
        sock.shutdown(socket.SHUT_WR)
    out = b""
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                return out, True
            out += got
    except socket.timeout:
        return out, False
    finally:
        sock.close()


def head_and_body(response):
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


# --- the example app's routes through nginx, on both servers ------------------

STACKS = [("cppgunicorn", "tcp"), ("cppgunicorn", "unix"), ("gunicorn", "tcp"), ("gunicorn", "unix")]


@pytest.fixture(scope="module", params=STACKS, ids=["-".join(s) for s in STACKS])
def example(request):
    kind, transport = request.param
    backend = Backend(kind, transport, EXAMPLE, "app:app")
    nginx = UwsgiNginx(backend.upstream)
    yield nginx
    nginx.stop()
    backend.stop()


def test_the_example_apps_routes_through_nginx(example):
    url = example.url
    r = requests.get(url + "/", timeout=10)
    assert r.status_code == 200 and '<li data-id="1">teapot: 12.50</li>' in r.text
    assert requests.get(url + "/api/items", timeout=10).json()["count"] == 3
    r = requests.post(url + "/api/echo", json={"b": 2, "a": [1, "x"]}, timeout=10)
    assert r.json() == {"received": {"b": 2, "a": [1, "x"]}, "keys": ["a", "b"], "method": "POST"}
    r = requests.get(url + "/old", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    s = requests.Session()
    assert s.get(url + "/login?name=ada", timeout=10).json() == {"logged_in": "ada"}
    assert s.get(url + "/whoami", timeout=10).json() == {"user": "ada"}
    r = requests.get(url + "/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "not found", "path": "/nope"}
    assert requests.get(url + "/tea", timeout=10).status_code == 418
    assert requests.get(url + "/download", timeout=10).content == \
        (EXAMPLE / "files" / "sample.txt").read_bytes()
    assert requests.get(url + "/boom", timeout=10).status_code == 500


def test_a_20mb_upload_through_nginx(example):
    data = os.urandom(20 * 1024 * 1024)
    r = requests.post(example.url + "/upload", files={"file": ("blob.bin", data)},
                      data={"note": "twenty"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json() == {"filename": "blob.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "note": "twenty"}


def test_a_streamed_response_through_nginx_has_no_chunk_markers_in_it(example):
    # The app's generator has no length: a uwsgi response is then ended by
    # the close; chunk markers would reach the client inside the body.
    r = requests.get(example.url + "/stream?n=50", timeout=10)
    assert r.status_code == 200
    assert r.text.splitlines() == [f"line {i} of 50 for /stream" for i in range(50)]
    r = requests.get(example.url + "/big?mb=3", timeout=30)
    assert r.content == b"0123456789abcdef" * (3 * 65536)


# --- what reaches the environ ---------------------------------------------------

@pytest.fixture
def environ_stack(request):
    transport = getattr(request, "param", "tcp")
    backend = Backend("cppgunicorn", transport, UWSGI_APP, "app:app")
    nginx = UwsgiNginx(backend.upstream)
    yield nginx
    nginx.stop()
    backend.stop()


@pytest.mark.parametrize("environ_stack", ["tcp", "unix"], indirect=True)
def test_the_packets_cgi_vars_and_uwsgi_params_reach_the_environ(environ_stack):
    # From 127.0.0.2: nginx's REMOTE_ADDR/REMOTE_PORT are this client's,
    # not nginx's own address towards the server.
    conn = http.client.HTTPConnection("127.0.0.1", environ_stack.port, timeout=10,
                                      source_address=("127.0.0.2", 0))
    conn.request("GET", "/a%20b/environ?q=1&r=%2F", headers={"X-Custom": "v1"})
    client_port = conn.sock.getsockname()[1]
    resp = conn.getresponse()
    assert resp.status == 200
    env = json.loads(resp.read())
    conn.close()
    assert env["REMOTE_ADDR"] == "127.0.0.2"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["SERVER_NAME"] == "example.test"
    assert env["SERVER_PORT"] == str(environ_stack.port)
    assert env["DOCUMENT_ROOT"] == str(environ_stack.dir / "www")
    assert env["REQUEST_SCHEME"] == "http"
    assert env["wsgi.url_scheme"] == "http"
    # PATH_INFO as nginx decoded it (not decoded twice), RAW_URI as sent.
    assert env["PATH_INFO"] == "/a b/environ"
    assert env["RAW_URI"] == "/a%20b/environ?q=1&r=%2F"
    assert env["QUERY_STRING"] == "q=1&r=%2F"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    # Request headers, and uwsgi_param ones of both kinds.
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["HTTP_HOST"] == "127.0.0.1"
    assert env["HTTP_X_FROM_NGINX"] == "yes"
    assert env["DEPLOY_STAGE"] == "canary"
    assert env["SCRIPT_NAME"] == ""


def test_a_uwsgi_param_https_on_makes_the_scheme_https(environ_stack):
    env = requests.get(environ_stack.url + "/secure/environ", timeout=10).json()
    assert env["HTTPS"] == "on"
    assert env["wsgi.url_scheme"] == "https"
    assert env["PATH_INFO"] == "/secure/environ"


def test_a_posted_body_reaches_wsgi_input_whole(environ_stack):
    data = os.urandom(3 * 1024 * 1024 + 7)
    r = requests.post(environ_stack.url + "/upload", data=data, timeout=60)
    assert r.text == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


# --- straight to the socket: framing, bad packets, the allow list --------------

@pytest.fixture
def call_log(tmp_path):
    path = tmp_path / "calls.log"
    path.touch()
    return path


def start_direct(kind, call_log, *flags, transport="tcp"):
    return Backend(kind, transport, UWSGI_APP, "app:app", *flags,
                   env={"CALL_LOG": str(call_log)})


@pytest.mark.parametrize("kind", ["cppgunicorn", "gunicorn"])
def test_a_response_without_a_length_is_ended_by_the_close(kind, call_log):
    backend = start_direct(kind, call_log)
    try:
        # The server closes by itself: nginx's uwsgi upstream reads to it.
        response, closed = exchange(backend.connect(), packet(get_vars("/stream", "n=3")),
                                    half_close=False)
        assert closed
        head, body = head_and_body(response)
        assert head.startswith("HTTP/1.1 200 OK\r\n"), head
        assert "Transfer-Encoding" not in head and "Content-Length" not in head, head
        assert "Connection: close" in head, head
        assert body == b"line 0\nline 1\nline 2\n"
        # With a length, the same: one response per connection (nginx never
        # reuses a uwsgi connection), even with a second packet behind it.
        two = packet(get_vars("/first")) + packet(get_vars("/second"))
        response, closed = exchange(backend.connect(), two, half_close=False)
        assert closed
        head, body = head_and_body(response)
        assert "Content-Length: 2" in head and "Connection: close" in head, head
        assert body == b"ok"
        assert call_log.read_text() == "GET /stream\nGET /first\n"
    finally:
        backend.stop()


def _many_vars():
    return packet(get_vars("/") + [(f"V{i}", "") for i in range(1000)])


def _var_past_the_packet():
    block = struct.pack("<H", 14) + b"REQUEST_METHOD" + struct.pack("<H", 900) + b"GET"
    return b"\x00" + struct.pack("<H", len(block)) + b"\x00" + block


BAD_PACKETS = {
    "truncated": packet(get_vars("/"))[:-5],
    "truncated-header": b"\x00\x10",
    "var-past-the-packet": _var_past_the_packet(),
    "modifier1": packet(get_vars("/"), modifier1=1),
    "modifier1-cgi": packet(get_vars("/"), modifier1=5),
    "1001-vars": _many_vars(),
}


@pytest.mark.parametrize("kind", ["cppgunicorn", "gunicorn"])
def test_bad_packets_are_answered_500_closed_and_never_reach_the_app(kind, call_log):
    backend = start_direct(kind, call_log)
    try:
        for name, data in BAD_PACKETS.items():
            response, closed = exchange(backend.connect(), data)
            assert closed, name
            head, _ = head_and_body(response)
            assert head.startswith("HTTP/1.1 500 Internal Server Error\r\n"), (name, head)
            assert "Connection: close" in head, (name, head)
        assert call_log.read_text() == "", "a bad packet reached the app"
        # The worker goes on, and the log does record a good packet.
        response, closed = exchange(backend.connect(), packet(get_vars("/fine")))
        assert response.startswith(b"HTTP/1.1 200 OK\r\n") and closed
        assert call_log.read_text() == "GET /fine\n"
    finally:
        backend.stop()


@pytest.mark.parametrize("kind", ["cppgunicorn", "gunicorn"])
def test_uwsgi_allow_ips_refuses_other_tcp_peers_and_allows_unix_ones(kind, call_log):
    tcp = start_direct(kind, call_log, "--uwsgi-allow-from", "10.9.9.9")
    unix = start_direct(kind, call_log, "--uwsgi-allow-from", "10.9.9.9", transport="unix")
    try:
        response, closed = exchange(tcp.connect(), packet(get_vars("/from-tcp")))
        assert response.startswith(b"HTTP/1.1 500 ") and closed, response
        response, closed = exchange(unix.connect(), packet(get_vars("/from-unix")))
        assert response.startswith(b"HTTP/1.1 200 OK\r\n") and closed, response
        assert call_log.read_text() == "GET /from-unix\n"
    finally:
        tcp.stop()
        unix.stop()


@pytest.mark.parametrize("allow", ["*", "127.0.0.0/8", "10.9.9.9,127.0.0.1"])
def test_uwsgi_allow_ips_star_networks_and_lists(allow, call_log):
    backend = start_direct("cppgunicorn", call_log, "--uwsgi-allow-from", allow)
    try:
        response, closed = exchange(backend.connect(), packet(get_vars("/allowed")))
        assert response.startswith(b"HTTP/1.1 200 OK\r\n") and closed, response
    finally:
        backend.stop()


def test_uwsgi_over_tls_from_nginx_suwsgi(tmp_path):
    # gunicorn wraps a uwsgi listener in TLS as any other: nginx's
    # suwsgi:// speaks uwsgi inside it.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=localhost"],
                   cwd=tmp_path, check=True, capture_output=True)
    backend = Backend("cppgunicorn", "tcp", UWSGI_APP, "app:app", "--certfile",
                      str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"))
    nginx = UwsgiNginx(f"suwsgi://{backend.upstream}")
    try:
        env = requests.get(nginx.url + "/environ", timeout=10).json()
        assert env["wsgi.url_scheme"] == "https"
        assert env["HTTP_X_FROM_NGINX"] == "yes"
    finally:
        nginx.stop()
        backend.stop()


def test_the_slowloris_deadline_applies_to_a_packet_head(call_log):
    backend = start_direct("cppgunicorn", call_log, "--timeout", "1")
    try:
        sock = backend.connect()
        sock.sendall(packet(get_vars("/"))[:6])
        response, closed = exchange(sock, b"", half_close=False)
        assert closed and response.startswith(b"HTTP/1.1 408 "), response
        assert call_log.read_text() == ""
    finally:
        backend.stop()
