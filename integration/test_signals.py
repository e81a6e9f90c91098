"""Signals to the master, with gunicorn's meanings: TERM, INT/QUIT, HUP,
TTIN/TTOU, USR1, USR2 and WINCH (and --daemon, where WINCH matters)."""
import os
import signal
import socket
import time

import pytest

from conftest import server_binary
from proc_tools import (APP_DIR, HttpClient, Load, alive, clients_on_every_worker, cmdline,
                        get_once, read_pid, stop_new_masters, terminate_tree, wait_for_new_master,
                        wait_for_workers, wait_until, workers)


def start_slow_request(port, touch, seconds):
    """Sends a request that stays in the app for ``seconds``; returns once
    the app is running it."""
    client = HttpClient(port, timeout=60)
    client.sock.sendall(f"GET /sleep?s={seconds}&touch={touch} HTTP/1.1\r\nHost: t\r\n\r\n"
                        .encode())
    wait_until(touch.exists, 20, what="the slow request to reach the app")
    return client


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # caught in the queue as the socket shut down: ask again


def read_until_closed(client):
    data = b""
    try:
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def test_term_finishes_the_in_flight_request_stops_accepting_then_exits_0(start_server, tmp_path):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR)
    slow = start_slow_request(srv.port, tmp_path / "in-app", 2)
    srv.proc.send_signal(signal.SIGTERM)
    # Stop accepting: the listeners close at once, not when the master exits.
    wait_until(lambda: refused(srv.port), 10, what="new connections refused")
    assert srv.proc.poll() is None, "the master waits for the in-flight request"
    status, _, body = slow.response()
    assert status == 200 and body.endswith("slept")
    assert srv.wait(timeout=20) == 0
    assert "Handling signal: term" in srv.stderr()


def test_graceful_timeout_bounds_how_long_term_waits(start_server, tmp_path):
    srv = start_server("app:app", "--graceful-timeout", "1", chdir=APP_DIR)
    slow = start_slow_request(srv.port, tmp_path / "in-app", 60)
    srv.proc.send_signal(signal.SIGTERM)
    # The worker is killed after 1 s instead of the 60 s the request wants.
    assert srv.wait(timeout=20) == 0
    assert read_until_closed(slow) == b""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_int_and_quit_stop_at_once_without_waiting_for_requests(start_server, tmp_path, signum):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR)
    slow = start_slow_request(srv.port, tmp_path / "in-app", 60)
    srv.proc.send_signal(signum)
    assert srv.wait(timeout=20) == 0
    assert read_until_closed(slow) == b""
    assert refused(srv.port)


def test_hup_replaces_workers_and_reimports_the_app_with_no_failed_request(start_server,
                                                                            tmp_path):
    marker = tmp_path / "version"
    marker.write_text("v1")
    srv = start_server("app:app", "-w", "2", "--keep-alive", "30", chdir=APP_DIR,
                       env={"PROC_APP_MARKER": str(marker)})
    master = srv.proc.pid
    old = set(wait_for_workers(master, 2))
    assert get_once(srv.port, "/import")[2].endswith("marker=v1")
    with Load(srv.port, keepalive=3, fresh=1) as load:
        load.wait_for_requests(50)
        marker.write_text("v2 slow")
        before = load.served_by()
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: (lambda w: len(w) == 2 and not set(w) & old)(workers(master)), 20,
                   what="two new workers")
        load.wait_for_requests(100)
        during = load.served_by()
    assert load.failures == [], load.failures
    # The old workers served on while the new ones took 1 s to import the
    # app, instead of leaving the requests to wait in the backlog.
    assert sum(during.get(p, 0) - before.get(p, 0) for p in old) > 20
    assert not [pid for pid in old if alive(pid)]
    assert get_once(srv.port, "/import")[2].endswith("marker=v2 slow")
    assert "Handling signal: hup" in srv.stderr()


def test_hup_with_preload_keeps_the_app_the_master_imported(start_server, tmp_path):
    # As gunicorn: a preloaded app is not imported again on HUP.
    marker = tmp_path / "version"
    marker.write_text("v1")
    srv = start_server("app:app", "-w", "2", "--preload", chdir=APP_DIR,
                       env={"PROC_APP_MARKER": str(marker)})
    master = srv.proc.pid
    old = set(wait_for_workers(master, 2))
    marker.write_text("v2")
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: (lambda w: len(w) == 2 and not set(w) & old)(workers(master)), 20,
               what="two new workers")
    _, _, body = get_once(srv.port, "/import")
    assert body.endswith(f"imported_by={master} marker=v1")


