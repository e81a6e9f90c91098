"""gunicorn command lines as they appear in public Dockerfiles and Procfiles,
each started with cppgunicorn and served (one request succeeds), then the
effect of each of its flags that shows from outside within seconds: the
worker count, threads, the access and error logs and their level, a
worker recycled after --max-requests, --preload, --reload, --umask, the
process titles, the pid file, -e, --chdir and --pythonpath, trusted
proxies, keep-alive, StatsD and syslog datagrams, the listen backlog, the
worker heartbeat file, sendfile. A setting whose effect takes minutes to
show (--timeout 120, --graceful-timeout 30) is checked as --print-config
reads it from the same line.

Each line runs from a copy of apps/cmdlines. Addresses are rewritten to
loopback with a free port ($PORT, 0.0.0.0 -> 127.0.0.1), and the StatsD
and syslog servers the lines name to a UDP socket of the test's;
everything else is passed as written (shell-split).
"""
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import APPS, Server, free_port, receive_datagrams, server_binary, wait_for_port
from http_helpers import SyscallTrace
from proc_tools import HttpClient, alive, cmdline, wait_for_workers, wait_until
from proc_tools import workers as workers_of

APP_DIR = APPS / "cmdlines"


class Run:
    """One command line being served: its server, the copy of the app it
    runs from, and requests to it."""

    def __init__(self, srv, args, env, host, port, tmp, app_dir, collector):
        self.srv, self.args, self.env = srv, args, env
        self.host, self.port, self.tmp = host, port, tmp
        self.app_dir, self.collector = app_dir, collector
        self.master = srv.proc.pid
        self.url = f"http://{host}:{port}"

    def json(self, path="/", **kw):
        r = requests.get(self.url + path, timeout=10, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def from_address(self, source, headers):
        """GET / from a given loopback address (the server listens on
        127.0.0.1, which any 127.x.y.z reaches)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(source, 0))
        try:
            conn.request("GET", "/", headers=headers)
            r = conn.getresponse()
            assert r.status == 200
            return json.loads(r.read())
        finally:
            conn.close()


# --------------------------------------------------------------------------
# Checks: each takes the Run; one may return a function to call once the
# server has stopped.

def workers(n):
    def check(run):
        wait_for_workers(run.master, n)
    check.__name__ = f"workers({n})"
    return check


def multithread(flag):
    def check(run):
        assert run.json()["wsgi.multithread"] is flag
    check.__name__ = f"multithread({flag})"
    return check


def green_patched(backend):
    def check(run):
        assert backend in run.json()["socket_module"]
    check.__name__ = f"green_patched({backend})"
    return check


def access_log(run):
    requests.get(run.url + "/?access-check", timeout=10)
    wait_until(lambda: '"GET /?access-check HTTP/1.1" 200 ' in run.srv.stdout(), 15,
               what="the access log line on stdout")


def access_log_format_with_request_time(run):
    requests.get(run.url + "/?format-check", timeout=10,
                 headers={"Referer": "http://ref/", "User-Agent": "ua-check"})
    pattern = (r'127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
               r'"GET /\?format-check HTTP/1\.1" 200 \d+ "http://ref/" "ua-check" \d+\.\d+')

    def line():
        return [l for l in run.srv.stdout().splitlines() if re.fullmatch(pattern, l)]
    wait_until(line, 15, what=f"an access line matching {pattern!r}:\n{run.srv.stdout()}")


def _bad_request(run):
    with socket.create_connection(("127.0.0.1", run.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")


def _logged_error(run, text_of):
    """A request that makes the app raise, and its traceback in the log."""
    assert requests.get(run.url + "/__error", timeout=10).status_code == 500
    wait_until(lambda: "cmdlines app failing on purpose" in text_of(), 15,
               what="the app's traceback in the error log")


def debug_level(run):
    _bad_request(run)
    # gunicorn logs a bad request at WARNING and each request at DEBUG.
    wait_until(lambda: "[WARNING] Invalid request from ip=127.0.0.1" in run.srv.stderr(), 15,
               what="a warning for the bad request")
    requests.get(run.url + "/debug-line", timeout=10)
    wait_until(lambda: "[DEBUG] GET /debug-line" in run.srv.stderr(), 15,
               what="a debug line for the request")


def info_level(run):
    _bad_request(run)
    _logged_error(run, run.srv.stderr)  # logged after the bad request's line would be
    err = run.srv.stderr()
    assert "[INFO] Booting worker with pid" in err and "[DEBUG]" not in err, err


def warning_level_to_the_error_logfile(run):
    log = run.tmp / "error.log"
    _logged_error(run, lambda: log.read_text() if log.exists() else "")
    text = log.read_text()
    assert "[ERROR] Error handling request GET /__error" in text, text
    assert "[INFO]" not in text and "Booting worker" not in run.srv.stderr() + text


def trusted_proxies(from_127_0_0_2):
    """X-Forwarded-Proto is believed from 127.0.0.1 (the default trusts it
    too) and, only when the flag trusts it, from 127.0.0.2."""
    def check(run):
        proto = {"X-Forwarded-Proto": "https"}
        assert run.json(headers=proto)["wsgi.url_scheme"] == "https"
        seen = run.from_address("127.0.0.2", proto)
        assert seen["wsgi.url_scheme"] == ("https" if from_127_0_0_2 else "http"), seen
        assert seen["REMOTE_ADDR"] == "127.0.0.2"
    check.__name__ = f"trusted_proxies({from_127_0_0_2})"
    return check


def env_var(name, value):
    def check(run):
        assert run.json()[name] == value
    check.__name__ = f"env_var({name}={value})"
    return check


def stdout_not_captured(run):
    # --capture-output with the error log on stderr ("-") leaves the app's
    # stdout alone, as gunicorn does: print() reaches the inherited stdout.
    requests.get(run.url + "/__print?printed-by-the-app", timeout=10)
    wait_until(lambda: "printed-by-the-app" in run.srv.stdout(), 15,
               what="the app's print() on stdout")
    assert "printed-by-the-app" not in run.srv.stderr()


def heartbeat_in_dev_shm(run):
    pids = wait_until(lambda: workers_of(run.master), 20, what="a worker")
    for pid in pids:
        # The master's heartbeat page for the worker: a file made there,
        # unlinked, and mapped in both.
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert re.search(r" /dev/shm/cppgunicorn-heartbeat-\w+ \(deleted\)$", maps, re.M), maps
    maps = Path(f"/proc/{run.master}/maps").read_text()
    assert len(re.findall(r" /dev/shm/cppgunicorn-heartbeat-", maps)) >= len(pids)


def max_requests(limit, jitter):
    """The worker is replaced after `limit` to `limit + jitter` requests."""
    def check(run):
        (first,) = wait_for_workers(run.master, 1)
        served = {}
        client = None
        deadline = time.monotonic() + 120
        while len(served) < 2:
            assert time.monotonic() < deadline, served
            if client is None or client.closed:
                if client is not None:
                    client.close()
                client = HttpClient(run.port)
            try:
                status, _, body = client.get("/")
            except OSError:
                client.close()
                client = None
                continue
            assert status == 200
            pid = json.loads(body)["pid"]
            served[pid] = served.get(pid, 0) + 1
            assert served.get(first, 0) <= limit + jitter, served
        client.close()
        assert limit <= served[first] <= limit + jitter, served
        wait_until(lambda: not alive(first), 20, what=f"the retired worker {first} to exit")
    check.__name__ = f"max_requests({limit}, {jitter})"
    return check


def preloaded(run):
    pids = wait_for_workers(run.master, 2)
    body = run.json()
    assert body["imported_by"] == run.master and body["pid"] in pids, body


def reload_on_change(run):
    before = run.json()
    assert before["version"] == "1" and before["imported_by"] == before["pid"]
    time.sleep(1.1)  # a new modification time, whatever the file system's grain
    app = run.app_dir / "app.py"
    app.write_text(app.read_text().replace('VERSION = "1"', 'VERSION = "2"'))

    def reloaded():
        try:
            return run.json()["version"] == "2"
        except (requests.RequestException, AssertionError):
            return False
    wait_until(reloaded, 30, interval=0.2, what="the changed app to be served")
    assert run.json()["pid"] != before["pid"], "the worker was not restarted"


def statsd(prefix):
    def check(run):
        requests.get(run.url + "/", timeout=10)
        want = f"{prefix}.gunicorn.requests:1|c|@1.0"
        got = receive_datagrams(run.collector, lambda g: want in g, timeout=15)
        assert want in got, got
    check.__name__ = f"statsd({prefix})"
    return check


def syslog(prefix):
    def check(run):
        requests.get(run.url + "/?syslog-check", timeout=10)
        got = receive_datagrams(run.collector, lambda g: any(
            f"gunicorn.{prefix}.access:" in m and "GET /?syslog-check" in m for m in g),
            timeout=15)
        assert any(re.match(rf"<\d+>gunicorn\.{prefix}\.error: \[\d+\] Booting worker", m)
                   for m in got), got
        assert any(f"gunicorn.{prefix}.access:" in m for m in got), got
    check.__name__ = f"syslog({prefix})"
    return check


def keep_alive_closes_after(seconds):
    """An idle connection is closed after about `seconds` (the default is 2)."""
    def check(run):
        client = HttpClient(run.port)
        client.get("/")
        served = time.monotonic()
        client.sock.settimeout(seconds + 30)
        try:
            closed = client.sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        idle = time.monotonic() - served
        client.close()
        assert closed and seconds - 1.5 <= idle <= seconds + 25, idle
    check.__name__ = f"keep_alive_closes_after({seconds})"
    return check


def keep_alive_holds(seconds):
    """An idle connection still serves after `seconds` (the default 2 would
    have closed it)."""
    def check(run):
        client = HttpClient(run.port)
        client.get("/")
        time.sleep(seconds)
        status, _, _ = client.get("/")
        client.close()
        assert status == 200
    check.__name__ = f"keep_alive_holds({seconds})"
    return check


def chdir_to(sub):
    def check(run):
        text = requests.get(run.url + "/", timeout=10).text
        assert f"cwd={run.app_dir / sub}" in text.split(), text
    check.__name__ = f"chdir_to({sub})"
    return check


def imported_from_pythonpath(run):
    words = requests.get(run.url + "/", timeout=10).text.split()
    assert f"cwd={run.app_dir}" in words, words
    assert f"file={run.app_dir / 'src' / 'srcapp.py'}" in words, words


def named(name):
    def check(run):
        pids = wait_for_workers(run.master, 1)
        assert cmdline(run.master) == f"cppgunicorn: master [{name}]"
        assert [cmdline(p) for p in pids] == [f"cppgunicorn: worker [{name}]"]
    check.__name__ = f"named({name})"
    return check


def pid_file(run):
    path = run.tmp / "app.pid"
    assert path.read_text().strip() == str(run.master)

    def removed_at_exit():
        assert not path.exists(), "the pid file outlived the master"
    return removed_at_exit


def umask(value):
    def check(run):
        assert run.json()["umask"] == value
    check.__name__ = f"umask({value})"
    return check


def no_sendfile(run):
    (worker,) = wait_for_workers(run.master, 1)
    app = str((run.app_dir / "app.py").resolve())
    with SyscallTrace(worker, run.tmp) as trace:
        r = requests.get(run.url + "/__file", timeout=10)
        trace.wait_for_bytes(app, len(r.content))
    assert r.status_code == 200 and r.content == Path(app).read_bytes()
    assert "sendfile" not in [name for name, _ in trace.calls(app)]
    assert trace.bytes_by_call(app).get("read", 0) >= len(r.content)


def backlog(n):
    def check(run):
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        out = subprocess.run(["ss", "-Hltn", f"sport = :{run.port}"], capture_output=True,
                             text=True, timeout=10).stdout.split()
        # For a listening socket, Send-Q is the backlog it was given.
        assert out[0] == "LISTEN" and int(out[2]) == min(n, somaxconn), out
    check.__name__ = f"backlog({n})"
    return check


def warns_not_acted_upon(name):
    def check(run):
        assert any("not acted upon" in l and name in l for l in run.srv.stderr().splitlines())
    check.__name__ = f"warns_not_acted_upon({name})"
    return check


def print_config(**settings):
    """What --print-config reads from the same line: for settings whose
    effect takes longer to show than a test should wait."""
    def check(run):
        out = subprocess.run(run.args + ["--print-config"], cwd=run.app_dir,
                             env={**os.environ, **run.env}, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        shown = {}
        for l in out.stdout.splitlines():
            m = re.match(r"(\w+)\s+= (.*?)  \((.*)\)$", l)
            if m:
                shown[m.group(1)] = (m.group(2), m.group(3))
        for name, value in settings.items():
            assert shown[name][0] == value, (name, shown.get(name))
            assert shown[name][1] != "default", (name, shown.get(name))
    check.__name__ = "print_config(" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"
    return check


# (command line after "gunicorn", extra environment, expected body fragment,
# checks of its flags' effects)
COMMAND_LINES = [
    ("--bind 0.0.0.0:$PORT --workers 4 --threads 2 --timeout 0 --access-logfile - "
     "--error-logfile - app:app", {}, "REMOTE_ADDR",
     [workers(4), multithread(True), access_log, print_config(timeout="0")]),
    ("-w 2 -k gthread --threads 4 -b 0.0.0.0:$PORT app:app", {}, "REMOTE_ADDR",
     [workers(2), multithread(True)]),
    ("--bind 0.0.0.0:$PORT --log-level debug app:app", {}, "REMOTE_ADDR", [debug_level]),
    ("-k gevent -w 1 --worker-connections 500 --bind 0.0.0.0:$PORT app:app", {}, "REMOTE_ADDR",
     [workers(1), multithread(True), green_patched("gevent"),
      print_config(worker_class="gevent", worker_connections="500")]),
    ("--worker-class eventlet --bind 0.0.0.0:$PORT app:app", {}, "REMOTE_ADDR",
     [workers(1), multithread(True), green_patched("eventlet"),
      print_config(worker_class="eventlet")]),
    ('--bind 0.0.0.0:$PORT --forwarded-allow-ips="*" app:app', {}, "REMOTE_ADDR",
     [trusted_proxies(True)]),
    ("-c conf/gunicorn.conf.py --bind 0.0.0.0:$PORT app:app", {}, "from-conf",
     [workers(2), multithread(False), access_log, trusted_proxies(True),
      keep_alive_closes_after(5), print_config(timeout="60")]),
    ("--config python:gconf -b 0.0.0.0:$PORT app:app", {}, "from-module",
     [workers(2)]),
    ("--bind 0.0.0.0:$PORT --capture-output --enable-stdio-inheritance app:app", {}, "pid",
     [stdout_not_captured]),
    ("--bind 0.0.0.0:$PORT --worker-tmp-dir /dev/shm --workers 2 app:app", {}, "pid",
     [workers(2), heartbeat_in_dev_shm]),
    ("--bind 0.0.0.0:$PORT --max-requests 1000 --max-requests-jitter 50 app:app", {}, "pid",
     [max_requests(1000, 50)]),
    ("--bind 0.0.0.0:$PORT --preload --workers 2 app:app", {}, "pid", [preloaded]),
    ("--reload --bind 0.0.0.0:$PORT app:app", {}, "pid", [reload_on_change]),
    ("--bind 0.0.0.0:$PORT --statsd-host localhost:8125 --statsd-prefix myapp app:app", {}, "pid",
     [statsd("myapp")]),
    ("--keep-alive 5 --graceful-timeout 30 --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [keep_alive_closes_after(5), print_config(graceful_timeout="30")]),
    ("--log-file=- --access-logfile=- --log-level=info --bind=0.0.0.0:$PORT app:app", {}, "pid",
     [access_log, info_level]),
    ("--access-logformat '%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" %(L)s' "
     "--access-logfile - --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [access_log_format_with_request_time]),
    ("--chdir src --bind 0.0.0.0:$PORT srcapp:app", {}, "srcapp", [chdir_to("src")]),
    ("--pythonpath src --bind 0.0.0.0:$PORT srcapp:app", {}, "srcapp",
     [imported_from_pythonpath]),
    ("--name myapp --pid $TMP/app.pid --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [named("myapp"), pid_file]),
    ("-e DJANGO_SETTINGS_MODULE=settings -e FOO=bar --bind 0.0.0.0:$PORT app:app", {}, "bar",
     [env_var("DJANGO_SETTINGS_MODULE", "settings"), env_var("FOO", "bar")]),
    ("--timeout 120 --workers=3 --bind 0.0.0.0:$PORT app:application", {}, "pid",
     [workers(3), print_config(timeout="120")]),
    ("--bind=0.0.0.0:$PORT --backlog 512 'app:create_app()'", {}, "pid", [backlog(512)]),
    ("--forwarded-allow-ips '10.0.0.0/8,127.0.0.1' --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [trusted_proxies(False)]),
    ("--no-sendfile --umask 007 --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [umask("7"), no_sendfile]),
    ("--worker-class sync --threads 1 --bind 0.0.0.0:$PORT app", {}, "pid",
     [multithread(False)]),
    ("--log-level=warning --error-logfile $TMP/error.log --bind 0.0.0.0:$PORT app:app", {}, "pid",
     [warning_level_to_the_error_logfile]),
    ("app:app", {"PORT": "$PORT", "WEB_CONCURRENCY": "2"}, "pid", [workers(2)]),
    ("app:app", {"GUNICORN_CMD_ARGS": "--bind=0.0.0.0:$PORT --workers=2 --access-logfile=-"}, "pid",
     [workers(2), access_log]),
    ("-k gthread --threads 8 --worker-tmp-dir /dev/shm --log-file=- -b [::1]:$PORT app:app", {},
     "pid", [multithread(True), heartbeat_in_dev_shm]),
    ("--bind 0.0.0.0:$PORT --initgroups --disable-redirect-access-to-syslog app:app", {}, "pid",
     [warns_not_acted_upon("initgroups")]),
    ("--log-syslog --log-syslog-to udp://127.0.0.1:9 --log-syslog-prefix web "
     "--bind 0.0.0.0:$PORT app:app", {}, "pid", [syslog("web")]),
    ("--reload --reload-engine poll --bind 0.0.0.0:$PORT --access-logfile - app:app", {}, "pid",
     [access_log, reload_on_change]),
    ("--worker-class=gthread --threads=2 --workers=2 --timeout=90 --graceful-timeout=10 "
     "--keep-alive=75 --bind=0.0.0.0:$PORT --log-level=debug --access-logfile=- "
     "--error-logfile=- --capture-output app:app", {}, "pid",
     [workers(2), multithread(True), keep_alive_holds(5), debug_level, access_log,
      print_config(timeout="90", graceful_timeout="10")]),
]


def _expand(text, port, tmp, udp_port):
    return (text.replace("$PORT", str(port)).replace("0.0.0.0:", "127.0.0.1:")
            .replace("$TMP", tmp)
            .replace("localhost:8125", f"localhost:{udp_port}")
            .replace("udp://127.0.0.1:9 ", f"udp://127.0.0.1:{udp_port} "))


@pytest.mark.parametrize("line, env, expected, checks", COMMAND_LINES,
                         ids=[c[0][:60] + (" env" if c[1] else "") for c in COMMAND_LINES])
def test_real_command_line_serves(line, env, expected, checks, udp_collector):
    port = free_port()
    udp_port = udp_collector.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="cppgunicorn-cmdline-")
    app_dir = Path(tmp) / "app"
    shutil.copytree(APP_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    args = [server_binary()] + shlex.split(_expand(line, port, tmp, udp_port))
    full_env = {k: _expand(v, port, tmp, udp_port) for k, v in env.items()}
    srv = Server(args, cwd=app_dir, env=full_env, port=port)
    after_stop = []
    try:
        host = "[::1]" if "[::1]" in line else "127.0.0.1"
        if host == "127.0.0.1":
            up = wait_for_port(port, srv.proc)
        else:
            up = _wait_v6(port, srv)
        assert up, f"{args} did not start:\n{srv.stderr()}"
        r = requests.get(f"http://{host}:{port}/", timeout=5)
        assert r.status_code == 200
        assert expected in r.text
        run = Run(srv, args, full_env, host, port, Path(tmp), app_dir, udp_collector)
        for check in checks:
            try:
                later = check(run)
            except Exception as e:
                raise AssertionError(f"{check.__name__}: {e!r}\nstderr:\n{srv.stderr()[-3000:]}"
                                     ) from e
            if later is not None:
                after_stop.append(later)
    finally:
        srv.stop(signal.SIGTERM)
        for later in after_stop:
            later()
        shutil.rmtree(tmp, ignore_errors=True)
    err = srv.stderr() + srv.stdout()
    assert "AddressSanitizer" not in err and "runtime error:" not in err, err


def _wait_v6(port, srv, timeout=20.0):
    import socket
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("::1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.mark.parametrize("worker_class", ["uvicorn.workers.UvicornWorker",
                                          "uvicorn.workers.UvicornH11Worker"])
def test_asgi_worker_class_is_refused_with_a_clear_reason(worker_class):
    import subprocess
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}",
                           "--worker-class", worker_class, "app:app"],
                          cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "worker_class" in proc.stderr and worker_class in proc.stderr
    assert "WSGI" in proc.stderr


# Real command lines for worker classes cppgunicorn does not have: refused
# (exit 1, one line naming the class and what to use), not served.
@pytest.mark.parametrize("line, worker_class", [
    ("-k tornado -w 1 --bind 0.0.0.0:$PORT app:app", "tornado"),
    ("--worker-class myproject.workers.Custom --bind 0.0.0.0:$PORT app:app",
     "myproject.workers.Custom"),
])
def test_other_worker_class_command_lines_are_refused(line, worker_class):
    import subprocess
    port = free_port()
    proc = subprocess.run([server_binary()] + shlex.split(_expand(line, port, "/tmp", 0)),
                          cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert f"Invalid value for worker_class: '{worker_class}'" in proc.stderr
    assert "--threads" in proc.stderr
    assert "Booting worker" not in proc.stderr


def test_settings_not_acted_upon_are_named_in_one_warning_line(start_server):
    srv = start_server("app:app", "--initgroups", "--spew", "--http2-max-concurrent-streams", "50",
                       cwd=APP_DIR)
    assert requests.get(srv.url + "/", timeout=5).status_code == 200
    srv.stop()
    lines = [l for l in srv.stderr().splitlines() if "not acted upon" in l]
    assert len(lines) == 1, srv.stderr()
    for name in ("initgroups=True", "spew=True", "http2_max_concurrent_streams=50"):
        assert name in lines[0]
