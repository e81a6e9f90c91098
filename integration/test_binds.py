"""Listening addresses: IPv4, IPv6, unix sockets, several at once."""
import socket
import time

import pytest

from conftest import APPS, free_port, wait_for_port

FEATURES = APPS / "features"


def get_over(sock_family, address, path=b"/reason"):
    with socket.socket(sock_family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(address)
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    return out


def wait_for_unix(path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return True
        except OSError:
            time.sleep(0.05)
    return False


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_several_binds_ipv4_unix_and_ipv6_all_serve(start_server, tmp_path):
    port4 = free_port()
    sock_path = tmp_path / "app.sock"
    flags = ["--bind", f"127.0.0.1:{port4}", "--bind", f"unix:{sock_path}"]
    port6 = None
    if ipv6_available():
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port6 = s.getsockname()[1]
        flags += ["--bind", f"[::1]:{port6}"]
    srv = start_server("app:app", *flags, chdir=FEATURES, bind=False)
    assert wait_for_port(port4, srv.proc)
    assert wait_for_unix(sock_path)
    assert get_over(socket.AF_INET, ("127.0.0.1", port4)).startswith(b"HTTP/1.1 299")
    assert get_over(socket.AF_UNIX, str(sock_path)).startswith(b"HTTP/1.1 299")
    if port6:
        assert get_over(socket.AF_INET6, ("::1", port6)).startswith(b"HTTP/1.1 299")
    assert srv.stop() == 0
    assert not sock_path.exists(), "the unix socket file is removed on exit"


def test_a_busy_port_is_a_clear_error(start_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = start_server("app:app", "--bind", f"127.0.0.1:{port}", chdir=FEATURES,
                           bind=False)
        assert srv.wait(timeout=20) == 1
        assert f"127.0.0.1:{port}" in srv.stderr()
