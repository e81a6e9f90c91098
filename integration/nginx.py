"""Real nginx in front of the server, for tests.

``Nginx(directory, http_block)`` writes a whole configuration into
``directory`` (its own prefix: pid file, temp paths, error and access
logs), with ``http_block`` as the body of the ``http {}`` block, runs
``/usr/sbin/nginx`` in the foreground (``daemon off``) and, on ``start()``,
waits until every port it was given accepts. ``stop()`` shuts it down.
While one runs, a failing test's report carries its error log (see
``pytest_runtest_makereport`` in conftest.py); ``problems()`` gives the
lines of that log at level ``error`` or worse, which a test can assert is
empty. Used as a context manager it starts and stops itself.

    with Nginx(tmp_path, f"server {{ listen 127.0.0.1:{port}; ... }}",
               ports=[port]) as nginx:
        requests.get(f"http://127.0.0.1:{port}/")

``unix_address(path)`` names a unix socket in an ``upstream`` block's
``server`` or a ``uwsgi_pass``; ``proxy_pass_unix(path)`` is the URL a
``proxy_pass`` takes (its last colon ends the path: a URI may follow).
"""
import grp
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 20.0

# Every Nginx that is running, so that a failing test can show their logs.
running = []


def unix_address(path):
    return f"unix:{path}"


def proxy_pass_unix(path):
    return f"http://unix:{path}:"


def _run_as():
    # A master started as root hands its workers to `nobody`, who could not
    # reach the unix sockets under a test's private temporary directory.
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};\n"


class Nginx:
    def __init__(self, directory, http_block, ports=(), worker_processes=1):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = list(ports)
        self.conf_path = self.dir / "nginx.conf"
        self.error_log_path = self.dir / "error.log"
        self.access_log_path = self.dir / "access.log"
        temp = "\n".join(f"    {kind}_temp_path {self.dir / kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf_path.write_text(
            f"{_run_as()}daemon off;\n"
            f"worker_processes {worker_processes};\n"
            f"pid {self.dir / 'nginx.pid'};\n"
            f"error_log {self.error_log_path} info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {self.access_log_path};\n"
            f"{temp}\n"
            f"{http_block}\n"
            "}\n")
        self.proc = None

    def error_log(self):
        try:
            return self.error_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def problems(self):
        """Lines of the error log at level error, crit, alert or emerg."""
        return [line for line in self.error_log().splitlines()
                if re.search(r"\[(error|crit|alert|emerg)\]", line)]

    def report(self):
        return (f"nginx ({self.conf_path}):\n{self.conf_path.read_text()}\n"
                f"error log:\n{self.error_log()}")

    def start(self):
        # -e: errors met before the configuration is read go to our log too
        # (Debian's build sends them to stderr otherwise).
        with open(self.error_log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.dir), "-c", str(self.conf_path),
                 "-e", str(self.error_log_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        running.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(self.ports)
        while waiting:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"nginx did not start listening on {waiting}\n{self.report()}")
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.5).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self):
        if self in running:
            running.remove(self)
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful: requests under way finish
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
