"""Listening sockets the master binds or is handed: unix sockets and
--umask, fd://N, systemd socket activation (LISTEN_FDS/LISTEN_PID),
--reuse-port, --backlog, and a unix socket kept across a USR2 upgrade."""
import os
import signal
import socket
import stat
import subprocess

import pytest

from conftest import free_port, wait_for_port
from proc_tools import (APP_DIR, Load, alive, get_once, stop_new_masters, wait_for_new_master,
                        wait_for_workers, wait_until)


def wait_for_unix(path, proc, timeout=20.0):
    def connects():
        assert proc.poll() is None, "the server exited"
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return True
        except OSError:
            return False
    wait_until(connects, timeout, what=f"{path} accepting")


def listening_tcp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def listening_unix_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(64)
    return s


def test_unix_socket_is_created_with_the_umask_serves_several_workers_and_is_removed(
        start_server, tmp_path):
    path = tmp_path / "app.sock"
    srv = start_server("app:app", "--bind", f"unix:{path}", "-w", "2", "--umask", "0o007",
                       "--keep-alive", "30",
                       chdir=APP_DIR, bind=False)
    wait_for_unix(path, srv.proc)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o770
    with Load(None, keepalive=2, fresh=2, path=path) as load:
        load.wait_for_requests(50)
    assert load.failures == []
    assert srv.stop() == 0
    assert not path.exists()


def test_fd_bind_serves_from_a_socket_the_parent_opened(start_server, tmp_path):
    tcp = listening_tcp_socket()
    unix_path = tmp_path / "given.sock"
    unix = listening_unix_socket(unix_path)
    with tcp, unix:
        port = tcp.getsockname()[1]
        srv = start_server("app:app", "--bind", f"fd://{tcp.fileno()}",
                           "--bind", f"fd://{unix.fileno()}", "-w", "2", chdir=APP_DIR,
                           bind=False, pass_fds=(tcp.fileno(), unix.fileno()))
        assert wait_for_port(port, srv.proc)
        assert get_once(port)[0] == 200
        assert get_once(None, path=unix_path)[0] == 200
        assert f"Listening at: http://127.0.0.1:{port}" in srv.stderr()
        assert srv.stop() == 0
        assert unix_path.exists(), "a socket handed to us is not ours to unlink"


def test_systemd_socket_activation_serves_on_fds_3_and_4(start_server, tmp_path):
    tcp = listening_tcp_socket()
    unix_path = tmp_path / "activated.sock"
    unix = listening_unix_socket(unix_path)
    with tcp, unix:
        port = tcp.getsockname()[1]
        # What systemd does: the sockets at fds 3 and 4, LISTEN_PID the
        # server's own pid ($$ of the shell that execs it).
        script = (f'LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:local exec "$@" '
                  f'3<&{tcp.fileno()} 4<&{unix.fileno()} {tcp.fileno()}<&- {unix.fileno()}<&-')
        srv = start_server("app:app", "-w", "2", "--keep-alive", "30", chdir=APP_DIR, bind=False,
                           prefix=["bash", "-c", script, "bash"],
                           pass_fds=(tcp.fileno(), unix.fileno()))
        assert wait_for_port(port, srv.proc)
        with Load(port, keepalive=2, fresh=1) as load:
            load.wait_for_requests(30)
        assert load.failures == []
        assert get_once(None, path=unix_path)[0] == 200
        err = srv.stderr()
        assert f"Listening at: http://127.0.0.1:{port}" in err
        assert "127.0.0.1:8000" not in err, "no default bind beside activated sockets"
        status, _, body = get_once(port, "/environ?LISTEN_FDS")
        assert body.endswith("missing"), "workers do not see LISTEN_FDS"
        assert srv.stop() == 0
        assert unix_path.exists(), "systemd's socket file is not ours to unlink"


