"""Fixtures that run the installed ``cppgunicorn`` binary on a free port.

The binary is taken from ``$CPPGUNICORN_BIN`` when set, otherwise from the
``bin/`` folder of the interpreter running pytest (the venv it was installed
into), otherwise from ``PATH``.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
EXAMPLES = ROOT / "examples"


# The smoke subset: what packaging/slim_check.sh runs against a wheel
# installed as a slim image would have it. One module per user-visible
# area: the example app, app loading and exit codes, HTTP/1.1 connections,
# the WSGI surface, file bodies, config files and hooks, signals, TLS (the
# wheel's module uses the system's libssl, as Python's ssl does).
SMOKE_MODULES = {
    "test_example_flask_app", "test_app_loading", "test_http_connection",
    "test_wsgi_surface", "test_spool_and_sendfile", "test_config_sources",
    "test_server_hooks", "test_signals", "test_tls",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: run against installed wheels (packaging/slim_check.sh)")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in SMOKE_MODULES:
            item.add_marker(pytest.mark.smoke)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A test that fails with nginx in front shows what nginx logged.
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        import nginx
        for n in nginx.running:
            report.sections.append((f"nginx error log ({n.dir})", n.error_log()))


def server_binary():
    explicit = os.environ.get("CPPGUNICORN_BIN")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "cppgunicorn"
    if beside.exists():
        return str(beside)
    found = shutil.which("cppgunicorn")
    if not found:
        pytest.fail("cppgunicorn is not installed: run `pip install .` first")
    return found


def server_python():
    """The Python the server binary belongs to: the one beside it (its venv,
    or the /usr/local of an image), else the one running the tests (a
    development build names that one)."""
    bin_dir = Path(server_binary()).absolute().parent
    for name in ("python", "python3"):
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    return sys.executable


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


GREEN_CLASSES = ("gevent", "eventlet", "gevent_wsgi", "gevent_pywsgi",
                 "gunicorn.workers.ggevent.GeventWorker",
                 "gunicorn.workers.ggevent.GeventPyWSGIWorker",
                 "gunicorn.workers.geventlet.EventletWorker",
                 "egg:gunicorn#gevent", "egg:gunicorn#eventlet")


def uses_greenlets(args):
    args = [str(a) for a in args]
    for i, a in enumerate(args):
        if a in ("-k", "--worker-class") and i + 1 < len(args) and args[i + 1] in GREEN_CLASSES:
            return True
        if a.startswith("--worker-class=") and a.split("=", 1)[1] in GREEN_CLASSES:
            return True
    return False


def sanitizer_env_for(args, env):
    """greenlet switches by copying C stacks with memcpy, redzones of our
    instrumented frames included, which AddressSanitizer's memcpy check
    reports. For the green worker classes that check is off
    (replace_intrin=0); every other check of a sanitizer build stays on."""
    if not uses_greenlets(args):
        return env
    options = (env or {}).get("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", ""))
    return {**(env or {}), "ASAN_OPTIONS": ":".join(filter(None, [options, "replace_intrin=0"]))}


class Server:
    """One running server process and its captured output."""

    # Every log directory made in this run, removed when the run ends (a
    # test may read a server's output after stopping it, and module-scoped
    # servers outlive single tests).
    logdirs = []

    def __init__(self, args, cwd=None, env=None, port=None, **popen_extra):
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else None
        self.logdir = Path(tempfile.mkdtemp(prefix="cppgunicorn-test-"))
        Server.logdirs.append(self.logdir)
        self.stdout_path = self.logdir / "stdout.log"
        self.stderr_path = self.logdir / "stderr.log"
        self.args = args
        full_env = dict(os.environ)
        # The default control socket is $XDG_RUNTIME_DIR/gunicorn.ctl: one
        # per server here, rather than every server of the run competing
        # for ~/.gunicorn/gunicorn.ctl.
        full_env["XDG_RUNTIME_DIR"] = str(self.logdir)
        env = sanitizer_env_for(args, env)
        if env:
            full_env.update(env)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=full_env, stdout=self._out, stderr=self._err,
            stdin=subprocess.DEVNULL, **popen_extra,
        )

    def stdout(self):
        if not self._out.closed:
            self._out.flush()
        return self.stdout_path.read_text(errors="replace")

    def stderr(self):
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout=10):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self._out.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()
        self._err.close()
        return self.proc.returncode


@pytest.fixture(scope="session", autouse=True)
def remove_server_logs():
    yield
    for d in Server.logdirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_server():
    """Factory: ``start_server(app_uri, *flags, chdir=..., env=..., wait=True)``.

    Binds 127.0.0.1 on a free port (unless ``bind=False`` is passed, in which
    case the flags must carry their own ``--bind``), waits until it accepts,
    and stops every server it started when the test ends. ``prefix`` goes
    before the binary (a wrapper command); ``pass_fds`` and ``preexec_fn``
    go to ``subprocess.Popen``.
    """
    started = []

    def start(app_uri, *flags, chdir=None, env=None, wait=True, bind=True,
              cwd=None, prefix=(), **popen_extra):
        port = free_port() if bind else None
        args = [*prefix, server_binary()]
        if bind:
            args += ["--bind", f"127.0.0.1:{port}"]
        if chdir is not None:
            args += ["--chdir", str(chdir)]
        args += [str(f) for f in flags]
        # $CPPGUNICORN_TEST_THREADS runs the suite with that many app
        # threads per worker, unless a test chose its own.
        threads = os.environ.get("CPPGUNICORN_TEST_THREADS")
        if threads and "--threads" not in args:
            args += ["--threads", threads]
        # $CPPGUNICORN_TEST_REQUEST_BUFFERING=off runs it with request bodies
        # streamed to the app, unless a test chose its mode.
        if (os.environ.get("CPPGUNICORN_TEST_REQUEST_BUFFERING") == "off"
                and not {"--request-buffering", "--no-request-buffering"} & set(args)):
            args += ["--no-request-buffering"]
        if app_uri is not None:
            args.append(app_uri)
        srv = Server(args, cwd=cwd, env=env, port=port, **popen_extra)
        started.append(srv)
        if wait and bind and not wait_for_port(port, srv.proc):
            srv.stop()
            pytest.fail(
                f"server did not start: {args}\nstdout:\n{srv.stdout()}\n"
                f"stderr:\n{srv.stderr()}")
        return srv

    yield start
    problems = []
    for srv in started:
        srv.stop()
        err = srv.stderr_path.read_text(errors="replace")
        # A sanitizer build (see docs/development.md) reports here.
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in err:
                problems.append(f"{srv.args}: {marker}\n{err[-4000:]}")
    if problems:
        pytest.fail("sanitizer report in server stderr:\n" + "\n".join(problems))


@pytest.fixture
def udp_collector():
    """A UDP socket on loopback standing in for a StatsD or syslog server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def receive_datagrams(sock, until, timeout=10.0):
    """Datagrams (as text) until `until(got)` holds or `timeout` passes."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            got.append(sock.recv(65536).decode())
        except socket.timeout:
            break
    return got
