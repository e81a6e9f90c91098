"""The control socket: gunicorn 27's ``gunicornc`` and our ``cppgunicornc``
drive a running server with every command; the socket's file, mode, owner
checks and framing errors; USR2 and HUP keep it working."""
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import server_binary
from proc_tools import (APP_DIR, alive, stop_new_masters, wait_for_new_master,
                        wait_for_workers, wait_until, workers)

BIN = Path(sys.executable).parent
CLIENTS = ["gunicornc", "cppgunicornc"]


def ctl(client, path, command, as_json=True, check=True, **popen_extra):
    args = [str(BIN / client), "-s", str(path), "-c", command] + (["-j"] if as_json else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, **popen_extra)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    if not as_json or done.returncode != 0:
        return done
    return json.loads(done.stdout)


def start_with_socket(start_server, tmp_path, *flags, workers_n=2):
    path = tmp_path / "c.ctl"
    srv = start_server("app:app", "-w", str(workers_n), "--control-socket", path, *flags,
                       chdir=APP_DIR)
    wait_until(path.exists, 10, what="the control socket")
    wait_for_workers(srv.proc.pid, workers_n)
    return srv, path


def frame(obj):
    payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(payload)) + payload


def read_frame(sock):
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            return None
        data += chunk
    (length,) = struct.unpack(">I", data)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk, "closed inside a frame"
        body += chunk
    return json.loads(body)


def closed_by_server(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("client", CLIENTS)
def test_show_commands_answer_with_gunicorns_fields(start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path)
    master = srv.proc.pid
    pids = sorted(workers(master))

    shown = ctl(client, path, "show workers")
    assert shown["count"] == 2
    assert sorted(w["pid"] for w in shown["workers"]) == pids
    assert [w["age"] for w in shown["workers"]] == [1, 2]
    for w in shown["workers"]:
        assert set(w) == {"pid", "age", "booted", "aborted", "last_heartbeat"}
        assert w["booted"] is True and w["aborted"] is False
        assert 0 <= w["last_heartbeat"] < 5

    stats = ctl(client, path, "show stats")
    assert stats["pid"] == master
    assert stats["workers_current"] == 2 and stats["workers_target"] == 2
    assert stats["workers_spawned"] == 2 and stats["workers_killed"] == 0
    assert stats["reloads"] == 0 and stats["dirty_arbiter_pid"] is None
    assert stats["uptime"] >= 0

    config = ctl(client, path, "show config")
    assert config["bind"] == [f"127.0.0.1:{srv.port}"]
    assert config["workers"] == 2 and config["worker_class"] == "sync"
    assert config["control_socket"] == str(path)
    assert config["control_socket_disable"] is False
    assert config["pidfile"] is None and config["dirty_workers"] == 0

    listeners = ctl(client, path, "show listeners")
    assert listeners["count"] == 1
    assert listeners["listeners"][0]["address"] == f"http://127.0.0.1:{srv.port}"
    assert listeners["listeners"][0]["type"] == "tcp"

    everything = ctl(client, path, "show all")
    assert everything["arbiter"] == {"pid": master, "type": "arbiter", "role": "master"}
    assert everything["web_worker_count"] == 2 and everything["dirty_arbiter"] is None

    assert ctl(client, path, "show dirty")["enabled"] is False
    assert "worker add [N]" in ctl(client, path, "help")["commands"]

    # Without -j: the clients' tables.
    table = ctl(client, path, "show workers", as_json=False).stdout
    assert "Total: 2 workers" in table and str(pids[0]) in table
    assert f"PID:              {master}" in ctl(client, path, "show stats", as_json=False).stdout


@pytest.mark.parametrize("client", CLIENTS)
def test_worker_add_and_remove_change_the_number_of_worker_processes(
        start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path, workers_n=1)
    master = srv.proc.pid
    assert ctl(client, path, "worker add 2") == {"added": 2, "previous": 1, "total": 3}
    wait_for_workers(master, 3)
    assert ctl(client, path, "show stats")["workers_target"] == 3
    assert ctl(client, path, "worker remove 5") == {"removed": 2, "previous": 3, "total": 1}
    wait_until(lambda: len(workers(master)) == 1, 20, what="two workers retired")
    assert ctl(client, path, "show workers")["count"] == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_worker_kill_replaces_that_worker(start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path)
    master = srv.proc.pid
    victim, other = sorted(workers(master))
    assert ctl(client, path, f"worker kill {victim}") == {"success": True, "killed": victim}
    wait_until(lambda: victim not in workers(master) and len(workers(master)) == 2, 20,
               what="the killed worker replaced")
    assert other in workers(master)
    assert ctl(client, path, "show stats")["workers_killed"] == 1
    assert ctl(client, path, "worker kill 1") == {"success": False, "error": "Worker 1 not found"}


@pytest.mark.parametrize("client", CLIENTS)
def test_reload_replaces_the_workers_and_the_socket_keeps_working(start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path)
    master = srv.proc.pid
    before = set(workers(master))
    assert ctl(client, path, "reload") == {"status": "reloading"}
    wait_until(lambda: not (set(workers(master)) & before) and len(workers(master)) == 2, 30,
               what="new workers after reload")
    assert "Hang up: Master" in srv.stderr()
    assert ctl(client, path, "show stats")["reloads"] == 1
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: srv.stderr().count("Hang up: Master") == 2, 10, what="the second HUP")
    assert ctl(client, path, "show stats")["reloads"] == 2


