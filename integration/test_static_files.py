"""Static files served by the worker (--static-map URL_PREFIX=DIRECTORY):
HTTP semantics (conditional requests, ranges, codings, methods), the
safety of name resolution, the descriptors it holds, and the settings,
through real clients: requests, http.client, curl and raw sockets."""
import gzip
import hashlib
import http.client
import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import APPS, server_binary
from http_helpers import exchange, read_until_close, serving_worker_pid, status_of
from proc_tools import wait_until
from test_tls import pki, tls_flags  # noqa: F401 - the test PKI fixture

SITE = APPS / "static_site"
CSS = b"body { color: #123; }\n" * 100  # 2.2 KB
BIG = 3 * 1024 * 1024
GZ = gzip.compress(b"console.log(1);\n", mtime=0)


@pytest.fixture
def tree(tmp_path):
    """public/ (the mount) beside secret.txt, which nothing may reach."""
    pub = tmp_path / "public"
    (pub / "css").mkdir(parents=True)
    (pub / "js").mkdir()
    (pub / "empty-dir").mkdir()
    (pub / "css" / "site.css").write_bytes(CSS)
    (pub / "js" / "app.js").write_bytes(b"console.log(1);\n")
    (pub / "js" / "app.js.br").write_bytes(b"BROTLI-BYTES")
    (pub / "js" / "app.js.gz").write_bytes(GZ)
    (pub / "js" / "app.3f2a9c1b.js").write_bytes(b"hashed();\n")
    (pub / "big.bin").write_bytes(os.urandom(BIG))
    (pub / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (pub / ".env").write_text("SECRET=1\n")
    (pub / ".well-known").mkdir()
    (pub / ".well-known" / "security.txt").write_text("Contact: x\n")
    (tmp_path / "secret.txt").write_text("top secret\n")
    os.symlink("../secret.txt", pub / "escape.txt")
    os.symlink("/etc/passwd", pub / "passwd")
    os.symlink("css/site.css", pub / "alias.css")
    os.mkfifo(pub / "fifo.css")
    return tmp_path


def serve(start_server, tree, *flags, **kwargs):
    return start_server("app:app", "--static-map", f"/static={tree / 'public'}", *flags,
                        chdir=SITE, **kwargs)


def raw_get(port, target, headers=""):
    """One request on its own connection, read to the close."""
    req = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n".encode()
    return exchange(port, req, half_close=False)


def head_fields(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


# --- GET and HEAD, the headers a CDN expects ---------------------------------

def test_get_serves_the_file_with_type_length_and_validators_without_the_app(start_server, tree):
    srv = serve(start_server, tree)
    r = requests.get(f"{srv.url}/static/css/site.css", timeout=10)
    assert r.status_code == 200
    assert r.content == CSS
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    assert r.headers["Content-Length"] == str(len(CSS))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Cache-Control"] == "public, max-age=60"
    assert r.headers["Vary"] == "Accept-Encoding"
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    mtime = int((tree / "public" / "css" / "site.css").stat().st_mtime)
    assert r.headers["Last-Modified"] == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(mtime))
    assert r.headers["Server"] == "cppgunicorn" and "Date" in r.headers
    # Outside the mount, the app answers.
    assert requests.get(f"{srv.url}/other", timeout=10).text == "app GET /other"
    png = requests.get(f"{srv.url}/static/logo.png", timeout=10)
    assert png.headers["Content-Type"] == "image/png" and "Vary" not in png.headers


def test_head_sends_the_get_headers_and_no_body(start_server, tree):
    srv = serve(start_server, tree)
    status, data, _ = exchange(srv.port, b"HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n"
                               b"Connection: close\r\n\r\n", half_close=False)
    assert status == 200
    head, body = data.split(b"\r\n\r\n", 1)
    assert body == b""
    assert head_fields(data)["content-length"] == str(BIG)
    assert head_fields(data)["content-type"] == "application/octet-stream"


def test_a_large_file_arrives_whole_by_sendfile_and_keep_alive_goes_on(start_server, tree):
    srv = serve(start_server, tree)
    want = hashlib.sha256((tree / "public" / "big.bin").read_bytes()).hexdigest()
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(f"{srv.url}/static/big.bin", timeout=20)
            assert hashlib.sha256(r.content).hexdigest() == want
        assert s.get(f"{srv.url}/x", timeout=10).text == "app GET /x"


def test_other_methods_get_405_with_allow(start_server, tree):
    srv = serve(start_server, tree)
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = requests.request(method, f"{srv.url}/static/css/site.css", data=b"x", timeout=10)
        assert r.status_code == 405, method
        assert r.headers["Allow"] == "GET, HEAD"


# --- Conditional requests (RFC 9110 section 13) ------------------------------

def test_if_none_match_and_if_modified_since_answer_304_without_a_body(start_server, tree):
    srv = serve(start_server, tree)
    url = f"{srv.url}/static/css/site.css"
    first = requests.get(url, timeout=10)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    r = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == etag and "Content-Length" not in r.headers
    assert requests.get(url, headers={"If-None-Match": f'W/{etag}'}, timeout=10).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10).status_code == 200
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=10).status_code == 304
    older = "Thu, 01 Jan 1970 00:00:01 GMT"
    assert requests.get(url, headers={"If-Modified-Since": older}, timeout=10).status_code == 200
    # If-None-Match wins over If-Modified-Since (section 13.2.2).
    r = requests.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified},
                     timeout=10)
    assert r.status_code == 200
    # If-Match that does not match: 412.
    assert requests.get(url, headers={"If-Match": '"other"'}, timeout=10).status_code == 412
    assert requests.get(url, headers={"If-Match": etag}, timeout=10).status_code == 200


