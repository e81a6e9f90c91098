#!/usr/bin/env python3
"""Static files, side by side: a 2 KB CSS and a 1 MB JS file over keep-alive,
served by cppgunicorn (--static-map, no Python), WhiteNoise under gunicorn,
Flask's send_from_directory under gunicorn, granian's static mount
(--static-path-mount) and nginx itself (sendfile on).

Run through run.py (`benchmarks/run.sh --workloads static`), which hands
its options here. Every server runs one worker (nginx: one worker process)
pinned to CPU 0, wrk pinned to CPU 1, as in run.py; each cell is run
--repeat times in rotated order and the median kept. Writes static.md and
static.json in --out (default docs/benchmarks/).
"""
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time

import run as bench

FILES = {"css": ("site.css", 2 * 1024), "js": ("app.js", 1024 * 1024)}
SERVERS = ["cppgunicorn", "gunicorn-whitenoise", "gunicorn-flask", "granian", "nginx"]
TITLES = {
    "cppgunicorn": "cppgunicorn --static-map",
    "gunicorn-whitenoise": "gunicorn gthread + WhiteNoise",
    "gunicorn-flask": "gunicorn gthread + Flask send_from_directory",
    "granian": "granian --static-path-mount",
    "nginx": "nginx (sendfile on)",
}

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {root}/; }}
        location / {{ return 200 "Hello, World!"; }}
    }}
}}
"""


def make_files(tmp):
    root = os.path.join(tmp, "static")
    os.makedirs(root)
    # Text of the right size, as a real stylesheet and bundle would be.
    for name, size in FILES.values():
        line = b"/* static-file benchmark: the same bytes for every server */\n"
        with open(os.path.join(root, name), "wb") as f:
            f.write((line * (size // len(line) + 1))[:size])
    return root


def server_cmd(name, port, root, tmp):
    hp = f"127.0.0.1:{port}"
    here = bench.HERE
    if name == "cppgunicorn":
        return [f"{bench.BIN}/cppgunicorn", "--workers", "1", "--bind", hp, "--static-map",
                f"/static={root}", "--chdir", here, "static_apps:hello"]
    if name in ("gunicorn-whitenoise", "gunicorn-flask"):
        app = "static_apps:whitenoise_app" if name == "gunicorn-whitenoise" else "static_apps:flask_app"
        return [f"{bench.BIN}/gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "4",
                "--bind", hp, "--chdir", here, app]
    if name == "granian":
        return [f"{bench.BIN}/granian", "--interface", "wsgi", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(port), "--no-ws", "--log-level", "warning", "--working-dir", here,
                "--static-path-route", "/static", "--static-path-mount", root, "static_apps:hello"]
    if name == "nginx":
        conf = os.path.join(tmp, f"nginx-{port}.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, root=root))
        return [shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf, "-e", os.path.join(tmp, "nginx-error.log")]
    raise ValueError(name)


class StaticServer(bench.Server):
    def __init__(self, name, root, tmp):
        self.name, self.app, self.workers, self.tls = name, "static", 1, False
        self.port = bench.free_port()
        self.cmd = server_cmd(name, self.port, root, tmp)
        self.proc = None
        self.log_path = os.path.join(bench.LOG_DIR, f"static-{name}.log")


def check(port, root):
    """Both files, byte for byte; None when right, else what was wrong."""
    import http.client
    for name, _ in FILES.values():
        want = open(os.path.join(root, name), "rb").read()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", f"/static/{name}")
            r = c.getresponse()
            got = r.read()
            c.close()
        except OSError as e:
            return f"{name}: {e}"
        if r.status != 200 or got != want:
            return f"{name}: status {r.status}, {len(got)} bytes"
    return None


def version_of(name):
    if name == "nginx":
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        return out.stderr.strip().split("/")[-1] or None
    dist = {"cppgunicorn": "cppgunicorn", "granian": "granian"}.get(name, "gunicorn")
    v = bench.dist_version(dist)
    if name == "gunicorn-whitenoise":
        v = f"{v} + whitenoise {bench.dist_version('whitenoise')}"
    if name == "gunicorn-flask":
        v = f"{v} + flask {bench.dist_version('flask')}"
    return v


def run(a):
    servers = [s for s in SERVERS if not a.only or s in a.only.split(",")]
    # run.py runs as __main__: this module's copy of it keeps its own list
    # of started servers, killed at exit too.
    atexit.register(bench.kill_all)
    bench.check_pinning()
    results = {"meta": bench.machine_info(), "cells": [], "failures": [], "versions": {}}
    results["meta"].update({
        "command": os.environ.get("BENCH_COMMAND") or "benchmarks/run.py --workloads static",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "pinning": ("server on CPU 0, wrk on CPU 1 (taskset)" if bench.PIN["server"] else "none"),
        "seconds": a.seconds, "repeat": a.repeat, "conns": bench.CONNS,
    })
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-static-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody
        root = make_files(tmp)
        os.environ["STATIC_ROOT"] = root
        wrk = bench.Wrk(tmp, a)
        for s in servers:
            results["versions"][s] = version_of(s)
        live = list(servers)
        for r in range(a.repeat):
            k = r % len(live) if live else 0
            for s in live[k:] + live[:k]:
                srv = StaticServer(s, root, tmp)
                err = srv.start()
                if err is None:
                    err = check(srv.port, root)
                if err is not None:
                    bench.log(f"{s:20} failed: {err}")
                    results["failures"].append({"server": s, "detail": err})
                    srv.stop()
                    live.remove(s)
                    continue
                for key, (name, _) in FILES.items():
                    wrk.run(srv.port, f"/static/{name}", 1, tag=f"static-{s}-{key}-warm")
                    cell = wrk.run(srv.port, f"/static/{name}", a.seconds, tag=f"static-{s}-{key}",
                                   server_pid=srv.proc.pid)
                    runs.setdefault((s, key), []).append(cell)
                    bench.log(f"{s:20} {key:3} {cell['rps']:10.0f} req/s {cell.get('cpu_us') or 0:7.1f} "
                              f"CPU-µs/req  errors {cell['errors']}")
                srv.stop()
            bench.log(f"round {r + 1} of {a.repeat} done")
    for (s, key), cells in runs.items():
        results["cells"].append({"server": s, "file": key, "runs": cells,
                                 **{f: bench.median([c.get(f) for c in cells])
                                    for f in ("rps", "cpu_us", "sys_us", "p50_ms", "p99_ms", "mb_s",
                                              "errors", "cpu0_foreign")}})
    results["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "static.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(a.out, "static.md"), "w") as f:
        f.write(render(results))
    bench.log(f"wrote {os.path.join(a.out, 'static.md')}")
    return 0


def render(res):
    m = res["meta"]
    cells = {(c["server"], c["file"]): c for c in res["cells"]}
    out = ["# Static files: cppgunicorn against WhiteNoise, Flask, granian and nginx", "",
           "A 2 KB CSS file and a 1 MB JS file, keep-alive, `wrk -t1 -c16`; one worker "
           "(nginx: one worker process) pinned to CPU 0, wrk to CPU 1. Median of "
           f"{m['repeat']} runs of {m['seconds']} s per cell, servers in rotated order.",
           "", f"Command: `{m['command']}`  ", f"Date: {m['date']}; pinning: {m['pinning']}; "
           f"load average at the end: {' '.join(m.get('loadavg_end', []))}.", "",
           "**The machine is shared with other engineers' builds and tests: only the ratios "
           "between rows of this run mean anything.**", ""]
    for key, (name, size) in FILES.items():
        nginx = cells.get(("nginx", key), {}).get("rps")
        best_wsgi = max([cells[(s, key)]["rps"] for s in ("gunicorn-whitenoise", "gunicorn-flask", "granian")
                         if (s, key) in cells and cells[(s, key)].get("rps")] or [0])
        out += [f"## {name} ({size // 1024} KB)", "",
                "| server | req/s | × nginx | × best other | server CPU-µs/req | MB/s | p99 ms | errors |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in SERVERS:
            c = cells.get((s, key))
            if not c:
                continue
            rps = c["rps"] or 0
            out.append(f"| {TITLES[s]} | {rps:,.0f} | {bench.ratio(rps, nginx)} | "
                       f"{bench.ratio(rps, best_wsgi) if s != 'nginx' else '-'} | "
                       f"{bench.fmt(c.get('cpu_us'), 1)} | {bench.fmt(c.get('mb_s'), 0)} | "
                       f"{bench.fmt(c.get('p99_ms'), 2)} | {bench.fmt(c.get('errors'))} |")
        out.append("")
    out += ["\"× best other\" divides by the best of WhiteNoise, Flask and granian in the same table.", "",
            "Versions: " + "; ".join(f"{TITLES[s]}: {v}" for s, v in res["versions"].items()) + "."]
    if res["failures"]:
        out += ["", "Failed to run:", ""] + [f"- {f['server']}: {f['detail']}" for f in res["failures"]]
    return "\n".join(out) + "\n"
