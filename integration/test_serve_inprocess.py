"""cppgunicorn.serve(app) and friends: a WSGI app object served from the
calling Python process, no fork, driven over real sockets. The servers of
these tests run inside the pytest process (the installed package's
extension module), or in a child Python where the test needs signals or
a clean process to measure. cppgunicorn.run(), which makes the calling
process the master, is tested here too."""
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import APPS, free_port, wait_for_port

import cppgunicorn

HERE = APPS / "inprocess"
sys.path.insert(0, str(HERE))
import apps  # noqa: E402


def child(script, *args, **popen):
    """A child Python running one of the scripts in apps/inprocess."""
    return subprocess.Popen([sys.executable, str(HERE / script), *map(str, args)], cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture(scope="module", params=[1, 4], ids=["threads1", "threads4"])
def flask_server(request):
    """The Flask example served by serve_in_thread() from this process, on
    a port the kernel chose."""
    with cppgunicorn.serve_in_thread(apps.flask_example(), bind="127.0.0.1:0",
                                     threads=request.param) as server:
        yield server
    assert not server.running


def test_port_0_gives_the_bound_port_and_url(flask_server):
    assert flask_server.port > 0
    assert flask_server.address == ("127.0.0.1", flask_server.port)
    assert flask_server.url == f"http://127.0.0.1:{flask_server.port}"
    assert flask_server.running


def test_the_flask_example_is_served_in_process(flask_server):
    r = requests.get(flask_server.url + "/", timeout=5)
    assert r.status_code == 200
    assert '<li data-id="1">teapot: 12.50</li>' in r.text
    assert requests.get(flask_server.url + "/api/items", timeout=5).json()["count"] == 3
    r = requests.post(flask_server.url + "/api/echo", json={"b": 2, "a": 1}, timeout=5)
    assert r.json() == {"received": {"b": 2, "a": 1}, "keys": ["a", "b"], "method": "POST"}
    r = requests.get(flask_server.url + "/stream?n=3", timeout=5)
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.text.splitlines() == [f"line {i} of 3 for /stream" for i in range(3)]
    assert requests.get(flask_server.url + "/tea", timeout=5).status_code == 418


def test_the_flask_example_keeps_a_session_over_keep_alive(flask_server):
    with requests.Session() as s:
        assert s.get(flask_server.url + "/login?name=ada", timeout=5).json() == {"logged_in": "ada"}
        assert s.get(flask_server.url + "/whoami", timeout=5).json() == {"user": "ada"}


def test_threads_4_calls_the_app_on_several_threads_at_once():
    app = apps.Rendezvous(parties=4)
    with cppgunicorn.serve_in_thread(app, threads=4) as server:
        results = []
        clients = [threading.Thread(
            target=lambda: results.append(requests.get(server.url + "/meet", timeout=30).status_code))
            for _ in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
    assert results == [200] * 4
    assert len(app.threads) == 4
    assert app.multithread == [True] * 4
    # None of them is a thread of pytest's: the server's own.
    assert threading.get_ident() not in app.threads


def test_threads_1_calls_the_app_on_one_server_thread():
    app = apps.Rendezvous(parties=1)
    with cppgunicorn.serve_in_thread(app) as server:
        for _ in range(3):
            assert requests.get(server.url + "/meet", timeout=5).status_code == 200
    assert len(app.threads) == 1
    assert app.multithread == [False] * 3
    assert threading.get_ident() not in app.threads


def test_stop_from_another_thread_ends_serve_forever():
    server = cppgunicorn.Server(apps.hello, bind="127.0.0.1:0")
    returned = threading.Event()

    def serve():
        server.serve_forever()
        returned.set()

    caller = threading.Thread(target=serve)
    caller.start()
    deadline = time.monotonic() + 10
    while server.port is None and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.port
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    assert server.stop(timeout=10)
    assert returned.wait(10), "serve_forever() did not return after stop()"
    caller.join()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # stop() again is harmless.
    assert server.stop()


def test_a_graceful_stop_lets_the_request_under_way_finish():
    entered, release = threading.Event(), threading.Event()

    def slow(environ, start_response):
        entered.set()
        release.wait(10)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    server = cppgunicorn.serve_in_thread(slow, threads=2)
    result = {}
    client = threading.Thread(
        target=lambda: result.update(r=requests.get(server.url + "/", timeout=10)))
    client.start()
    assert entered.wait(10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(1.0)  # the stop is under way (a quick stop would cut the request by now)
    release.set()
    client.join()
    stopper.join()
    assert result["r"].status_code == 200 and result["r"].text == "done"
    assert not server.running


def test_a_raising_app_gets_500_and_its_traceback_in_the_error_log(tmp_path):
    errorlog = tmp_path / "error.log"
    with cppgunicorn.serve_in_thread(apps.raising, errorlog=str(errorlog)) as server:
        r = requests.get(server.url + "/", timeout=5)
        assert r.status_code == 500
        # The server goes on serving after it.
        assert requests.get(server.url + "/", timeout=5).status_code == 500
    log = errorlog.read_text()
    assert "Traceback (most recent call last)" in log
    assert "LookupError: the in-process app failed on purpose" in log
    assert 'in raising' in log


def test_a_bad_setting_value_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="keepalive"):
        cppgunicorn.Server(apps.hello, keepalive="soon")
    with pytest.raises(ValueError, match="limit_request_line"):
        cppgunicorn.Server(apps.hello, limit_request_line=-3)
    with pytest.raises(ValueError, match="threads"):
        cppgunicorn.Server(apps.hello, threads=0)


def test_settings_that_need_worker_processes_are_refused_at_start():
    for name, value in [("workers", 2), ("daemon", True), ("reload", True),
                        ("max_requests", 100), ("user", "nobody")]:
        server = cppgunicorn.Server(apps.hello, bind="127.0.0.1:0", **{name: value})
        with pytest.raises(ValueError, match=name):
            server.start()
        assert not server.running


def test_an_unknown_setting_is_a_type_error_with_a_suggestion():
    with pytest.raises(TypeError, match="keep_alive.*did you mean 'keepalive'"):
        cppgunicorn.Server(apps.hello, keep_alive=5)


def test_a_hook_function_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="post_request"):
        cppgunicorn.Server(apps.hello, post_request=lambda *a: None)


def test_an_app_that_is_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match="WSGI callable"):
        cppgunicorn.Server("app:app")


