"""The master and its worker pool: how many workers, replacing the ones that
die or hang, retiring them after --max-requests, boot errors, --preload,
process titles, the pid file, reaping, --user/--group and --worker-tmp-dir."""
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import APPS, free_port, server_binary, server_python
from proc_tools import (APP_DIR, HttpClient, Load, alive, children, clients_on_every_worker,
                        cmdline, get_once, parent_of, wait_for_workers, wait_until, workers,
                        zombies)


def test_workers_are_forked_and_titled_in_ps(start_server):
    srv = start_server("app:app", "-w", "3", "--name", "shop", chdir=APP_DIR)
    pids = wait_for_workers(srv.proc.pid, 3)
    assert cmdline(srv.proc.pid) == "cppgunicorn: master [shop]"
    for pid in pids:
        assert cmdline(pid) == "cppgunicorn: worker [shop]"
    ps = subprocess.run(["ps", "-o", "args=", "-p", ",".join(map(str, [srv.proc.pid] + pids))],
                        capture_output=True, text=True, timeout=10).stdout.splitlines()
    assert sorted(line.strip() for line in ps) == sorted(
        ["cppgunicorn: master [shop]"] + ["cppgunicorn: worker [shop]"] * 3)


def test_title_names_the_app_when_no_proc_name_is_given(start_server):
    srv = start_server("app:app", chdir=APP_DIR)
    (pid,) = wait_for_workers(srv.proc.pid, 1)
    assert cmdline(srv.proc.pid) == "cppgunicorn: master [app:app]"
    assert cmdline(pid) == "cppgunicorn: worker [app:app]"


def test_web_concurrency_is_the_default_worker_count_and_workers_flag_wins(start_server):
    srv = start_server("app:app", chdir=APP_DIR, env={"WEB_CONCURRENCY": "3"})
    wait_for_workers(srv.proc.pid, 3)
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR, env={"WEB_CONCURRENCY": "3"})
    wait_for_workers(srv.proc.pid, 2)


def test_killed_worker_is_replaced_and_clients_of_other_workers_see_no_error(start_server):
    srv = start_server("app:app", "-w", "3", "--keep-alive", "30", chdir=APP_DIR)
    master = srv.proc.pid
    before = wait_for_workers(master, 3)
    # Keep-alive clients stay on the worker that accepted them, so a failure
    # can be pinned on a worker: only connections to the killed one may fail.
    with Load(srv.port, keepalive=6) as load:
        on = load.spread(2)
        load.wait_for_requests(50)
        victim = sorted(on)[0]
        load.tolerated_pids.add(victim)
        others_before = sum(n for p, n in load.served_by().items() if p != victim)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        replacement = wait_until(lambda: set(workers(master)) - set(before) or None, 10,
                                 what="a replacement worker")
        # Reaction time, not speed: the master forks on SIGCHLD.
        assert time.monotonic() - killed_at < 1.0
        load.wait_for_requests(100)
        served_after = load.served_by()
    assert load.failures == []
    assert sum(n for p, n in served_after.items() if p != victim) > others_before
    assert len(wait_for_workers(master, 3)) == 3
    (new_pid,) = replacement
    assert victim not in workers(master)
    wait_until(lambda: not zombies(master) or None, 5, what="no <defunct> children")
    assert f"Worker (pid:{victim}) was sent SIGKILL" in srv.stderr()
    assert alive(new_pid)


def test_stuck_request_is_aborted_at_timeout_and_the_server_keeps_serving(start_server):
    srv = start_server("app:app", "-w", "2", "--timeout", "2", "--keep-alive", "30",
                       chdir=APP_DIR)
    master = srv.proc.pid
    wait_for_workers(master, 2)
    # Keep-alive clients, all connected before the stuck request: requests
    # queued behind it on its worker fail when that worker is killed; every
    # other request must succeed.
    with Load(srv.port, keepalive=3) as load:
        wait_until(lambda: None not in load.current, 20, what="every client connected")
        stuck = HttpClient(srv.port, timeout=30)
        stuck.sock.sendall(b"GET /loop HTTP/1.1\r\nHost: t\r\n\r\n")
        # The client of the stuck request sees its connection closed.
        started = time.monotonic()
        try:
            data = stuck.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert time.monotonic() - started < 25
        stuck.close()
        load.wait_for_requests(30)
    log = wait_until(lambda: (lambda t: t if "WORKER TIMEOUT" in t else None)(srv.stderr()), 5,
                     what="the timeout log line")
    line = next(l for l in log.splitlines() if "WORKER TIMEOUT" in l)
    assert "while serving GET /loop" in line
    stuck_pid = int(line.split("(pid:")[1].split(")")[0])
    assert [f for f in load.failures if f[0] != stuck_pid] == []
    wait_until(lambda: (lambda w: len(w) == 2 and stuck_pid not in w)(workers(master)), 20,
               what="the stuck worker replaced")
    # faulthandler says where the worker was stuck.
    assert "app.py" in log
    assert get_once(srv.port)[0] == 200
    assert srv.stop() == 0