def test_a_changed_file_gets_a_new_etag(start_server, tree):
    srv = serve(start_server, tree)
    url = f"{srv.url}/static/css/site.css"
    etag = requests.get(url, timeout=10).headers["ETag"]
    path = tree / "public" / "css" / "site.css"
    path.write_bytes(b"console.log(2);\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    r = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert r.status_code == 200 and r.content == b"console.log(2);\n"
    assert r.headers["ETag"] != etag


# --- Ranges (RFC 9110 section 14) ---------------------------------------------

def test_a_single_range_is_answered_206_with_content_range(start_server, tree):
    srv = serve(start_server, tree)
    url = f"{srv.url}/static/big.bin"
    data = (tree / "public" / "big.bin").read_bytes()
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{BIG}"
    assert r.headers["Content-Length"] == "100"
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert r.status_code == 206 and r.content == data[-10:]
    r = requests.get(url, headers={"Range": f"bytes={BIG - 1_000_000}-"}, timeout=10)
    assert r.status_code == 206 and r.content == data[-1_000_000:]
    # Several ranges: the whole file (a server may ignore Range).
    r = requests.get(url, headers={"Range": "bytes=0-1,5-6"}, timeout=10)
    assert r.status_code == 200 and len(r.content) == BIG


def test_curl_resumes_a_download_with_a_range(start_server, tree, tmp_path):
    srv = serve(start_server, tree)
    out = tmp_path / "part.bin"
    data = (tree / "public" / "big.bin").read_bytes()
    out.write_bytes(data[:12345])
    subprocess.run(["curl", "-sf", "-C", "-", "-o", str(out), f"{srv.url}/static/big.bin"],
                   check=True, timeout=30)
    assert out.read_bytes() == data


def test_an_unsatisfiable_range_is_416_with_the_size(start_server, tree):
    srv = serve(start_server, tree)
    r = requests.get(f"{srv.url}/static/css/site.css", headers={"Range": "bytes=99999-"}, timeout=10)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(CSS)}"


def test_if_range_with_an_old_validator_gets_the_whole_file(start_server, tree):
    srv = serve(start_server, tree)
    url = f"{srv.url}/static/css/site.css"
    first = requests.get(url, timeout=10)
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": first.headers["ETag"]}, timeout=10)
    assert r.status_code == 206 and r.content == CSS[:10]
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'}, timeout=10)
    assert r.status_code == 200 and r.content == CSS
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": first.headers["Last-Modified"]},
                     timeout=10)
    assert r.status_code == 206