def test_a_busy_port_raises_os_error_from_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = cppgunicorn.Server(apps.hello, bind=f"127.0.0.1:{port}")
        with pytest.raises(OSError):
            server.start()
        assert not server.running


def test_keyword_settings_are_honoured():
    # keepalive=0 (gunicorn's meaning: no keep-alive) closes after each response.
    with cppgunicorn.serve_in_thread(apps.hello, keepalive=0) as server:
        r = requests.get(server.url + "/", timeout=5)
        assert r.headers["Connection"] == "close"


@pytest.mark.parametrize("threads", [1, 4])
def test_ctrl_c_returns_from_serve(threads):
    port = free_port()
    proc = child("serve_until_interrupted.py", port, threads)
    try:
        assert wait_for_port(port, proc), proc.communicate(timeout=5)
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert r.text == f"hello from pid {proc.pid}\n"  # this process, no fork
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["serving", "serve() returned"], err
    assert "Traceback" not in err, err


@pytest.mark.parametrize("threads", [1, 4])
def test_serve_in_a_process_whose_other_threads_are_busy(threads):
    port = free_port()
    proc = child("busy_process.py", port, threads)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["requests"] == 200 and report["statuses"] == [200], report
    # Every counting thread went on counting while requests were served:
    # neither the thread in serve() nor the server holds the GIL for long.
    assert all(n > 0 for n in report["counted"]), report
    assert report["counters_alive"] == 3, report


def test_100_start_stop_cycles_leak_no_descriptors_threads_or_memory():
    proc = child("start_stop_cycles.py", 100)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out.splitlines()[-1])
    warm, end = report["warm"], report["end"]
    assert end["fds"] == warm["fds"], report
    assert end["threads"] == warm["threads"], report
    # A leaked loop, listener, pool or read buffer per cycle would be
    # hundreds of KiB each time; allocator noise is far below 4 MiB.
    assert end["rss_kib"] - warm["rss_kib"] < 4096, report


def test_run_makes_the_calling_process_the_master(tmp_path):
    port = free_port()
    code = ("import sys, cppgunicorn; "
            "sys.exit(cppgunicorn.run(['--bind', '127.0.0.1:%d', '--chdir', %r, 'apps:hello']))"
            % (port, str(HERE)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port(port, proc), proc.communicate(timeout=5)
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        # The app runs in a worker forked from the calling process.
        worker = int(r.text.split()[-1])
        assert worker != proc.pid
        assert open(f"/proc/{worker}/stat").read().split(") ")[1].split()[1] == str(proc.pid)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"Listening at: http://127.0.0.1:{port} ({proc.pid})" in err


def test_run_returns_the_exit_status_of_bad_arguments():
    code = "import sys, cppgunicorn; sys.exit(cppgunicorn.run(['--workers', 'many', 'x:app']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "--workers" in proc.stderr
