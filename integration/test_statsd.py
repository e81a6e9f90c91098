"""--statsd-host, --statsd-prefix, --dogstatsd-tags: gunicorn's metric names
over UDP, received by a local socket."""
import re
import socket

import pytest
import requests

from conftest import APPS, receive_datagrams

APP_DIR = APPS / "cmdlines"


def test_request_and_worker_metrics_with_prefix_and_tags(start_server, udp_collector):
    port = udp_collector.getsockname()[1]
    srv = start_server("app:app", "--statsd-host", f"127.0.0.1:{port}", "--statsd-prefix",
                       "myapp", "--dogstatsd-tags", "env:test,team:web", chdir=APP_DIR)
    for path in ("/", "/missing-is-still-200"):
        assert requests.get(srv.url + path, timeout=5).status_code == 200
    got = receive_datagrams(udp_collector, lambda g: sum("gunicorn.requests:" in m for m in g) >= 2
                  and any("gunicorn.workers:" in m for m in g))
    tags = "|#env:test,team:web"
    assert got.count("myapp.gunicorn.requests:1|c|@1.0" + tags) == 2, got
    assert got.count("myapp.gunicorn.request.status.200:1|c|@1.0" + tags) == 2, got
    durations = [m for m in got if m.startswith("myapp.gunicorn.request.duration:")]
    assert len(durations) == 2 and all(re.fullmatch(
        r"myapp\.gunicorn\.request\.duration:\d+\.\d+\|ms" + re.escape(tags), m)
        for m in durations), durations
    assert "myapp.gunicorn.workers:1|g" + tags in got


def test_prefix_dots_are_normalised_and_no_tags_by_default(start_server, udp_collector):
    port = udp_collector.getsockname()[1]
    srv = start_server("app:app", "--statsd-host", f"127.0.0.1:{port}", "--statsd-prefix",
                       "svc...", chdir=APP_DIR)
    requests.get(srv.url + "/", timeout=5)
    got = receive_datagrams(udp_collector, lambda g: any("gunicorn.requests:" in m for m in g))
    assert "svc.gunicorn.requests:1|c|@1.0" in got, got


def test_bad_statsd_host_names_the_setting(tmp_path):
    import subprocess
    from conftest import server_binary
    out = subprocess.run([server_binary(), "--statsd-host", "host:notaport", "app:app"],
                         cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "statsd_host" in out.stderr and "host:notaport" in out.stderr
