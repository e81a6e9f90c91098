"""start_response's strings reach the wire as latin-1 bytes; a character
beyond latin-1 is the app's error (500 and a traceback)."""
import pytest

from conftest import APPS
from test_http_connection import RawClient

HEADERS_APP = APPS / "headers"


@pytest.fixture(params=["1", "4"], ids=["threads1", "threads4"])
def server(start_server, request):
    return start_server("app:app", "--threads", request.param, chdir=HEADERS_APP)


def raw_get(srv, path):
    c = RawClient(srv.port, timeout=10)
    c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = c.read_to_close()
    c.close()
    return data


def test_latin1_status_and_header_values_are_sent_as_latin1_bytes(server):
    data = raw_get(server, "/latin1")
    assert data.startswith("HTTP/1.1 200 Ça va\r\n".encode("latin-1"))
    assert "\r\nX-Word: café ÿ\r\n".encode("latin-1") in data


def test_str_subclasses_are_accepted(server):
    data = raw_get(server, "/ascii-subclass")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nX-Sub: yes\r\n" in data


def test_header_beyond_latin1_gives_500_and_traceback(server):
    data = raw_get(server, "/wide")
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"never sent" not in data
    assert "UnicodeEncodeError" in server.stderr()