# --- Content coding, caching --------------------------------------------------

def fetch_raw(port, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r, body


def test_a_precompressed_sibling_is_chosen_by_accept_encoding(start_server, tree):
    srv = serve(start_server, tree)
    r, body = fetch_raw(srv.port, "/static/js/app.js", {"Accept-Encoding": "gzip, br"})
    assert body == b"BROTLI-BYTES" and r.getheader("Content-Encoding") == "br"
    assert r.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert r.getheader("Vary") == "Accept-Encoding"
    r, body = fetch_raw(srv.port, "/static/js/app.js", {"Accept-Encoding": "gzip"})
    assert body == GZ and r.getheader("Content-Encoding") == "gzip"
    r, body = fetch_raw(srv.port, "/static/js/app.js", {"Accept-Encoding": "br;q=0, gzip;q=0"})
    assert body == b"console.log(1);\n" and r.getheader("Content-Encoding") is None
    assert r.getheader("Vary") == "Accept-Encoding"
    r, body = fetch_raw(srv.port, "/static/js/app.js", {"Accept-Encoding": "identity"})
    assert body == b"console.log(1);\n"


def test_curl_compressed_gets_a_gzip_sibling(start_server, tree):
    srv = serve(start_server, tree)
    pub = tree / "public" / "css"
    subprocess.run(["gzip", "-k", str(pub / "site.css")], check=True)
    out = subprocess.run(["curl", "-s", "-D", "-", "-H", "Accept-Encoding: gzip", "--compressed",
                          f"{srv.url}/static/css/site.css"], capture_output=True, timeout=10)
    head, body = out.stdout.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding: gzip" in head
    assert body == CSS  # curl decoded the sibling


def test_cache_control_immutable_for_hashed_names_and_from_the_setting(start_server, tree):
    srv = serve(start_server, tree, "--static-cache-control", "public, max-age=600")
    r = requests.get(f"{srv.url}/static/js/app.3f2a9c1b.js", timeout=10)
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    r = requests.get(f"{srv.url}/static/js/app.js", timeout=10)
    assert r.headers["Cache-Control"] == "public, max-age=600"
    srv2 = serve(start_server, tree, "--static-cache-control", "")
    assert "Cache-Control" not in requests.get(f"{srv2.url}/static/js/app.js", timeout=10).headers


# --- Not found, directories, fallthrough -------------------------------------

def test_missing_files_and_directories_are_404_and_never_listed(start_server, tree):
    srv = serve(start_server, tree)
    for path in ("/static/nope.css", "/static/css", "/static/css/", "/static/", "/static",
                 "/static/empty-dir", "/static/css/site.css/x"):
        r = requests.get(srv.url + path, timeout=10)
        assert r.status_code == 404, path
        assert "site.css" not in r.text and "app" not in r.text


def test_fallthrough_hands_missing_names_to_the_app(start_server, tree):
    srv = serve(start_server, tree, "--static-fallthrough")
    assert requests.get(f"{srv.url}/static/nope.css", timeout=10).text == "app GET /static/nope.css"
    assert requests.get(f"{srv.url}/static/css/", timeout=10).text == "app GET /static/css/"
    assert requests.get(f"{srv.url}/static/css/site.css", timeout=10).content == CSS
    # Refused names never reach the app, fallthrough or not.
    assert requests.get(f"{srv.url}/static/.env", timeout=10).status_code == 404
    assert raw_get(srv.port, "/static/../app.py")[0] == 400


# --- Safety ------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/static/../secret.txt", "/static/css/../../secret.txt", "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt", "/static/..%2fsecret.txt", "/static/css%2f..%2f..%2fsecret.txt",
    "/static/..%5csecret.txt", "/static/css\\..\\..\\secret.txt", "/static/site.css%00.png",
    "/static//etc/passwd", "/static/./css/site.css",
])
def test_names_that_try_to_leave_the_directory_are_refused(start_server, tree, target):
    srv = serve(start_server, tree, "--static-fallthrough")
    status, data, _ = raw_get(srv.port, target)
    assert status == 400, data[:200]
    assert b"top secret" not in data and b"root:" not in data and b"app " not in data


