"""tmp_upload_dir: where a large request body is spooled (an unlinked file
the worker holds open); sendfile (--no-sendfile): file_wrapper bodies are
then read in blocks, with the same bytes on the wire. Which system call
moved the file is seen with strace attached to the worker."""
import hashlib
import os
import socket
import subprocess

import pytest
import requests

from conftest import server_binary
from http_helpers import SyscallTrace, serving_worker_pid, start_hardening
from proc_tools import APP_DIR, wait_for_workers, wait_until


def spooled_files(pid, directory):
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory) + "/cppgunicorn-body-"):
            found.append(target)
    return found


def test_tmp_upload_dir_holds_the_spooled_body_of_a_large_upload(start_server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = tmp_path / "conf.py"
    conf.write_text(f"tmp_upload_dir = {str(spool)!r}\n")
    srv = start_server("app:app", "-c", conf, "--request-buffering", chdir=APP_DIR)
    (worker,) = wait_for_workers(srv.proc.pid, 1)
    touch = tmp_path / "in-app"
    body = b"x" * (3 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(f"POST /sleep?s=3&touch={touch} HTTP/1.1\r\nHost: t\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_until(touch.exists, 20, what="the upload to reach the app")
        files = spooled_files(worker, spool)
        assert len(files) == 1 and files[0].endswith("(deleted)"), files
        assert os.listdir(spool) == []  # unlinked: the descriptor is its only name
        assert b" 200 " in s.recv(65536)
    assert "tmp_upload_dir" not in srv.stderr()  # no "not acted upon" warning


def test_tmp_upload_dir_that_is_not_a_writable_directory_is_a_clear_error(tmp_path):
    for bad in (tmp_path / "missing", tmp_path / "file"):
        if bad.name == "file":
            bad.write_text("")
        conf = tmp_path / "conf.toml"
        conf.write_text(f"tmp_upload_dir = {str(bad)!r}\n")
        r = subprocess.run([server_binary(), "-c", str(conf), "app:app"], cwd=APP_DIR,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert f"Invalid value for tmp_upload_dir: '{bad}'" in r.stderr


@pytest.fixture(scope="module")
def file_to_send(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


@pytest.mark.parametrize("how", [[], ["--no-sendfile"], "conf"])
def test_file_wrapper_bodies_are_the_same_with_and_without_sendfile(start_server, tmp_path,
                                                                    file_to_send, how):
    flags = how
    if how == "conf":
        conf = tmp_path / "conf.py"
        conf.write_text("sendfile = False\n")
        flags = ["-c", conf]
    uses_sendfile = how == []
    # One app thread: the loop thread sends a file body itself (with a
    # pool, the pool thread iterates it like any other body; streamed
    # request bodies use a pool of one).
    srv = start_hardening(start_server, tmp_path, "--threads", "1", "--request-buffering", *flags)
    worker = serving_worker_pid(srv.port)
    want = hashlib.sha256(file_to_send.read_bytes()).hexdigest()
    size = file_to_send.stat().st_size
    requests_sent = 0
    with SyscallTrace(worker, tmp_path) as trace:
        for params in ({"path": str(file_to_send)}, {"path": str(file_to_send), "len": "1"}):
            r = requests.get(srv.url + "/file", params=params, timeout=30)
            assert r.status_code == 200
            assert hashlib.sha256(r.content).hexdigest() == want
            requests_sent += 1
        trace.wait_for_bytes(str(file_to_send), requests_sent * size)
    moved = trace.bytes_by_call(str(file_to_send))
    if uses_sendfile:
        # The kernel copies the file to the socket: sendfile(2) moves it,
        # except the pieces read with pread(2) while the socket was full.
        assert moved.get("sendfile", 0) > 0, moved
        assert moved.get("read", 0) == 0, moved
        assert moved.get("sendfile", 0) + moved.get("pread64", 0) == requests_sent * size, moved
    else:
        # Read in blocks by the file wrapper, never sendfile(2).
        assert "sendfile" not in [name for name, _ in trace.calls(str(file_to_send))], moved
        assert moved.get("read", 0) >= requests_sent * size, moved
    assert "sendfile" not in srv.stderr()  # no "not acted upon" warning


def test_print_config_shows_sendfile_off(tmp_path):
    r = subprocess.run([server_binary(), "--no-sendfile", "--print-config", "app:app"],
                       cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("sendfile ")][0]
    assert "False" in line and "command line" in line


# --------------------------------------------------------------------------
# Bounded disk: the body cap, the per-worker spool budget, a full disk.

def _upload_head(length, path=b"/upload"):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Length: " +
            str(length).encode() + b"\r\n\r\n")


def _answer(sock, timeout=20):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_the_default_body_cap_is_1_gib(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(_upload_head(1024 ** 3 + 1))  # refused from the head alone
        assert _answer(s).startswith(b"HTTP/1.1 413 ")
    out = subprocess.run([server_binary(), "--print-config", "app:app"], capture_output=True,
                         text=True, timeout=30).stdout
    assert "limit_request_body" in out and "1073741824" in out
    assert "spool_budget" in out and "4294967296" in out


@pytest.mark.parametrize("end", ["complete", "client gone mid-body", "refused"])
def test_the_spool_is_freed_however_the_request_ends(start_server, tmp_path, end):
    spool = tmp_path / "spool"
    spool.mkdir()
    # Spooling is request buffering's.
    srv = start_hardening(start_server, tmp_path, "--limit-request-body", str(3 * 1024 * 1024),
                          "--request-buffering")
    (worker,) = wait_for_workers(srv.proc.pid, 1)
    size = 4 * 1024 * 1024 if end == "refused" else 2 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        if end == "refused":  # a chunked body that outgrows limit_request_body
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(4):
                s.sendall(b"100000\r\n" + b"x" * 0x100000 + b"\r\n")
            assert _answer(s).startswith(b"HTTP/1.1 413 ")
        else:
            s.sendall(_upload_head(size) + b"x" * (size // 2 + 65536))
            wait_until(lambda: spooled_files(worker, "/tmp") or spooled_files(worker, os.environ.get("TMPDIR", "/tmp")),
                       20, what="a spooled body")
            if end == "complete":
                s.sendall(b"x" * (size - size // 2 - 65536))
                assert _answer(s).startswith(b"HTTP/1.1 200 ")
    wait_until(lambda: not spooled_files(worker, os.environ.get("TMPDIR", "/tmp")), 10,
               what="the spool file closed")
    assert requests.get(srv.url + "/", timeout=10).status_code == 200
    (again,) = wait_for_workers(srv.proc.pid, 1)
    assert again == worker, "the same worker, not a crashed one"


def test_an_upload_past_the_workers_spool_budget_gets_503_and_others_go_on(start_server, tmp_path):
    # Bodies go to disk a MiB at a time once past 1 MiB in memory: each of
    # these two spools a little over 1 MiB, together past the budget.
    srv = start_hardening(start_server, tmp_path, "--spool-budget", str(3 * 512 * 1024),
                          "--request-buffering")
    size = 2 * 1024 * 1024
    first = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    second = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    try:
        first.sendall(_upload_head(size) + b"a" * (size - 10))
        (worker,) = wait_for_workers(srv.proc.pid, 1)
        wait_until(lambda: spooled_files(worker, os.environ.get("TMPDIR", "/tmp")), 20,
                   what="the first body spooled")
        second.sendall(_upload_head(size) + b"b" * (size - 10))
        answer = _answer(second)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        first.sendall(b"a" * 10)
        assert _answer(first).startswith(b"HTTP/1.1 200 ")
    finally:
        first.close()
        second.close()
    wait_until(lambda: "spool_budget is used up" in srv.stderr(), 10, what="the log line")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root only)")
def test_a_full_disk_gets_507_and_a_log_line_naming_errno_directory_and_client(start_server,
                                                                             tmp_path):
    spool = tmp_path / "small"
    spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(spool)], check=True)
    try:
        srv = start_hardening(start_server, tmp_path, "-c", _conf(tmp_path, spool), "--request-buffering")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
            s.sendall(_upload_head(4 * 1024 * 1024))
            try:
                s.sendall(b"x" * (4 * 1024 * 1024))
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert _answer(s).startswith(b"HTTP/1.1 507 Insufficient Storage")
        wait_until(lambda: "No space left on device (errno 28)" in srv.stderr(), 10,
                   what="the log line")
        line = [l for l in srv.stderr().splitlines() if "errno 28" in l][0]
        assert "127.0.0.1" in line and str(spool) in line
        assert requests.get(srv.url + "/", timeout=10).status_code == 200
    finally:
        subprocess.run(["umount", "-l", str(spool)], check=False)


def _conf(tmp_path, spool):
    conf = tmp_path / "spool.conf.py"
    conf.write_text(f"tmp_upload_dir = {str(spool)!r}\n")
    return conf