@pytest.mark.parametrize("client", CLIENTS)
def test_reopen_reopens_the_log_files(start_server, tmp_path, client):
    log = tmp_path / "error.log"
    srv, path = start_with_socket(start_server, tmp_path, "--error-logfile", log)
    moved = tmp_path / "error.log.1"
    log.rename(moved)
    assert ctl(client, path, "reopen") == {"status": "reopening"}
    wait_until(log.exists, 10, what="the error log reopened under its name")
    wait_until(lambda: "Handling signal: usr1" in moved.read_text() + log.read_text(), 10,
               what="USR1 handled")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode,signal_line", [("", "term"), ("quick", "int")])
def test_shutdown_exits_0_and_removes_the_socket(start_server, tmp_path, client, mode, signal_line):
    srv, path = start_with_socket(start_server, tmp_path)
    answer = ctl(client, path, f"shutdown {mode}".strip())
    assert answer == {"status": "shutting_down", "mode": mode or "graceful"}
    assert srv.wait(timeout=30) == 0
    assert not path.exists()
    assert f"Handling signal: {signal_line}" in srv.stderr()


@pytest.mark.parametrize("client", CLIENTS)
def test_interactive_mode_runs_commands_until_quit(start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path)
    done = subprocess.run([str(BIN / client), "-s", str(path)], input="show workers\nbogus\nquit\n",
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"Connected to {path}" in done.stdout
    assert "Total: 2 workers" in done.stdout
    assert "Error: Invalid argument: Unknown command: bogus" in done.stdout


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_command_is_an_error_and_the_client_exits_1(start_server, tmp_path, client):
    srv, path = start_with_socket(start_server, tmp_path)
    done = ctl(client, path, "worker add x", check=False)
    assert done.returncode == 1
    assert "Invalid argument: invalid literal for int() with base 10: 'x'" in done.stderr
    assert ctl(client, path, "show workers")["count"] == 2


def test_the_socket_file_has_the_configured_mode(start_server, tmp_path):
    _, default = start_with_socket(start_server, tmp_path, workers_n=1)
    assert stat.S_ISSOCK(default.stat().st_mode)
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    group = tmp_path / "g.ctl"
    start_server("app:app", "--control-socket", group, "--control-socket-mode", "0660",
                 chdir=APP_DIR)
    wait_until(group.exists, 10, what="the second control socket")
    assert stat.S_IMODE(group.stat().st_mode) == 0o660


def _shared_dir():
    # tmp_path is private to root; nobody must reach the socket's directory.
    d = Path(tempfile.mkdtemp(prefix="cppgunicorn-ctl-"))
    d.chmod(0o755)
    return d


def as_nobody(client, path, command):
    """Runs ``client``'s main in a forked child that has become nobody
    (the venv's files are not theirs to execute); returns (status, stderr)."""
    import contextlib
    import io
    import pwd

    from gunicorn.ctl import cli as gunicornc
    from cppgunicorn import control as cppgunicornc
    main = gunicornc.main if client == "gunicornc" else cppgunicornc.main
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 99
        err = io.StringIO()
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            sys.argv = [client, "-s", str(path), "-c", command, "-j"]
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = main()
        except BaseException as e:  # noqa: B036 - report anything to the parent
            err.write(repr(e))
        finally:
            os.write(write_end, err.getvalue().encode())
            os._exit(status if isinstance(status, int) else 98)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        err = f.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), err


