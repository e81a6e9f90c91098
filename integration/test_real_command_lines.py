"""gunicorn command lines as they appear in public Dockerfiles and Procfiles,
each started with cppgunicorn and served (one request succeeds).

Addresses are rewritten to loopback with a free port ($PORT, 0.0.0.0 ->
127.0.0.1); everything else is passed as written (shell-split).
"""
import os
import shlex
import shutil
import signal
import tempfile

import pytest
import requests

from conftest import APPS, Server, free_port, server_binary, wait_for_port

APP_DIR = APPS / "cmdlines"

# (command line after "gunicorn", extra environment, expected body fragment)
COMMAND_LINES = [
    ("--bind 0.0.0.0:$PORT --workers 4 --threads 2 --timeout 0 --access-logfile - "
     "--error-logfile - app:app", {}, "REMOTE_ADDR"),
    ("-w 2 -k gthread --threads 4 -b 0.0.0.0:$PORT app:app", {}, "REMOTE_ADDR"),
    ("--bind 0.0.0.0:$PORT --log-level debug app:app", {}, "REMOTE_ADDR"),
    ('--bind 0.0.0.0:$PORT --forwarded-allow-ips="*" app:app', {}, "REMOTE_ADDR"),
    ("-c conf/gunicorn.conf.py --bind 0.0.0.0:$PORT app:app", {}, "from-conf"),
    ("--config python:gconf -b 0.0.0.0:$PORT app:app", {}, "from-module"),
    ("--bind 0.0.0.0:$PORT --capture-output --enable-stdio-inheritance app:app", {}, "pid"),
    ("--bind 0.0.0.0:$PORT --worker-tmp-dir /dev/shm --workers 2 app:app", {}, "pid"),
    ("--bind 0.0.0.0:$PORT --max-requests 1000 --max-requests-jitter 50 app:app", {}, "pid"),
    ("--bind 0.0.0.0:$PORT --preload --workers 2 app:app", {}, "pid"),
    ("--reload --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--bind 0.0.0.0:$PORT --statsd-host localhost:8125 --statsd-prefix myapp app:app", {}, "pid"),
    ("--keep-alive 5 --graceful-timeout 30 --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--log-file=- --access-logfile=- --log-level=info --bind=0.0.0.0:$PORT app:app", {}, "pid"),
    ("--access-logformat '%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" %(L)s' "
     "--access-logfile - --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--chdir src --bind 0.0.0.0:$PORT srcapp:app", {}, "srcapp"),
    ("--pythonpath src --bind 0.0.0.0:$PORT srcapp:app", {}, "srcapp"),
    ("--name myapp --pid $TMP/app.pid --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("-e DJANGO_SETTINGS_MODULE=settings -e FOO=bar --bind 0.0.0.0:$PORT app:app", {}, "bar"),
    ("--timeout 120 --workers=3 --bind 0.0.0.0:$PORT app:application", {}, "pid"),
    ("--bind=0.0.0.0:$PORT --backlog 512 'app:create_app()'", {}, "pid"),
    ("--forwarded-allow-ips '10.0.0.0/8,127.0.0.1' --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--no-sendfile --umask 007 --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--worker-class sync --threads 1 --bind 0.0.0.0:$PORT app", {}, "pid"),
    ("--log-level=warning --error-logfile $TMP/error.log --bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("app:app", {"PORT": "$PORT", "WEB_CONCURRENCY": "2"}, "pid"),
    ("app:app", {"GUNICORN_CMD_ARGS": "--bind=0.0.0.0:$PORT --workers=2 --access-logfile=-"}, "pid"),
    ("-k gthread --threads 8 --worker-tmp-dir /dev/shm --log-file=- -b [::1]:$PORT app:app", {},
     "pid"),
    ("--bind 0.0.0.0:$PORT --initgroups --disable-redirect-access-to-syslog app:app", {}, "pid"),
    ("--log-syslog --log-syslog-to udp://127.0.0.1:9 --log-syslog-prefix web "
     "--bind 0.0.0.0:$PORT app:app", {}, "pid"),
    ("--reload --reload-engine poll --bind 0.0.0.0:$PORT --access-logfile - app:app", {}, "pid"),
    ("--worker-class=gthread --threads=2 --workers=2 --timeout=90 --graceful-timeout=10 "
     "--keep-alive=75 --bind=0.0.0.0:$PORT --log-level=debug --access-logfile=- "
     "--error-logfile=- --capture-output app:app", {}, "pid"),
]


def _expand(text, port, tmp):
    return (text.replace("$PORT", str(port)).replace("0.0.0.0:", "127.0.0.1:")
            .replace("$TMP", tmp))


@pytest.mark.parametrize("line, env, expected", COMMAND_LINES,
                         ids=[c[0][:60] + (" env" if c[1] else "") for c in COMMAND_LINES])
def test_real_command_line_serves(line, env, expected):
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="cppgunicorn-cmdline-")
    args = [server_binary()] + shlex.split(_expand(line, port, tmp))
    full_env = {k: _expand(v, port, tmp) for k, v in env.items()}
    srv = Server(args, cwd=APP_DIR, env=full_env, port=port)
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
    finally:
        srv.stop(signal.SIGTERM)
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
    ("-k gevent -w 1 --bind 0.0.0.0:$PORT app:app", "gevent"),
    ("--worker-class eventlet --bind 0.0.0.0:$PORT app:app", "eventlet"),
])
def test_gevent_and_eventlet_command_lines_are_refused(line, worker_class):
    import subprocess
    port = free_port()
    proc = subprocess.run([server_binary()] + shlex.split(_expand(line, port, "/tmp")),
                          cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert f"Invalid value for worker_class: '{worker_class}'" in proc.stderr
    assert "gthread" in proc.stderr
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
