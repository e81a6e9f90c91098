#!/usr/bin/env python3
"""Side-by-side benchmark: cppgunicorn against the other WSGI servers.

Every server serves the same apps (apps.py) with one worker, pinned to CPU 0;
wrk runs pinned to CPU 1 (`wrk -t1 -c16 --latency`). For each server and
workload (raw hello, Flask hello, Flask JSON, 1 MiB stream, 100 KB POST, and
the Flask hello over TLS for the servers that have TLS), with
keep-alive and with a new connection per request, each cell runs --repeat times
and the median is kept: req/s, p50/p99 latency, and the server's CPU-µs per
request (utime+stime of its whole process tree, from /proc). Then, per server:
RSS per idle worker and after 100k requests, and Flask hello throughput under
500 slowloris connections against the same without them. The limit is each
app called in-process in a loop (same interpreter, same CPU): no server can
beat it.

Writes docs/benchmarks/results.md, results.json and chart.png (a --quick run
writes to benchmarks/results/ unless --out says otherwise). Raw wrk output and
server logs go to benchmarks/results/logs/.

    benchmarks/run.sh                       # full run (~20 min)
    benchmarks/run.sh --quick               # smoke test (~2-3 min)
    benchmarks/run.sh --only cppgunicorn,gunicorn-sync --workloads raw,flask,slow,rss
    benchmarks/run.sh --workloads tls --out docs/benchmarks/tls   # HTTPS only

Only ratios between rows of one run mean anything: the machine is shared.
"""
import argparse
import atexit
import datetime
import errno
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import behind_nginx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
BIN = os.path.dirname(PY)
TICK = os.sysconf("SC_CLK_TCK")
CONNS = 16
POST_SIZE = 100 * 1024
STREAM_SIZE = 1024 * 1024

# name -> (WSGI callable in apps.py, path, method)
WORKLOADS = {
    "raw": ("apps:raw", "/", "GET"),
    "flask": ("apps:flask_app", "/", "GET"),
    "json": ("apps:flask_app", "/json", "GET"),
    "stream": ("apps:stream", "/", "GET"),
    "post": ("apps:upload", "/", "POST"),
    "tls": ("apps:flask_app", "/", "GET"),  # the Flask hello over HTTPS
}
# Workloads served over TLS (a certificate made at start, wrk and probes speak TLS).
TLS_WORKLOADS = ("tls",)
# Workloads whose in-process limit is that of another (same app, same path).
LIMIT_OF = {"flask2w": "flask", "tls": "flask"}
WORKLOAD_TITLES = {
    "raw": "Raw WSGI hello",
    "flask": "Flask hello",
    "json": "Flask JSON (~1 KB)",
    "stream": "1 MiB streamed response (16 x 64 KiB chunks, no Content-Length)",
    "post": "100 KB POST (body read, length returned)",
    "flask2w": "Flask hello, 2 workers (both on the server CPU)",
    "tls": "Flask hello over TLS (HTTPS: TLS 1.3, EC P-256 certificate)",
}
TABLE_ORDER = ["raw", "flask", "json", "stream", "post", "flask2w", "tls"]
MODES = ("ka", "close")
MODE_TITLES = {"ka": "keep-alive", "close": "new connection per request (Connection: close)"}
TLS_MODE_TITLES = {"ka": "keep-alive", "close": "new connection per request (Connection: close): a full TLS handshake each"}
SCENARIOS = ("flask2w", "slow", "rss", "limit", "nginx")  # extra --workloads names

SERVERS = ["cppgunicorn", "cppgunicorn-metrics", "cppgunicorn-serve", "gunicorn-sync", "gunicorn-gthread", "uwsgi", "granian", "bjoern", "fastwsgi", "meinheld"]
MULTI_WORKER = ["cppgunicorn", "cppgunicorn-metrics", "gunicorn-sync", "gunicorn-gthread", "uwsgi", "granian"]
# Python distribution that provides each server (for versions and build status).
DIST = {
    "cppgunicorn": "cppgunicorn", "cppgunicorn-metrics": "cppgunicorn", "cppgunicorn-serve": "cppgunicorn",
    "gunicorn-sync": "gunicorn", "gunicorn-gthread": "gunicorn",
    "uwsgi": "uwsgi", "granian": "granian", "bjoern": "bjoern", "fastwsgi": "fastwsgi", "meinheld": "meinheld",
}
IMPORT = {"bjoern": "bjoern", "fastwsgi": "fastwsgi", "meinheld": "meinheld.server"}
# Servers with no TLS at all: they take no part in the TLS workloads.
NO_TLS = ["bjoern", "fastwsgi", "meinheld"]

STARTED = []  # Popen objects of every server started (own process groups)
PIN = {"server": None, "client": None}
# The TLS set-up of this run (make_tls): certificate, key, the wrk preload.
TLS = {"cert": None, "key": None, "shim": None, "error": None}
LOG_DIR = os.path.join(HERE, "results", "logs")


# --------------------------------------------------------------------- utils

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pinned(cmd, who):
    cpu = PIN[who]
    return (["taskset", "-c", cpu] + cmd) if cpu is not None else cmd


def check_pinning():
    """Pin the server to CPU 0 and wrk to CPU 1 when there are two CPUs we may use."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        allowed = set()
    ok = {0, 1} <= allowed and shutil.which("taskset") is not None
    if ok:
        ok = subprocess.run(["taskset", "-c", "0", "true"], capture_output=True).returncode == 0
    if ok:
        PIN["server"], PIN["client"] = "0", "1"
        try:  # the harness itself (slowloris thread, /proc polling) stays off the server CPU
            os.sched_setaffinity(0, {1})
        except OSError:
            pass
    return ok


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid, kids=None):
    kids = kids if kids is not None else children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_ticks(pids):
    """(user+system, system) clock ticks of these processes."""
    total = system = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime
            system += int(f[12])
        except OSError:
            pass
    return total, system


def cpu0_busy():
    """(busy, total) jiffies of CPU 0, for the share of CPU 0 used by others."""
    for line in open("/proc/stat"):
        if line.startswith("cpu0 "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            total = sum(v[:8])
            return total - idle, total
    return 0, 0


def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def workers_of(pid):
    """Worker processes: the leaves of the process tree, or the process itself."""
    kids = children_map()
    t = tree(pid, kids)
    if len(t) == 1:
        return t
    return [p for p in t if not kids.get(p)]


def tcp_active_opens():
    try:
        lines = open("/proc/net/snmp").read().splitlines()
        hdr = [l for l in lines if l.startswith("Tcp:")]
        names, vals = hdr[0].split(), hdr[1].split()
        return int(vals[names.index("ActiveOpens")])
    except (OSError, IndexError, ValueError):
        return None


def listen_queue(port):
    """Connections waiting in the accept queue of the listening socket(s) on port."""
    total = 0
    hexport = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[1].endswith(hexport):  # LISTEN
                        total += int(parts[4].split(":")[1], 16)  # rx_queue = accept backlog
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return total


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------- servers

def server_cmd(name, app, port, workers, tls=False, metrics_port=None):
    """The command line; with tls, each server's own TLS options on TLS["cert"] and TLS["key"].
    cppgunicorn-metrics is cppgunicorn with /metrics served on `metrics_port`
    (and scraped once a second while it runs: MetricsScraper)."""
    hp = f"127.0.0.1:{port}"
    mod, obj = app.split(":")
    cert, key = TLS["cert"], TLS["key"]
    # gunicorn's flags, which cppgunicorn takes as they are
    gtls = ["--certfile", cert, "--keyfile", key] if tls else []
    if name == "cppgunicorn":
        return [f"{BIN}/cppgunicorn", "--workers", str(workers), "--bind", hp, *gtls, "--chdir", HERE, app]
    if name == "cppgunicorn-metrics":
        return [f"{BIN}/cppgunicorn", "--workers", str(workers), "--bind", hp, *gtls,
                "--metrics-bind", f"127.0.0.1:{metrics_port}", "--chdir", HERE, app]
    if name == "gunicorn-sync":
        return [f"{BIN}/gunicorn", "--workers", str(workers), "--bind", hp, *gtls, "--chdir", HERE, app]
    if name == "gunicorn-gthread":
        return [f"{BIN}/gunicorn", "--workers", str(workers), "--worker-class", "gthread", "--threads", "4",
                "--bind", hp, *gtls, "--chdir", HERE, app]
    if name == "uwsgi":
        sock = ["--https-socket", f"{hp},{cert},{key}"] if tls else ["--http11-socket", hp]
        return [f"{BIN}/uwsgi", "--master", "--processes", str(workers), *sock,
                "--http-keepalive", "--http-auto-chunked", "--chdir", HERE, "--module", app, "--disable-logging",
                "--die-on-term", "--need-app", "--listen", "1024"]
    if name == "granian":
        return [f"{BIN}/granian", "--interface", "wsgi", "--workers", str(workers), "--host", "127.0.0.1",
                "--port", str(port), "--no-ws", "--log-level", "warning", "--working-dir", HERE,
                *(["--ssl-certificate", cert, "--ssl-keyfile", key] if tls else []), app]
    if name == "cppgunicorn-serve" and workers == 1:
        # cppgunicorn.serve(app) in the process that imported the app: no
        # master, no fork (docs/embedding.md); the CLI's one-worker cell is
        # the row to compare it with.
        tls_kw = f", certfile={cert!r}, keyfile={key!r}" if tls else ""
        return [PY, "-c", f"import cppgunicorn, {mod}; cppgunicorn.serve({mod}.{obj}, bind={hp!r}{tls_kw})"]
    if workers != 1 or tls:
        return None
    if name == "bjoern":
        return [PY, "-c", f"import bjoern, {mod}; bjoern.run({mod}.{obj}, '127.0.0.1', {port})"]
    if name == "fastwsgi":
        return [PY, "-c", f"import fastwsgi, {mod}; fastwsgi.run(wsgi_app={mod}.{obj}, host='127.0.0.1', port={port})"]
    if name == "meinheld":
        return [PY, "-c", f"import meinheld.server as m, {mod}; m.listen(('127.0.0.1', {port})); m.run({mod}.{obj})"]
    return None


def tls_reason(name):
    """Why this server cannot serve the TLS workloads, or None if it can."""
    if name in NO_TLS:
        return "has no TLS"
    if name == "uwsgi":
        try:
            out = subprocess.run([f"{BIN}/uwsgi", "--help"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"uwsgi --help failed: {e}"
        if "--https-socket" not in out:
            return "this uWSGI build has no OpenSSL (no --https-socket option)"
    return None


def make_tls(tmp):
    """A self-signed certificate for 127.0.0.1/localhost (EC P-256 key) in tmp, and the
    wrk preload (wrk_tls.c) that makes every handshake a full one and counts them.
    Fills TLS; returns a description of the set-up for the results header."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise OSError(" ".join(out.stderr.split())[-300:])
    except (OSError, subprocess.TimeoutExpired) as e:
        TLS["error"] = f"no certificate: {' '.join(cmd[:3])} failed: {e}"
        return {"error": TLS["error"]}
    TLS["cert"], TLS["key"] = cert, key
    info = {"certificate": "self-signed, EC P-256 (prime256v1) key, ECDSA-SHA256 signature, "
                           "subjectAltName IP:127.0.0.1, DNS:localhost; made at start with the openssl command "
                           "line in a temporary directory",
            "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}
    shim = os.path.join(tmp, "wrk_tls.so")
    cc = shutil.which("cc") or shutil.which("gcc") or "cc"
    try:
        out = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(HERE, "wrk_tls.c"),
                              "-lssl", "-lcrypto", "-ldl"], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise OSError(" ".join(out.stderr.split())[-300:])
        TLS["shim"] = shim
        info["wrk_preload"] = "ok"
    except (OSError, subprocess.TimeoutExpired) as e:
        info["wrk_preload"] = (f"failed to build ({e}): wrk ran as it is, so after the first handshake on a "
                               "connection slot it resumed its TLS session, and handshakes were not counted")
    return info


