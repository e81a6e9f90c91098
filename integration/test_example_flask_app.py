"""Every route of examples/flask_app through the real binary, with the app
wrapped in wsgiref's validator."""
import hashlib
import os
import time

import pytest
import requests

from conftest import APPS, EXAMPLES

EXAMPLE = EXAMPLES / "flask_app"


@pytest.fixture(scope="module", params=["1", "4"], ids=["threads1", "threads4"])
def example(request):
    # One server for the module; the fixture factory is function-scoped, so
    # build on conftest's Server directly.
    from conftest import Server, free_port, server_binary, wait_for_port
    port = free_port()
    srv = Server([server_binary(), "--bind", f"127.0.0.1:{port}", "--chdir",
                  str(APPS / "validated_example"), "--access-logfile", "-",
                  "--threads", request.param, "validated:app"],
                 port=port)
    assert wait_for_port(port, srv.proc), srv.stderr()
    yield srv
    assert srv.stop() == 0
    err = srv.stderr()
    # Only /boom may leave a traceback.
    assert err.count("Traceback") == err.count("RuntimeError: this route always fails"), err


def test_template_page(example):
    r = requests.get(example.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert '<li data-id="1">teapot: 12.50</li>' in r.text


def test_json_get(example):
    r = requests.get(example.url + "/api/items", timeout=5)
    assert r.json()["count"] == 3


def test_json_post(example):
    r = requests.post(example.url + "/api/echo", json={"b": 2, "a": [1, "x"]}, timeout=5)
    assert r.json() == {"received": {"b": 2, "a": [1, "x"]}, "keys": ["a", "b"], "method": "POST"}


def test_upload_form_and_a_5mb_upload(example):
    assert 'enctype="multipart/form-data"' in requests.get(example.url + "/upload", timeout=5).text
    data = os.urandom(5 * 1024 * 1024)
    r = requests.post(example.url + "/upload", files={"file": ("blob.bin", data)},
                      data={"note": "five megabytes"}, timeout=30)
    assert r.json() == {"filename": "blob.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "note": "five megabytes"}


def test_streaming_generator_is_chunked_and_in_order(example):
    r = requests.get(example.url + "/stream?n=50", timeout=5, stream=True)
    assert r.headers["Transfer-Encoding"] == "chunked"
    lines = r.text.splitlines()
    assert lines == [f"line {i} of 50 for /stream" for i in range(50)]


def test_20mb_response(example):
    r = requests.get(example.url + "/big?mb=20", timeout=60, stream=True)
    total = hashlib.sha256()
    size = 0
    for block in r.iter_content(1 << 16):
        total.update(block)
        size += len(block)
    assert size == 20 * 1024 * 1024
    expected = hashlib.sha256(b"0123456789abcdef" * (20 * 65536)).hexdigest()
    assert total.hexdigest() == expected


def test_redirect(example):
    r = requests.get(example.url + "/old", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "/"
    assert requests.get(example.url + "/old", timeout=5).url == example.url + "/"


def test_session_cookie_round_trip(example):
    s = requests.Session()
    assert s.get(example.url + "/login?name=ada", timeout=5).json() == {"logged_in": "ada"}
    assert s.get(example.url + "/whoami", timeout=5).json() == {"user": "ada"}
    assert "Signed in as ada" in s.get(example.url + "/", timeout=5).text
    assert requests.get(example.url + "/whoami", timeout=5).json() == {"user": None}


def test_plain_cookie(example):
    s = requests.Session()
    r = s.get(example.url + "/cookie?value=ginger", timeout=5)
    assert "HttpOnly" in r.headers["Set-Cookie"]
    assert s.get(example.url + "/cookie", timeout=5).json() == {"seen": "ginger"}


def test_custom_404_and_error_handler(example):
    r = requests.get(example.url + "/nope", timeout=5)
    assert r.status_code == 404
    assert r.json() == {"error": "not found", "path": "/nope"}
    r = requests.get(example.url + "/tea", timeout=5)
    assert r.status_code == 418
    assert r.json() == {"error": "the pot is empty"}


def test_send_file(example):
    r = requests.get(example.url + "/download", timeout=5)
    assert r.content == (EXAMPLE / "files" / "sample.txt").read_bytes()
    assert "attachment" in r.headers["Content-Disposition"]


def test_a_route_that_raises_gives_500_and_a_logged_traceback(example):
    r = requests.get(example.url + "/boom", timeout=5)
    assert r.status_code == 500
    # The worker goes on serving.
    assert requests.get(example.url + "/api/items", timeout=5).status_code == 200
    deadline = time.time() + 5
    while "this route always fails" not in example.stderr() and time.time() < deadline:
        time.sleep(0.05)
    err = example.stderr()
    assert "Traceback" in err and "RuntimeError: this route always fails" in err


def test_access_log_lines(example):
    requests.get(example.url + "/api/items?x=1", timeout=5)
    time.sleep(0.2)
    assert '"GET /api/items?x=1 HTTP/1.1" 200' in example.stdout()