def test_ttin_and_ttou_change_the_worker_count_under_load_never_below_one(start_server):
    srv = start_server("app:app", "-w", "2", "--keep-alive", "30", chdir=APP_DIR)
    master = srv.proc.pid
    first = wait_for_workers(master, 2)
    with Load(srv.port, keepalive=3, fresh=1) as load:
        load.wait_for_requests(30)
        for count in (3, 4):
            os.kill(master, signal.SIGTTIN)
            wait_for_workers(master, count)
            load.wait_for_requests(30)
        for count in (3, 2, 1):
            os.kill(master, signal.SIGTTOU)
            wait_for_workers(master, count)
            load.wait_for_requests(30)
        # TTOU's are handled one by one (each logged): one more must not
        # take the last worker away.
        handled = srv.stderr().count("Handling signal: ttou")
        os.kill(master, signal.SIGTTOU)
        wait_until(lambda: srv.stderr().count("Handling signal: ttou") > handled, 10,
                   what="the fourth TTOU handled")
        load.wait_for_requests(30)
    assert load.failures == [], load.failures
    (last,) = wait_for_workers(master, 1)
    # TTOU retires the oldest workers first.
    assert last not in first
    # HUP goes back to the configured count, as gunicorn's reload does.
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: (lambda w: len(w) == 2 and last not in w)(workers(master)), 20,
               what="two new workers after HUP")


def test_usr1_reopens_the_access_and_error_logs(start_server, tmp_path):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    # --keep-alive 30: the connections found on each worker may sit idle a while.
    srv = start_server("app:app", "-w", "2", "--access-logfile", access,
                       "--error-logfile", error, "--keep-alive", "30", chdir=APP_DIR)
    master = srv.proc.pid
    wait_for_workers(master, 2)
    get_once(srv.port, "/pid?before")
    wait_until(lambda: access.exists() and "/pid?before" in access.read_text(), 10,
               what="the first access-log line")
    clients = clients_on_every_worker(srv.port, 2)
    access.rename(tmp_path / "access.log.1")
    error.rename(tmp_path / "error.log.1")
    os.kill(master, signal.SIGUSR1)
    wait_until(lambda: error.exists() and access.exists(), 10, what="the logs reopened")
    # Every worker writes to the new files, access lines and tracebacks (a
    # worker may take a moment to handle the signal; it reopens both at once).
    for pid, client in clients.items():
        def access_line_in_new_file():
            target = f"/pid?after-{time.monotonic_ns()}"
            client.get(target)
            return target in access.read_text()
        wait_until(access_line_in_new_file, 20, what=f"worker {pid} on the new access log")
        client.get("/error")  # a 500 closes the connection
        client.close()
        wait_until(lambda: f"failing on purpose in worker {pid}" in error.read_text(), 10,
                   what=f"worker {pid} on the new error log")
    os.kill(master, signal.SIGTTIN)
    wait_until(lambda: "Handling signal: ttin" in error.read_text(), 10,
               what="the master's own lines in the new error log")
    assert "Handling signal: usr1" in (tmp_path / "error.log.1").read_text()


def test_usr2_starts_a_new_master_on_the_same_socket_with_no_refused_connection(
        start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    oldbin = tmp_path / "app.pid.oldbin"
    srv = start_server("app:app", "-w", "2", "--pid", pidfile, "--name", "upgrade",
                       "--keep-alive", "30",
                       chdir=APP_DIR)
    old_master = srv.proc.pid
    old_workers = set(wait_for_workers(old_master, 2))
    new_master = None
    try:
        with Load(srv.port, keepalive=2, fresh=2) as load:
            load.wait_for_requests(30)
            os.kill(old_master, signal.SIGUSR2)
            wait_until(oldbin.exists, 20, what="the pid file renamed to .oldbin")
            new_master = wait_for_new_master(pidfile, old_master)
            assert cmdline(new_master) == "cppgunicorn: master [upgrade]"
            assert cmdline(old_master) == "cppgunicorn: master (old) [upgrade]"
            new_workers = set(wait_for_workers(new_master, 2))
            wait_until(lambda: set(load.served_by()) & new_workers, 20,
                       what="the new master's workers serving")
            # One upgrade at a time (the new master shares our stderr).
            os.kill(new_master, signal.SIGUSR2)
            wait_until(lambda: "USR2 signal ignored. Parent exists." in srv.stderr(), 10,
                       what="the second USR2 refused")
            # gunicorn's procedure: then stop the old master gracefully.
            os.kill(old_master, signal.SIGTERM)
            assert srv.wait(timeout=30) == 0
            served_before = load.served_by()
            load.wait_for_requests(50)
        assert load.failures == [], load.failures
        served_after = load.served_by()
        assert sum(served_after.get(p, 0) - served_before.get(p, 0) for p in new_workers) == \
            sum(served_after.values()) - sum(served_before.values())
        assert not oldbin.exists(), "the old master removes its .oldbin pid file"
        wait_until(lambda: "Master has been promoted." in srv.stderr(), 10,
                   what="the new master promoted")
        assert pidfile.read_text().strip() == str(new_master)
        assert not [p for p in old_workers if alive(p)]
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: not alive(new_master), 20, what="the new master to exit")
        assert not pidfile.exists()
    finally:
        stop_new_masters(old_master, new_master, pidfile)


