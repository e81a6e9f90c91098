"""gc_freeze (ours, default on): the master calls gc.freeze() before it
forks a worker, so the worker's garbage collector never scans, and so
never writes to, the objects it shares copy-on-write with the master (the
modules the master imported; the app too with --preload).
docs/performance.md, "Memory", has what it saves."""
import requests

from conftest import APPS

APP_DIR = APPS / "gc_freeze"


def answer(srv):
    response = requests.get(srv.url + "/", timeout=5)
    assert response.status_code == 200, srv.stderr()
    count, app_frozen = response.text.split()
    return int(count), app_frozen == "True"


def test_a_worker_inherits_the_masters_objects_frozen(start_server):
    srv = start_server("freeze_app:app", chdir=APP_DIR)
    count, app_frozen = answer(srv)
    assert count > 1000  # the standard library the master imported
    assert not app_frozen  # the worker imported the app after the fork


def test_with_preload_the_apps_import_time_objects_are_frozen_too(start_server):
    srv = start_server("freeze_app:app", "--preload", chdir=APP_DIR)
    count, app_frozen = answer(srv)
    assert count > 1000 and app_frozen


def test_no_gc_freeze_leaves_every_object_to_the_workers_collector(start_server):
    srv = start_server("freeze_app:app", "--preload", "--no-gc-freeze", chdir=APP_DIR)
    assert answer(srv) == (0, False)


def test_gc_freeze_false_in_a_python_config(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("gc_freeze = False\npreload_app = True\n")
    srv = start_server("freeze_app:app", "-c", str(conf), chdir=APP_DIR)
    assert answer(srv) == (0, False)