def test_max_requests_with_jitter_retires_workers_under_load_with_no_failed_request(start_server):
    srv = start_server("app:app", "-w", "2", "--keep-alive", "30", "--max-requests", "40",
                       "--max-requests-jitter", "10", chdir=APP_DIR)
    with Load(srv.port, keepalive=3, fresh=1) as load:
        wait_until(lambda: len(load.served_by()) >= 5 or None, 60,
                   what="several generations of workers")
    assert load.failures == []
    assert "Autorestarting worker after current request." in srv.stderr()
    # A retiring worker still answers the requests already sent on its open
    # connections (one per client at most), with Connection: close.
    for pid, n in load.served_by().items():
        assert n <= 50 + 4, f"worker {pid} served {n} requests, more than 40 + jitter 10 + 4"
    assert srv.stop() == 0


def test_workers_retiring_soon_after_start_are_no_crash_loop(start_server):
    # Each worker retires after about 20 requests, a second or less after it
    # started: a clean exit, so no back-off may hold its replacement, and the
    # pool is never left without a worker (requests keep completing).
    srv = start_server("app:app", "-w", "2", "--keep-alive", "30", "--max-requests", "20",
                       "--max-requests-jitter", "5", chdir=APP_DIR)
    generations = 14
    with Load(srv.port, keepalive=3, fresh=1) as load:
        last, last_change, longest_stall = load.count(), time.monotonic(), 0.0
        deadline = time.monotonic() + 90
        while len(load.served_by()) < generations and time.monotonic() < deadline:
            time.sleep(0.05)
            now, n = time.monotonic(), load.count()
            if n != last:
                last, last_change = n, now
            longest_stall = max(longest_stall, now - last_change)
    assert len(load.served_by()) >= generations, "workers were not replaced"
    assert load.failures == []
    assert "keep dying" not in srv.stderr()
    # A replacement boots in a fraction of a second; the crash back-off
    # would hold it for 100 ms, then 200, 400, ... up to 10 s.
    assert longest_stall < 2.5, f"no request completed for {longest_stall:.1f} s"
    assert srv.stop() == 0


def test_a_crash_loop_backs_off_without_holding_back_a_retired_workers_replacement(
        start_server, tmp_path):
    # One of two workers is killed, and its replacements crash as they boot
    # until the back-off is seconds long. The other worker then retires after
    # --max-requests: its replacement must start at once, not wait out the
    # crashing slot's back-off with no worker left to serve.
    crash = tmp_path / "crash"
    srv = start_server("app:app", "-w", "2", "--keep-alive", "30", "--max-requests", "30",
                       chdir=APP_DIR, env={"PROC_APP_CRASH_IF_EXISTS": str(crash)})
    # Both workers have imported the app (each answered) before the file
    # that makes new ones crash appears.
    serving = clients_on_every_worker(srv.port, 2)
    for client in serving.values():
        client.close()
    crash.touch()
    os.kill(min(serving), signal.SIGKILL)

    def longest_delay():
        return max([int(line.split("waiting ")[1].split()[0])
                    for line in srv.stderr().splitlines() if "Workers keep dying" in line],
                   default=0)

    wait_until(lambda: longest_delay() >= 6400 or None, 60, what="a back-off of 6.4 s")
    crash.unlink()
    with Load(srv.port, keepalive=2) as load:
        start = last_change = time.monotonic()
        last, longest_stall = load.count(), 0.0
        while time.monotonic() - start < 5:
            time.sleep(0.05)
            now, n = time.monotonic(), load.count()
            if n != last:
                last, last_change = n, now
            longest_stall = max(longest_stall, now - last_change)
    assert len(load.served_by()) >= 2, "the surviving worker did not retire"
    assert longest_stall < 2.5, f"no request completed for {longest_stall:.1f} s"
    assert srv.stop() == 0


