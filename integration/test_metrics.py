"""/metrics and /healthz, served by the master on --metrics-bind, and
--max-worker-memory. Scrapes are parsed with the Prometheus client's own
text parser (prometheus_client.parser); request counts are checked against
the access log, line for line."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import APPS, free_port, server_binary
from proc_tools import wait_for_workers, wait_until

APP_DIR = APPS / "metrics"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def start_with_metrics(start_server, *flags, **extra):
    mport = free_port()
    srv = start_server("app:application", "--metrics-bind", f"127.0.0.1:{mport}", *flags,
                       chdir=APP_DIR, **extra)
    srv.metrics_url = f"http://127.0.0.1:{mport}"
    srv.metrics_port = mport
    if extra.get("wait", True):
        # The listener accepts as soon as the master binds it; a worker
        # serves only once it has imported the app.
        wait_until(lambda: _status_or_none(srv.metrics_url + "/healthz") == 200,
                   what="a worker serving")
    return srv


def scrape(srv):
    """{sample name: {frozenset(labels.items()): value}} from one scrape,
    parsed by prometheus_client; also checks the response's content type."""
    r = requests.get(srv.metrics_url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def total(samples, name, **labels):
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if want <= set(k))


def access_lines(path):
    text = path.read_text() if path.exists() else ""
    return [line for line in text.splitlines() if line.strip()]


LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) [^"]*" (?P<status>\d{3}) ')


def wait_for_quiet(srv):
    """Until no request is in flight and the counters stopped moving."""
    last = [None]

    def settled():
        s = scrape(srv)
        now = total(s, "cppgunicorn_requests_total")
        done = total(s, "cppgunicorn_requests_in_flight") == 0 and now == last[0]
        last[0] = now
        return s if done else None

    return wait_until(settled, timeout=20, interval=0.3, what="requests to settle")


def test_requests_counted_exactly_as_the_access_log_lines_across_kill_9_and_hup(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_with_metrics(start_server, "--workers", "2", "--access-logfile", str(log))
    master = srv.proc.pid
    first_workers = wait_for_workers(master, 2)
    stop = threading.Event()
    scrapes = []

    def load(seed):
        i = seed
        session = requests.Session()
        while not stop.is_set():
            i += 1
            method = METHODS[i % len(METHODS)]
            path = ("/", "/status/404", "/status/302", "/boom", "/status/201")[i % 5]
            try:
                session.request(method, f"{srv.url}{path}", data=b"x" * (i % 3), timeout=10,
                                allow_redirects=False)
            except requests.RequestException:
                session = requests.Session()  # its worker was killed mid-request

    def scraper():
        while not stop.is_set():
            scrapes.append(scrape(srv))
            time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=scraper))
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        os.kill(first_workers[0], signal.SIGKILL)
        wait_until(lambda: first_workers[0] not in wait_for_workers(master, 2), what="a new worker")
        time.sleep(1.0)
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: not set(wait_for_workers(master, 2)) & set(first_workers), what="HUP")
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    final = wait_for_quiet(srv)

    lines = access_lines(log)
    assert len(lines) > 100
    assert total(final, "cppgunicorn_requests_total") == len(lines)
    parsed = [LOG_LINE.search(line) for line in lines]
    assert all(parsed)
    for method in METHODS:
        in_log = sum(1 for m in parsed if m["method"] == method)
        assert total(final, "cppgunicorn_requests_total", method=method) == in_log, method
    for status in ("2xx", "3xx", "4xx", "5xx"):
        in_log = sum(1 for m in parsed if m["status"][0] == status[0])
        assert total(final, "cppgunicorn_requests_total", status=status) == in_log, status
    # Every /boom is a 500 the app raised; nothing else is.
    assert total(final, "cppgunicorn_app_errors_total") == total(
        final, "cppgunicorn_requests_total", status="5xx")
    # The histogram counts the same requests.
    assert total(final, "cppgunicorn_request_duration_seconds_count") == len(lines)
    # The kill and the reload, by cause.
    assert total(final, "cppgunicorn_worker_exits_total", cause="signal") == 1
    assert total(final, "cppgunicorn_worker_exits_total", cause="stopped") == 2
    assert total(final, "cppgunicorn_worker_restarts_total") == 1
    assert total(final, "cppgunicorn_worker_boots_total") == 5
    assert total(final, "cppgunicorn_workers") == 2
    # Counters never went backwards, whatever died in between.
    counts = [total(s, "cppgunicorn_requests_total") for s in scrapes]
    assert len(counts) > 10
    assert counts == sorted(counts)