def test_listen_fds_for_another_pid_is_ignored(start_server):
    port = free_port()
    srv = start_server("app:app", "--bind", f"127.0.0.1:{port}", chdir=APP_DIR, bind=False,
                       env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    assert wait_for_port(port, srv.proc)
    assert get_once(port)[0] == 200


def test_reuse_port_lets_two_servers_share_a_port(start_server):
    port = free_port()
    first = start_server("app:app", "--bind", f"127.0.0.1:{port}", "--reuse-port",
                         chdir=APP_DIR, bind=False)
    assert wait_for_port(port, first.proc)
    second = start_server("app:app", "--bind", f"127.0.0.1:{port}", "--reuse-port",
                          chdir=APP_DIR, bind=False)
    wait_until(lambda: "Listening at" in second.stderr() or second.proc.poll() is not None, 20,
               what="the second server to bind")
    assert second.proc.poll() is None, second.stderr()
    owner = {pid: first for pid in wait_for_workers(first.proc.pid, 1)}
    owner.update({pid: second for pid in wait_for_workers(second.proc.pid, 1)})
    # The kernel spreads connections over both sockets by their addresses.
    served = set()
    for _ in range(200):
        served.add(owner[int(get_once(port)[2][4:])])
        if len(served) == 2:
            break
    assert served == {first, second}


def test_backlog_sets_the_listen_queue_length(start_server):
    srv = start_server("app:app", "--backlog", "37", chdir=APP_DIR)
    out = subprocess.run(["ss", "-ltnH", f"sport = :{srv.port}"], capture_output=True,
                         text=True, timeout=10).stdout.split()
    if not out:
        pytest.skip("ss cannot list sockets here")
    assert out[2] == "37", out


def test_usr2_upgrade_keeps_serving_on_the_same_unix_socket_file(start_server, tmp_path):
    path = tmp_path / "app.sock"
    pidfile = tmp_path / "app.pid"
    srv = start_server("app:app", "--bind", f"unix:{path}", "--pid", pidfile, "--keep-alive", "30",
                       chdir=APP_DIR,
                       bind=False)
    wait_for_unix(path, srv.proc)
    old_master = srv.proc.pid
    new_master = None
    try:
        with Load(None, keepalive=1, fresh=2, path=path) as load:
            load.wait_for_requests(20)
            os.kill(old_master, signal.SIGUSR2)
            new_master = wait_for_new_master(pidfile, old_master)
            (new_worker,) = wait_for_workers(new_master, 1)
            wait_until(lambda: new_worker in load.served_by(), 20, what="the new worker serving")
            os.kill(old_master, signal.SIGTERM)
            assert srv.wait(timeout=30) == 0
            load.wait_for_requests(30)
        assert load.failures == []
        assert path.exists(), "the old master leaves the socket file to the new one"
        assert get_once(None, path=path)[0] == 200
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: not alive(new_master), 20, what="the new master to exit")
        assert not path.exists()
    finally:
        stop_new_masters(old_master, new_master, pidfile)


def test_sockets_handed_to_the_master_stay_open_and_in_place_after_usr2(start_server,
                                                                         tmp_path):
    # fd:// sockets belong to whoever handed them over (as systemd's do): no
    # master, old or new, may shut them down or unlink their files.
    tcp = listening_tcp_socket()
    unix_path = tmp_path / "given.sock"
    unix = listening_unix_socket(unix_path)
    pidfile = tmp_path / "app.pid"
    with tcp, unix:
        port = tcp.getsockname()[1]
        srv = start_server("app:app", "--bind", f"fd://{tcp.fileno()}",
                           "--bind", f"fd://{unix.fileno()}", "--pid", pidfile, chdir=APP_DIR,
                           bind=False, pass_fds=(tcp.fileno(), unix.fileno()))
        assert get_once(port)[0] == 200
        old_master = srv.proc.pid
        new_master = None
        try:
            os.kill(old_master, signal.SIGUSR2)
            new_master = wait_for_new_master(pidfile, old_master)
            wait_for_workers(new_master, 1)
            os.kill(old_master, signal.SIGTERM)
            assert srv.wait(timeout=30) == 0
            assert get_once(port)[0] == 200
            assert get_once(None, path=unix_path)[0] == 200
            os.kill(new_master, signal.SIGTERM)
            wait_until(lambda: not alive(new_master), 20, what="the new master to exit")
        finally:
            stop_new_masters(old_master, new_master, pidfile)
        assert unix_path.exists()
        # Still listening (our copies): connections are queued, not refused.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(unix_path))