@pytest.mark.parametrize("client", CLIENTS)
def test_another_user_is_refused_even_when_the_mode_lets_them_connect(start_server, client):
    shared = _shared_dir()
    try:
        path = shared / "c.ctl"
        srv = start_server("app:app", "--control-socket", path, "--control-socket-mode", "0666",
                           chdir=APP_DIR)
        wait_until(path.exists, 10, what="the control socket")
        status, err = as_nobody(client, path, "show workers")
        assert status == 1
        assert "Permission denied: uid 65534" in err
        wait_until(lambda: "Control socket: Permission denied: uid 65534" in srv.stderr(), 10,
                   what="the refusal logged")
        assert srv.proc.poll() is None
        assert ctl(client, path, "show workers")["count"] == 1  # its owner still may
        # With the default mode the file itself keeps them out.
        private = shared / "p.ctl"
        start_server("app:app", "--control-socket", private, chdir=APP_DIR)
        wait_until(private.exists, 10, what="the second control socket")
        status, err = as_nobody(client, private, "show workers")
        assert status == 1 and "Failed to connect" in err and "Permission denied" in err
    finally:
        for f in shared.iterdir():
            f.unlink()
        shared.rmdir()


def test_malformed_oversized_and_slow_messages_are_answered_with_an_error_and_closed(
        start_server, tmp_path):
    srv, path = start_with_socket(start_server, tmp_path)

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(str(path))
        return s

    cases = [
        (frame(b"{not json"), "Invalid JSON"),
        (frame(b"[1, 2]"), "Invalid message: expected a JSON object"),
        (struct.pack(">I", 0x7FFFFFFF) + b"{}", "Message too large: 2147483647 bytes"),
        (struct.pack(">I", 65537), "Message too large: 65537 bytes (at most 65536)"),
    ]
    for raw, error in cases:
        with connect() as s:
            s.sendall(raw)
            answer = read_frame(s)
            assert answer["status"] == "error" and error in answer["error"], (raw, answer)
            assert closed_by_server(s)
    # Half a length prefix, then nothing: closed with an error after 5 s.
    with connect() as s:
        s.sendall(b"\x00\x00")
        answer = read_frame(s)
        assert answer["status"] == "error" and "Incomplete message" in answer["error"]
        assert closed_by_server(s)
    # An empty command is an error answer on a connection that stays open.
    with connect() as s:
        s.sendall(frame({"id": 7, "command": "  "}))
        assert read_frame(s) == {"id": 7, "status": "error", "error": "Empty command"}
        s.sendall(frame({"id": "x", "command": "worker", "args": ["add", 0]}))
        assert read_frame(s)["data"] == {"added": 1, "previous": 2, "total": 3}
    assert srv.proc.poll() is None
    wait_for_workers(srv.proc.pid, 3)


def test_no_control_socket_creates_none(start_server, tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    srv = start_server("app:app", "--no-control-socket", chdir=APP_DIR,
                       env={"XDG_RUNTIME_DIR": str(runtime)})
    wait_for_workers(srv.proc.pid, 1)
    assert list(runtime.iterdir()) == []
    assert "Control socket" not in srv.stderr()


def test_the_default_path_is_gunicorns(start_server, tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    srv = start_server("app:app", chdir=APP_DIR, env={"XDG_RUNTIME_DIR": str(runtime)})
    wait_until((runtime / "gunicorn.ctl").exists, 10, what="$XDG_RUNTIME_DIR/gunicorn.ctl")
    assert f"Control socket listening at {runtime}/gunicorn.ctl" in srv.stderr()
    # Without $XDG_RUNTIME_DIR: ~/.gunicorn/gunicorn.ctl, the directory made 0700.
    home = tmp_path / "home"
    home.mkdir()
    srv2 = start_server("app:app", chdir=APP_DIR,
                        env={"XDG_RUNTIME_DIR": str(tmp_path / "missing"), "HOME": str(home)})
    sock = home / ".gunicorn" / "gunicorn.ctl"
    wait_until(sock.exists, 10, what="~/.gunicorn/gunicorn.ctl")
    assert stat.S_IMODE((home / ".gunicorn").stat().st_mode) == 0o700
    # gunicornc finds it the same way.
    done = subprocess.run([str(BIN / "gunicornc"), "-c", "show stats", "-j"], capture_output=True,
                          text=True, timeout=30,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "missing"),
                               "HOME": str(home)})
    assert json.loads(done.stdout)["pid"] == srv2.proc.pid


