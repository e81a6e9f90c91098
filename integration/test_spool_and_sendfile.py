"""tmp_upload_dir: where a large request body is spooled (an unlinked file
the worker holds open); sendfile (--no-sendfile): file_wrapper bodies are
then read in blocks, with the same bytes on the wire."""
import hashlib
import os
import socket
import subprocess

import pytest
import requests

from conftest import server_binary
from http_helpers import start_hardening
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
    srv = start_hardening(start_server, tmp_path, *flags)
    want = hashlib.sha256(file_to_send.read_bytes()).hexdigest()
    for params in ({"path": str(file_to_send)}, {"path": str(file_to_send), "len": "1"}):
        r = requests.get(srv.url + "/file", params=params, timeout=30)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == want
    assert "sendfile" not in srv.stderr()  # no "not acted upon" warning


def test_print_config_shows_sendfile_off(tmp_path):
    r = subprocess.run([server_binary(), "--no-sendfile", "--print-config", "app:app"],
                       cwd=APP_DIR, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("sendfile ")][0]
    assert "False" in line and "command line" in line
