"""PEP 3333 as the app sees it: environ, wsgi.input, start_response and
write(), exc_info, close() on every path, file_wrapper, framing."""
import json
import os
import socket
import time

import pytest
import requests

from conftest import APPS
from http_helpers import SyscallTrace
from proc_tools import APP_DIR as PROC_APP_DIR, clients_on_every_worker, wait_for_workers, workers

FEATURES = APPS / "features"


@pytest.fixture(params=["1", "4"], ids=["threads1", "threads4"])
def features(start_server, tmp_path, request):
    close_log = tmp_path / "closed.log"
    srv = start_server("app:app", "--access-logfile", "-", "--threads", request.param,
                       chdir=FEATURES,
                       env={"FEATURES_CLOSE_LOG": str(close_log)})
    srv.close_log = close_log
    return srv


def closed(srv):
    return srv.close_log.read_text().split() if srv.close_log.exists() else []


def raw_exchange(port, data, timeout=5):
    """Sends bytes, returns everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    return b"".join(chunks)


def test_environ_has_every_pep3333_key(features):
    env = requests.get(features.url + "/environ?a=%20b", headers={"X-Test": "1"},
                       timeout=5).json()
    for key in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "RAW_URI",
                "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.input_terminated"):
        assert key in env, key
    assert env["QUERY_STRING"] == "a=%20b"
    assert env["RAW_URI"] == "/environ?a=%20b"
    assert env["HTTP_X_TEST"] == "1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(features.port)
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["has_file_wrapper"] and env["errors_has_write"]
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", "0")


def test_post_sets_content_type_and_length(features):
    env = requests.post(features.url + "/environ", data=b"abc",
                        headers={"Content-Type": "text/x-test"}, timeout=5).json()
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env


@pytest.mark.parametrize("mode, expected", [
    ("read", ["one", "\ntwo\nthree", ""]),
    ("readline", ["one\n", "tw", "o\n", "three"]),
    ("readlines", ["one\n", "two\n", "three"]),
    ("iter", ["one\n", "two\n", "three"]),
    ("", ["one\ntwo\nthree"]),
])
def test_wsgi_input_methods_never_read_past_the_body(features, mode, expected):
    r = requests.post(features.url + "/input?" + mode, data=b"one\ntwo\nthree", timeout=5)
    assert r.json() == expected


def test_write_callable_output_precedes_the_iterable(features):
    assert requests.get(features.url + "/write", timeout=5).text == "written-then-iterated"


def test_start_response_with_exc_info_replaces_an_unsent_response(features):
    r = requests.get(features.url + "/exc-info-before", timeout=5)
    assert r.status_code == 503
    assert r.text == "replaced"


def test_start_response_with_exc_info_reraises_once_headers_are_sent(features):
    r = requests.get(features.url + "/exc-info-after", timeout=5)
    assert r.status_code == 200
    assert r.text == "first-second"
    assert "reraised" in closed(features)


def test_close_is_called_after_a_normal_response(features):
    assert requests.get(features.url + "/closing", timeout=5).text == "abc"
    time.sleep(0.2)
    assert "closing" in closed(features)


def test_close_is_called_when_the_body_raises_and_the_connection_is_cut(features):
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(features.url + "/fail-mid-body", timeout=5).content
    time.sleep(0.2)
    assert "fail-mid-body" in closed(features)
    assert "failure in the middle of the body" in features.stderr()
    # The worker goes on serving.
    assert requests.get(features.url + "/closing", timeout=5).status_code == 200


def test_close_is_called_when_the_client_disconnects_mid_body(features):
    (worker,) = wait_for_workers(features.proc.pid, 1)
    with socket.create_connection(("127.0.0.1", features.port), timeout=5) as s:
        s.sendall(b"GET /slow-closing HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
    deadline = time.time() + 15
    while "slow-closing" not in closed(features) and time.time() < deadline:
        time.sleep(0.1)
    assert "slow-closing" in closed(features)
    assert requests.get(features.url + "/closing", timeout=5).text == "abc"
    # The same worker, not a replacement for one that crashed.
    assert workers(features.proc.pid) == [worker], features.stderr()
    assert features.stderr().count("Booting worker with pid") == 1


def test_file_wrapper_streams_the_file(features, tmp_path):
    (worker,) = wait_for_workers(features.proc.pid, 1)
    # Once the worker serves, it has imported the app (a worker still
    # booting may read app.py as the import does).
    assert requests.get(features.url + "/reason", timeout=20).status_code == 299
    with SyscallTrace(worker, tmp_path) as trace:
        r = requests.get(features.url + "/file-wrapper", timeout=5)
        trace.wait_for_bytes(str(FEATURES / "app.py"), len(r.content))
    assert r.content == (FEATURES / "app.py").read_bytes()
    if features.args[features.args.index("--threads") + 1] == "1":
        # The loop thread runs the app and hands the file to sendfile(2).
        moved = trace.bytes_by_call(str(FEATURES / "app.py"))
        assert moved.get("sendfile", 0) > 0 and moved.get("read", 0) == 0, moved


def test_app_content_length_is_kept_for_a_multi_chunk_body(features):
    r = requests.get(features.url + "/length", timeout=5)
    assert r.headers["Content-Length"] == "6"
    assert "Transfer-Encoding" not in r.headers
    assert r.text == "abcdef"


def test_a_one_chunk_body_gets_a_content_length(features):
    r = requests.get(features.url + "/closing", timeout=5)
    assert r.headers.get("Transfer-Encoding") == "chunked"
    r = requests.get(features.url + "/reason", timeout=5)
    assert r.headers["Content-Length"] == "6"


def test_204_has_no_body_and_no_framing_headers(features):
    out = raw_exchange(features.port, b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert body == b""


def test_the_apps_reason_phrase_and_headers_are_sent_as_given(features):
    out = raw_exchange(features.port, b"GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 299 Custom Reason Phrase\r\n")
    assert b"\r\nX-Custom: yes\r\n" in out


def test_http10_unknown_length_is_close_delimited(features):
    out = raw_exchange(features.port, b"GET /closing HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert b"Transfer-Encoding" not in head
    assert body == b"abc"


def test_wsgi_errors_goes_to_the_error_log(features):
    requests.get(features.url + "/stderr", timeout=5)
    time.sleep(0.2)
    assert "message-to-wsgi-errors" in features.stderr()


def test_access_log_uses_gunicorns_default_format(features):
    requests.get(features.url + "/reason?x=1", headers={"User-Agent": "ua-test",
                                                          "Referer": "http://ref/"}, timeout=5)
    time.sleep(0.2)
    line = [l for l in features.stdout().splitlines() if "/reason?x=1" in l][-1]
    # %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
    import re
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
        r'"GET /reason\?x=1 HTTP/1\.1" 299 6 "http://ref/" "ua-test"', line), line


def test_error_log_file_and_log_level(start_server, tmp_path):
    log = tmp_path / "error.log"
    srv = start_server("app:app", "--error-logfile", str(log), "--log-level", "debug",
                       chdir=FEATURES)
    requests.get(srv.url + "/stderr", timeout=5)
    time.sleep(0.2)
    text = log.read_text()
    assert "Booting worker with pid" in text
    assert "message-to-wsgi-errors" in text
    assert srv.stderr() == ""


def _listening_inode(port):
    """The inode of the socket listening on 127.0.0.1:port, from /proc/net/tcp."""
    want = f"0100007F:{port:04X}"
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _socket_inodes(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def test_two_workers_serve_the_same_socket(start_server):
    srv = start_server("app:app", "--workers", "2", "--keep-alive", "60", chdir=PROC_APP_DIR)
    pids = wait_for_workers(srv.proc.pid, 2)
    # One listening socket, the master's, held by both workers.
    listening = _listening_inode(srv.port)
    for pid in pids:
        assert listening in _socket_inodes(pid), f"worker {pid} does not hold the socket"
    # Each client is accepted while every worker already found is busy:
    # two connections to the one port, answered by two different workers.
    clients = clients_on_every_worker(srv.port, 2)
    try:
        assert sorted(clients) == pids
        for pid, client in clients.items():
            status, _, body = client.get("/wsgi")
            assert status == 200
            assert body.split()[:2] == [f"pid={pid}", "multiprocess=True"], body
    finally:
        for client in clients.values():
            client.close()
    assert srv.stderr().count("Booting worker with pid") == 2


def test_expect_100_continue_is_answered_before_the_body_is_sent(features):
    with socket.create_connection(("127.0.0.1", features.port), timeout=5) as s:
        s.sendall(b"POST /input HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        out = b""
        while b"hello" not in out:
            d = s.recv(65536)
            if not d:
                break
            out += d
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b'["hello"]')


def test_an_app_that_raises_gets_500_with_its_traceback_logged_and_the_worker_goes_on(features):
    r = requests.get(features.url + "/raise", timeout=5)
    assert r.status_code == 500
    assert r.headers["Connection"] == "close"
    assert requests.get(features.url + "/reason", timeout=5).status_code == 299
    err = features.stderr()
    assert "Error handling request GET /raise" in err
    assert "Traceback" in err and "RuntimeError: raised before the response started" in err


def test_an_app_that_never_calls_start_response_gets_500(features):
    assert requests.get(features.url + "/no-start-response", timeout=5).status_code == 500
    assert "without calling start_response" in features.stderr()


def test_a_header_with_cr_lf_is_refused_with_500_not_sent(features):
    out = raw_exchange(features.port, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500 ")
    assert b"Injected" not in out
