"""Server hooks from a Python config file, called at gunicorn's moments with
the objects real hooks use; a hook that raises is logged, not fatal."""
import os
import signal
import time

import requests

from conftest import APPS

HOOKS_DIR = APPS / "hooks"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def hook_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def has(path, prefix):
    return lambda: any(l.startswith(prefix) for l in hook_lines(path))


def test_every_hook_runs_at_its_moment(start_server, tmp_path):
    log = tmp_path / "hooks.log"
    srv = start_server("app:app", "-c", str(HOOKS_DIR / "hooks.conf.py"), "--workers", "2",
                       "--timeout", "2", chdir=HOOKS_DIR, env={"HOOK_LOG": str(log)})
    assert wait_for(lambda: sum(l.startswith("post_worker_init") for l in hook_lines(log)) == 2)
    r = requests.get(srv.url + "/path?q=1", headers={"X-Test": "yes"}, timeout=5)
    assert r.status_code == 200
    # A hook that raises is logged and the request is still served.
    assert requests.get(srv.url + "/raise", timeout=5).status_code == 200
    assert wait_for(has(log, "post_request GET /raise"))

    # A worker stuck past --timeout is aborted: worker_abort runs in it.
    try:
        requests.get(srv.url + "/sleep", timeout=8)
    except requests.RequestException:
        pass
    assert wait_for(has(log, "worker_abort"), timeout=10), srv.stderr() + "\n".join(hook_lines(log))
    srv.proc.send_signal(signal.SIGTTIN)
    assert wait_for(has(log, "nworkers_changed 3 2"))
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(has(log, "on_reload"))
    assert wait_for(has(log, "child_exit"))
    srv.stop(signal.SIGTERM)
    lines = hook_lines(log)
    text = "\n".join(lines)
    first = [l.split()[0] for l in lines]
    # gunicorn sets num_workers (nworkers_changed) while it sets the
    # arbiter up, before on_starting.
    assert first[:2] == ["nworkers_changed", "on_starting"], text
    assert first.index("when_ready") < first.index("pre_fork")
    assert "nworkers_changed 2 None" in text
    assert "when_ready 2 2" in text
    assert "pre_fork 1" in text and "post_fork True 1" in text
    assert "post_worker_init True" in text
    assert "pre_request GET /path yes" in text
    assert "post_request GET /path /path 200 OK" in text
    assert "worker_exit" in text
    assert first[-1] == "on_exit", text
    err = srv.stderr()
    assert "hook on_starting" in err and "hook post_worker_init" in err
    assert "Exception in pre_request hook" in err and "a hook that raises" in err


def test_worker_int_runs_on_a_quick_stop(start_server, tmp_path):
    log = tmp_path / "hooks.log"
    srv = start_server("app:app", "-c", str(HOOKS_DIR / "hooks.conf.py"), chdir=HOOKS_DIR,
                       env={"HOOK_LOG": str(log)})
    assert wait_for(has(log, "post_worker_init"))
    srv.stop(signal.SIGINT)
    assert wait_for(has(log, "worker_int"))
    assert wait_for(has(log, "on_exit"))


def test_pre_exec_runs_before_usr2_re_executes(start_server, tmp_path):
    log = tmp_path / "hooks.log"
    pidfile = tmp_path / "app.pid"
    srv = start_server("app:app", "-c", str(HOOKS_DIR / "hooks.conf.py"), "--pid", str(pidfile),
                       chdir=HOOKS_DIR, env={"HOOK_LOG": str(log)})
    assert wait_for(has(log, "post_worker_init"))
    srv.proc.send_signal(signal.SIGUSR2)
    assert wait_for(has(log, "pre_exec"))
    # Stop the new master too.
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit()
                    and int(pidfile.read_text()) != srv.proc.pid)
    new_pid = int(pidfile.read_text())
    os.kill(new_pid, signal.SIGTERM)
    assert wait_for(lambda: not os.path.exists(f"/proc/{new_pid}") or
                    open(f"/proc/{new_pid}/stat").read().split()[2] == "Z")


def test_server_log_formats_arguments_and_logs_the_traceback_of_exception(start_server, tmp_path):
    conf = tmp_path / "log.conf.py"
    conf.write_text(
        "def when_ready(server):\n"
        "    server.log.info('ready %s', 'arg')\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError:\n"
        "        server.log.exception('caught %s', 'boom')\n")
    srv = start_server("app:app", "-c", str(conf), chdir=HOOKS_DIR)
    assert wait_for(lambda: "caught boom" in srv.stderr())
    err = srv.stderr()
    assert "[INFO] ready arg" in err
    assert "[ERROR] caught boom\nTraceback (most recent call last):" in err
    assert "ZeroDivisionError" in err