def test_histogram_buckets_are_cumulative_and_match_the_durations(start_server):
    srv = start_with_metrics(start_server, "--metrics-buckets", "0.1,0.25,1", "--threads", "4")
    for _ in range(3):
        requests.get(srv.url + "/", timeout=10)
    requests.get(srv.url + "/slow?s=0.3", timeout=10)
    s = wait_for_quiet(srv)
    buckets = {dict(k)["le"]: v for k, v in s["cppgunicorn_request_duration_seconds_bucket"].items()}
    assert list(buckets) == ["0.1", "0.25", "1", "+Inf"]
    assert buckets["0.1"] == 3 and buckets["0.25"] == 3  # the slow one is past 0.25 s
    assert buckets["1"] == 4 and buckets["+Inf"] == 4
    assert total(s, "cppgunicorn_request_duration_seconds_count") == 4
    assert 0.3 <= total(s, "cppgunicorn_request_duration_seconds_sum") < 1.3


def test_healthz_is_503_until_a_worker_serves_and_while_stopping(start_server):
    # The app takes 2 s to import: no worker serves until then.
    srv = start_with_metrics(start_server, "--graceful-timeout", "20",
                             env={"METRICS_APP_IMPORT_DELAY": "2"}, wait=False)
    health = srv.metrics_url + "/healthz"
    first = wait_until(lambda: _status_or_none(health), what="the metrics port")
    assert first == 503
    assert wait_until(lambda: _status_or_none(health) == 200, what="a worker serving")
    assert requests.get(srv.url + "/", timeout=10).text == "hello\n"
    # A graceful stop with a request in flight: the master waits for it and
    # says 503 meanwhile, without asking the app.
    slow = threading.Thread(target=lambda: requests.get(srv.url + "/slow?s=3", timeout=20))
    slow.start()
    wait_until(lambda: total(scrape(srv), "cppgunicorn_requests_in_flight") == 1, what="in flight")
    srv.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: _status_or_none(health) == 503, what="503 while stopping")
    body = requests.get(health, timeout=5).text
    assert body == "stopping\n"
    slow.join(20)
    assert srv.proc.wait(20) == 0


def _status_or_none(url):
    try:
        return requests.get(url, timeout=2).status_code
    except requests.ConnectionError:
        return None


def test_parser_rejections_counted_by_reason(start_server):
    srv = start_with_metrics(start_server, "--limit-request-line", "100")
    bad = [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "invalid_header"),
        (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n", "request_line_too_long"),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "invalid_header"),
        (b"GET / HTTP/3.0\r\n\r\n", "version_not_supported"),
    ]
    for raw, _ in bad:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(raw)
            assert s.recv(4096).startswith(b"HTTP/1.1 ")
    s = scrape(srv)
    assert total(s, "cppgunicorn_parse_errors_total", reason="invalid_header") == 2
    assert total(s, "cppgunicorn_parse_errors_total", reason="request_line_too_long") == 1
    assert total(s, "cppgunicorn_parse_errors_total") == len(bad)
    assert total(s, "cppgunicorn_requests_total") == 0  # refused, not answered by the app


def test_app_exceptions_counted(start_server):
    srv = start_with_metrics(start_server)
    for _ in range(3):
        assert requests.get(srv.url + "/boom", timeout=10).status_code == 500
    requests.get(srv.url + "/", timeout=10)
    s = wait_for_quiet(srv)
    assert total(s, "cppgunicorn_app_errors_total") == 3
    assert total(s, "cppgunicorn_requests_total", method="GET", status="5xx") == 3
    assert total(s, "cppgunicorn_requests_total", method="GET", status="2xx") == 1


