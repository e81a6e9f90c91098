"""--reload: a changed module (or a reload_extra_files file) makes the
worker stop gracefully and a fresh one serve the new code."""
import os
import time

import requests

APP_V = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{version}"]
"""


def touch_later(path):
    # mtime strictly later than what the worker recorded.
    later = time.time() + 2
    os.utime(path, (later, later))


def wait_for_body(url, body, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=5).text
            if last == body:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def test_a_changed_module_is_served_after_reload(start_server, tmp_path):
    module = tmp_path / "reloadapp.py"
    module.write_text(APP_V.format(version="v1"))
    srv = start_server("reloadapp:app", "--reload", chdir=tmp_path)
    assert requests.get(srv.url + "/", timeout=5).text == "v1"
    module.write_text(APP_V.format(version="v2"))
    touch_later(module)
    assert wait_for_body(srv.url + "/", "v2")
    assert "Worker reloading: " in srv.stderr() and "reloadapp.py modified" in srv.stderr()
    assert "not acted upon" not in srv.stderr()


def test_reload_extra_file_triggers_a_reload(start_server, tmp_path):
    module = tmp_path / "reloadapp.py"
    module.write_text(APP_V.format(version="v1"))
    extra = tmp_path / "settings.ini"
    extra.write_text("a=1\n")
    srv = start_server("reloadapp:app", "--reload", "--reload-extra-file", str(extra),
                       chdir=tmp_path)
    assert requests.get(srv.url + "/", timeout=5).text == "v1"
    touch_later(extra)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "settings.ini modified" not in srv.stderr():
        time.sleep(0.1)
    assert "settings.ini modified" in srv.stderr()
    assert wait_for_body(srv.url + "/", "v1")