def test_double_encoding_is_decoded_once_and_names_a_file_that_does_not_exist(start_server, tree):
    srv = serve(start_server, tree)
    status, data, _ = raw_get(srv.port, "/static/%252e%252e/secret.txt")
    assert status == 404 and b"top secret" not in data


def test_symlinks_out_of_the_directory_are_not_followed(start_server, tree):
    srv = serve(start_server, tree)
    for path in ("/static/escape.txt", "/static/passwd"):
        r = requests.get(srv.url + path, timeout=10)
        assert r.status_code == 404, path
        assert "top secret" not in r.text and "root:" not in r.text
    # One that stays beneath is followed (openat2's RESOLVE_BENEATH).
    assert requests.get(f"{srv.url}/static/alias.css", timeout=10).content == CSS


def test_hidden_files_are_refused_unless_allowed(start_server, tree):
    srv = serve(start_server, tree)
    assert requests.get(f"{srv.url}/static/.env", timeout=10).status_code == 404
    assert requests.get(f"{srv.url}/static/.well-known/security.txt", timeout=10).status_code == 404
    srv2 = serve(start_server, tree, "--static-allow-hidden")
    assert requests.get(f"{srv2.url}/static/.well-known/security.txt", timeout=10).text == "Contact: x\n"


def test_only_regular_files_are_served_and_a_fifo_does_not_block(start_server, tree):
    srv = serve(start_server, tree)
    r = requests.get(f"{srv.url}/static/fifo.css", timeout=10)
    assert r.status_code == 404
    assert requests.get(f"{srv.url}/static/css/site.css", timeout=10).status_code == 200


def test_a_file_that_shrinks_during_sendfile_ends_the_response_and_the_connection(start_server, tree):
    # A long keep-alive: the close must be the server's answer to the short
    # file, not the idle timeout's.
    srv = serve(start_server, tree, "--keep-alive", "60")
    path = tree / "public" / "huge.bin"
    size = 64 * 1024 * 1024
    with open(path, "wb") as f:
        f.truncate(size)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /static/huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        head, body = got.split(b"\r\n\r\n", 1)
        assert f"Content-Length: {size}".encode() in head
        received = len(body)
        while received < 1024 * 1024:
            received += len(s.recv(65536))
        os.truncate(path, 2 * 1024 * 1024)
        rest, closed = read_until_close(s, deadline=15)
        received += len(rest)
    assert closed
    assert received < size
    assert "ended after" in srv.stderr() and "closing the connection" in srv.stderr()
    assert requests.get(f"{srv.url}/static/css/site.css", timeout=10).content == CSS


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_ten_thousand_requests_leak_no_descriptor(start_server, tree):
    srv = serve(start_server, tree)
    pid = serving_worker_pid(srv.port)
    paths = ["/static/css/site.css", "/static/nope.css", "/static/js/app.js", "/static/.env",
             "/static/big.bin", "/static/fifo.css", "/static/escape.txt"]
    with requests.Session() as s:
        s.get(f"{srv.url}/static/css/site.css", timeout=10)
        before = open_fds(pid)
        etag = s.get(f"{srv.url}/static/js/app.js", timeout=10).headers["ETag"]
        for i in range(10_000):
            path = paths[i % len(paths)]
            headers = {}
            if i % 11 == 0:
                headers["If-None-Match"] = etag
            if i % 13 == 0:
                headers["Range"] = "bytes=0-3"
            if i % 17 == 0:
                headers["Accept-Encoding"] = "br"
            if path == "/static/big.bin":
                headers["Range"] = "bytes=0-99999"  # sendfile, without 3 MB each time
            s.get(srv.url + path, headers=headers, timeout=10)
        after = open_fds(pid)
    assert after == before, (before, after)