def test_static_responses_counted_in_flight_and_told_apart_from_the_app(start_server, tmp_path):
    pub = tmp_path / "public"
    pub.mkdir()
    (pub / "site.css").write_bytes(b"body { color: #123; }\n" * 20)
    (pub / "big.bin").write_bytes(b"\0" * (32 << 20))  # past any socket buffer
    log = tmp_path / "access.log"
    srv = start_with_metrics(start_server, "--threads", "4", "--static-map", f"/static={pub}",
                             "--access-logfile", str(log),
                             "--access-logformat", '%(x)s %(h)s "%(r)s" %(s)s %(b)s')
    # An app request held in flight while static ones come and go: the
    # gauge must still say 1 (a static answer is started, then answered).
    slow = threading.Thread(target=requests.get, args=(srv.url + "/slow?s=3",), kwargs={"timeout": 20})
    slow.start()
    wait_until(lambda: total(scrape(srv), "cppgunicorn_requests_in_flight") == 1, what="the slow request")
    css = requests.get(srv.url + "/static/site.css", timeout=10)
    assert css.status_code == 200
    assert requests.get(srv.url + "/static/site.css", headers={"If-None-Match": css.headers["ETag"]},
                        timeout=10).status_code == 304
    assert requests.get(srv.url + "/static/missing.css", timeout=10).status_code == 404
    assert requests.post(srv.url + "/static/site.css", timeout=10).status_code == 405
    assert requests.head(srv.url + "/static/big.bin", timeout=10).status_code == 200
    assert requests.get(srv.url + "/", timeout=10).status_code == 200
    assert total(scrape(srv), "cppgunicorn_requests_in_flight") == 1
    slow.join(20)
    # A large file the client leaves half-way: abandoned, not answered (nor logged).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    final = wait_for_quiet(srv)

    lines = access_lines(log)
    static = [LOG_LINE.search(line) for line in lines if line.startswith("static ")]
    assert len(lines) == 7 and len(static) == 5
    assert total(final, "cppgunicorn_requests_total") == len(lines)
    assert total(final, "cppgunicorn_request_duration_seconds_count") == len(lines)
    assert total(final, "cppgunicorn_static_requests_total") == len(static)
    for status in ("2xx", "3xx", "4xx"):
        in_log = sum(1 for m in static if m["status"][0] == status[0])
        assert total(final, "cppgunicorn_static_requests_total", status=status) == in_log, status
    assert total(final, "cppgunicorn_static_requests_total", status="2xx") == 2
    assert total(final, "cppgunicorn_requests_abandoned_total") == 1
    assert total(final, "cppgunicorn_requests_in_flight") == 0


def test_leaking_worker_replaced_past_max_worker_memory(start_server):
    # The limit: 60 MiB above what a booted worker of this build holds (a
    # sanitizer build holds much more).
    probe = start_with_metrics(start_server)
    requests.get(probe.url + "/", timeout=10)
    booted_mib = int(total(scrape(probe), "cppgunicorn_worker_resident_memory_bytes")) >> 20
    probe.stop()
    limit = booted_mib + 60
    srv = start_with_metrics(start_server, "--max-worker-memory", str(limit))
    first = requests.get(srv.url + "/pid", timeout=10).text
    # 100 MiB kept alive: the master retires this worker at its next tick.
    r = requests.get(srv.url + "/leak?mib=100", timeout=30)
    assert r.status_code == 200  # the request in flight is finished first
    wait_until(lambda: requests.get(srv.url + "/pid", timeout=10).text != first,
               what="a fresh worker")
    s = wait_until(lambda: (lambda s: s if total(
        s, "cppgunicorn_worker_exits_total", cause="max_memory") == 1 else None)(scrape(srv)),
        what="the exit counted")
    assert total(s, "cppgunicorn_worker_restarts_total") == 1
    assert f"past max_worker_memory {limit} MiB" in srv.stderr()
    fresh_rss = total(s, "cppgunicorn_worker_resident_memory_bytes")
    assert 0 < fresh_rss < limit << 20


