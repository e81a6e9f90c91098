"""The behind-nginx cells of benchmarks/run.py: real nginx in front of each server.

Most deployments put nginx in front of a WSGI server, and nginx's default
`proxy_pass` speaks HTTP/1.0 to the upstream and opens a new connection for
every request. Two proxy configurations are measured, each over TCP and over
a unix socket:

- default: `proxy_pass` as it comes (HTTP/1.0 upstream, `Connection: close`,
  no upstream keep-alive): a new upstream connection per request;
- tuned: `proxy_http_version 1.1; proxy_set_header Connection "";` and an
  `upstream { keepalive 32; }` block: upstream connections are kept.

One nginx worker process (`worker_processes 1`), started with wrk's CPU
affinity (the load CPU), its access log off (it would only add to the load
CPU's work). The server runs alone on its own CPU, as in every other cell.
wrk talks to nginx with keep-alive; what differs is nginx's side.

This module knows nginx and how each server binds a unix socket; run.py's
loop starts the servers and wrk.
"""
import grp
import os
import pwd
import signal
import socket
import subprocess
import time

NGINX = "/usr/sbin/nginx"
APPS = ("raw", "flask")
PROXIES = ("default", "tuned")
TRANSPORTS = ("tcp", "unix")
PROXY_TITLES = {
    "default": "nginx's default proxy_pass (HTTP/1.0 upstream, a new upstream connection per request)",
    "tuned": "nginx tuned (proxy_http_version 1.1, Connection \"\", upstream keepalive 32)",
}


def unix_bind_cmd(name, app, path, bin_dir, py, here):
    """The command line of `name` bound to the unix socket `path`, or None when
    it has no way to bind one (the cell then says so)."""
    mod, obj = app.split(":")
    if name == "cppgunicorn":
        return [f"{bin_dir}/cppgunicorn", "--workers", "1", "--bind", f"unix:{path}", "--chdir", here, app]
    if name == "gunicorn-sync":
        return [f"{bin_dir}/gunicorn", "--workers", "1", "--bind", f"unix:{path}", "--chdir", here, app]
    if name == "gunicorn-gthread":
        return [f"{bin_dir}/gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "4",
                "--bind", f"unix:{path}", "--chdir", here, app]
    if name == "uwsgi":
        # a socket path in place of HOST:PORT binds a unix socket
        return [f"{bin_dir}/uwsgi", "--master", "--processes", "1", "--http11-socket", path,
                "--http-keepalive", "--http-auto-chunked", "--chdir", here, "--module", app, "--disable-logging",
                "--die-on-term", "--need-app", "--listen", "1024"]
    if name == "granian":
        if not granian_has_uds(bin_dir):
            return None
        return [f"{bin_dir}/granian", "--interface", "wsgi", "--workers", "1", "--uds", path,
                "--no-ws", "--log-level", "warning", "--working-dir", here, app]
    if name == "cppgunicorn-serve":
        return [py, "-c", f"import cppgunicorn, {mod}; cppgunicorn.serve({mod}.{obj}, bind='unix:{path}')"]
    if name == "cppgunicorn-metrics":
        return None  # its cost is measured in the direct cells only (docs/benchmarks/metrics-cost.md)
    if name == "bjoern":
        return [py, "-c", f"import bjoern, {mod}; bjoern.run({mod}.{obj}, 'unix:{path}')"]
    if name == "meinheld":
        # meinheld.server.listen takes a path string for a unix socket
        return [py, "-c", f"import meinheld.server as m, {mod}; m.listen({path!r}); m.run({mod}.{obj})"]
    return None  # fastwsgi: host and port only


NO_UNIX_REASON = {
    "cppgunicorn-metrics": "not run behind nginx (its cost is measured in the direct cells)",
    "fastwsgi": "cannot bind a unix socket (fastwsgi.run takes a host and a port only)",
    "granian": "cannot bind a unix socket (this granian has no --uds option)",
}

_granian_uds = {}


