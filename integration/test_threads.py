"""--threads N > 1: N Python threads call the app while the loop thread
does the socket I/O (gunicorn's gthread meaning)."""
import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import APPS
from test_http_connection import RawClient

THREADS_APP = APPS / "threads"


@pytest.fixture
def threaded(start_server):
    return start_server("app:app", "--threads", "4", chdir=THREADS_APP)


def get_json(srv, path, timeout=10):
    r = requests.get(srv.url + path, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def run_concurrently(fn, args_list):
    """Runs fn(*args) on one client thread each; returns results in order."""
    results = [None] * len(args_list)
    errors = []

    def run(i, args):
        try:
            results[i] = fn(*args)
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    return results


def worker_pid(srv):
    return get_json(srv, "/stats")["pid"]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_four_threads_serve_four_requests_at_once(threaded):
    # Each call waits (up to 10 s) until four are in flight together.
    results = run_concurrently(lambda: get_json(threaded, "/gather?n=4&limit=10", timeout=20),
                               [()] * 4)
    assert all(r["max"] == 4 for r in results), results
    assert get_json(threaded, "/stats")["max"] == 4


def test_one_thread_serves_one_request_at_a_time(start_server):
    # Buffered: the loop thread (the main one) calls the app; streamed
    # request bodies use a pool of one thread instead.
    srv = start_server("app:app", "--threads", "1", "--request-buffering", chdir=THREADS_APP)
    run_concurrently(lambda: get_json(srv, "/gather?n=2&limit=0.3"), [()] * 2)
    assert get_json(srv, "/stats")["max"] == 1
    env = get_json(srv, "/environ")
    assert env["multithread"] is False and env["main_thread"] is True


def test_environ_says_multithread_and_app_runs_off_the_main_thread(threaded):
    env = get_json(threaded, "/environ")
    assert env["multithread"] is True
    assert env["main_thread"] is False


def test_threading_local_is_per_thread_and_lasts_across_requests(threaded):
    # Rounds of four calls that are in the app together (each waits for
    # the other three): the four pool threads serve one call each per
    # round, and each keeps its own threading.local through the overlap
    # and from one round to the next.
    rounds = 5
    history = {}  # thread -> its calls' answers, round by round
    for rnd in range(1, rounds + 1):
        tags = [f"r{rnd}c{i}" for i in range(4)]
        answers = run_concurrently(
            # Each call waits at most 10 s for the others: calls served one
            # after the other still all get an answer, saying so.
            lambda tag: get_json(threaded, f"/local-round?n=4&round={rnd}&tag={tag}&limit=10",
                                 timeout=60),
            [(tag,) for tag in tags])
        for tag, a in zip(tags, answers):
            assert a["together"] == 4, f"round {rnd}: the calls did not overlap: {answers}"
            # Another thread's call, running meanwhile, did not touch it.
            assert a["tag_after"] == tag and a["count_after"] == a["count"], answers
            history.setdefault(a["thread"], []).append(a)
        assert len({a["thread"] for a in answers}) == 4, answers
    assert len(history) == 4, history
    for thread, calls in history.items():
        # Each thread's own count went 1, 2, ... and its first call's tag
        # is still there: the state lasted across requests.
        assert [a["count"] for a in calls] == list(range(1, rounds + 1)), history
        assert len({a["first_tag"] for a in calls}) == 1, history
        assert calls[0]["first_tag"] == calls[0]["tag_after"], history


def test_pipelined_requests_answered_in_order(threaded):
    c = RawClient(threaded.port, timeout=10)
    # The first is the slowest: a pool that answered out of order would
    # send the others first.
    c.send(b"GET /path?id=1&t=0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /path?id=2 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /path?id=3&t=0.1 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /path?id=4 HTTP/1.1\r\nHost: x\r\n\r\n")
    ids = []
    for _ in range(4):
        status, headers, body = c.response()
        assert status.startswith("HTTP/1.1 200")
        ids.append(json.loads(body)["id"])
    assert ids == ["1", "2", "3", "4"]
    # Still keep-alive afterwards.
    c.send(b"GET /path?id=5 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert json.loads(c.response()[2])["id"] == "5"
    c.close()


def test_app_raising_on_a_thread_gives_500_and_next_request_succeeds(threaded):
    r = requests.get(threaded.url + "/raise", timeout=10)
    assert r.status_code == 500
    assert r.headers["Connection"] == "close"
    assert get_json(threaded, "/environ")["multithread"] is True
    assert "RuntimeError: failure before start_response on a thread" in threaded.stderr()


def test_app_raising_mid_body_on_a_thread_cuts_the_response(threaded):
    c = RawClient(threaded.port, timeout=10)
    c.send(b"GET /raise_in_body HTTP/1.1\r\nHost: x\r\n\r\n")
    data = c.read_to_close()
    assert data.startswith(b"HTTP/1.1 200")
    assert b"first chunk" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client sees it failed
    c.close()
    assert get_json(threaded, "/environ")["multithread"] is True


def test_streaming_to_a_slow_reader_keeps_worker_memory_bounded(threaded):
    pid = worker_pid(threaded)
    before = rss_kib(pid)
    chunks, size = 3200, 65536  # 200 MiB, far more than the bound
    sock = socket.create_connection(("127.0.0.1", threaded.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET /big?chunks={chunks}&size={size} HTTP/1.1\r\nHost: x\r\n"
                 f"Connection: close\r\n\r\n".encode())
    got = sock.recv(65536)
    # Stop reading: an unbounded server would now buffer the whole body
    # (the generator produces it in well under a second).
    peak = 0
    for _ in range(10):
        time.sleep(0.1)
        peak = max(peak, rss_kib(pid))
    assert peak - before < 48 * 1024, (before, peak)
    total = len(got)
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        total += len(data)
    sock.close()
    assert total > chunks * size  # the whole body arrived (chunked framing on top)
    assert get_json(threaded, "/stats")["inflight"] == 0


def test_client_leaving_mid_response_frees_the_thread(threaded):
    # More abandoned endless responses than threads: each must be closed
    # (its close() called) and its thread freed for the next.
    for i in range(6):
        c = RawClient(threaded.port, timeout=10)
        c.send(f"GET /endless?id=e{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        c._fill()
        c.close()
        deadline = time.monotonic() + 10
        while f"e{i}" not in get_json(threaded, "/stats")["closed"]:
            assert time.monotonic() < deadline, "close() was not called"
            time.sleep(0.05)
    assert get_json(threaded, "/environ")["multithread"] is True


def test_sigterm_waits_for_requests_in_flight_on_threads(start_server):
    srv = start_server("app:app", "--threads", "4", "--graceful-timeout", "20",
                       chdir=THREADS_APP)
    results = {}

    def call(i):
        r = requests.get(f"{srv.url}/sleep?t=1.5&id={i}", timeout=20)
        results[i] = (r.status_code, r.json())

    clients = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 10
    while get_json(srv, "/stats")["inflight"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGTERM)
    for t in clients:
        t.join(timeout=20)
    assert srv.wait(timeout=20) == 0
    assert sorted(results) == [0, 1, 2]
    for i, (status, body) in results.items():
        assert status == 200 and body["id"] == str(i)


def test_app_call_stuck_past_timeout_on_a_thread_aborts_the_worker(start_server):
    srv = start_server("app:app", "--threads", "2", "--timeout", "2", chdir=THREADS_APP)
    pid = worker_pid(srv)
    stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    stuck.sendall(b"GET /stuck?t=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    # Meanwhile the loop and the other thread go on serving.
    time.sleep(0.5)
    assert get_json(srv, "/environ")["multithread"] is True
    # The worker dies: the stuck connection closes without an answer.
    assert stuck.recv(100) == b""
    stuck.close()
    deadline = time.monotonic() + 10
    while "WORKER TIMEOUT" not in srv.stderr():
        assert time.monotonic() < deadline, srv.stderr()
        time.sleep(0.05)
    assert f"WORKER TIMEOUT (pid:{pid}) while serving GET /stuck?t=60" in srv.stderr()
    # A new worker takes over.
    deadline = time.monotonic() + 10
    while True:
        try:
            assert get_json(srv, "/stats", timeout=2)["pid"] != pid
            break
        except requests.RequestException:
            assert time.monotonic() < deadline
            time.sleep(0.1)


@pytest.mark.parametrize("threads", ["1", "4"])
def test_iterables_without_close_are_served_without_errors(start_server, threads):
    srv = start_server("app:app", "--threads", threads, chdir=THREADS_APP)
    with requests.Session() as s:
        for _ in range(3):
            assert s.get(srv.url + "/noclose", timeout=10).content == b"no close"
            assert s.get(srv.url + "/list", timeout=10).content == b"a list"
    assert "Error" not in srv.stderr() and "Traceback" not in srv.stderr()


def test_quick_stop_with_a_thread_stuck_in_the_app_exits_promptly(start_server):
    srv = start_server("app:app", "--threads", "2", chdir=THREADS_APP)
    stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    stuck.sendall(b"GET /stuck?t=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 10
    while get_json(srv, "/stats")["inflight"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGINT)
    assert srv.wait(timeout=10) == 0
    assert stuck.recv(100) == b""
    stuck.close()
    assert "Traceback" not in srv.stderr()


@pytest.mark.parametrize("threads", ["1", "4"])
def test_an_apps_own_python_thread_runs_while_the_worker_waits(start_server, threads):
    # The loop thread keeps the GIL across the callbacks of one loop
    # iteration: it must drop it before it waits for I/O, or the app's
    # thread would stop counting between requests.
    srv = start_server("app:app", "--threads", threads, chdir=APPS / "background_thread")
    s = requests.Session()  # keep-alive: the same worker, the same connection
    first = int(s.get(srv.url + "/count", timeout=10).text)
    # No request for 2 s: the worker sits in its poll. The thread wakes
    # every 10 ms, about 200 times; a loop holding the GIL while it waits
    # would let it tick only when a request runs Python (once or twice).
    time.sleep(2)
    second = int(s.get(srv.url + "/count", timeout=10).text)
    assert second - first >= 20, "the app's thread did not run while the worker waited"