def test_the_open_files_limit_gives_503_and_the_worker_goes_on(start_server, tree, tmp_path):
    # post_worker_init: the worker's soft RLIMIT_NOFILE is set just above
    # what it holds, so one connection and one open file fill it.
    conf = tmp_path / "limit.py"
    conf.write_text(
        "import os, resource\n"
        "def post_worker_init(worker):\n"
        "    used = len(os.listdir('/proc/self/fd'))\n"
        "    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 3, hard))\n")
    srv = serve(start_server, tree, "-c", conf)
    path = tree / "public" / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    # A reader that does not read holds its file open.
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"GET /static/huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b" 200 " in slow.recv(4096)
    statuses = []
    for _ in range(3):
        try:
            status, data, closed = raw_get(srv.port, "/static/css/site.css")
            statuses.append(status)
        except OSError:
            statuses.append(None)
    assert 503 in statuses, statuses
    assert "open-files limit" in srv.stderr()
    slow.close()
    wait_until(lambda: raw_get(srv.port, "/static/css/site.css")[0] == 200, 15,
               what="static files again once the slow reader left")


# --- TLS, threads, no sendfile -----------------------------------------------

@pytest.mark.parametrize("flags", [["--threads", "4"], ["--no-sendfile"], ["--worker-class", "gevent"]],
                         ids=["threads", "no-sendfile", "gevent"])
def test_the_same_bytes_with_threads_without_sendfile_and_with_gevent(start_server, tree, flags):
    srv = serve(start_server, tree, *flags)
    data = (tree / "public" / "big.bin").read_bytes()
    r = requests.get(f"{srv.url}/static/big.bin", timeout=20)
    assert r.content == data
    r = requests.get(f"{srv.url}/static/big.bin", headers={"Range": "bytes=5-1000004"}, timeout=20)
    assert r.content == data[5:1000005]


def test_static_files_over_tls(start_server, tree, pki):
    # Read and encrypted through the TLS session (sendfile would bypass it).
    srv = serve(start_server, tree, *tls_flags(pki))
    data = (tree / "public" / "big.bin").read_bytes()
    url = f"https://localhost:{srv.port}/static"
    ca = str(pki / "ca.pem")
    with requests.Session() as s:
        r = s.get(f"{url}/big.bin", verify=ca, timeout=20)
        assert r.status_code == 200 and r.content == data
        assert s.get(f"{url}/css/site.css", verify=ca, timeout=10).content == CSS
        r = s.get(f"{url}/big.bin", headers={"Range": "bytes=1000-2999999"}, verify=ca, timeout=20)
        assert r.status_code == 206 and r.content == data[1000:3000000]


# --- Access log and the app's own static folder ------------------------------

def test_the_access_log_marks_static_responses(start_server, tree, tmp_path):
    log = tmp_path / "access.log"
    srv = serve(start_server, tree, "--access-logfile", log,
                "--access-logformat", '%(x)s "%(r)s" %(s)s %(b)s')
    requests.get(f"{srv.url}/static/css/site.css", timeout=10)
    requests.get(f"{srv.url}/static/big.bin", timeout=20)
    requests.get(f"{srv.url}/static/nope", timeout=10)
    requests.get(f"{srv.url}/hello", timeout=10)
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 4, 10, what="4 lines")
    lines = log.read_text().splitlines()
    assert lines[0] == f'static "GET /static/css/site.css HTTP/1.1" 200 {len(CSS)}'
    assert lines[1] == f'static "GET /static/big.bin HTTP/1.1" 200 {BIG}'
    assert lines[2] == 'static "GET /static/nope HTTP/1.1" 404 10'
    assert lines[3] == 'app "GET /hello HTTP/1.1" 200 14'


