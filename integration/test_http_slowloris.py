"""Slowloris: hundreds of clients that keep a request head open by sending
one byte a second must not stop other clients from being served."""
import socket
import time

import requests

from http_helpers import app_calls, start_hardening

SLOW_CLIENTS = 500
SECONDS = 5


def test_500_trickling_heads_do_not_stop_other_clients(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--timeout", "30")
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            slow.append(s)
        served = 0
        for _ in range(SECONDS):
            tick = time.monotonic()
            for s in slow:
                s.sendall(b"x")  # one more header byte, never the end of the head
            while time.monotonic() - tick < 1.0:
                r = requests.get(srv.url + "/", timeout=5)
                assert r.status_code == 200 and r.text == "ok"
                served += 1
                time.sleep(0.1)
        # None of the slow heads reached the app; every fast request did.
        assert app_calls(srv) == ["GET /"] * served
    finally:
        for s in slow:
            s.close()
