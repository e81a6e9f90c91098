"""HUP reloads the configuration as gunicorn's Arbiter.reload does: the
config file (Python or TOML) and GUNICORN_CMD_ARGS / CPPGUNICORN_CMD_ARGS are
read again (the command line stays), the new workers get the new settings,
hooks and listeners; a config that no longer reads leaves the old one in
force. Every step runs under client load and must fail no request."""
import os
import signal
import socket

from conftest import free_port, wait_for_port
from proc_tools import (APP_DIR, Load, alive, cmdline, get_once, wait_for_workers, wait_until,
                        workers)

# A Python config whose hook records, for every worker it starts, the
# settings that worker was given (through worker.cfg, as real hooks read it).
CONF_PY = """
workers = {workers}
timeout = {timeout}
max_requests = 5000
keepalive = 30
proc_name = {proc_name!r}
accesslog = {accesslog!r}
access_log_format = {access_log_format!r}

def post_worker_init(worker):
    with open({record!r}, "a") as f:
        f.write("{tag} pid=%d timeout=%s max_requests=%s\\n"
                % (worker.pid, worker.cfg.timeout, worker.cfg.max_requests))
"""


def write_conf(path, **values):
    path.write_text(CONF_PY.format(**values))


def hup_and_wait_for_new_workers(master, old, count, timeout=30):
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: (lambda w: len(w) == count and not set(w) & set(old))(workers(master)),
               timeout, what=f"{count} new workers after HUP")
    return workers(master)


