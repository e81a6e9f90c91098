"""-k gevent and -k eventlet: the app runs in greenlets on the worker's hub,
sockets and time.sleep patched, up to --worker-connections requests at
once per worker (gunicorn's GeventWorker meaning)."""
import http.server
import json
import socket
import threading
import time

import pytest
import requests

from conftest import APPS
from test_threads import run_concurrently

GREEN_APP = APPS / "green"
BACKENDS = ["gevent", "eventlet"]


def get_json(srv, path, timeout=15):
    r = requests.get(srv.url + path, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def start_green(start_server, backend, *flags, app="app:app"):
    return start_server(app, "-k", backend, "--workers", "1", *flags, chdir=GREEN_APP)


def timed_concurrently(srv, paths):
    """GETs every path at once (one client thread each); returns the
    responses' JSON and the wall time from first send to last answer."""
    start = time.monotonic()
    results = run_concurrently(lambda p: get_json(srv, p, timeout=30), [(p,) for p in paths])
    return results, time.monotonic() - start


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["time", "native"])
def test_fifty_one_second_sleeps_finish_within_two_seconds_on_one_worker(
        start_server, backend, how):
    # time.sleep is patched by the worker; gevent.sleep / eventlet.sleep
    # are the hub's own.
    how = backend if how == "native" else how
    srv = start_green(start_server, backend)
    get_json(srv, "/stats?reset=1")
    results, elapsed = timed_concurrently(srv, [f"/sleep?t=1&how={how}"] * 50)
    assert all(r == {"slept": "1"} for r in results)
    assert elapsed < 2.0, f"50 x sleep(1) took {elapsed:.2f} s"
    stats = get_json(srv, "/stats")
    assert stats["max_inflight"] == 50


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_worker_patches_sockets_and_time_before_loading_the_app(start_server, backend):
    srv = start_green(start_server, backend)
    env = get_json(srv, "/environ")
    assert backend in env["patched"]["time.sleep"]
    assert backend in env["patched"]["socket"]
    # gunicorn's async workers say so too.
    assert env["multithread"] is True


class SlowUpstream:
    """A local HTTP server that answers every request after `delay` s, one
    thread per request."""

    def __init__(self, delay):
        outer = self
        self.delay = delay
        self.count = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.count += 1
                time.sleep(outer.delay)
                body = b"slow " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # socketserver's 5 would make clients retry SYNs

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_upstream():
    upstream = SlowUpstream(1.0)
    yield upstream
    upstream.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("app", ["app:app", "patched_{backend}:app"])
def test_outbound_http_from_many_requests_at_once_takes_about_one_delay(
        start_server, slow_upstream, backend, app):
    # urllib's sockets are the patched ones: 30 requests that each wait 1 s
    # for an upstream answer wait together. The second app patches again
    # at import, as gevent and eventlet apps usually do.
    srv = start_green(start_server, backend, app=app.format(backend=backend))
    paths = [f"/fetch?url={slow_upstream.url}/item{i}" for i in range(30)]
    results, elapsed = timed_concurrently(srv, paths)
    assert [r["upstream"] for r in results] == [f"slow /item{i}" for i in range(30)]
    assert slow_upstream.count == 30
    assert elapsed < 2.5, f"30 upstream calls of 1 s took {elapsed:.2f} s"


@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_beyond_worker_connections_wait_their_turn(start_server, backend):
    srv = start_green(start_server, backend, "--worker-connections", "5")
    get_json(srv, "/stats?reset=1")
    results, _ = timed_concurrently(srv, ["/sleep?t=0.5"] * 20)
    assert len(results) == 20 and all(r == {"slept": "0.5"} for r in results)
    assert get_json(srv, "/stats")["max_inflight"] == 5


