"""The example Flask app behind real nginx, as it is deployed: nginx proxies
to the server over a unix socket and sets Host, X-Forwarded-For,
X-Forwarded-Proto and X-Forwarded-Host; the server trusts it with
--forwarded-allow-ips. gunicorn 27 runs beside it with the same flags on its
own socket, and the environ the app sees through each is compared key by
key, for nginx's default proxying (HTTP/1.0 upstream, a connection per
request) and a tuned one (HTTP/1.1, keepalive 32).

One nginx serves the module, with four servers: {default, tuned} x
{cppgunicorn, gunicorn}.
"""
import hashlib
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import APPS, EXAMPLES, Server, free_port, server_binary
from nginx import Nginx, proxy_pass_unix, unix_address

APP_DIR = APPS / "behind_proxy"
SERVERS = ["cppgunicorn", "gunicorn"]
PROXIES = ["default", "tuned"]
FLAGS = ["--workers", "2", "--threads", "4", "--forwarded-allow-ips", "*",
         "--chdir", str(APP_DIR)]

# What a deployment's location block sets (gunicorn's deploy docs, plus
# X-Forwarded-Host).
PROXY_HEADERS = """
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_redirect off;"""


def gunicorn_binary():
    return str(Path(sys.executable).parent / "gunicorn")


def wait_for_unix_socket(path, srv):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and srv.proc.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return
        except OSError:
            time.sleep(0.05)
    srv.stop()
    pytest.fail(f"{srv.args} did not listen on {path}\n{srv.stderr()}")


def start_backend(name, sock):
    binary = server_binary() if name == "cppgunicorn" else gunicorn_binary()
    # gunicorn 27 opens a control socket in ~/.gunicorn by default, which
    # two gunicorns would share.
    extra = ["--no-control-socket"] if name == "gunicorn" else []
    srv = Server([binary, "--bind", f"unix:{sock}", *extra, *FLAGS, "proxied:app"])
    wait_for_unix_socket(sock, srv)
    srv.socket_path = sock
    return srv


def server_block(port, upstream, tuned):
    if tuned:
        return f"""
    upstream up{port} {{
        server {unix_address(upstream)};
        keepalive 32;
        # Below the server's --keep-alive (2 s): nginx, not the server,
        # closes an idle pooled connection, so none is closed under a
        # request nginx is sending on it.
        keepalive_timeout 1s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{{PROXY_HEADERS}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://up{port};
        }}
    }}"""
    return f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{{PROXY_HEADERS}
            proxy_pass {proxy_pass_unix(upstream)};
        }}
    }}"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """{(proxy, server): base url}, with the backends in `.backends`."""
    tmp = tmp_path_factory.mktemp("behind-nginx")
    backends = {name: start_backend(name, tmp / f"{name}.sock") for name in SERVERS}
    urls, blocks = {}, ["client_max_body_size 64m;"]
    for proxy in PROXIES:
        for name in SERVERS:
            port = free_port()
            urls[(proxy, name)] = f"http://127.0.0.1:{port}"
            blocks.append(server_block(port, tmp / f"{name}.sock", proxy == "tuned"))
    ports = [int(u.rsplit(":", 1)[1]) for u in urls.values()]
    nginx = Nginx(tmp / "nginx", "\n".join(blocks), ports=ports).start()
    yield urls, backends, nginx
    nginx.stop()
    for srv in backends.values():
        srv.stop()
    assert not nginx.problems(), nginx.report()
    for name, srv in backends.items():
        err = srv.stderr()
        assert "Traceback" not in err, f"{name}:\n{err}"
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            assert marker not in err, f"{name}:\n{err}"


# --- the environ, compared -------------------------------------------------

def raw_request(url, head, body=b""):
    """Sends bytes as they are (what requests would not send): (status,
    body)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _chunks():
    yield b"first piece, "
    yield b"second piece"


BIG = os.urandom(3 * 1024 * 1024)  # past the 1 MiB that stays in memory