def test_usr2_that_cannot_exec_the_binary_leaves_the_old_master_in_charge(
        start_server, tmp_path, monkeypatch):
    link = tmp_path / "cppgunicorn"
    link.symlink_to(server_binary())
    monkeypatch.setenv("CPPGUNICORN_BIN", str(link))
    pidfile = tmp_path / "app.pid"
    srv = start_server("app:app", "--pid", pidfile, chdir=APP_DIR)
    master = srv.proc.pid
    wait_until(pidfile.exists, 10, what="the pid file")
    link.unlink()  # the upgrade's binary is gone
    os.kill(master, signal.SIGUSR2)
    wait_until(lambda: "The re-executed master" in srv.stderr(), 20,
               what="the failed new master reaped")
    # The executable fails to exec; the installed command's Python starts
    # and finds no script. Either way the new master names the path and dies.
    assert str(link) in srv.stderr().split("Handling signal: usr2", 1)[1]
    wait_until(lambda: read_pid(pidfile) == master, 10,
               what="the pid file back")
    assert cmdline(master) == "cppgunicorn: master [app:app]"
    assert get_once(srv.port)[0] == 200
    assert srv.stop() == 0
    assert not pidfile.exists()


def test_winch_is_ignored_when_not_daemonized(start_server):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR)
    master = srv.proc.pid
    before = wait_for_workers(master, 2)
    os.kill(master, signal.SIGWINCH)
    wait_until(lambda: "Handling signal: winch" in srv.stderr(), 10, what="WINCH handled")
    # Handled in order: once TTIN's worker exists, WINCH has had its turn.
    os.kill(master, signal.SIGTTIN)
    after = wait_for_workers(master, 3)
    assert set(before) <= set(after)
    assert get_once(srv.port)[0] == 200


def test_daemon_detaches_and_winch_stops_its_workers(start_server, tmp_path):
    pidfile, error = tmp_path / "d.pid", tmp_path / "error.log"
    srv = start_server("app:app", "--daemon", "-w", "2", "--pid", pidfile,
                       "--error-logfile", error, chdir=APP_DIR, wait=False)
    assert srv.wait(timeout=20) == 0, "the command returns once the daemon is started"
    daemon = wait_until(lambda: read_pid(pidfile), 20, what="the daemon's pid file")
    try:
        assert daemon != srv.proc.pid
        assert cmdline(daemon) == "cppgunicorn: master [app:app]"
        assert os.getsid(daemon) != os.getsid(0), "detached from our session"
        wait_for_workers(daemon, 2)
        assert get_once(srv.port)[0] == 200
        os.kill(daemon, signal.SIGWINCH)
        wait_for_workers(daemon, 0)
        assert alive(daemon)
        os.kill(daemon, signal.SIGTTIN)
        wait_for_workers(daemon, 1)
        assert get_once(srv.port)[0] == 200
        os.kill(daemon, signal.SIGTERM)
        wait_until(lambda: not alive(daemon), 20, what="the daemon to exit")
        assert not pidfile.exists()
        assert "graceful stop of workers" in error.read_text()
    finally:
        if alive(daemon):
            terminate_tree(daemon)


def test_term_while_workers_are_being_forked_still_stops_at_once(start_server):
    # Regression: a TERM that reached a worker between fork and its own
    # signal set-up ran the master's handler there and was lost, so the
    # master waited the whole graceful timeout for it.
    for _ in range(10):
        srv = start_server("app:app", "-w", "3", chdir=APP_DIR, wait=False)
        wait_until(lambda: "Listening at" in srv.stderr(), 20, what="the master up")
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.wait(timeout=10) == 0, srv.stderr()
