"""What a worker needs from Python (the app loader, traceback formatting,
faulthandler) is imported by the master before it forks: a worker imports
nothing but the app itself. apps/imports_before_fork/sitecustomize.py makes
every other import fail in any process forked after start-up."""
import subprocess

import requests

from conftest import APPS, free_port, server_binary

APP_DIR = APPS / "imports_before_fork"
REFUSING = {"PYTHONPATH": str(APP_DIR)}


def test_a_worker_boots_and_serves_without_importing_after_the_fork(start_server):
    srv = start_server("serving_app:app", "--workers", "2", chdir=APP_DIR, env=REFUSING)
    for _ in range(4):
        response = requests.get(srv.url + "/", timeout=5)
        assert response.status_code == 200 and response.text == "served"
    assert srv.stop() == 0
    assert "imported after fork" not in srv.stderr()


def test_a_worker_finds_the_standard_library_gunicorns_master_imports_already_imported(start_server):
    # gunicorn's master has json, ssl, logging.handlers... imported when it
    # forks; ours imports the same ones, so the workers share them instead
    # of each importing its own copy (docs/performance.md, "Memory").
    srv = start_server("stdlib_app:app", "--workers", "2", chdir=APP_DIR, env=REFUSING)
    for _ in range(4):
        response = requests.get(srv.url + "/", timeout=5)
        assert response.status_code == 200, srv.stderr()
        assert response.json()[3] == "ssl"
    assert srv.stop() == 0
    assert "imported after fork" not in srv.stderr()


def test_an_app_raising_at_import_gets_its_traceback_without_importing_after_the_fork():
    env = dict(__import__("os").environ, **REFUSING)
    proc = subprocess.run(
        [server_binary(), "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(APP_DIR),
         "raising_app:app"],
        env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback (most recent call last):" in proc.stderr
    assert 'raising_app.py", line 5, in configure' in proc.stderr
    assert "RuntimeError: raised while importing raising_app" in proc.stderr
    assert "could not be formatted" not in proc.stderr
    assert "imported after fork" not in proc.stderr