# name -> a function of the base url giving the app's JSON dump. The Host
# a client sends is the same for every server, so HTTP_HOST can match.
HOST = {"Host": "shop.example:8080"}
CASES = {
    "get-query-and-headers": lambda u: requests.get(
        u + "/__environ?a=1&b=two%20words&c=%2F&d=+", timeout=10,
        headers={**HOST, "X-Request-Id": "abc-123", "Accept-Language": "fr, en;q=0.5",
                 "X-Empty": ""}),
    "percent-encoded-path": lambda u: requests.get(
        u + "/__environ/caf%C3%A9/a%2Fb/%7Euser;v=1//x", headers=HOST, timeout=10),
    "no-host-from-client": lambda u: requests.get(u + "/__environ", timeout=10,
                                                  headers={"Host": "localhost"}),
    "form-post": lambda u: requests.post(
        u + "/__environ?via=form", data={"name": "ada", "city": "Zürich"}, headers=HOST,
        timeout=10),
    "json-put": lambda u: requests.put(u + "/__environ", json={"x": [1, 2]}, headers=HOST,
                                       timeout=10),
    "chunked-upload": lambda u: requests.post(
        u + "/__environ", data=_chunks(), timeout=10,
        headers={**HOST, "Content-Type": "application/octet-stream"}),
    "3mb-upload": lambda u: requests.post(
        u + "/__environ", data=BIG, timeout=30,
        headers={**HOST, "Content-Type": "application/octet-stream"}),
    "delete-without-body": lambda u: requests.delete(u + "/__environ/item/7", headers=HOST,
                                                     timeout=10),
    "options": lambda u: requests.options(u + "/__environ", headers=HOST, timeout=10),
    "https-to-nginx-said-by-a-proxy-before-it": lambda u: requests.get(
        u + "/__environ", timeout=10,
        headers={**HOST, "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}),
    "latin1-header-value": lambda u: raw_request(
        u, b"GET /__environ HTTP/1.1\r\nHost: shop.example\r\nX-Name: caf\xe9\r\n"
           b"Connection: close\r\n\r\n"),
    "http10-client-without-host": lambda u: raw_request(
        u, b"GET /__environ?old=1 HTTP/1.0\r\nUser-Agent: old\r\n\r\n"),
}

# nginx leaves out a header whose value is empty: behind `proxy_set_header
# Host $http_host` and proxy_http_version 1.1, an HTTP/1.0 request without
# Host reaches the server as an HTTP/1.1 request without Host, which we
# refuse (docs/http.md, "Stricter than gunicorn"); see the test at the end.
NOT_THROUGH = {("tuned", "http10-client-without-host")}

# The keys the comparison covers: every request key of PEP 3333 and CGI,
# and every HTTP_* key (collected from both sides below).
REQUEST_KEYS = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "RAW_URI",
                "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "CONTENT_TYPE", "CONTENT_LENGTH",
                "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.version", "wsgi.input_terminated", "body_size", "body_sha256"]
# Differences being fixed separately: each is its own strictly expected
# failure below, so that it turns green when it is fixed.
# PEP 3333's methods of the two streams ("Input and Error Streams").
STREAMS = {"wsgi.input": {"read", "readline", "readlines", "__iter__"},
           "wsgi.errors": {"write", "writelines", "flush"}}
ABSENT = "<absent>"


@pytest.fixture(scope="module")
def dumps(deployment):
    """{(proxy, server, case): the environ as the app saw it}."""
    urls = deployment[0]
    out = {}
    for (proxy, name), url in urls.items():
        for case, send in CASES.items():
            if (proxy, case) in NOT_THROUGH:
                continue
            r = send(url)
            status, body = (r.status_code, r.content) if isinstance(r, requests.Response) else r
            assert status == 200, (proxy, name, case, status, body)
            dump = json.loads(body)
            # Without a Host, both name the listener: each its own socket.
            for key, value in dump.items():
                if value == str(deployment[1][name].socket_path):
                    dump[key] = "<its unix socket>"
            out[(proxy, name, case)] = dump
    return out


def differences(dumps, proxy, keys_of):
    found = []
    for case in CASES:
        if (proxy, case) in NOT_THROUGH:
            continue
        ours, theirs = dumps[(proxy, "cppgunicorn", case)], dumps[(proxy, "gunicorn", case)]
        for key in keys_of(ours, theirs):
            a, b = ours.get(key, ABSENT), theirs.get(key, ABSENT)
            if a != b:
                found.append(f"{case}: {key}: cppgunicorn {a!r}, gunicorn {b!r}")
    return found


@pytest.mark.parametrize("proxy", PROXIES)
def test_request_keys_match_gunicorn(dumps, proxy):
    assert differences(dumps, proxy, lambda a, b: REQUEST_KEYS) == []


@pytest.mark.parametrize("proxy", PROXIES)
def test_http_keys_match_gunicorn(dumps, proxy):
    def http_keys(a, b):
        return sorted(k for k in set(a) | set(b) if k.startswith("HTTP_"))
    assert differences(dumps, proxy, http_keys) == []


@pytest.mark.parametrize("proxy", PROXIES)
def test_streams_have_the_same_pep3333_methods(dumps, proxy):
    for case in CASES:
        if (proxy, case) in NOT_THROUGH:
            continue
        for key, methods in STREAMS.items():
            ours = set(dumps[(proxy, "cppgunicorn", case)][key]["interface"]) & methods
            theirs = set(dumps[(proxy, "gunicorn", case)][key]["interface"]) & methods
            assert ours == theirs == methods, (case, key)


@pytest.mark.parametrize("key", ["REMOTE_PORT"])
@pytest.mark.parametrize("proxy", PROXIES)
def test_address_keys_match_gunicorn(dumps, proxy, key):
    assert differences(dumps, proxy, lambda a, b: [key]) == []


def test_what_the_app_sees_through_nginx(dumps):
    # The comparison above could pass with both servers wrong: pin the
    # values that matter to an app behind a proxy.
    for proxy in PROXIES:
        d = dumps[(proxy, "cppgunicorn", "get-query-and-headers")]
        assert d["HTTP_HOST"] == "shop.example:8080"
        assert d["HTTP_X_FORWARDED_HOST"] == "shop.example"
        assert d["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
        assert d["HTTP_X_FORWARDED_PROTO"] == "http"
        assert d["QUERY_STRING"] == "a=1&b=two%20words&c=%2F&d=+"
        assert d["HTTP_X_EMPTY"] == ""
        d = dumps[(proxy, "cppgunicorn", "percent-encoded-path")]
        assert d["PATH_INFO"] == "/__environ/caf\u00c3\u00a9/a/b/~user;v=1//x"
        d = dumps[(proxy, "cppgunicorn", "https-to-nginx-said-by-a-proxy-before-it")]
        assert d["wsgi.url_scheme"] == "http"  # nginx overwrites X-Forwarded-Proto
        assert d["HTTP_X_FORWARDED_FOR"] == "203.0.113.7, 127.0.0.1"
        d = dumps[(proxy, "cppgunicorn", "latin1-header-value")]
        assert d["HTTP_X_NAME"] == "caf\u00e9"
        d = dumps[(proxy, "cppgunicorn", "3mb-upload")]
        assert d["body_size"] == len(BIG)
        assert d["body_sha256"] == hashlib.sha256(BIG).hexdigest()
        assert d["SERVER_PROTOCOL"] == ("HTTP/1.1" if proxy == "tuned" else "HTTP/1.0")


def test_http10_client_without_host_behind_an_http11_proxy_is_refused(deployment):
    # A documented difference (docs/http.md): RFC 9112 section 3.2 makes Host
    # a MUST in HTTP/1.1, and nginx itself refuses such a request from a
    # client; gunicorn serves it.
    urls = deployment[0]
    head = b"GET /__environ HTTP/1.0\r\nUser-Agent: old\r\n\r\n"
    assert raw_request(urls[("tuned", "cppgunicorn")], head)[0] == 400
    assert raw_request(urls[("tuned", "gunicorn")], head)[0] == 200


def test_repeated_fields_are_joined_as_gunicorn_joins_them(deployment):
    # nginx passes both field lines on; each server combines them in the
    # environ, gunicorn 27 with a bare ",".
    urls = deployment[0]
    head = (b"GET /__environ HTTP/1.1\r\nHost: shop.example\r\nX-Tag: a\r\nX-Tag: b\r\n"
            b"Connection: close\r\n\r\n")
    for proxy in PROXIES:
        ours = json.loads(raw_request(urls[(proxy, "cppgunicorn")], head)[1])
        theirs = json.loads(raw_request(urls[(proxy, "gunicorn")], head)[1])
        assert (ours["HTTP_X_TAG"], theirs["HTTP_X_TAG"]) == ("a,b", "a,b")


# Keys only one side has, and why. Everything else must be in both.
ONE_SIDED = {
    "gunicorn.socket": "gunicorn hands the app its raw socket; we have none to give",
    "wsgi.early_hints": "gunicorn 27's 103 Early Hints callback: not implemented here",
}


@pytest.mark.parametrize("proxy", PROXIES)
def test_environ_has_the_same_keys_as_gunicorns(dumps, proxy):
    for case in CASES:
        if (proxy, case) in NOT_THROUGH:
            continue
        ours = set(dumps[(proxy, "cppgunicorn", case)]) - set(ONE_SIDED)
        theirs = set(dumps[(proxy, "gunicorn", case)]) - set(ONE_SIDED)
        assert ours == theirs, case


# --- the example app's routes ----------------------------------------------

@pytest.fixture(params=[(p, s) for p in PROXIES for s in SERVERS],
                ids=[f"{p}-{s}" for p in PROXIES for s in SERVERS])
def site(deployment, request):
    return deployment[0][request.param]


def test_pages_and_json(site):
    r = requests.get(site + "/", timeout=10)
    assert r.status_code == 200 and '<li data-id="1">teapot: 12.50</li>' in r.text
    assert requests.get(site + "/api/items", timeout=10).json()["count"] == 3
    r = requests.post(site + "/api/echo", json={"b": 2, "a": 1}, timeout=10)
    assert r.json() == {"received": {"b": 2, "a": 1}, "keys": ["a", "b"], "method": "POST"}
    r = requests.get(site + "/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "not found", "path": "/nope"}
    assert requests.get(site + "/tea", timeout=10).status_code == 418


def test_upload_form_and_a_file(site):
    assert 'enctype="multipart/form-data"' in requests.get(site + "/upload", timeout=10).text
    data = os.urandom(5 * 1024 * 1024)
    r = requests.post(site + "/upload", files={"file": ("photo.jpg", data)},
                      data={"note": "through nginx"}, timeout=30)
    assert r.status_code == 200
    assert r.json() == {"filename": "photo.jpg", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "note": "through nginx"}


def test_streamed_and_large_responses(site):
    r = requests.get(site + "/stream?n=300", timeout=10, stream=True)
    assert r.status_code == 200
    assert r.text.splitlines() == [f"line {i} of 300 for /stream" for i in range(300)]
    r = requests.get(site + "/big?mb=8", timeout=30)
    assert r.content == b"0123456789abcdef" * (8 * 65536)


def test_redirect_session_cookie_and_download(site):
    r = requests.get(site + "/old", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    s = requests.Session()
    assert s.get(site + "/login?name=ada", timeout=10).json() == {"logged_in": "ada"}
    assert s.get(site + "/whoami", timeout=10).json() == {"user": "ada"}
    r = s.get(site + "/download", timeout=10)
    assert r.content == (EXAMPLES / "flask_app" / "files" / "sample.txt").read_bytes()
    assert "attachment" in r.headers["Content-Disposition"]


@pytest.mark.parametrize("path", ["/", "/api/items", "/download", "/stream?n=5", "/big?mb=1"])
def test_head_gives_the_get_headers_and_no_body(deployment, path):
    urls = deployment[0]
    seen = {}
    for (proxy, name), url in urls.items():
        get = requests.get(url + path, timeout=10)
        head = requests.head(url + path, timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert head.headers.get("Content-Type") == get.headers.get("Content-Type")
        seen[(proxy, name)] = head.headers.get("Content-Length")
    # nginx passes on the length the server gave (or none): as gunicorn.
    for proxy in PROXIES:
        assert seen[(proxy, "cppgunicorn")] == seen[(proxy, "gunicorn")], (proxy, seen)


def accepted_while(deployment, work, tmp_path):
    """How many connections cppgunicorn's workers accepted while `work` ran
    (strace on each worker)."""
    from http_helpers import SyscallTrace, worker_pids
    tmp_path.mkdir()
    traces = [SyscallTrace(pid, tmp_path, syscalls=("accept4", "accept"))
              for pid in worker_pids(deployment[1]["cppgunicorn"].proc.pid)]
    for t in traces:
        t.__enter__()
    try:
        work()
    finally:
        for t in traces:
            t.__exit__()
    return sum(len(re.findall(r"accept4?\(.*= \d+", t.text())) for t in traces)


def test_the_tuned_proxy_reuses_its_connections_and_the_default_does_not(deployment, tmp_path):
    # nginx keeps up to 32 idle upstream connections and reuses them:
    # requests in a row and in parallel all get whole answers, over far
    # fewer connections than requests. The default proxy opens one per
    # request (HTTP/1.0, no keepalive).
    from concurrent.futures import ThreadPoolExecutor
    urls = deployment[0]
    for proxy in PROXIES:
        got = []

        def burst():
            def fetch(i):
                r = requests.get(f"{urls[(proxy, 'cppgunicorn')]}/__environ?i={i}", timeout=10)
                return r.json()["QUERY_STRING"]
            with ThreadPoolExecutor(16) as pool:
                got.extend(pool.map(fetch, range(200)))

        accepted = accepted_while(deployment, burst, tmp_path / proxy)
        assert got == [f"i={i}" for i in range(200)]
        if proxy == "tuned":
            assert accepted < 100, accepted
        else:
            assert accepted >= 200, accepted