@pytest.mark.parametrize("preload", [False, True])
@pytest.mark.parametrize("uri, code, message", [
    ("broken_import:app", 3, "Worker failed to boot."),
    ("plainmod:missing", 4, "App failed to load."),
])
def test_boot_error_with_several_workers_stops_the_master_with_gunicorns_code(
        uri, code, message, preload):
    flags = ["--preload"] if preload else []
    proc = subprocess.run(
        [server_binary(), "--bind", f"127.0.0.1:{free_port()}", "-w", "3", *flags,
         "--chdir", str(APPS / "uri"), uri],
        capture_output=True, text=True, timeout=60)
    if preload:
        # gunicorn loads a preloaded app while setting the arbiter up, before
        # any worker: the command fails with status 1 and no halt reason.
        assert proc.returncode == 1, proc.stderr
        assert message not in proc.stderr
    else:
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr
    assert proc.stderr.count("Booting worker") <= (0 if preload else 3)


def test_preload_imports_the_app_once_in_the_master(start_server):
    srv = start_server("app:app", "-w", "2", "--preload", chdir=APP_DIR)
    master = srv.proc.pid
    pids = set(wait_for_workers(master, 2))
    seen = {}
    with Load(srv.port, keepalive=0, fresh=4) as load:
        wait_until(lambda: len(load.served_by()) >= 2 or None, 20, what="both workers serving")
    assert load.failures == []
    for _ in range(40):
        _, _, body = get_once(srv.port, "/import")
        fields = dict(f.split("=", 1) for f in body.split())
        seen[int(fields["pid"])] = int(fields["imported_by"])
        if len(seen) == 2:
            break
    assert set(seen) <= pids
    assert set(seen.values()) == {master}
    srv_plain = start_server("app:app", chdir=APP_DIR)
    _, _, body = get_once(srv_plain.port, "/import")
    fields = dict(f.split("=", 1) for f in body.split())
    assert fields["pid"] == fields["imported_by"]


def test_pid_file_holds_the_master_pid_and_is_removed_on_exit(start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    srv = start_server("app:app", "--pid", pidfile, chdir=APP_DIR)
    wait_until(pidfile.exists, 10, what="the pid file")
    assert pidfile.read_text().strip() == str(srv.proc.pid)
    assert srv.stop() == 0
    assert not pidfile.exists()


def test_a_second_server_on_a_live_pid_file_refuses_to_start(start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    first = start_server("app:app", "--pid", pidfile, chdir=APP_DIR)
    wait_until(pidfile.exists, 10, what="the pid file")
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}",
                           "--pid", str(pidfile), "--chdir", str(APP_DIR), "app:app"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert (f"Already running on PID {first.proc.pid} (or pid file '{pidfile}' is stale)"
            in proc.stderr)
    assert pidfile.read_text().strip() == str(first.proc.pid), "the running server keeps its file"
    assert first.stop() == 0
    assert not pidfile.exists()


@pytest.mark.parametrize("stale", ["dead pid", "another program", "garbage"])
def test_a_stale_pid_file_is_replaced(start_server, tmp_path, stale):
    pidfile = tmp_path / "app.pid"
    if stale == "dead pid":
        dead = subprocess.Popen(["true"])
        dead.wait()
        pidfile.write_text(f"{dead.pid}\n")
    elif stale == "another program":
        pidfile.write_text(f"{os.getpid()}\n")  # alive, but pytest is no server
    else:
        pidfile.write_text("not a pid\n")
    srv = start_server("app:app", "--pid", pidfile, chdir=APP_DIR)
    wait_until(lambda: pidfile.read_text().strip() == str(srv.proc.pid), 10,
               what="our pid in the file")


def test_the_pid_file_is_written_anew_not_through_a_symlink(start_server, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pidfile = tmp_path / "app.pid"
    pidfile.symlink_to(victim)
    # A predictable temporary name is no way in either.
    (tmp_path / "app.pid.tmp").symlink_to(victim)
    srv = start_server("app:app", "--pid", pidfile, chdir=APP_DIR)
    wait_until(lambda: not pidfile.is_symlink(), 10, what="a pid file of our own")
    assert pidfile.read_text().strip() == str(srv.proc.pid)
    assert victim.read_text() == "precious\n"
    assert (pidfile.stat().st_mode & 0o777) == 0o644
    assert not list(tmp_path.glob(".pidfile-*")), "no temporary file left"


PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _as_subreaper():
    # The flag survives exec: the master then adopts orphans the way PID 1
    # does in a container.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def test_master_reaps_orphans_and_dead_workers_like_pid_1(start_server):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR, preexec_fn=_as_subreaper)
    master = srv.proc.pid
    orphans = []
    for _ in range(3):
        status, _, body = get_once(srv.port, "/orphan")
        assert status == 200
        orphans.append(int(body.split("orphan=")[1]))
    # Re-parented to the master (unless one already exited and was reaped).
    assert any(parent_of(o) == master for o in orphans)
    wait_until(lambda: not any(os.path.exists(f"/proc/{o}") for o in orphans) or None, 10,
               what="the orphans reaped, not left <defunct>")
    for pid in wait_for_workers(master, 2):
        os.kill(pid, signal.SIGKILL)
    wait_for_workers(master, 2)
    wait_until(lambda: not zombies(master) or None, 10, what="no <defunct> children of the master")
    assert get_once(srv.port)[0] == 200
    assert srv.stop() == 0


def _pid_namespaces_allowed():
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "true"], timeout=10,
                              capture_output=True).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _pid_namespaces_allowed(), reason="cannot create a pid namespace")
