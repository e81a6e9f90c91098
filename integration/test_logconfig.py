"""logconfig_dict, --log-config-json and --log-config: the error and access
lines go through Python logging's gunicorn.error / gunicorn.access loggers,
configured on top of gunicorn's defaults."""
import json
import time

import requests

from conftest import APPS

APP_DIR = APPS / "cmdlines"


def wait_for_text(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


def dict_config(logfile):
    # The whole "handlers" key replaces gunicorn's (a shallow update, as in
    # gunicorn), so root must not name its "console" handler.
    return {
        "version": 1,
        "root": {"level": "WARNING", "handlers": []},
        "formatters": {"tagged": {"format": "TAGGED %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(logfile),
                              "formatter": "tagged"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["file"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["file"], "propagate": False},
        },
    }


def test_logconfig_dict_from_a_python_config(start_server, tmp_path):
    logfile = tmp_path / "app.log"
    conf = tmp_path / "c.py"
    conf.write_text(f"logconfig_dict = {dict_config(logfile)!r}\n")
    srv = start_server("app:app", "-c", str(conf), chdir=APP_DIR)
    requests.get(srv.url + "/logged", timeout=5)
    assert wait_for_text(logfile, '"GET /logged HTTP/1.1" 200')
    text = logfile.read_text()
    assert "TAGGED gunicorn.error INFO Booting worker with pid" in text
    assert "TAGGED gunicorn.access INFO 127.0.0.1 - - [" in text


def test_log_config_json(start_server, tmp_path):
    logfile = tmp_path / "app.log"
    cfg = tmp_path / "logging.json"
    cfg.write_text(json.dumps(dict_config(logfile)))
    srv = start_server("app:app", "--log-config-json", str(cfg), chdir=APP_DIR)
    requests.get(srv.url + "/json", timeout=5)
    assert wait_for_text(logfile, "TAGGED gunicorn.access INFO")
    assert "TAGGED gunicorn.error INFO Listening at" in logfile.read_text()


def test_log_config_file(start_server, tmp_path):
    logfile = tmp_path / "app.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(f"""
[loggers]
keys=root,error,access
[handlers]
keys=file
[formatters]
keys=plain
[logger_root]
level=INFO
handlers=
[logger_error]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.error
[logger_access]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.access
[handler_file]
class=FileHandler
formatter=plain
args=({str(logfile)!r},)
[formatter_plain]
format=INI %(name)s %(message)s
""")
    srv = start_server("app:app", "--log-config", str(ini), chdir=APP_DIR)
    requests.get(srv.url + "/ini", timeout=5)
    assert wait_for_text(logfile, "INI gunicorn.access 127.0.0.1")


def test_missing_log_config_file_is_a_clear_error(tmp_path):
    import subprocess
    from conftest import server_binary
    out = subprocess.run([server_binary(), "--log-config-json", str(tmp_path / "nope.json"),
                          "app:app"], cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "logconfig_json" in out.stderr and "nope.json" in out.stderr