def kill_group(p, grace=5.0):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Workers may outlive a master that exited: always sweep the group.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def kill_all():
    for p in STARTED:
        kill_group(p, grace=2.0)


class Server:
    def __init__(self, name, app, workers=1, tls=False, unix=None):
        """unix: bind this socket path instead of a TCP port (one worker, no TLS)."""
        self.name, self.app, self.workers, self.tls, self.unix = name, app, workers, tls, unix
        self.port = free_port()
        self.metrics_port = free_port() if name == "cppgunicorn-metrics" else None
        if unix:
            self.cmd = behind_nginx.unix_bind_cmd(name, app, unix, BIN, PY, HERE)
        else:
            self.cmd = server_cmd(name, app, self.port, workers, tls, self.metrics_port)
        self.proc = None
        self.scraper = None
        tag = f"{name}-{app.split(':')[1]}-{workers}w" + ("-tls" if tls else "") + ("-unix" if unix else "")
        self.log_path = os.path.join(LOG_DIR, f"{tag}.log")

    def connect(self, timeout):
        if self.unix:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(timeout)
            try:
                s.connect(self.unix)
            except OSError:
                s.close()
                raise
            return s
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def start(self, timeout=25):
        """Start, wait for the port and for one good answer. Returns an error string or None."""
        os.makedirs(LOG_DIR, exist_ok=True)
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(pinned(self.cmd, "server"), cwd=HERE, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        STARTED.append(self.proc)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                return f"exited with code {self.proc.returncode} before listening; log: {self.log_tail()}"
            try:
                self.connect(0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            return f"did not listen within {timeout}s; log: {self.log_tail()}"
        # The port may open before workers have loaded the app: wait for an answer.
        last = None
        while time.time() < end:
            last = head_probe(self.port, timeout=3, tls=self.tls, connect=self.connect)
            if last is None:
                if self.metrics_port:
                    self.scraper = MetricsScraper(self.metrics_port)
                    self.scraper.start()
                return None
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        return f"no good answer within {timeout}s ({last}); log: {self.log_tail()}"

    def log_tail(self, n=300):
        try:
            self.logf.flush()
            data = open(self.log_path, "rb").read()[-n:].decode(errors="replace")
            return " ".join(data.split())
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.scraper is not None:
            self.scraper.stop.set()
            self.scraper.join(5)
            if self.scraper.failures:
                log(f"{self.name}: {self.scraper.failures} of {self.scraper.scrapes} scrapes failed")
        if self.proc is not None:
            kill_group(self.proc)
            self.logf.close()


class MetricsScraper(threading.Thread):
    """Scrapes cppgunicorn-metrics' /metrics once a second while it is
    measured (Prometheus' default is every 15 s): the scrape's cost, paid by
    the master on the server's CPU, is in the figures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.scrapes, self.failures = port, threading.Event(), 0, 0

    def run(self):
        while not self.stop.wait(1.0):
            self.scrapes += 1
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    got = b""
                    while chunk := sock.recv(65536):
                        got += chunk
                if not got.startswith(b"HTTP/1.1 200 "):
                    self.failures += 1
            except OSError:
                self.failures += 1


def tls_client():
    """A client context that trusts this run's certificate (and checks its name)."""
    import ssl
    return ssl.create_default_context(cafile=TLS["cert"])


def head_probe(port, timeout=3, tls=False, connect=None):
    """GET / and read only the status line: None if 200, else a description."""
    try:
        s = connect(timeout) if connect else socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:  # the handshake runs here, within the same timeout
            s = tls_client().wrap_socket(s, server_hostname="127.0.0.1")
        with s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0]
        return None if line.split(b" ")[1:2] == [b"200"] else f"answered {line[:60]!r}"
    except (OSError, IndexError) as e:  # ssl.SSLError is an OSError
        return f"{type(e).__name__}: {e}"


def probe(port, method, path, timeout=10, body=None, expect=None, tls=False):
    """One request over its own connection; None if OK, else a description."""
    import http.client
    try:
        if tls:
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_client())
        else:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 200:
            return f"status {r.status}"
        if expect is not None and not expect(data):
            return f"unexpected body ({len(data)} bytes: {data[:60]!r})"
        return None
    except Exception as e:  # noqa: BLE001 - any failure is a failed probe
        return f"{type(e).__name__}: {e}"


def check_workload(port, workload):
    _, path, method = WORKLOADS[workload]
    if workload == "raw" or workload == "flask":
        return probe(port, "GET", path, expect=lambda d: d == b"Hello, World!")
    if workload in TLS_WORKLOADS:
        return probe(port, "GET", path, expect=lambda d: d == b"Hello, World!", tls=True)
    if workload == "json":
        return probe(port, "GET", path, expect=lambda d: json.loads(d)["count"] == 16)
    if workload == "stream":
        return probe(port, "GET", path, expect=lambda d: len(d) == STREAM_SIZE)
    if workload == "post":
        return probe(port, "POST", path, body=b"x" * POST_SIZE, expect=lambda d: d == str(POST_SIZE).encode())
    return None


# ----------------------------------------------------------------------- wrk

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_latency(s):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", s)
    return float(m.group(1)) * UNIT[m.group(2)] if m else None