def test_static_from_app_serves_the_flask_static_folder(start_server):
    srv = start_server("flask_site:app", "--static-from-app", chdir=SITE)
    r = requests.get(f"{srv.url}/assets/site.css", timeout=10)
    assert r.status_code == 200 and r.text == "body { color: #123; }\n"
    assert "ETag" in r.headers and r.headers["Content-Type"] == "text/css; charset=utf-8"
    assert r.headers["Cache-Control"] == "public, max-age=60"  # ours; Flask says no-cache
    assert requests.get(f"{srv.url}/", timeout=10).text == "flask index"
    # Without the flag, the same URL is Flask's own (send_from_directory).
    plain = start_server("flask_site:app", chdir=SITE)
    r = requests.get(f"{plain.url}/assets/site.css", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("app", ["flask_site:no_static", "flask_site:wrapped", "app:app"])
def test_static_from_app_is_refused_for_an_app_without_a_static_folder(app):
    r = subprocess.run([server_binary(), "--bind", "127.0.0.1:0", "--static-from-app", app],
                       cwd=SITE, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "Invalid value for static_from_app" in r.stderr


# --- Settings -----------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("static=./static", "the URL prefix must start with '/'"),
    ("/static", "expected URL_PREFIX=DIRECTORY"),
    ("/static=", "the directory is missing"),
    ("/static=./missing", "No such file or directory"),
    ("/static=./app.py", "is not a directory"),
    ("/st?x=./static", "the URL prefix is a plain path"),
    ("/a/../b=./static", "may not hold"),
])
def test_bad_static_map_values_stop_the_start_with_the_setting_and_value(value, message):
    r = subprocess.run([server_binary(), "--static-map", value, "app:app"], cwd=SITE,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "Invalid value for static_map:" in r.stderr and message in r.stderr, r.stderr


def test_a_prefix_mapped_twice_is_refused():
    r = subprocess.run([server_binary(), "--static-map", "/s=./static", "--static-map", "/s/=./static",
                        "app:app"], cwd=SITE, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "mapped twice" in r.stderr


@pytest.mark.parametrize("kind", ["toml", "py"])
def test_static_map_as_a_list_in_config_files(start_server, tree, tmp_path, kind):
    pub = tree / "public"
    if kind == "toml":
        conf = tmp_path / "c.toml"
        conf.write_text(f'static_map = ["/a={pub}/css", "/b={pub}/js"]\nstatic_fallthrough = true\n')
    else:
        conf = tmp_path / "c.py"
        conf.write_text(f'static_map = ["/a={pub}/css", "/b={pub}/js"]\nstatic_fallthrough = True\n')
    srv = start_server("app:app", "-c", conf, chdir=SITE)
    assert requests.get(f"{srv.url}/a/site.css", timeout=10).content == CSS
    assert requests.get(f"{srv.url}/b/app.js", timeout=10).content == b"console.log(1);\n"
    assert requests.get(f"{srv.url}/b/nope", timeout=10).text == "app GET /b/nope"


def test_relative_directories_are_relative_to_chdir(start_server):
    srv = start_server("app:app", "--static-map", "/s=static", chdir=SITE)
    assert requests.get(f"{srv.url}/s/site.css", timeout=10).text == "body { color: #123; }\n"


# --- The README's quick start -------------------------------------------------

def test_the_quick_start_serves_the_example_static_files_from_cpp(start_server, tmp_path):
    # What `./dev.sh serve` runs: --chdir examples/flask_app --static-map /static=static.
    from conftest import EXAMPLES
    log = tmp_path / "access.log"
    srv = start_server("app:app", "--static-map", "/static=static", "--access-logfile", log,
                       "--access-logformat", '%(x)s %(U)s %(s)s', chdir=EXAMPLES / "flask_app")
    page = requests.get(f"{srv.url}/", timeout=10)
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text
    assert '<script src="/static/app.js" defer></script>' in page.text
    css = requests.get(f"{srv.url}/static/style.css", timeout=10)
    js = requests.get(f"{srv.url}/static/app.js", timeout=10)
    assert css.headers["Content-Type"] == "text/css; charset=utf-8" and "ETag" in css.headers
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert css.content == (EXAMPLES / "flask_app" / "static" / "style.css").read_bytes()
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, 10, what="3 lines")
    assert log.read_text().splitlines()[:3] == [
        "app / 200", "static /static/style.css 200", "static /static/app.js 200"]