def test_master_as_pid_1_of_a_container_reaps_orphans_and_stops_on_term(start_server):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR,
                       prefix=["unshare", "--pid", "--fork", "--kill-child"])
    master = wait_until(lambda: children(srv.proc.pid), 10, what="the master under unshare")[0]
    wait_for_workers(master, 2)
    for _ in range(3):
        assert get_once(srv.port, "/orphan")[0] == 200
    # Orphans (titled like their worker) are re-parented to PID 1: the master.
    wait_until(lambda: len(children(master)) >= 3, 10, what="orphans adopted by the master")
    wait_until(lambda: len(children(master)) == 2 and not zombies(master), 10,
               what="the orphans reaped, not left <defunct>")
    for pid in workers(master):
        os.kill(pid, signal.SIGKILL)
    wait_for_workers(master, 2)
    wait_until(lambda: not zombies(master), 10, what="no <defunct> children of the master")
    assert get_once(srv.port)[0] == 200
    os.kill(master, signal.SIGTERM)
    assert srv.wait(timeout=20) == 0


def test_crash_loop_is_backed_off_not_spun(start_server):
    srv = start_server("app:app", "-w", "1", chdir=APP_DIR,
                       env={"PROC_APP_CRASH_AFTER_BOOT": "1"})

    def delays():
        return [int(line.split("waiting ")[1].split()[0])
                for line in srv.stderr().splitlines() if "Workers keep dying" in line]

    # Each worker dies 50 ms after booting; the wait before the next one
    # doubles instead of replacing it as fast as it can fork.
    wait_until(lambda: len(delays()) >= 4 or None, 30, what="four back-off messages")
    seen = delays()
    assert seen == sorted(seen) and seen[-1] >= 4 * seen[0], seen
    assert srv.proc.poll() is None, "a crash loop is not a boot error: the master stays"
    assert srv.stop() == 0


def _as_nobody_can_read(path):
    import pwd
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    return subprocess.run(["test", "-r", str(path)], preexec_fn=drop,
                          timeout=10).returncode == 0