def test_a_stale_socket_is_replaced_and_a_live_one_is_left_to_its_server(start_server, tmp_path):
    path = tmp_path / "c.ctl"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a file nobody listens on, as a killed master leaves it
    first = start_server("app:app", "--control-socket", path, chdir=APP_DIR)
    wait_until(lambda: "Control socket listening at" in first.stderr(), 10, what="first socket")
    assert ctl("cppgunicornc", path, "show stats")["pid"] == first.proc.pid
    second = start_server("app:app", "--control-socket", path, chdir=APP_DIR)
    wait_for_workers(second.proc.pid, 1)
    wait_until(lambda: "Failed to start control socket" in second.stderr(), 10,
               what="the second server's warning")
    assert f"is in use by the server with pid {first.proc.pid}" in second.stderr()
    assert second.stop() == 0
    assert ctl("cppgunicornc", path, "show stats")["pid"] == first.proc.pid
    assert first.stop() == 0
    assert not path.exists()


def test_usr2_hands_the_socket_to_the_new_master(start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    srv, path = start_with_socket(start_server, tmp_path, "--pid", pidfile)
    old_master = srv.proc.pid
    new_master = None
    try:
        os.kill(old_master, signal.SIGUSR2)
        new_master = wait_for_new_master(pidfile, old_master)
        wait_for_workers(new_master, 2)
        assert ctl("gunicornc", path, "show stats")["pid"] == new_master
        os.kill(old_master, signal.SIGTERM)
        assert srv.wait(timeout=30) == 0
        assert path.exists(), "the old master leaves the new one's socket in place"
        assert ctl("cppgunicornc", path, "show stats")["pid"] == new_master
        assert ctl("cppgunicornc", path, "shutdown") == {"status": "shutting_down",
                                                         "mode": "graceful"}
        wait_until(lambda: not alive(new_master), 30, what="the new master to exit")
        assert not path.exists()
    finally:
        stop_new_masters(old_master, new_master, pidfile)


def test_a_failed_usr2_gives_the_socket_back_to_the_old_master(
        start_server, tmp_path, monkeypatch):
    link = tmp_path / "cppgunicorn"
    link.symlink_to(Path(server_binary()).resolve())
    monkeypatch.setenv("CPPGUNICORN_BIN", str(link))
    srv, path = start_with_socket(start_server, tmp_path, workers_n=1)
    master = srv.proc.pid
    link.unlink()  # the upgrade's binary is gone: the new master dies
    os.kill(master, signal.SIGUSR2)
    wait_until(lambda: "The re-executed master" in srv.stderr(), 20,
               what="the failed new master reaped")
    wait_until(lambda: srv.stderr().count("Control socket listening at") == 2, 10,
               what="the control socket opened again")
    assert ctl("gunicornc", path, "show stats")["pid"] == master
    assert srv.stop() == 0
    assert not path.exists()


def test_hup_moves_the_socket_to_a_new_path_and_closes_it_when_disabled(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    first, second = tmp_path / "one.ctl", tmp_path / "two.ctl"
    conf.write_text(f"control_socket = {str(first)!r}\n")
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR)
    master = srv.proc.pid
    wait_until(first.exists, 10, what="the first control socket")
    conf.write_text(f"control_socket = {str(second)!r}\ncontrol_socket_mode = 0o640\n")
    assert ctl("cppgunicornc", first, "reload") == {"status": "reloading"}
    wait_until(second.exists, 20, what="the socket at its new path")
    assert not first.exists()
    assert stat.S_IMODE(second.stat().st_mode) == 0o640
    assert ctl("gunicornc", second, "show stats")["pid"] == master
    conf.write_text("control_socket_disable = True\n")
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: not second.exists(), 20, what="the socket closed")
    assert srv.proc.poll() is None


def test_a_client_that_never_reads_its_answers_is_no_longer_read_from(start_server, tmp_path):
    srv, path = start_with_socket(start_server, tmp_path, workers_n=1)
    request = frame({"id": 1, "command": "show config"})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.settimeout(0.5)
        sent = 0
        stalled = 0
        # Requests until the socket takes no more: the master stops reading
        # once 64 KiB of answers wait, so only the kernel's buffers fill.
        while stalled < 4 and sent < 64 * 1024 * 1024:
            try:
                sent += s.send(request * 100)
                stalled = 0
            except socket.timeout:
                stalled += 1
        assert sent < 4 * 1024 * 1024, f"the master kept reading: {sent} bytes taken"
        assert ctl("cppgunicornc", path, "show stats")["pid"] == srv.proc.pid