@pytest.mark.parametrize("flags, expected", [
    ([], 1),                                # sync: one call at a time
    (["-k", "gthread", "--threads", "3"], 3),  # gthread: N threads
])
def test_sync_still_serialises_and_gthread_still_gives_n(start_server, flags, expected):
    srv = start_server("app:app", "--workers", "1", *flags, chdir=GREEN_APP)
    get_json(srv, "/stats?reset=1")
    results, _ = timed_concurrently(srv, ["/sleep?t=0.3"] * 6)
    assert len(results) == 6
    assert get_json(srv, "/stats")["max_inflight"] == expected
    env = get_json(srv, "/environ")
    assert env["patched"]["time.sleep"] == "time"
    assert env["multithread"] is (expected > 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_streamed_response_arrives_chunk_by_chunk(start_server, backend):
    srv = start_green(start_server, backend)
    with requests.get(srv.url + "/stream?n=3&t=0.3", stream=True, timeout=15) as r:
        assert r.status_code == 200
        assert r.headers["Transfer-Encoding"] == "chunked"
        arrivals = []
        for line in r.iter_lines():
            arrivals.append((line, time.monotonic()))
    assert [a[0] for a in arrivals] == [b"chunk 0", b"chunk 1", b"chunk 2"]
    # The first chunk came before the generator slept.
    assert arrivals[1][1] - arrivals[0][1] >= 0.2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_response_to_a_slow_reader_and_a_request_body(start_server, backend):
    srv = start_green(start_server, backend)
    body = bytes(range(256)) * 8192  # 2 MiB: past the channel's 256 KiB
    r = requests.post(srv.url + "/echo", data=body, timeout=15)
    assert r.status_code == 200 and r.content == body
    # A client that reads 4 MB slowly: the greenlet parks while the
    # channel is full, and the others go on.
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    slow.sendall(b"GET /big?n=1000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    assert get_json(srv, "/sleep?t=0.1") == {"slept": "0.1"}
    received = 0
    while received < 4_000_000:
        data = slow.recv(1 << 20)
        assert data
        received += len(data)
        time.sleep(0.01)
    slow.close()
    assert received >= 4_000_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_app_that_raises_gets_a_500_and_a_logged_traceback(start_server, backend):
    srv = start_green(start_server, backend)
    r = requests.get(srv.url + "/raise", timeout=10)
    assert r.status_code == 500
    assert get_json(srv, "/sleep?t=0.01") == {"slept": "0.01"}
    deadline = time.monotonic() + 5
    while "boom from the green app" not in srv.stderr():
        assert time.monotonic() < deadline, srv.stderr()
        time.sleep(0.05)
    assert "Traceback" in srv.stderr() and "RuntimeError" in srv.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_greenlet_that_holds_the_hub_past_timeout_gets_the_worker_killed(
        start_server, backend):
    srv = start_green(start_server, backend, "--timeout", "2")
    pid = get_json(srv, "/stats")["pid"]
    stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    stuck.sendall(b"GET /busy?t=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert stuck.recv(100) == b""
    stuck.close()
    deadline = time.monotonic() + 10
    while "WORKER TIMEOUT" not in srv.stderr():
        assert time.monotonic() < deadline, srv.stderr()
        time.sleep(0.05)
    assert f"WORKER TIMEOUT (pid:{pid}) while serving GET /busy?t=60" in srv.stderr()
    # The replacement serves.
    deadline = time.monotonic() + 10
    while True:
        try:
            new_pid = get_json(srv, "/stats", timeout=2)["pid"]
            break
        except requests.RequestException:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert new_pid != pid


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_greenlet_that_waits_cooperatively_past_timeout_is_not_killed(start_server, backend):
    # gunicorn's gevent worker: a request may sleep (a long poll) as long
    # as the hub runs; only a hub held by one greenlet is a stuck worker.
    srv = start_green(start_server, backend, "--timeout", "2")
    pid = get_json(srv, "/stats")["pid"]
    assert get_json(srv, f"/sleep?t=4&how={backend}") == {"slept": "4"}
    assert get_json(srv, "/stats")["pid"] == pid
    assert "WORKER TIMEOUT" not in srv.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_background_greenlets_run_after_the_response(start_server, backend):
    srv = start_green(start_server, backend)
    assert get_json(srv, "/spawn?t=0.2&v=later") == {"spawned": True}
    deadline = time.monotonic() + 5
    while get_json(srv, "/stats")["background"] != ["later"]:
        assert time.monotonic() < deadline, "the background greenlet never ran"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_threading_local_is_per_request(start_server, backend):
    srv = start_green(start_server, backend)
    results, _ = timed_concurrently(srv, [f"/local?v={i}&how={backend}" for i in range(10)])
    assert [r["value"] for r in results] == [str(i) for i in range(10)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_lets_sleeping_requests_finish(start_server, backend):
    srv = start_green(start_server, backend)
    get_json(srv, "/stats")  # the worker has booted
    out = []
    threads = [threading.Thread(target=lambda: out.append(
        requests.get(srv.url + "/sleep?t=1", timeout=15).json())) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.4)
    srv.proc.send_signal(15)
    for t in threads:
        t.join(15)
    assert out == [{"slept": "1"}] * 5
    assert srv.wait(10) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_requests_restarts_the_worker_and_keeps_serving(start_server, backend):
    srv = start_green(start_server, backend, "--max-requests", "5")
    pids = {get_json(srv, "/stats")["pid"] for _ in range(12)}
    assert len(pids) >= 2
    assert "Autorestarting worker after current request." in srv.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_preload_patches_in_the_worker_after_fork(start_server, backend):
    # As gunicorn: the master imports the app unpatched; each worker
    # patches after fork. time.sleep is looked up per call, so it is the
    # green one by then.
    srv = start_green(start_server, backend, "--preload")
    get_json(srv, "/stats?reset=1")
    results, _ = timed_concurrently(srv, ["/sleep?t=1"] * 20)
    assert len(results) == 20
    assert get_json(srv, "/stats")["max_inflight"] == 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_access_log_lines_for_green_requests(start_server, backend):
    srv = start_green(start_server, backend, "--access-logfile", "-")
    timed_concurrently(srv, ["/sleep?t=0.2"] * 3)
    deadline = time.monotonic() + 5
    while srv.stdout().count('"GET /sleep?t=0.2 HTTP/1.1" 200') < 3:
        assert time.monotonic() < deadline, srv.stdout()
        time.sleep(0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_body_still_arriving_parks_its_greenlet_and_others_are_served(
        start_server, backend):
    # --no-request-buffering: the app reads wsgi.input while the client is
    # still sending. That read must wait on the hub like any patched I/O,
    # or every other greenlet of the worker stops with it.
    srv = start_green(start_server, backend, "--no-request-buffering")
    host, port = srv.url.split("//")[1].split(":")
    slow = socket.create_connection((host, int(port)), timeout=20)
    try:
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                     b"Connection: close\r\n\r\nhello")
        time.sleep(0.3)  # the app is called and is waiting for the rest
        # Served while the first request still waits for its body.
        assert get_json(srv, "/environ", timeout=10)["multithread"] is True
        slow.sendall(b"world")
        data = b""
        while True:
            chunk = slow.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        slow.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert data.endswith(b"helloworld")
