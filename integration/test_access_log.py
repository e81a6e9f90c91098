"""The access log, atom by atom with gunicorn's meanings; --capture-output;
USR1 reopens the log files."""
import base64
import os
import re
import signal
import time

import requests

from conftest import APPS

APP_DIR = APPS / "accesslog"

ATOMS = ["h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "D", "M",
         "L", "p", "{x-in}i", "{X-OUT}o", "{my.var}e", "{REMOTE_ADDR}e", "{nope}i", "zz"]
FORMAT = "|".join(f"%({a})s" for a in ATOMS) + "|%%"


def wait_for_lines(path, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    return path.read_text().splitlines() if path.exists() else []


def test_every_access_log_atom(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_server("app:app", "--access-logfile", str(log), "--access-logformat", FORMAT,
                       chdir=APP_DIR)
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    r = requests.get(srv.url + "/a%20b?x=1&y=%22", timeout=5,
                     headers={"X-In": "one", "Referer": 'http://ref/"q"', "User-Agent": "ua/1",
                              "Authorization": auth})
    assert r.status_code == 201
    requests.get(srv.url + "/empty", timeout=5,
                 headers={"User-Agent": None, "Accept-Encoding": None})
    lines = wait_for_lines(log, 2)
    assert len(lines) == 2, lines
    f = dict(zip(ATOMS + ["%"], lines[0].split("|")))
    assert f["h"] == "127.0.0.1"
    assert f["l"] == "-"
    assert f["u"] == "alice"
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", f["t"]), f["t"]
    assert f["r"] == 'GET /a%20b?x=1&y=%22 HTTP/1.1'
    assert f["m"] == "GET"
    assert f["U"] == "/a b"           # PATH_INFO, decoded
    assert f["q"] == "x=1&y=%22"
    assert f["H"] == "HTTP/1.1"
    assert f["s"] == "201"
    assert f["B"] == "10" and f["b"] == "10"
    assert f["f"] == 'http://ref/\\"q\\"'   # quotes escaped, as gunicorn's SafeAtoms
    assert f["a"] == "ua/1"
    assert f["T"] == "0"
    assert f["D"].isdigit() and f["M"].isdigit()
    assert re.fullmatch(r"\d+\.\d{6}", f["L"])
    assert re.fullmatch(r"<\d+>", f["p"]) and f["p"] != f"<{srv.proc.pid}>"
    assert f["{x-in}i"] == "one"
    assert f["{X-OUT}o"] == 'va\\"lue'
    assert f["{my.var}e"] == "from-app"
    assert f["{REMOTE_ADDR}e"] == "127.0.0.1"
    assert f["{nope}i"] == "-"
    assert f["zz"] == "-"
    assert f["%"] == "%"
    g = dict(zip(ATOMS + ["%"], lines[1].split("|")))
    assert g["s"] == "204" and g["b"] == "0" and g["B"] == "0"
    assert g["u"] == "-" and g["f"] == "-"
    assert g["{X-OUT}o"] == "empty"


def test_default_format_is_gunicorns(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_server("app:app", "--access-logfile", str(log), chdir=APP_DIR)
    requests.get(srv.url + "/x?y=1", headers={"User-Agent": "ua/1"}, timeout=5)
    line = wait_for_lines(log, 1)[0]
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /x\?y=1 HTTP/1\.1" 201 10 "-" "ua/1"',
                        line), line


def test_capture_output_sends_app_prints_to_the_error_log(start_server, tmp_path):
    errlog = tmp_path / "error.log"
    srv = start_server("app:app", "--capture-output", "--error-logfile", str(errlog),
                       chdir=APP_DIR)
    requests.get(srv.url + "/print", timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "written to stderr" not in errlog.read_text():
        time.sleep(0.05)
    text = errlog.read_text()
    assert "printed by the app" in text and "written to stderr by the app" in text
    assert "printed by the app" not in srv.stdout()


def test_usr1_reopens_the_log_files(start_server, tmp_path):
    log = tmp_path / "access.log"
    errlog = tmp_path / "error.log"
    srv = start_server("app:app", "--access-logfile", str(log), "--error-logfile", str(errlog),
                       chdir=APP_DIR)
    requests.get(srv.url + "/one", timeout=5)
    assert wait_for_lines(log, 1)
    os.rename(log, tmp_path / "access.log.1")
    os.rename(errlog, tmp_path / "error.log.1")
    srv.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        requests.get(srv.url + "/two", timeout=5)
        if log.exists() and "/two" in log.read_text():
            break
        time.sleep(0.2)
    assert "/two" in log.read_text()
    assert "/one" not in log.read_text()
    assert "/one" in (tmp_path / "access.log.1").read_text()
    assert errlog.exists()
