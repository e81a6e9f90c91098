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
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR)
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
    # pool, the pool thread iterates it like any other body).
    srv = start_hardening(start_server, tmp_path, "--threads", "1", *flags)
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