def parse_size(s):
    m = re.match(r"([\d.]+)([KMGT]?)B$", s)
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}[m.group(2)]


def parse_wrk(out):
    r = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "non2xx": 0, "mb_s": None}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        r["requests"] = int(m.group(1))
        r["elapsed_s"] = float(m.group(2)) * UNIT[m.group(3)] / 1000.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+(\S+)", out)
    if m and parse_size(m.group(1)) is not None:
        r["mb_s"] = parse_size(m.group(1)) / 1024 ** 2
    dist = re.search(r"Latency Distribution\s*\n((?:\s+\d+%\s+\S+\s*\n)+)", out)
    if dist:
        for pct, val in re.findall(r"(\d+)%\s+(\S+)", dist.group(1)):
            if pct in ("50", "99"):
                r[f"p{pct}_ms"] = parse_latency(val)
    if not r["requests"]:
        r["p50_ms"] = r["p99_ms"] = None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
        r["errors"] += sum(map(int, m.groups()))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
        r["errors"] += r["non2xx"]
    return r


LUA_POST = f"""wrk.method = "POST"
wrk.body = string.rep("x", {POST_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
"""

class Wrk:
    def __init__(self, tmp, args):
        self.tmp, self.args = tmp, args
        self.lua_post = os.path.join(tmp, "post.lua")
        with open(self.lua_post, "w") as f:
            f.write(LUA_POST)
        self.seq = 0

    def run(self, port, path, seconds, mode="ka", lua=None, tag="", server_pid=None, tls=False):
        cmd = ["wrk", "-t1", f"-c{CONNS}", f"-d{seconds}s", "--latency"]
        if lua:
            cmd += ["-s", lua]
        if mode == "close":
            cmd += ["-H", "Connection: close"]
        cmd.append(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}")
        env, stats = None, None
        if tls and TLS["shim"]:
            # every handshake a full one, and counted (see wrk_tls.c)
            stats = os.path.join(self.tmp, f"wrk-tls-{self.seq + 1:04d}.json")
            env = dict(os.environ, LD_PRELOAD=TLS["shim"], WRK_TLS_STATS=stats)
        pids = tree(server_pid) if server_pid else []
        c0 = cpu_ticks(pids)
        b0 = cpu0_busy()
        o0 = tcp_active_opens()
        t0 = time.time()
        try:
            proc = subprocess.Popen(pinned(cmd, "client"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env)
            # sample the accept queue a few times while wrk runs: connections a
            # server leaves there are neither answered nor counted by wrk
            queued = []
            for k in range(3):
                try:
                    proc.wait(max(0.01, t0 + seconds * (k + 1) / 4 - time.time()))
                    break
                except subprocess.TimeoutExpired:
                    queued.append(listen_queue(port))
            out, _ = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = (proc.communicate()[0] or "") + "\n[harness: wrk timed out]"
        wall = time.time() - t0
        o1 = tcp_active_opens()
        b1 = cpu0_busy()
        pids = tree(server_pid) if server_pid else []  # workers may have been replaced
        c1 = cpu_ticks(pids)
        self.seq += 1
        with open(os.path.join(LOG_DIR, f"wrk-{self.seq:04d}-{tag}.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n" + out)
        r = parse_wrk(out)
        r["wall_s"] = round(wall, 3)
        r["queued"] = max(queued) if queued else 0
        if stats:
            try:
                with open(stats) as f:
                    hs = json.load(f)
                os.unlink(stats)
                r["tls"] = {k: hs[k] for k in ("version", "cipher", "group")}
                r["handshakes"], r["resumed"] = hs["full"] + hs["resumed"], hs["resumed"]
                if r["requests"]:
                    r["hs_per_req"] = round(hs["full"] / r["requests"], 3)
            except (OSError, ValueError, KeyError):
                pass
        if server_pid:
            server_ticks = max(0, c1[0] - c0[0])
            r["cpu_us"] = server_ticks / TICK / r["requests"] * 1e6 if r["requests"] else None
            # the kernel's share: syscalls, and the wake-ups of the client they cause
            r["sys_us"] = max(0, c1[1] - c0[1]) / TICK / r["requests"] * 1e6 if r["requests"] else None
            busy, total = b1[0] - b0[0], b1[1] - b0[1]
            # share of CPU 0 used by anything but this server (noise indicator)
            r["cpu0_foreign"] = round(max(0.0, (busy - server_ticks) / total), 3) if total > 0 else None
        if o0 is not None and o1 is not None and r["requests"]:
            r["conn_per_req"] = round((o1 - o0) / r["requests"], 3)
        return r


# ---------------------------------------------------------------- slowloris

class Slowloris(threading.Thread):
    """N connections that send a request line, then one header byte per second, forever."""

    HEAD = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: "

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.n = port, n
        self.stop_ev = threading.Event()
        self.socks = []
        self.opened = 0        # connections opened in total
        self.dropped = 0       # closed/reset by the server (then reopened)
        self.refused = 0       # connect() failures
        self.established = 0   # sockets currently past connect with their head sent

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self.refused += 1
            s.close()
            return None
        self.opened += 1
        return [s, False]  # socket, request line sent

    def _tick(self):
        est = 0
        for i, entry in enumerate(self.socks):
            if entry is None:
                self.socks[i] = entry = self._open()
                if entry is None:
                    continue
            s, started = entry
            try:
                if not started:
                    s.send(self.HEAD)  # raises BlockingIOError while connecting
                    entry[1] = True
                else:
                    s.send(b"a")
                est += 1
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if started:
                    self.dropped += 1
                else:
                    self.refused += 1
                s.close()
                self.socks[i] = None
        self.established = est

    def run(self):
        self.socks = [self._open() for _ in range(self.n)]
        while not self.stop_ev.is_set():
            self._tick()
            self.stop_ev.wait(1.0)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        for e in self.socks:
            if e is not None:
                try:
                    e[0].close()
                except OSError:
                    pass


# ----------------------------------------------------------- in-process limit

def inprocess_child(workload, seconds):
    """Runs in a child interpreter: the app called directly, calls/s."""
    sys.path.insert(0, HERE)
    import apps
    from wsgiref.util import setup_testing_defaults
    app_name, path, method = WORKLOADS[workload]
    app = getattr(apps, app_name.split(":")[1])
    base = {}
    setup_testing_defaults(base)
    base.update({"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_PROTOCOL": "HTTP/1.1",
                 "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(b"")})
    body = b"x" * POST_SIZE

    def sr(status, headers, exc_info=None):
        return None

    def one():
        env = dict(base)
        if method == "POST":
            env["CONTENT_LENGTH"] = str(POST_SIZE)
            env["CONTENT_TYPE"] = "application/octet-stream"
            env["wsgi.input"] = io.BytesIO(body)
        r = app(env, sr)
        n = 0
        for chunk in r:
            n += len(chunk)
        close = getattr(r, "close", None)
        if close:
            close()
        return n

    for _ in range(500):
        one()
    n, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(100):
            one()
        n += 100
        if time.perf_counter() >= end:
            break
    dt = time.perf_counter() - t0
    print(json.dumps({"calls_per_s": n / dt, "us_per_call": dt / n * 1e6}))


def inprocess(workload, seconds):
    cmd = pinned([PY, os.path.abspath(__file__), "--inprocess-child", workload, str(seconds)], "server")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=HERE)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


# ------------------------------------------------------------------ metadata

def peer_status():
    path = os.path.join(HERE, ".venv", "peer-status.json")
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return {}


def dist_version(name):
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def build_reason(err):
    if not err:
        return "not installed"
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    first = next((l for l in lines if re.search(r"error[:\]]", l, re.I) and ".c:" in l), None)
    first = first or next((l for l in lines if "error" in l.lower()), lines[0])
    who = next((l for l in lines if l.startswith("Failed to build") or "Failed building wheel" in l), "")
    return (first + (f" ({who})" if who else ""))[:300]


def machine_info():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        wrk_v = wrk_v.split(" Copyright")[0]
    except (OSError, IndexError):
        wrk_v = "?"
    git = lambda *a: subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_v,
        "mem_total_mb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 20),
        "repo_commit": git("rev-parse", "--short", "HEAD"),
        "repo_dirty": bool(git("status", "--porcelain", "--", "src", "include", "python")),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


# ---------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=None, help="seconds per measured cell (default 3; quick 1)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per cell, median kept (default 3; quick 1)")
    ap.add_argument("--only", default="", help="comma-separated servers: " + ",".join(SERVERS))
    ap.add_argument("--workloads", default="",
                    help="comma-separated: " + ",".join(list(WORKLOADS) + list(SCENARIOS))
                    + " (a workload may be suffixed -ka or -close for one mode); or static alone: "
                    "static files against WhiteNoise, Flask, granian and nginx (static_files.py)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 s cells, 1 repeat, raw+flask-ka+slow+rss+limit")
    ap.add_argument("--slow-conns", type=int, default=500, help="slowloris connections (default 500)")
    ap.add_argument("--rss-requests", type=int, default=None, help="requests before the second RSS reading (default 100000; quick 10000)")
    ap.add_argument("--out", default=None, help="output dir (default docs/benchmarks; quick: benchmarks/results)")
    ap.add_argument("--rerender", action="store_true",
                    help="only rewrite results.md and chart.png from the results.json in --out")
    ap.add_argument("--inprocess-child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.seconds is None:
        a.seconds = 1 if a.quick else 3
    if a.repeat is None:
        a.repeat = 1 if a.quick else 3
    if a.rss_requests is None:
        a.rss_requests = 10000 if a.quick else 100000
    if a.out is None:
        a.out = os.path.join(HERE, "results") if a.quick else os.path.join(ROOT, "docs", "benchmarks")
    a.seconds = max(1, int(round(a.seconds)))  # wrk takes whole seconds
    return a


def selected(a):
    # cppgunicorn-metrics (the cost of /metrics) runs only when named.
    only = [x for x in a.only.split(",") if x]
    servers = [s for s in SERVERS if s in only] if only else \
        [s for s in SERVERS if s != "cppgunicorn-metrics"]
    unknown = [s for s in a.only.split(",") if s and s not in SERVERS]
    if unknown:
        sys.exit(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(SERVERS)}")
    if a.workloads:
        names = [w.strip() for w in a.workloads.split(",") if w.strip()]
    elif a.quick:
        names = ["raw", "flask-ka", "slow", "rss", "limit"]
    else:
        names = list(WORKLOADS) + list(SCENARIOS)
    cells, extra = [], set()
    a.nginx_apps = []
    for n in names:
        base, _, mode = n.partition("-")
        if base == "nginx":  # nginx, nginx-raw, nginx-flask
            if mode and mode not in behind_nginx.APPS:
                sys.exit(f"unknown workload {n!r}; nginx takes: " + ", ".join(f"nginx-{x}" for x in behind_nginx.APPS))
            extra.add("nginx")
            a.nginx_apps += [x for x in ([mode] if mode else behind_nginx.APPS) if x not in a.nginx_apps]
            continue
        if base in SCENARIOS and not mode:
            extra.add(base)
            continue
        if base not in WORKLOADS or (mode and mode not in MODES):
            sys.exit(f"unknown workload {n!r}; known: {', '.join(list(WORKLOADS) + list(SCENARIOS))}")
        for m in ([mode] if mode else MODES):
            if (base, m) not in cells:
                cells.append((base, m))
    return servers, cells, extra


def main(argv):
    a = parse_args(argv)
    if a.inprocess_child:
        inprocess_child(a.inprocess_child[0], float(a.inprocess_child[1]))
        return 0
    if a.rerender:
        with open(os.path.join(a.out, "results.json")) as f:
            write_outputs(json.load(f), a.out)
        log(f"rewrote {os.path.join(a.out, 'results.md')} and chart.png")
        return 0
    if "static" in [w.strip() for w in a.workloads.split(",")]:
        # The static-file cell has servers of its own (nginx among them)
        # and a table of its own: static_files.py.
        import static_files
        if shutil.which("wrk") is None:
            sys.exit("wrk not found (apt-get install wrk)")
        atexit.register(kill_all)
        os.makedirs(LOG_DIR, exist_ok=True)
        return static_files.run(a)
    servers, cells, extra = selected(a)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found (apt-get install wrk)")
    atexit.register(kill_all)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    if os.path.isdir(LOG_DIR):
        shutil.rmtree(LOG_DIR, ignore_errors=True)
    os.makedirs(LOG_DIR, exist_ok=True)

    t_start = time.time()
    pinning = check_pinning()
    command = os.environ.get("BENCH_COMMAND") or " ".join(["benchmarks/run.py"] + argv)
    meta = machine_info()
    meta.update({
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "pinning": ("server on CPU 0, wrk on CPU 1 (taskset)" if pinning else "none (fewer than 2 usable CPUs or no taskset)"),
        "seconds": a.seconds, "repeat": a.repeat, "conns": CONNS, "quick": a.quick,
        "slow_conns": a.slow_conns, "rss_requests": a.rss_requests,
    })
    status = peer_status()
    peers = {}
    for s in SERVERS:
        d = DIST[s]
        st = status.get(d, {})
        v = dist_version(d)
        peers[s] = {"dist": d, "version": v, "built": v is not None,
                    "error": None if v is not None else build_reason(st.get("error"))}
    failures = []  # {"server", "what", "detail"}
    for s in SERVERS:
        if not peers[s]["built"]:
            failures.append({"server": s, "what": "failed to build", "detail": peers[s]["error"]})
    results = {"meta": meta, "peers": peers, "failures": failures, "inprocess": {}, "cells": [],
               "slow_client": [], "rss": []}
    log(f"servers: {', '.join(servers)}; cells: {', '.join(f'{w}-{m}' for w, m in cells)}; "
        f"extra: {', '.join(sorted(extra)) or '-'}; {a.seconds}s x {a.repeat}; pinning: {meta['pinning']}")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        wrk = Wrk(tmp, a)
        if any(w in TLS_WORKLOADS for w, _ in cells):
            meta["tls"] = make_tls(tmp)
            log(f"tls: {meta['tls']}")

        # 1. the limit: each app in-process, same interpreter, on the server
        # CPU, measured once per round (below) like every cell (the TLS
        # workload's is the Flask hello's: same app, same path)
        limit_ws = list(dict.fromkeys(LIMIT_OF.get(w, w) for w, _ in cells) or ["raw", "flask"]) \
            if ("limit" in extra or not a.workloads) else []
        limit_runs = {w: [] for w in limit_ws}

        def save():
            write_outputs(results, a.out)

        # 2. the matrix: every server x workload x mode, 1 worker (+ 2-worker Flask hello)
        # One server start per app and transport (plain or TLS).
        plan = []
        for s in servers:
            groups = {}
            for w, m in cells:
                tls = w in TLS_WORKLOADS
                if tls and s in NO_TLS:
                    continue  # no TLS at all: not part of the TLS workloads (said in the notes)
                groups.setdefault((WORKLOADS[w][0], tls), []).append((w, m))
            for (app, tls), ws in groups.items():
                plan.append((s, app, 1, ws, tls))
            if "flask2w" in extra and s in MULTI_WORKER:
                plan.append((s, WORKLOADS["flask"][0], 2, [("flask", m) for m in MODES], False))
        # A server that has TLS elsewhere but cannot serve it here (a uWSGI built
        # without OpenSSL, no certificate) keeps its rows, with the reason.
        no_tls = {}
        for s, app, workers, ws, tls in plan:
            if tls and peers[s]["built"]:
                why = TLS["error"] or tls_reason(s)
                if why:
                    no_tls[(s, app)] = why
                    log(f"{s:16} tls: not taking part: {why}")
                    for w, m in ws:
                        results["cells"].append({"server": s, "workload": w, "mode": m, "workers": workers,
                                                 "error": f"not taking part: {why}"})
        plan = [p for p in plan if not (p[4] and (p[0], p[1]) in no_tls)]
        for s, app, workers, ws, tls in plan:
            if not peers[s]["built"]:
                for w, m in ws:
                    results["cells"].append({"server": s, "workload": w if workers == 1 else "flask2w",
                                             "mode": m, "workers": workers, "error": "failed to build"})
        # Rounds: each round runs every server once per cell, in an order
        # rotated from round to round, and a cell keeps the median of its
        # rounds. The machine is shared: its speed drifts over minutes, and
        # running one server's repeats back to back would hand that drift to
        # whichever server ran at the better moment.
        once = argparse.Namespace(**{**vars(a), "repeat": 1})
        todo = [p for p in plan if peers[p[0]]["built"]]
        merged = {}
        for r in range(a.repeat):
            for w in limit_ws:
                limit_runs[w].append(inprocess(w, max(1.0, a.seconds / 2)))
            k = r % len(todo) if todo else 0
            for s, app, workers, ws, tls in todo[k:] + todo[:k]:
                part = {"cells": [], "failures": []}
                run_server_cells(part, wrk, once, s, app, workers, ws, tmp, tls)
                for f in part["failures"]:
                    if f not in results["failures"]:
                        results["failures"].append(f)
                for c in part["cells"]:
                    key = (c["server"], c["workload"], c["mode"], c["workers"])
                    m = merged.setdefault(key, {x: c[x] for x in ("server", "workload", "mode", "workers")}
                                          | {"runs": []})
                    m["runs"] += c.get("runs", [])
                    if c.get("error"):
                        m["error"] = c["error"]
            log(f"round {r + 1} of {a.repeat} done")
        for w, runs in limit_runs.items():
            ok = [r for r in runs if "calls_per_s" in r]
            if ok:
                results["inprocess"][w] = {"calls_per_s": median([r["calls_per_s"] for r in ok]),
                                           "us_per_call": median([r["us_per_call"] for r in ok]), "runs": runs}
                log(f"limit  {w:7} {results['inprocess'][w]['calls_per_s']:10.0f} calls/s "
                    f"{results['inprocess'][w]['us_per_call']:7.1f} µs/call")
            else:
                results["inprocess"][w] = {"error": runs[0].get("error")}
                log(f"limit  {w:7} failed: {runs[0].get('error')}")
        for m in merged.values():
            if m["runs"]:
                m.update({x: median([run.get(x) for run in m["runs"]]) for x in CELL_FIELDS})
            results["cells"].append(m)
        save()

        # 3. behind nginx: default and tuned proxy_pass, over TCP and a unix socket
        if "nginx" in extra:
            run_nginx_cells(results, wrk, a, servers, peers, tmp)
            save()

        # 4. per server: RSS idle / after N requests, and the slow-client scenario
        if "rss" in extra or "slow" in extra:
            for s in servers:
                if not peers[s]["built"]:
                    continue
                run_session(results, wrk, a, s, extra)
                save()

    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    meta["duration_s"] = round(time.time() - t_start)
    save()
    log(f"done in {meta['duration_s']} s: {os.path.join(a.out, 'results.md')}")
    return 0


def run_nginx_cells(results, wrk, a, servers, peers, tmp):
    """Every server behind nginx (behind_nginx.py), in rounds as the matrix."""
    results["meta"]["nginx"] = behind_nginx.nginx_version()
    rows = results.setdefault("nginx", [])
    if not os.path.exists(behind_nginx.NGINX):
        log(f"nginx: {behind_nginx.NGINX} not found (apt-get install nginx-light): no behind-nginx cells")
        results["failures"].append({"server": "nginx", "what": "failed to run",
                                    "detail": f"{behind_nginx.NGINX} not found: no behind-nginx cells"})
        return
    plan = []
    for s in servers:
        for app in a.nginx_apps:
            for t in behind_nginx.TRANSPORTS:
                if not peers[s]["built"]:
                    for p in behind_nginx.PROXIES:
                        rows.append({"server": s, "app": app, "proxy": p, "transport": t, "error": "failed to build"})
                    continue
                plan.append((s, app, t))
    merged = {}
    for r in range(a.repeat):
        k = r % len(plan) if plan else 0
        for s, app, t in plan[k:] + plan[:k]:
            for p, run in nginx_round(wrk, a, s, app, t, tmp).items():
                m = merged.setdefault((s, app, p, t), {"server": s, "app": app, "proxy": p, "transport": t,
                                                       "runs": []})
                if "error" in run:
                    m["error"] = run["error"]
                else:
                    m["runs"].append(run)
        log(f"nginx round {r + 1} of {a.repeat} done")
    for m in merged.values():
        if m["runs"]:
            m.update({x: median([run.get(x) for run in m["runs"]]) for x in CELL_FIELDS})
        rows.append(m)


def nginx_round(wrk, a, s, app, transport, tmp):
    """One run of both proxy configurations for one server, app and transport:
    {proxy: wrk result or {"error": ...}}."""
    apps_name = WORKLOADS[app][0]
    unix = os.path.join(tmp, f"{s}-{app}.sock") if transport == "unix" else None
    if unix and os.path.exists(unix):
        os.unlink(unix)  # left by the previous round: not every server removes its socket file
    srv = Server(s, apps_name, 1, unix=unix)
    if srv.cmd is None:
        why = behind_nginx.NO_UNIX_REASON.get(s, "cannot bind a unix socket")
        return {p: {"error": why} for p in behind_nginx.PROXIES}
    err = srv.start()
    if err:
        srv.stop()
        log(f"{s:16} nginx {app} {transport}: did not start: {err}")
        return {p: {"error": f"did not start: {err}"} for p in behind_nginx.PROXIES}
    ports = {p: free_port() for p in behind_nginx.PROXIES}
    upstream = f"unix:{unix}" if unix else f"127.0.0.1:{srv.port}"
    ng = behind_nginx.Nginx(os.path.join(tmp, f"nginx-{s}-{app}-{transport}"), upstream, ports,
                            lambda cmd: pinned(cmd, "client"), os.path.join(LOG_DIR, f"nginx-{s}-{app}-{transport}.log"))
    out = {}
    try:
        err = ng.start()
        if err:
            return {p: {"error": err} for p in behind_nginx.PROXIES}
        wrk.run(ports["tuned"], "/", 1, "ka", tag=f"{s}-nginx-{app}-{transport}-warmup")
        for p in behind_nginx.PROXIES:
            bad = check_workload(ports[p], app)
            if bad:
                out[p] = {"error": f"wrong answer through nginx: {bad}"}
                continue
            r = wrk.run(ports[p], "/", a.seconds, "ka", tag=f"{s}-nginx-{app}-{p}-{transport}",
                        server_pid=srv.proc.pid)
            if not srv.alive():
                r = {"error": f"server died: {srv.log_tail()}"}
            out[p] = r
            if "rps" in r:
                log(f"{s:16} nginx {app:5} {p:7} {transport:4} {r['rps']:9.0f} req/s  cpu {fmt(r.get('cpu_us'), 1):>6} "
                    f"µs/req  p99 {fmt(r.get('p99_ms'), 2)} ms  conn/req {fmt(r.get('conn_per_req'), 2)}  "
                    f"err {r['errors']:.0f}")
    finally:
        ng.stop()
        srv.stop()
    return out


# What a cell keeps of its runs (their medians).
CELL_FIELDS = ("rps", "p50_ms", "p99_ms", "cpu_us", "sys_us", "errors", "conn_per_req", "mb_s", "cpu0_foreign",
               "queued", "hs_per_req", "resumed")


def run_server_cells(results, wrk, a, s, app, workers, ws, tmp, tls=False):
    wname = lambda w: "flask2w" if workers == 2 else w
    srv = Server(s, app, workers, tls)
    err = srv.start()
    if err:
        what = f"{app}{' over TLS' if tls else ''}, {workers} worker(s)"
        log(f"{s:16} {what}: did not start: {err}")
        results["failures"].append({"server": s, "what": "failed to run", "detail": f"{what}: {err}"})
        for w, m in ws:
            results["cells"].append({"server": s, "workload": wname(w), "mode": m, "workers": workers,
                                     "error": "did not start"})
        srv.stop()
        return
    try:
        # warm-up on the first workload's path
        w0 = ws[0][0]
        wrk.run(srv.port, WORKLOADS[w0][1], 1, "ka", lua=wrk.lua_post if WORKLOADS[w0][2] == "POST" else None,
                tag=f"{s}-warmup{'-tls' if tls else ''}", tls=tls)
        for w, m in ws:
            _, path, method = WORKLOADS[w]
            cell = {"server": s, "workload": wname(w), "mode": m, "workers": workers}
            bad = check_workload(srv.port, w)
            if bad:
                cell["error"] = f"wrong answer: {bad}"
                results["cells"].append(cell)
                log(f"{s:16} {wname(w):7} {m:5} wrong answer: {bad}")
                results["failures"].append({"server": s, "what": "failed to run",
                                            "detail": f"{wname(w)}: wrong answer: {bad}"})
                continue
            runs = []
            for i in range(a.repeat):
                if not srv.alive():
                    break
                runs.append(wrk.run(srv.port, path, a.seconds, m, lua=wrk.lua_post if method == "POST" else None,
                                    tag=f"{s}-{wname(w)}-{m}-{i}", server_pid=srv.proc.pid, tls=tls))
            cell["runs"] = runs
            if not srv.alive():
                cell["error"] = f"server died: {srv.log_tail()}"
                results["failures"].append({"server": s, "what": "failed to run",
                                            "detail": f"{wname(w)}-{m}: server died: {srv.log_tail()}"})
            if runs:
                cell.update({k: median([r.get(k) for r in runs]) for k in CELL_FIELDS})
                log(f"{s:16} {wname(w):7} {m:5} {cell['rps']:9.0f} req/s  cpu {fmt(cell['cpu_us'], 1):>6} µs/req  "
                    f"p50 {fmt(cell['p50_ms'], 2)} ms  p99 {fmt(cell['p99_ms'], 2)} ms  "
                    f"conn/req {fmt(cell['conn_per_req'], 2)}  err {cell['errors']:.0f}"
                    + (f"  handshakes/req {fmt(cell['hs_per_req'], 2)} (resumed {fmt(cell['resumed'])})"
                       if tls else ""))
            results["cells"].append(cell)
    finally:
        srv.stop()


def run_session(results, wrk, a, s, extra):
    srv = Server(s, WORKLOADS["flask"][0], 1)
    err = srv.start()
    if err:
        log(f"{s:16} session: did not start: {err}")
        results["failures"].append({"server": s, "what": "failed to run", "detail": f"flask hello session: {err}"})
        srv.stop()
        return
    try:
        pid = srv.proc.pid
        if "rss" in extra:
            time.sleep(0.5)
            ws = workers_of(pid)
            t = tree(pid)
            idle = sum(rss_kb(p) for p in ws) / max(1, len(ws))
            tree_idle = sum(rss_kb(p) for p in t)
            cap = 15 if a.quick else 45
            done, t_end, step = 0, time.time() + cap, 1
            while done < a.rss_requests:
                left = t_end - time.time()
                if left < 1:
                    break
                r = wrk.run(srv.port, "/", int(min(left, step)), "ka", tag=f"{s}-rss", server_pid=pid)
                done += r["requests"]
                rate = r["requests"] / max(0.5, r.get("elapsed_s") or 1)
                if not srv.alive() or rate <= 0:
                    break
                step = max(1, int((a.rss_requests - done) / rate * 1.05 + 0.999))
            time.sleep(0.3)
            ws2 = workers_of(pid)
            after = sum(rss_kb(p) for p in ws2) / max(1, len(ws2))
            tree_after = sum(rss_kb(p) for p in tree(pid))
            row = {"server": s, "workers_seen": len(ws), "processes": len(t), "idle_kb": idle, "after_kb": after,
                   "tree_idle_kb": tree_idle, "tree_after_kb": tree_after, "requests": done}
            results["rss"].append(row)
            log(f"{s:16} rss: idle {idle / 1024:.1f} MiB/worker, after {done} req "
                f"{after / 1024:.1f} MiB/worker (tree {tree_idle / 1024:.1f} -> {tree_after / 1024:.1f} MiB)")
        if "slow" in extra:
            base_runs = [wrk.run(srv.port, "/", a.seconds, "ka", tag=f"{s}-slow-base-{i}", server_pid=pid)
                         for i in range(a.repeat)]
            lor = Slowloris(srv.port, a.slow_conns)
            lor.start()
            time.sleep(1.5 if a.quick else 2.5)  # let the connections open and send their first bytes
            est_before = lor.established
            slow_runs = []
            for i in range(a.repeat):
                if not srv.alive():
                    break
                slow_runs.append(wrk.run(srv.port, "/", a.seconds, "ka", tag=f"{s}-slow-{i}", server_pid=pid))
            est_after = lor.established
            lor.stop()
            alive = srv.alive() and probe(srv.port, "GET", "/", timeout=5) is None
            base = median([r["rps"] for r in base_runs])
            slow = median([r["rps"] for r in slow_runs]) if slow_runs else 0.0
            row = {"server": s, "baseline_rps": base, "slow_rps": slow,
                   "ratio": (slow / base) if base else None,
                   "slow_p99_ms": median([r.get("p99_ms") for r in slow_runs if r.get("requests")]),
                   "slow_queued": median([r.get("queued") for r in slow_runs]),
                   "slow_errors": median([r.get("errors") for r in slow_runs]),
                   "slow_open_before": est_before, "slow_open_after": est_after,
                   "slow_opened_total": lor.opened, "slow_dropped": lor.dropped, "slow_refused": lor.refused,
                   "answers_after": alive, "base_runs": base_runs, "slow_runs": slow_runs}
            results["slow_client"].append(row)
            log(f"{s:16} slow: {base:.0f} -> {slow:.0f} req/s (x{fmt(row['ratio'], 2)}); slow conns open "
                f"{est_before}/{est_after}, dropped {lor.dropped}, refused {lor.refused}; answers after: {alive}")
    finally:
        srv.stop()


# ------------------------------------------------------------------- output

def fmt(x, nd=0, suffix=""):
    if x is None:
        return "—"
    if nd == 0:
        return f"{x:,.0f}{suffix}"
    return f"{x:.{nd}f}{suffix}"


def ratio(x, y):
    if x is None or not y:
        return "—"
    v = x / y
    if v == 0 or v >= 0.1:
        return f"{v:.2f}×"
    return f"{v:.{min(6, 2 - math.floor(math.log10(v)))}f}×"  # 3 significant digits


def cell_lookup(results):
    return {(c["server"], c["workload"], c["mode"]): c for c in results["cells"]}


def write_outputs(results, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(render_md(results))
    try:
        chart(results, os.path.join(out, "chart.png"))
    except Exception as e:  # noqa: BLE001 - a chart failure must not lose the tables
        log(f"chart failed: {type(e).__name__}: {e}")


def render_md(res):
    m = res["meta"]
    L = []
    L.append("# Side-by-side benchmark: cppgunicorn and other WSGI servers\n")
    L.append("Generated by `benchmarks/run.py`; see `benchmarks/README.md` for what each column means. "
             "**This machine is shared and noisy: only ratios between rows of this one run mean "
             "anything, never the absolute numbers.**\n")
    L.append(f"- Command: `{m['command']}`")
    L.append(f"- Date: {m['date']}; duration {m.get('duration_s', '?')} s")
    L.append(f"- Machine: {m['nproc']} CPUs, {m['cpu_model']}, kernel {m['kernel']}, {m['mem_total_mb']} MiB RAM; "
             f"load average at start {' '.join(m['loadavg_start'])}, at end {' '.join(m.get('loadavg_end', ['?']))}")
    L.append(f"- Python {m['python']}; {m['wrk']}")
    L.append(f"- Pinning: {m['pinning']}; wrk `-t1 -c{m['conns']} --latency`, {m['seconds']} s per run, "
             f"{m['repeat']} round(s), median kept (each round runs every server once per cell, "
                 "in an order rotated from round to round, and the in-process limit once)")
    L.append(f"- cppgunicorn built from repo commit {m['repo_commit']}" + (" (with uncommitted changes in src/)" if m['repo_dirty'] else ""))
    vers = ", ".join(f"{p['dist']} {p['version']}" if p["built"] else f"{p['dist']} (not built)"
                     for s, p in res["peers"].items() if s != "gunicorn-gthread")
    L.append(f"- Versions: {vers}; flask {dist_version('flask')}")
    noise = [r.get("cpu0_foreign") for c in res["cells"] for r in c.get("runs", []) if r.get("cpu0_foreign") is not None]
    if noise:
        L.append(f"- Noise: share of the server CPU (CPU 0) busy with other processes during measured runs: "
                 f"median {statistics.median(noise) * 100:.0f}%, max {max(noise) * 100:.0f}%")
    L.append("")

    L.append("## Failed to build / failed to run\n")
    served_none = {}
    for c in res["cells"]:
        if c.get("runs") and not c.get("rps"):
            served_none.setdefault(c["server"], []).append(f"{c['workload']}-{c['mode']}")
    for fl in res["failures"]:
        L.append(f"- **{fl['server']}**: {fl['what']}: {fl['detail']}")
    for srv, ws in served_none.items():
        L.append(f"- **{srv}**: ran but completed no request within a {m['seconds']} s run: {', '.join(ws)} "
                 "(see Notes)")
    if not res["failures"] and not served_none:
        L.append("- none")
    L.append("")

    inp = res["inprocess"]
    if inp:
        L.append("## The limit: each app called in-process\n")
        L.append("`app(environ, start_response)` in a loop in one interpreter on the server CPU, body iterated, "
                 "no HTTP and no sockets: no server can beat it.\n")
        L.append("| workload | calls/s | µs/call |")
        L.append("| --- | ---: | ---: |")
        for w, r in inp.items():
            L.append(f"| {WORKLOAD_TITLES[w]} | {fmt(r.get('calls_per_s'))} | {fmt(r.get('us_per_call'), 1)} |")
        L.append("")

    look = cell_lookup(res)
    order = TABLE_ORDER
    present = [(w, mo) for w in order for mo in MODES if any(c["workload"] == w and c["mode"] == mo for c in res["cells"])]
    if present:
        L.append("## Throughput, latency and CPU per workload\n")
        L.append("req/s and latency from wrk; CPU-µs/req = user+system CPU of the server's whole process tree "
                 "divided by requests served; kernel = its system part (syscalls, and the wake-ups of the "
                 "client they cause); ×gunicorn-sync = req/s over gunicorn sync's in the same table; "
                 "×limit = req/s over the in-process calls/s of the same app; overhead = CPU-µs/req minus the "
                 "app's in-process µs/call (what the server itself costs); conn/req = new TCP connections per "
                 "request (0 = keep-alive held, 1 = one connection per request); queued = wrk connections waiting "
                 "in the server's accept queue, sampled 3 times during each run (with conn/req near 0 they are "
                 "never served: wrk counts neither their wait nor an error; with conn/req 1 they are served in "
                 "turn); "
                 "errors = wrk socket errors + non-2xx answers per run.\n")
    for w, mo in present:
        tls = w in TLS_WORKLOADS
        full = tls and m.get("tls", {}).get("wrk_preload") == "ok"  # every handshake a full one
        L.append(f"### {WORKLOAD_TITLES[w]} — {(TLS_MODE_TITLES if full else MODE_TITLES)[mo]}\n")
        if tls:
            L.append(tls_lead(res, w, mo) + "\n")
        cols = ["server", "req/s", "CPU-µs/req", "kernel µs/req", "overhead µs/req", "p50 ms", "p99 ms",
                "×gunicorn-sync"] + (["×granian"] if tls else []) + ["×limit", "conn/req"] \
            + (["handshakes/req"] if tls else []) + ["queued", "errors"]
        L.append("| " + " | ".join(cols) + " |")
        L.append("| --- |" + " ---: |" * (len(cols) - 1))
        ref = look.get(("gunicorn-sync", w, mo), {}).get("rps")
        ref_granian = look.get(("granian", w, mo), {}).get("rps")
        lim = inp.get(LIMIT_OF.get(w, w), {}).get("calls_per_s")
        lim_us = inp.get(LIMIT_OF.get(w, w), {}).get("us_per_call")
        rows = [c for c in res["cells"] if c["workload"] == w and c["mode"] == mo]
        rows.sort(key=lambda c: -(c.get("rps") or -1))
        for c in rows:
            name = f"**{c['server']}**" if c["server"].startswith("cppgunicorn") else c["server"]
            if c.get("rps") is None:
                L.append(f"| {name} | {c.get('error', '—')} |" + " |" * (len(cols) - 2))
                continue
            if tls:
                hs = fmt(c.get("hs_per_req"), 2)
                if c.get("resumed"):
                    hs += f" ({fmt(c['resumed'])} resumed)"
                L.append(f"| {name}{tls_row_note(c, mo)} | {fmt(c['rps'])} | {fmt(c.get('cpu_us'), 1)} | "
                         f"{fmt(c.get('sys_us'), 1)} | {fmt(over_us(c, lim_us), 1)} | "
                         f"{fmt(c.get('p50_ms'), 2)} | {fmt(c.get('p99_ms'), 2)} | {ratio(c['rps'], ref)} | "
                         f"{ratio(c['rps'], ref_granian)} | {ratio(c['rps'], lim)} | {fmt(c.get('conn_per_req'), 2)} | "
                         f"{hs} | {fmt(c.get('queued'))} | {fmt(c.get('errors'))} |")
                continue
            note = f" ({c['error']})" if c.get("error") else ""
            if mo == "close" and c.get("conn_per_req") is not None and c["conn_per_req"] < 0.5:
                note += " (kept the connection open despite Connection: close)"
            over = c["cpu_us"] - lim_us if c.get("cpu_us") is not None and lim_us is not None else None
            L.append(f"| {name}{note} | {fmt(c['rps'])} | {fmt(c.get('cpu_us'), 1)} | {fmt(c.get('sys_us'), 1)} | "
                     f"{fmt(over, 1)} | "
                     f"{fmt(c.get('p50_ms'), 2)} | {fmt(c.get('p99_ms'), 2)} | {ratio(c['rps'], ref)} | "
                     f"{ratio(c['rps'], lim)} | {fmt(c.get('conn_per_req'), 2)} | {fmt(c.get('queued'))} | "
                     f"{fmt(c.get('errors'))} |")
        cli, inproc = look.get(("cppgunicorn", w, mo), {}), look.get(("cppgunicorn-serve", w, mo), {})
        if cli.get("rps") and inproc.get("rps"):
            L.append(f"\ncppgunicorn-serve (`cppgunicorn.serve(app)`, in-process, no fork) over cppgunicorn "
                     f"(the command, one worker): {ratio(inproc['rps'], cli['rps'])} req/s, "
                     f"{fmt(inproc.get('cpu_us'), 1)} vs {fmt(cli.get('cpu_us'), 1)} CPU-µs/req.")
        L.append("")

    L += behind_nginx.render(res, fmt, ratio)

    if res["slow_client"]:
        L.append("## Slow clients: Flask hello under slowloris\n")
        L.append(f"{m['slow_conns']} connections that each send a request line and then one header byte per second, "
                 "never finishing (reopened when the server drops them); meanwhile wrk measures Flask hello with "
                 "keep-alive. ratio = req/s with them over req/s without them (1.00× = unaffected, 0 = starved). "
                 "connected = slow connections established (by the kernel; the server may not have accepted them) "
                 "before / after the measured runs; queued = connections waiting in the accept queue during "
                 "the runs.\n")
        L.append("| server | req/s without | req/s with | ratio | p99 ms with | errors with | slow connected before/after | queued | dropped by server | answers after |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for r in sorted(res["slow_client"], key=lambda r: -(r.get("ratio") or 0)):
            name = f"**{r['server']}**" if r["server"].startswith("cppgunicorn") else r["server"]
            L.append(f"| {name} | {fmt(r['baseline_rps'])} | {fmt(r['slow_rps'])} | {fmt(r['ratio'], 2, '×')} | "
                     f"{fmt(r['slow_p99_ms'], 2)} | {fmt(r['slow_errors'])} | {r['slow_open_before']}/{r['slow_open_after']} | "
                     f"{fmt(r.get('slow_queued'))} | {r['slow_dropped']} | {'yes' if r['answers_after'] else 'no'} |")
        L.append("")

    if res["rss"]:
        L.append("## Memory: RSS per worker, Flask hello, 1 worker\n")
        L.append("Per worker = summed RSS of the worker processes (the leaves of the server's process tree, or the "
                 "process itself for single-process servers) divided by their number. Idle = after start and one "
                 f"request; after = after {m['rss_requests']:,} keep-alive requests (capped in time). "
                 "Tree = every process of the server, master included.\n")
        L.append("| server | idle MiB/worker | after MiB/worker | growth MiB | ×gunicorn-sync (idle) | tree idle MiB | tree after MiB | processes | requests done |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        ref = next((r["idle_kb"] for r in res["rss"] if r["server"] == "gunicorn-sync"), None)
        for r in sorted(res["rss"], key=lambda r: r["idle_kb"]):
            name = f"**{r['server']}**" if r["server"].startswith("cppgunicorn") else r["server"]
            L.append(f"| {name} | {r['idle_kb'] / 1024:.1f} | {r['after_kb'] / 1024:.1f} | "
                     f"{(r['after_kb'] - r['idle_kb']) / 1024:+.1f} | {ratio(r['idle_kb'], ref)} | "
                     f"{r['tree_idle_kb'] / 1024:.1f} | {r['tree_after_kb'] / 1024:.1f} | {r['processes']} | {r['requests']:,} |")
        L.append("")

    L.append("## Notes\n")
    L.append("- gunicorn's sync worker does not keep connections alive: its keep-alive rows are in fact one "
             "connection per request (see conn/req).")
    L.append("- uWSGI (`--http11-socket`, one process, no threads) serves one keep-alive connection at a "
             "time: the other wrk connections wait in the accept queue for the whole run (see queued), and wrk "
             "counts neither their wait nor an error, so its latency covers the one connection served. It also "
             "ignores `Connection: close` from the client and, for a body without Content-Length, holds the "
             "connection until its socket timeout (4 s) after the body.")
    L.append("- cppgunicorn runs with its defaults: `--threads 1`, the app called on the worker's loop thread.")
    L.append("- The 2-worker rows put both workers on the server CPU (wrk needs the other one on this machine): "
             "they show the cost of running several workers, not scaling.")
    L.append("- The 1 MiB stream has no Content-Length: servers frame it with chunked encoding or by closing "
             "the connection after it (bjoern does the latter when the client sent `Connection: close`). wrk "
             "counts a read error at each such close and reconnects, so those rows show errors and conn/req "
             "near 2 although the responses are complete (each cell first checks one full answer: status, "
             "body length, or the POST's echoed length).")
    if any(c["workload"] in TLS_WORKLOADS for c in res["cells"]):
        L += tls_notes(res)
    L.append("")
    return "\n".join(L)


def over_us(c, lim_us):
    return c["cpu_us"] - lim_us if c.get("cpu_us") is not None and lim_us is not None else None


def tls_row_note(c, mo):
    note = f" ({c['error']})" if c.get("error") else ""
    if mo == "close" and c.get("conn_per_req") is not None and c["conn_per_req"] < 0.5:
        note += " (kept the connection open despite Connection: close)"
    return note


def tls_params(res, w):
    """{server: "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519"} as wrk negotiated them (first handshake of each run)."""
    out = {}
    for c in res["cells"]:
        if c["workload"] != w:
            continue
        for r in c.get("runs", []):
            t = r.get("tls")
            if t and t.get("version"):
                out.setdefault(c["server"], set()).add(" ".join(x for x in (t["version"], t["cipher"], t["group"]) if x))
    return {s: ", ".join(sorted(v)) for s, v in out.items()}


def tls_lead(res, w, mo):
    full = res["meta"].get("tls", {}).get("wrk_preload") == "ok"
    if mo == "close":
        what = (f"each request is a new TCP connection, a {'full ' if full else ''}TLS handshake"
                f"{' (no session resumption)' if full else ''} and the request: req/s here are handshakes per second")
    else:
        what = ("each of wrk's 16 connections does one TLS handshake and is kept alive, except by gunicorn sync "
                "and uWSGI's `--https-socket`, which close after each answer (a handshake per request)")
    return (f"The `flask` workload's Flask hello over HTTPS: {what}. ×granian = req/s over granian's in the same "
            f"table; handshakes/req = {'full ' if full else ''}TLS handshakes wrk completed per request. "
            f"{', '.join(NO_TLS[:-1])} and {NO_TLS[-1]} have no TLS and take no part. Certificate, each server's "
            f"TLS options and what was negotiated: see the notes.")


def tls_notes(res):
    t = res["meta"].get("tls", {})
    L = ["- TLS workload: every server on the same certificate and key, each with its own options: cppgunicorn "
         "and gunicorn `--certfile CERT --keyfile KEY`, granian `--ssl-certificate CERT --ssl-keyfile KEY`, "
         "uWSGI `--https-socket 127.0.0.1:PORT,CERT,KEY` (with the same `--http-keepalive --http-auto-chunked` "
         "as its plain socket). " + ", ".join(NO_TLS) + " have no TLS and do not take part. Probes, warm-up and "
         "wrk all speak TLS (`https://127.0.0.1:PORT/`); the probes check the certificate."]
    L.append(f"- Certificate: {t.get('certificate', '?')}. TLS libraries: cppgunicorn, gunicorn (Python's `ssl`) "
             f"and uWSGI use the system's OpenSSL ({t.get('openssl', '?')}), as wrk does; granian brings its own "
             f"(rustls, built into its wheel).")
    params = tls_params(res, "tls")
    if params:
        if len(set(params.values())) == 1:
            L.append(f"- Negotiated by wrk with every server: {next(iter(params.values()))}.")
        else:
            L.append("- Negotiated by wrk: " + "; ".join(f"{s} {p}" for s, p in params.items()) + ".")
        other = [s for s, p in params.items() if not p.endswith(" X25519")]
        if other:
            L.append(f"- wrk (OpenSSL's default client) sends a key share for X25519 only; {', '.join(other)} "
                     "picked another group, so each of its handshakes takes a HelloRetryRequest first (one more "
                     "round trip, and a second ClientHello).")
    if t.get("wrk_preload") == "ok":
        L.append("- wrk keeps each connection slot's TLS session when it reconnects (`SSL_shutdown` then "
                 "`SSL_clear`) and offers it on the next handshake, so its new-connection runs would measure "
                 "resumed handshakes (no certificate, no signature) after the first one per slot. "
                 "`benchmarks/wrk_tls.c`, preloaded into wrk for the TLS cells, drops that session, so every "
                 "handshake is a full one, and counts them (handshakes/req; resumed ones would be shown apart).")
    elif t.get("wrk_preload"):
        L.append(f"- The wrk preload (`benchmarks/wrk_tls.c`) {t['wrk_preload']}.")
    if any(c["server"] == "uwsgi" and c["workload"] in TLS_WORKLOADS and c.get("rps") for c in res["cells"]):
        L.append("- uWSGI's `--https-socket` keeps no connection alive: it answers HTTP/1.1 without "
                 "`Connection: close`, then closes. In both modes its rows are one connection (and one "
                 "handshake) per request, and wrk counts a read error at each of those closes (the answers before "
                 "them are complete).")
    if any(c["server"].startswith("gunicorn") and c["workload"] in TLS_WORKLOADS and c.get("rps")
           for c in res["cells"]):
        L.append("- gunicorn (sync and gthread) builds a new SSL context, loading the certificate and key, for each "
                 "connection it accepts (`gunicorn.sock.ssl_wrap_socket`): a large part of its cost per connection.")
    if t.get("error"):
        L.append(f"- TLS set-up failed: {t['error']}")
    return L


def chart(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    look = cell_lookup(res)
    # keep-alive panels, and for TLS also the new-connection one (handshakes/s)
    panels = [(w, mo) for w in TABLE_ORDER for mo in (("ka", "close") if w in TLS_WORKLOADS else ("ka",))
              if any(c["workload"] == w and c["mode"] == mo and c.get("rps") for c in res["cells"])]
    servers = [s for s in SERVERS if any(c["server"] == s and c.get("rps") for c in res["cells"])]
    if not panels or not servers:
        return
    ncol = min(3, len(panels))
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(8.0, 4.4 * ncol), 4.3 * nrow + 0.8), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    cmap = plt.get_cmap("tab10")
    colors = {s: ("#d62728" if s == "cppgunicorn" else cmap([0, 1, 2, 4, 5, 6, 7, 8][i % 8]))
              for i, s in enumerate(servers)}
    for ax, (w, mo) in zip(flat, panels):
        panel = [s for s in servers if (s, w, mo) in look]
        vals = [look[(s, w, mo)].get("rps") for s in panel]
        xs = range(len(panel))
        bars = ax.bar(xs, [v or 0 for v in vals], color=[colors[s] for s in panel])
        top = max(v or 0 for v in vals) or 1
        for b, v in zip(bars, vals):
            label = "n/a" if v is None else (f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}")
            ax.text(b.get_x() + b.get_width() / 2, (v or 0) + top * 0.01, label, ha="center", va="bottom",
                    fontsize=7, rotation=90)
        lim = res["inprocess"].get(LIMIT_OF.get(w, w), {}).get("calls_per_s")
        title = {"raw": "raw hello", "flask": "Flask hello", "json": "Flask JSON", "stream": "1 MiB stream",
                 "post": "100 KB POST", "flask2w": "Flask hello, 2 workers",
                 "tls": "Flask hello over TLS"}[w]
        if w in TLS_WORKLOADS:
            full = res["meta"].get("tls", {}).get("wrk_preload") == "ok"
            title += ", keep-alive" if mo == "ka" else \
                f",\nnew connection per request ({'full ' if full else ''}handshake)"
        ax.set_title(title, fontsize=10)
        if lim and lim < top * 3:
            ax.axhline(lim, color="grey", linestyle="--", linewidth=1)
            ax.text(len(panel) - 0.5, lim, "in-process limit", fontsize=7, ha="right", va="bottom", color="grey")
        elif lim:
            ax.text(0.98, 0.98, "in-process limit " + (f"{lim / 1e6:.2f}M/s" if lim >= 1e6 else f"{lim / 1000:.0f}k/s") + "\n(off scale)", transform=ax.transAxes,
                    fontsize=7, ha="right", va="top", color="grey")
        ax.set_ylim(0, max(top, lim if lim and lim < top * 3 else 0) * 1.25)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(panel, rotation=45, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    only_ka = all(mo == "ka" for _, mo in panels)
    for row in axes:
        row[0].set_ylabel("requests/s (keep-alive, wrk -c16)" if only_ka else "requests/s (wrk -c16)")
    fig.suptitle(f"WSGI servers side by side{', keep-alive' if only_ka else ''}, {res['meta']['date']}\n"
                 f"shared, noisy machine: compare bars within one panel only", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