def granian_has_uds(bin_dir):
    if bin_dir not in _granian_uds:
        try:
            out = subprocess.run([f"{bin_dir}/granian", "--help"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        _granian_uds[bin_dir] = "--uds" in out
    return _granian_uds[bin_dir]


def _run_as():
    # nginx started as root hands its worker to `nobody`, who could not reach
    # a unix socket in our private temporary directory.
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"


def nginx_version():
    try:
        out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=10)
        return (out.stderr or out.stdout).strip().replace("nginx version: ", "")
    except (OSError, subprocess.TimeoutExpired):
        return None


class Nginx:
    """One nginx, one worker, two front ports on one upstream: `ports["default"]`
    and `ports["tuned"]`. `upstream` is "127.0.0.1:PORT" or "unix:PATH"."""

    def __init__(self, directory, upstream, ports, pin_cmd, log_path):
        self.dir, self.ports, self.log_path = directory, ports, log_path
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "nginx.conf")
        temp = "\n".join(f"    {k}_temp_path {os.path.join(directory, k)};"
                         for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.conf, "w") as f:
            f.write(f"{_run_as()}daemon off;\nworker_processes 1;\n"
                    f"pid {os.path.join(directory, 'nginx.pid')};\n"
                    f"error_log {log_path} warn;\n"
                    "events { worker_connections 4096; }\n"
                    "http {\n"
                    "    access_log off;\n"
                    f"{temp}\n"
                    # default: nothing set, a plain proxy_pass to one address
                    f"    server {{ listen 127.0.0.1:{ports['default']};\n"
                    f"        location / {{ proxy_pass http://{upstream}; }} }}\n"
                    f"    upstream tuned {{ server {upstream}; keepalive 32; }}\n"
                    f"    server {{ listen 127.0.0.1:{ports['tuned']};\n"
                    "        location / { proxy_pass http://tuned; proxy_http_version 1.1;\n"
                    "            proxy_set_header Connection \"\"; } }\n"
                    "}\n")
        self.cmd = pin_cmd([NGINX, "-p", directory, "-c", self.conf, "-e", log_path])
        self.proc = None

    def start(self, timeout=15):
        """Start and wait for both ports; an error string or None."""
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + timeout
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None or time.time() > end:
                    return f"nginx did not listen on {port}: {self.log_tail()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
        return None

    def log_tail(self, n=300):
        try:
            return " ".join(open(self.log_path, "rb").read()[-n:].decode(errors="replace").split())
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # fast shutdown: no request is under way
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


def render(res, fmt, ratio):
    """The results.md section of the behind-nginx cells."""
    rows = res.get("nginx") or []
    if not rows:
        return []
    m = res["meta"]
    L = ["## Behind nginx\n"]
    L.append(f"Real nginx ({m.get('nginx', 'nginx')}, Debian) in front of each server, one worker process, "
             "access log off; nginx and wrk share the load CPU (CPU 1), the server runs alone on CPU 0. "
             f"wrk (`-t1 -c{m['conns']}`) keeps its connections to nginx; the proxy configuration decides "
             "what the server sees. req/s and p99 are what the client sees; CPU-µs/req is the server's "
             "process tree only (nginx's CPU is not counted); conn/req counts new TCP connections (wrk's and "
             "nginx's; a unix socket's are not counted); ×best peer = req/s over the best other server's in "
             "the same column.\n")
    look = {(r["server"], r["app"], r["proxy"], r["transport"]): r for r in rows}
    servers = list(dict.fromkeys(r["server"] for r in rows))
    apps = [a for a in APPS if any(r["app"] == a for r in rows)]
    for app in apps:
        for proxy in PROXIES:
            L.append(f"### {'Raw WSGI hello' if app == 'raw' else 'Flask hello'} — {PROXY_TITLES[proxy]}\n")
            cols = ["server"]
            for t in TRANSPORTS:
                cols += [f"{t} req/s", f"{t} p99 ms", f"{t} CPU-µs/req", f"{t} ×best peer"]
            cols += ["tcp conn/req", "errors"]
            L.append("| " + " | ".join(cols) + " |")
            L.append("| --- |" + " ---: |" * (len(cols) - 1))

            def rps(s, t):
                return look.get((s, app, proxy, t), {}).get("rps")

            order = sorted(servers, key=lambda s: -(rps(s, "tcp") or -1))
            for s in order:
                name = f"**{s}**" if s == "cppgunicorn" else s
                cells, errs = [], 0
                for t in TRANSPORTS:
                    c = look.get((s, app, proxy, t), {})
                    if c.get("rps") is None:
                        cells += [c.get("error", "—"), "", "", ""]
                        continue
                    best = max((rps(o, t) or 0 for o in servers if o != s), default=0)
                    cells += [fmt(c["rps"]), fmt(c.get("p99_ms"), 2), fmt(c.get("cpu_us"), 1), ratio(c["rps"], best)]
                    errs += c.get("errors") or 0
                tcp = look.get((s, app, proxy, "tcp"), {})
                cells += [fmt(tcp.get("conn_per_req"), 2), fmt(errs)]
                L.append(f"| {name} | " + " | ".join(cells) + " |")
            L.append("")
    return L
