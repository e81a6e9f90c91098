"""--log-syslog: error and access lines in gunicorn's SysLogHandler format,
received by a local UDP socket; --disable-redirect-access-to-syslog."""
import re
import subprocess

import pytest
import requests

from conftest import APPS, receive_datagrams, server_binary

APP_DIR = APPS / "cmdlines"


def test_error_and_access_lines_go_to_syslog(start_server, udp_collector):
    port = udp_collector.getsockname()[1]
    srv = start_server("app:app", "--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}",
                       "--log-syslog-facility", "local0", chdir=APP_DIR)
    requests.get(srv.url + "/hello", timeout=5)
    got = receive_datagrams(udp_collector, lambda g: any(".access:" in m for m in g))
    booting = [m for m in got if "Booting worker" in m]
    # local0 (16) * 8 + info (6) = 134; the program name is the app URI.
    assert booting and re.fullmatch(
        r"<134>gunicorn\.app\.app\.error: \[\d+\] Booting worker with pid: \d+\x00", booting[0])
    access = [m for m in got if ".access:" in m]
    assert access and '"GET /hello HTTP/1.1" 200' in access[0]
    assert access[0].startswith("<134>gunicorn.app.app.access: [")


def test_access_lines_stay_out_of_syslog_when_asked(start_server, udp_collector):
    port = udp_collector.getsockname()[1]
    srv = start_server("app:app", "--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}",
                       "--log-syslog-prefix", "web", "--disable-redirect-access-to-syslog",
                       chdir=APP_DIR)
    requests.get(srv.url + "/hello", timeout=5)
    got = receive_datagrams(udp_collector, lambda g: False, timeout=1.5)
    assert any(m.startswith("<14>gunicorn.web.error: [") for m in got), got
    assert not any(".access:" in m for m in got)


def test_bad_syslog_facility_names_the_setting():
    out = subprocess.run([server_binary(), "--log-syslog-facility", "nope", "app:app"],
                         cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "syslog_facility" in out.stderr and "'nope'" in out.stderr