@pytest.fixture(scope="module")
def readable_by_nobody():
    """What a worker running as nobody reads once it has dropped root: a
    copy of the proc app in a directory anyone may enter, and the server's
    Python home (its standard library and extension modules) if nobody
    cannot read where it is installed (a Python under root's home, as
    pyenv puts it). Returns (app directory, environment for the server)."""
    import shutil
    import tempfile
    top = Path(tempfile.mkdtemp(prefix="cppgunicorn-nobody-", dir="/tmp"))
    top.chmod(0o755)
    app_dir = top / "app"
    app_dir.mkdir()
    shutil.copy(APP_DIR / "app.py", app_dir / "app.py")
    env = {}
    probe = subprocess.run(
        [server_python(), "-c", "import ast, sys; print(ast.__file__); print(sys.base_prefix); "
                                "print('python%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    ast_file, base_prefix, version = probe[:3]
    if not _as_nobody_can_read(ast_file):
        # The same files, hard-linked where they can be (one file system),
        # in a directory nobody may enter: PYTHONHOME points the server
        # there (sys.prefix stays the venv, whose pyvenv.cfg is found
        # beside its python as before).
        stdlib = Path(base_prefix) / "lib" / version
        home = top / "python"

        def link_or_copy(src, dst):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        shutil.copytree(stdlib, home / "lib" / version, copy_function=link_or_copy,
                        ignore=shutil.ignore_patterns("site-packages", "test", "idlelib",
                                                      "tkinter", "turtledemo", "ensurepip"))
        for d in [home, *home.rglob("*")]:
            if d.is_dir():
                d.chmod(0o755)
        env["PYTHONHOME"] = str(home)
        assert _as_nobody_can_read(home / "lib" / version / "ast.py")
    assert _as_nobody_can_read(app_dir / "app.py")
    yield app_dir, env
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may switch a worker to another user")
@pytest.mark.parametrize("preload", [[], ["--preload"]])
def test_user_group_and_umask_apply_to_workers(start_server, tmp_path, preload,
                                              readable_by_nobody):
    import grp
    import pwd
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    # The interpreter starts with the master's rights; without --preload the
    # app is then imported as nobody, with what Python imports on the way.
    app_dir, env = readable_by_nobody
    srv = start_server("app:app", "--user", "nobody", "--group", group, "--umask", "027",
                       "--worker-tmp-dir", tmp_path, *preload, chdir=app_dir, env=env)
    (worker,) = wait_for_workers(srv.proc.pid, 1)
    status, _, body = get_once(srv.port, "/whoami")
    assert status == 200, body
    fields = dict(f.split("=", 1) for f in body.split())
    assert int(fields["pid"]) == worker
    assert (int(fields["uid"]), int(fields["gid"])) == (nobody.pw_uid, nobody.pw_gid)
    assert fields["umask"] == "27"
    # As the kernel sees it: real, effective, saved and file-system ids.
    status_lines = dict(line.split(":", 1) for line in
                        Path(f"/proc/{worker}/status").read_text().splitlines() if ":" in line)
    assert status_lines["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert status_lines["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert os.stat(f"/proc/{worker}").st_uid == nobody.pw_uid
    assert os.stat(f"/proc/{srv.proc.pid}").st_uid == 0, "the master keeps its user"
    # Without --preload the worker imported the app itself, as nobody.
    imported_by = int(get_once(srv.port, "/import")[2].split()[1].split("=")[1])
    assert imported_by == (srv.proc.pid if preload else worker)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may switch a worker to another group")
def test_group_alone_applies_to_workers_that_import_the_app_themselves(start_server):
    import grp
    group = grp.getgrnam("nogroup") if "nogroup" in [g.gr_name for g in grp.getgrall()] \
        else grp.getgrgid(65534)
    srv = start_server("app:app", "--group", group.gr_name, chdir=APP_DIR)
    (worker,) = wait_for_workers(srv.proc.pid, 1)
    fields = dict(f.split("=", 1) for f in get_once(srv.port, "/whoami")[2].split())
    assert (int(fields["uid"]), int(fields["gid"])) == (0, group.gr_gid)
    gids = dict(line.split(":", 1) for line in
                Path(f"/proc/{worker}/status").read_text().splitlines() if ":" in line)["Gid"]
    assert gids.split() == [str(group.gr_gid)] * 4


def test_unknown_user_is_a_clear_error():
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}",
                           "--user", "no-such-user-here", "--chdir", str(APP_DIR), "app:app"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "user" in proc.stderr and "no-such-user-here" in proc.stderr


def test_worker_tmp_dir_that_does_not_exist_is_a_clear_error(tmp_path):
    missing = tmp_path / "missing"
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}",
                           "--worker-tmp-dir", str(missing), "--chdir", str(APP_DIR), "app:app"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3
    assert "worker_tmp_dir" in proc.stderr and str(missing) in proc.stderr


def test_workers_exit_when_their_master_is_killed(start_server):
    srv = start_server("app:app", "-w", "2", chdir=APP_DIR)
    pids = wait_for_workers(srv.proc.pid, 2)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    # Each worker notices its parent changed and stops: none is left behind.
    wait_until(lambda: not any(alive(p) for p in pids), 10, what="the orphaned workers to exit")


def test_pid_file_that_cannot_be_written_is_a_clear_error(tmp_path):
    pidfile = tmp_path / "missing-dir" / "app.pid"
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{free_port()}",
                           "--pid", str(pidfile), "--chdir", str(APP_DIR), "app:app"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "pidfile" in proc.stderr and str(pidfile) in proc.stderr
