"""gunicorn's small contracts, checked side by side: each test runs the same
check against cppgunicorn and against gunicorn 27 (installed beside the
tests), so a difference shows up as one of the pair failing.

Exit codes and usage errors, the arbiter's and worker's log lines (DEBUG
included), the objects hooks receive, and the environ keys that come from
the sockets (SERVER_NAME, SERVER_PORT, REMOTE_ADDR, REMOTE_PORT).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import APPS, Server, free_port, server_binary, wait_for_port

PARITY = APPS / "parity"
URI = APPS / "uri"


def gunicorn_binary():
    path = Path(sys.executable).parent / "gunicorn"
    if not path.exists():
        pytest.skip("gunicorn is not installed beside the tests")
    return str(path)


@pytest.fixture(params=["cppgunicorn", "gunicorn"])
def kind(request):
    return request.param


def command(kind, *args):
    if kind == "gunicorn":
        # gunicorn 27 opens a control socket in $HOME by default.
        return [gunicorn_binary(), "--no-control-socket", *args]
    return [server_binary(), *args]


def run(kind, *args, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(command(kind, *args), capture_output=True, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


@pytest.fixture
def start(kind):
    """start(*args, bind=...): runs `kind` and waits until it accepts."""
    started = []

    def go(*args, bind=None, env=None):
        port = None
        if bind is None:
            port = free_port()
            bind = f"127.0.0.1:{port}"
        srv = Server(command(kind, "--bind", bind, *args), env=env, port=port)
        started.append(srv)
        if port is not None:
            ok = wait_for_port(port, srv.proc)
        else:
            ok = wait_until(lambda: "Booting worker" in srv.stderr() or srv.proc.poll() is not None)
            ok = ok and srv.proc.poll() is None
        if not ok:
            srv.stop()
            pytest.fail(f"{kind} did not start:\n{srv.stderr()}")
        return srv

    yield go
    for srv in started:
        srv.stop()
        assert_no_sanitizer_report(srv.stderr())


def assert_no_sanitizer_report(err):
    # A sanitizer build (CPPGUNICORN_BIN=build/asan/cppgunicorn) reports here.
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in err, err[-4000:]


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# --- exit codes --------------------------------------------------------------

@pytest.mark.parametrize("args, code, message", [
    (["--no-such-flag", "app:app"], 2, "error: unrecognized arguments: --no-such-flag"),
    (["-w", "many", "app:app"], 2, "error: argument -w/--workers: invalid int value: 'many'"),
    (["--threads", "x", "app:app"], 2, "error: argument --threads: invalid int value: 'x'"),
    (["--umask", "zz", "app:app"], 2, "error: argument -m/--umask: invalid auto_int value: 'zz'"),
    (["app:app", "--timeout"], 2, "error: argument -t/--timeout: expected one argument"),
    ([], 1, "Error: No application module specified."),
    (["--max-requests", "-5", "app:app"], 1, "-5"),
    (["no_such_module:app"], 3, "Reason: Worker failed to boot."),
    (["plainmod:missing"], 4, "Reason: App failed to load."),
    (["broken_import:app"], 3, "Reason: Worker failed to boot."),
    (["--preload", "plainmod:missing"], 1, "Failed to find attribute 'missing' in 'plainmod'."),
    (["--preload", "no_such_module:app"], 1, "No module named 'no_such_module'"),
], ids=["unknown-flag", "int-flag", "threads", "umask", "missing-value", "no-app",
        "negative", "no-module", "no-attribute", "import-error", "preload-attribute",
        "preload-module"])
def test_exit_status_and_message_match_gunicorn(kind, args, code, message):
    proc = run(kind, "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(URI), *args)
    assert_no_sanitizer_report(proc.stderr)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr, proc.stderr
    if code == 2:
        assert proc.stderr.startswith("usage: "), proc.stderr


def test_a_usage_error_in_gunicorn_cmd_args_exits_2(kind):
    proc = run(kind, "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(URI), "plainmod:app",
               env={"GUNICORN_CMD_ARGS": "--workers=lots"})
    assert proc.returncode == 2, proc.stderr
    assert "invalid int value: 'lots'" in proc.stderr


def test_a_failed_boot_logs_the_exit_code_and_the_reason_as_errors(kind):
    proc = run(kind, "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(URI), "plainmod:missing")
    assert proc.returncode == 4
    assert re.search(r"\[ERROR\] Worker \(pid:\d+\) exited with code 4\.\n", proc.stderr), proc.stderr
    assert "[ERROR] Shutting down: Master\n" in proc.stderr
    assert "[ERROR] Reason: App failed to load.\n" in proc.stderr
    assert re.search(r"\[INFO\] Worker exiting \(pid: \d+\)", proc.stderr), proc.stderr


# --- log lines ---------------------------------------------------------------

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[([A-Z]+)\] (.*)$")


def parsed_lines(text):
    """(pid, level, message) of each log line; continuation lines are skipped."""
    return [m.groups() for m in map(LINE.match, text.splitlines()) if m]


def test_debug_level_prints_gunicorns_lines(start, kind):
    srv = start("--log-level", "debug", "--chdir", str(PARITY), "app:app")
    master = str(srv.proc.pid)
    for path in ("/first?q=1", "/second"):
        assert requests.get(srv.url + path, timeout=5).status_code == 200
    # The config dump is one record: its settings follow on their own lines.
    assert re.search(r"\[DEBUG\] Current configuration:\n(  \w+: .*\n)+", srv.stderr())
    assert re.search(r"\n  workers: 1\n", srv.stderr())
    assert wait_until(lambda: "GET /second" in srv.stderr())
    srv.stop()
    lines = parsed_lines(srv.stderr())
    worker = next(m.split(": ")[1] for p, l, m in lines if m.startswith("Booting worker with pid"))
    expected = [
        (master, "DEBUG", "Current configuration:"),
        (master, "DEBUG", "Arbiter booted"),
        (master, "INFO", f"Listening at: http://127.0.0.1:{srv.port} ({master})"),
        (master, "INFO", "Using worker: sync"),
        (worker, "INFO", f"Booting worker with pid: {worker}"),
        (master, "DEBUG", "1 workers"),
        (worker, "DEBUG", "GET /first"),
        (worker, "DEBUG", "GET /second"),
        (master, "INFO", "Handling signal: term"),
        (worker, "INFO", f"Worker exiting (pid: {worker})"),
        (master, "INFO", "Shutting down: Master"),
    ]
    # Each process's lines in this order, with other lines allowed in between
    # (the master and the worker log concurrently).
    for pid in (master, worker):
        it = iter(line for line in lines if line[0] == pid)
        for want in (w for w in expected if w[0] == pid):
            assert any(got == want for got in it), f"{want} missing or out of order in:\n{srv.stderr()}"


def test_threaded_workers_log_closing_connection_at_debug(start):
    srv = start("--log-level", "debug", "--worker-class", "gthread", "--threads", "2",
                "--chdir", str(PARITY), "app:app")
    r = requests.get(srv.url + "/x", headers={"Connection": "close"}, timeout=5)
    assert r.status_code == 200
    assert wait_until(lambda: "[DEBUG] Closing connection." in srv.stderr()), srv.stderr()
    assert "Using worker: gthread" in srv.stderr()


def test_info_level_prints_no_debug_line(start):
    srv = start("--chdir", str(PARITY), "app:app")
    assert requests.get(srv.url + "/x", timeout=5).status_code == 200
    srv.stop()
    assert "[DEBUG]" not in srv.stderr()
    assert "Current configuration" not in srv.stderr()


def test_a_killed_worker_is_reported_as_gunicorn_does(start):
    srv = start("--chdir", str(PARITY), "app:app")
    assert wait_until(lambda: "Booting worker" in srv.stderr())
    pid = int(re.search(r"Booting worker with pid: (\d+)", srv.stderr()).group(1))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: "Perhaps out of memory?" in srv.stderr()), srv.stderr()
    assert f"[ERROR] Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?" in srv.stderr()
    assert wait_until(lambda: srv.stderr().count("Booting worker") == 2)
    second = int(re.findall(r"Booting worker with pid: (\d+)", srv.stderr())[1])
    os.kill(second, signal.SIGALRM)
    assert wait_until(lambda: f"Worker (pid:{second}) was sent SIGALRM!" in srv.stderr()), srv.stderr()
    assert f"[WARNING] Worker (pid:{second}) was sent SIGALRM!" in srv.stderr()


def test_an_app_exception_and_a_bad_request_are_logged_as_gunicorn_does(start):
    srv = start("--chdir", str(PARITY), "app:app")
    assert requests.get(srv.url + "/raise?x=1", timeout=5).status_code == 500
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert wait_until(lambda: "Invalid request from" in srv.stderr()), srv.stderr()
    err = srv.stderr()
    assert re.search(r"\[ERROR\] Error handling request GET /raise\?x=1\nTraceback", err), err
    assert "RuntimeError: parity app raising on purpose" in err
    assert "[WARNING] Invalid request from ip=127.0.0.1: " in err, err


def test_a_worker_whose_master_died_says_so_as_gunicorn_does(start):
    srv = start("--chdir", str(PARITY), "app:app")
    assert wait_until(lambda: "Booting worker" in srv.stderr())
    pid = int(re.search(r"Booting worker with pid: (\d+)", srv.stderr()).group(1))
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    # gunicorn's sync worker looks once per timeout/2 (15 s here).
    assert wait_until(lambda: f"Parent changed, shutting down: <Worker {pid}>" in srv.stderr(),
                      timeout=60), srv.stderr()
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"))


# --- hook arguments -----------------------------------------------------------

def hook_records(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_hooks_see_the_server_and_worker_attributes_gunicorn_gives(start, tmp_path):
    log = tmp_path / "hooks.jsonl"
    srv = start("-c", str(PARITY / "hooks.conf.py"), "-w", "2", "--chdir", str(PARITY), "app:app",
                env={"HOOK_LOG": str(log)})
    assert wait_until(lambda: sum(r["hook"] == "post_worker_init" for r in hook_records(log)) == 2)
    r = requests.get(srv.url + "/a%20b?x=1", headers={"X-Thing": "yes"}, timeout=5)
    assert r.status_code == 200
    assert wait_until(lambda: any(r["hook"] == "post_request" for r in hook_records(log)))
    pids = sorted(int(p) for p in re.findall(r"Booting worker with pid: (\d+)", srv.stderr()))
    os.kill(pids[0], signal.SIGKILL)
    assert wait_until(lambda: any(r["hook"] == "child_exit" for r in hook_records(log)))
    records = {}
    for rec in hook_records(log):
        records.setdefault(rec.pop("hook"), []).append(rec)

    server_ready = {"pid_is_master": True, "num_workers": 2, "workers_cfg": 2, "WORKERS": []}
    assert records["on_starting"] == [server_ready]
    assert records["when_ready"] == [server_ready]
    assert [(r["age"], r["pid"], len(r["WORKERS"]), r["num_workers"])
            for r in records["pre_fork"][:2]] == [(1, "[booting]", 0, 2), (2, "[booting]", 1, 2)]
    assert sorted(r["age"] for r in records["post_fork"][:2]) == [1, 2]
    for r in records["post_fork"]:
        assert r["pid_is_self"] and r["alive"] and r["timeout"] == 30 and r["has_log"]
    for r in records["post_worker_init"]:
        assert r["pid_is_self"] and r["ppid"] == srv.proc.pid
    req = records["pre_request"][0]
    assert (req["method"], req["path"], req["uri"], req["query"], req["version"]) == \
        ("GET", "/a%20b", "/a%20b?x=1", "x=1", [1, 1])
    assert ["X-THING", "yes"] in req["headers"]
    assert records["post_request"][0] == {"path": "/a%20b", "path_info": "/a b"}
    exited = records["child_exit"][0]
    assert exited["pid"] == pids[0]
    assert exited["WORKERS"] == [pids[1]] and exited["num_workers"] == 2


# --- environ keys from the sockets --------------------------------------------

def raw_get(connect, target, *headers, version="1.1"):
    """One request over a fresh socket; returns the JSON environ of the parity app."""
    with connect() as s:
        head = f"GET {target} HTTP/{version}\r\n" + "".join(h + "\r\n" for h in headers)
        s.sendall((head + "Connection: close\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 200 ", head), data[:200]
    return json.loads(body)


def tcp(port, family=socket.AF_INET, host="127.0.0.1"):
    def connect():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect((host, port))
        return s
    return connect


def test_tcp_server_name_and_port_are_the_listeners_whatever_host_says(start):
    srv = start("--chdir", str(PARITY), "app:app")
    env = raw_get(tcp(srv.port), "/", "Host: example.com:8080")["str"]
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(srv.port))
    assert env["HTTP_HOST"] == "example.com:8080"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    env = raw_get(tcp(srv.port), "/", version="1.0")["str"]
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(srv.port))


def test_ipv6_listener_gives_its_bare_address(start):
    port = free_port()
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", port))
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = start("--chdir", str(PARITY), "app:app", bind=f"[::1]:{port}")
    assert wait_until(lambda: _connects(tcp(port, socket.AF_INET6, "::1")))
    env = raw_get(tcp(port, socket.AF_INET6, "::1"), "/", "Host: [::1]:1")["str"]
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("::1", str(port))
    assert env["REMOTE_ADDR"] == "::1"


def _connects(connect):
    try:
        connect().close()
        return True
    except OSError:
        return False


def test_repeated_headers_join_with_a_bare_comma(start):
    srv = start("--chdir", str(PARITY), "app:app")
    env = raw_get(tcp(srv.port), "/", "Host: h", "X-Multi: a", "X-Multi: b", "X-Multi: c")["str"]
    assert env["HTTP_X_MULTI"] == "a,b,c"


@pytest.mark.parametrize("host, name, port", [
    ("Host: example.com:8080", "example.com", "8080"),
    ("Host: example.com", "example.com", "80"),
    (None, "SOCKET", ""),
])
def test_unix_socket_server_name_from_host_and_no_remote_port(start, tmp_path, host, name, port):
    path = tmp_path / "app.sock"
    srv = start("--chdir", str(PARITY), "app:app", bind=f"unix:{path}")

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(path))
        return s

    assert wait_until(lambda: _connects(connect))
    got = raw_get(connect, "/", *([host] if host else []), version="1.1" if host else "1.0")
    env = got["str"]
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (str(path) if name == "SOCKET" else name, port)
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in got["keys"]


def _proxy_v2(src, dst, sport, dport):
    import struct
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 203.0.113.7 10.0.0.1 4321 80\r\n",
    _proxy_v2("203.0.113.7", "10.0.0.1", 4321, 80),
], ids=["v1", "v2"])
def test_proxy_protocol_sets_remote_and_proxy_keys(start, header):
    srv = start("--proxy-protocol", "auto", "--proxy-allow-from", "*", "--chdir", str(PARITY),
                "app:app")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(header + b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    env = json.loads(data.partition(b"\r\n\r\n")[2])["str"]
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "4321")
    assert (env["PROXY_PROTOCOL"], env["PROXY_ADDR"], env["PROXY_PORT"]) == ("TCP4", "10.0.0.1", "80")


def test_a_worker_class_whose_package_is_missing_stops_the_master_with_1(kind, tmp_path):
    # gunicorn's master imports the worker class and exits 1; no worker is
    # forked to fail at boot.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['gevent'] = None\n")
    r = run(kind, "-k", "gevent", "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(PARITY),
            "app:app", env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert "gevent" in r.stderr
    assert "Booting worker" not in r.stderr