def test_connections_left_waiting_at_worker_connections_are_counted(start_server):
    srv = start_with_metrics(start_server, "--worker-connections", "1", "--threads", "2")
    busy = threading.Thread(target=lambda: requests.get(srv.url + "/slow?s=1", timeout=20))
    busy.start()
    wait_until(lambda: total(scrape(srv), "cppgunicorn_requests_in_flight") == 1, what="busy")
    assert requests.get(srv.url + "/", timeout=20).text == "hello\n"  # waited its turn
    busy.join(20)
    s = scrape(srv)
    assert total(s, "cppgunicorn_connections_rejected_total") >= 1
    # The two clients, and the start-up probe that found the port open.
    assert total(s, "cppgunicorn_connections_accepted_total") == 3
    # The clients have closed; the worker sees each close when it reads it.
    wait_until(lambda: total(scrape(srv), "cppgunicorn_connections_open") == 0, what="closed")
    assert total(s, "cppgunicorn_listen_queue_max", listener=f"127.0.0.1:{srv.port}") > 0


def test_slow_and_oversized_scrapers_do_not_hold_the_master(start_server):
    srv = start_with_metrics(start_server)
    silent = socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=15)
    silent.sendall(b"GET /metr")  # and nothing more
    # Others are served meanwhile.
    assert requests.get(srv.metrics_url + "/healthz", timeout=5).status_code == 200
    huge = socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=15)
    huge.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
    assert huge.recv(100).startswith(b"HTTP/1.1 431 ")
    # The silent one is dropped at its deadline (5 s).
    t0 = time.monotonic()
    assert silent.recv(100) == b""
    assert time.monotonic() - t0 < 10
    assert requests.get(srv.metrics_url + "/nope", timeout=5).status_code == 404
    assert requests.post(srv.metrics_url + "/metrics", timeout=5).status_code == 405


@pytest.mark.parametrize("flags, message", [
    (["--metrics-bind", "nowhere"], "Invalid value for metrics_bind: 'nowhere'"),
    (["--metrics-bind", "127.0.0.1:70000"], "Invalid value for metrics_bind: '127.0.0.1:70000'"),
    (["--metrics-bind", "unix:/tmp/m.sock"], "Invalid value for metrics_bind: 'unix:/tmp/m.sock'"),
    (["--metrics-buckets", "0.5,0.1"], "Invalid value for metrics_buckets: '0.5,0.1' (the bounds must increase)"),
    (["--metrics-buckets", "fast"], "Invalid value for metrics_buckets: 'fast'"),
    (["--metrics-buckets", "0,1"], "Invalid value for metrics_buckets: '0,1'"),
    (["--max-worker-memory", "-5"], "Invalid value for max_worker_memory: '-5'"),
    (["--max-worker-memory", "lots"], "argument --max-worker-memory: invalid int value: 'lots'"),
])
def test_bad_metrics_settings_refused(flags, message):
    r = subprocess.run([server_binary(), *flags, "--chdir", str(APP_DIR), "app:application"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode in (1, 2)
    assert message in r.stderr


def test_metrics_bind_in_use_refused_at_start(start_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}", "--metrics-bind",
                            f"127.0.0.1:{port}", "--chdir", str(APP_DIR), "app:application"],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"Invalid value for metrics_bind: '127.0.0.1:{port}'" in r.stderr


@pytest.mark.parametrize("name, text", [
    ("conf.toml", 'metrics_bind = "127.0.0.1:{port}"\nmetrics_buckets = [0.05, 0.5]\n'),
    ("gunicorn.conf.py", 'metrics_bind = "127.0.0.1:{port}"\nmetrics_buckets = [0.05, 0.5]\n'),
])
def test_metrics_settings_from_a_config_file(start_server, tmp_path, name, text):
    mport = free_port()
    conf = tmp_path / name
    conf.write_text(text.format(port=mport))
    srv = start_server("app:application", "-c", str(conf), chdir=APP_DIR)
    srv.metrics_url = f"http://127.0.0.1:{mport}"
    requests.get(srv.url + "/", timeout=10)
    s = wait_for_quiet(srv)
    les = [dict(k)["le"] for k in s["cppgunicorn_request_duration_seconds_bucket"]]
    assert les == ["0.05", "0.5", "+Inf"]