def test_hup_rereads_the_python_config_workers_timeout_logs_name_and_hooks(start_server,
                                                                           tmp_path):
    conf, record = tmp_path / "conf.py", tmp_path / "workers.txt"
    access1, access2 = tmp_path / "access1.log", tmp_path / "access2.log"
    common = dict(record=str(record), access_log_format="%(m)s %(U)s %(s)s")
    write_conf(conf, workers=1, timeout=30, proc_name="before", accesslog=str(access1),
               tag="v1", **common)
    # GUNICORN_CMD_ARGS is read again too, and still outranks the file.
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR,
                       env={"GUNICORN_CMD_ARGS": "--max-requests 100000"})
    master = srv.proc.pid
    old = wait_for_workers(master, 1)
    assert "before" in cmdline(master)
    with Load(srv.port, keepalive=3, fresh=1) as load:
        load.wait_for_requests(30)
        write_conf(conf, workers=3, timeout=2, proc_name="after", accesslog=str(access2),
                   tag="v2", access_log_format="new %(m)s %(U)s", record=str(record))
        new = hup_and_wait_for_new_workers(master, old, 3)
        load.wait_for_requests(60)
    assert load.failures == [], load.failures
    assert not [pid for pid in old if alive(pid)]
    lines = record.read_text().splitlines()
    assert f"v1 pid={old[0]} timeout=30 max_requests=100000" in lines
    for pid in new:
        assert f"v2 pid={pid} timeout=2 max_requests=100000" in lines
        assert "after" in cmdline(pid)
    assert "after" in cmdline(master)
    # The access log moved to the new file, in the new format.
    get_once(srv.port, "/pid?after")
    wait_until(lambda: access2.exists() and "new GET /pid" in access2.read_text(), 10,
               what="the new access log")
    # The new timeout is enforced: a request stuck past 2 s is aborted.
    get_once_stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    get_once_stuck.sendall(b"GET /loop HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: "WORKER TIMEOUT" in srv.stderr(), 15, what="the 2 s timeout to fire")
    get_once_stuck.close()
    assert "Configuration not reloaded" not in srv.stderr()


def test_hup_opens_a_new_bind_and_closes_a_removed_one(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    p1, p2 = free_port(), free_port()
    conf.write_text(f"bind = ['127.0.0.1:{p1}']\nworkers = 2\nkeepalive = 30\n")
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR, bind=False)
    assert wait_for_port(p1, srv.proc), srv.stderr()
    master = srv.proc.pid
    old = wait_for_workers(master, 2)
    with Load(p1, keepalive=3, fresh=1) as load:
        load.wait_for_requests(30)
        conf.write_text(f"bind = ['127.0.0.1:{p1}', '127.0.0.1:{p2}']\nworkers = 2\n"
                        "keepalive = 30\n")
        old = hup_and_wait_for_new_workers(master, old, 2)
        assert get_once(p2, "/pid")[0] == 200
        load.wait_for_requests(60)
    assert load.failures == [], load.failures
    assert f"Listening at: http://127.0.0.1:{p2}" in srv.stderr()
    # Now p1 goes: served until the old workers stop, then refused.
    with Load(p2, keepalive=3, fresh=1) as load:
        load.wait_for_requests(30)
        conf.write_text(f"bind = ['127.0.0.1:{p2}']\nworkers = 2\nkeepalive = 30\n")
        hup_and_wait_for_new_workers(master, old, 2)
        load.wait_for_requests(60)
    assert load.failures == [], load.failures

    def p1_refused():
        try:
            with socket.create_connection(("127.0.0.1", p1), timeout=2):
                return False
        except ConnectionRefusedError:
            return True
    wait_until(p1_refused, 20, what=f"port {p1} to be closed")


def test_hup_with_a_config_that_no_longer_reads_keeps_serving_with_the_old_one(start_server,
                                                                               tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("workers = 2\nkeepalive = 30\n")
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR)
    master = srv.proc.pid
    old = wait_for_workers(master, 2)
    with Load(srv.port, keepalive=3, fresh=1) as load:
        load.wait_for_requests(30)
        # A bad value: named with the setting, the value and the file.
        conf.write_text("workers = 'many'\nkeepalive = 30\n")
        old = hup_and_wait_for_new_workers(master, old, 2)
        wait_until(lambda: "Invalid value for workers: 'many'" in srv.stderr(), 10,
                   what="the bad value to be reported")
        load.wait_for_requests(30)
        # A file that does not even run.
        conf.write_text("workers = (\n")
        old = hup_and_wait_for_new_workers(master, old, 2)
        wait_until(lambda: srv.stderr().count("Configuration not reloaded") == 2, 10,
                   what="the syntax error to be reported")
        load.wait_for_requests(30)
        # Fixed again: taken.
        conf.write_text("workers = 3\nkeepalive = 30\n")
        hup_and_wait_for_new_workers(master, old, 3)
        load.wait_for_requests(30)
    assert load.failures == [], load.failures
    assert srv.proc.poll() is None
    err = srv.stderr()
    assert f"[from config file {conf}]" in err
    assert "SyntaxError" in err or "was never closed" in err


def test_hup_rereads_a_toml_config_and_cppgunicorn_cmd_args(start_server, tmp_path):
    conf = tmp_path / "conf.toml"
    conf.write_text("workers = 1\nkeepalive = 30\n")
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR,
                       env={"CPPGUNICORN_CMD_ARGS": "--name from-env"})
    master = srv.proc.pid
    old = wait_for_workers(master, 1)
    with Load(srv.port, keepalive=2, fresh=1) as load:
        load.wait_for_requests(20)
        conf.write_text("workers = 2\nkeepalive = 30\nproc_name = 'from-file'\n")
        old = hup_and_wait_for_new_workers(master, old, 2)
        load.wait_for_requests(20)
        conf.write_text("workers = [\n")  # not TOML
        hup_and_wait_for_new_workers(master, old, 2)
        load.wait_for_requests(20)
    assert load.failures == [], load.failures
    # The environment still outranks the file after the reload.
    assert "from-env" in cmdline(master)
    assert "Configuration not reloaded" in srv.stderr()


def test_hup_runs_the_on_reload_hook_of_the_new_config(start_server, tmp_path):
    conf, record = tmp_path / "conf.py", tmp_path / "reloads.txt"
    hook = ("def on_reload(server):\n"
            f"    open({str(record)!r}, 'a').write('{{}}\\n'.format(server.cfg.workers))\n")
    conf.write_text("workers = 1\n" + hook)
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR)
    master = srv.proc.pid
    old = wait_for_workers(master, 1)
    conf.write_text("workers = 2\n" + hook)
    hup_and_wait_for_new_workers(master, old, 2)
    wait_until(lambda: record.exists() and record.read_text() == "2\n", 10,
               what="on_reload with the new settings")
