"""Request bodies over real sockets: chunked with trailers, Expect:
100-continue, --limit-request-body, a body that trickles in while others are
served, and a large upload spooled to disk with bounded worker memory."""
import hashlib
import os
import socket
import threading
import time

import requests

from http_helpers import app_calls, read_until_close, start_hardening, status_of, vm_rss_kib, serving_worker_pid


def _upload_answer(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return status_of(head), body


def test_chunked_body_with_trailers_reaches_the_app_whole(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    payload = b"hello world, " * 1000
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(payload[i:i + 777]), payload[i:i + 777])
                      for i in range(0, len(payload), 777))
    raw = (b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           + chunks + b"0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(raw)
        data, closed = read_until_close(sock)
    status, body = _upload_answer(data)
    assert status == 200
    assert body == b"%d %s" % (len(payload), hashlib.sha256(payload).hexdigest().encode())


def test_expect_100_continue_gets_an_interim_response_then_the_answer(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        data, closed = read_until_close(sock)
    status, body = _upload_answer(data)
    assert status == 200 and body.startswith(b"5 ")


def test_limit_request_body_answers_413_before_100_continue(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--limit-request-body", "1000")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        data, closed = read_until_close(sock)
    assert status_of(data) == 413 and closed
    assert b"100 Continue" not in data
    assert app_calls(srv) == []


def test_limit_request_body_stops_a_chunked_body_that_grows_past_it(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path, "--limit-request-body", "1000")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"200\r\n" + b"x" * 512 + b"\r\n" + b"200\r\n" + b"x" * 512 + b"\r\n")
        data, closed = read_until_close(sock)
    assert status_of(data) == 413 and closed
    assert app_calls(srv) == []
    # At the limit exactly is fine.
    body = b"y" * 1000
    r = requests.post(srv.url + "/upload", data=body, timeout=5)
    assert r.status_code == 200 and r.text.startswith("1000 ")


def test_limit_request_body_rejects_a_bad_value_naming_the_setting(start_server):
    srv = start_server("app:app", "--limit-request-body", "-3", wait=False)
    assert srv.wait(timeout=10) != 0
    assert "limit_request_body" in srv.stderr() and "-3" in srv.stderr()


def test_a_body_trickling_in_does_not_hold_up_other_clients(start_server, tmp_path):
    # What request buffering is for: with one thread, a streamed body would
    # hold it (test_request_streaming.py shows the other side).
    srv = start_hardening(start_server, tmp_path, "--request-buffering")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as slow:
        slow.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\nConnection: close\r\n\r\n")
        for i in range(10):
            slow.sendall(b"ab")
            # Another client is served between every two body bytes.
            assert requests.get(srv.url + "/", timeout=2).text == "ok"
            time.sleep(0.05)
        data, closed = read_until_close(slow)
    assert _upload_answer(data) == (200, b"20 " + hashlib.sha256(b"ab" * 10).hexdigest().encode())


def test_a_200_mib_chunked_upload_keeps_worker_memory_bounded(start_server, tmp_path):
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    # default) before reuse: keep it small so RSS measures what we hold.
    asan = os.environ.get("ASAN_OPTIONS", "")
    srv = start_hardening(start_server, tmp_path, "--timeout", "60",
                          env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"})
    pid = serving_worker_pid(srv.port)
    assert requests.get(srv.url + "/", timeout=5).text == "ok"
    baseline = vm_rss_kib(pid)
    total = 200 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KiB
    chunk = b"%x\r\n%s\r\n" % (len(block), block)
    peak = [baseline]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss_kib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n")
            for _ in range(total // len(block)):
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
            data, closed = read_until_close(sock, deadline=60)
    finally:
        done.set()
        watcher.join(timeout=5)
    expected = hashlib.sha256(block * (total // len(block))).hexdigest().encode()
    assert _upload_answer(data) == (200, b"%d %s" % (total, expected))
    growth_mib = (peak[0] - baseline) / 1024
    print(f"worker RSS: baseline {baseline // 1024} MiB, peak {peak[0] // 1024} MiB, "
          f"growth {growth_mib:.1f} MiB for a {total // (1024 * 1024)} MiB upload")
    assert growth_mib < 32, f"the worker grew {growth_mib:.1f} MiB"


def test_readline_over_a_spooled_chunked_body_sees_every_line(start_server, tmp_path):
    srv = start_hardening(start_server, tmp_path)
    # About 3 MiB of lines of varying length: past the 1 MiB kept in memory.
    lines = [b"%d:%s\n" % (i, b"z" * (i % 300)) for i in range(20000)]
    payload = b"".join(lines)
    assert len(payload) > 2 * 1024 * 1024
    pieces = [payload[i:i + 100003] for i in range(0, len(payload), 100003)]
    raw = (b"POST /lines HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(raw)
        data, closed = read_until_close(sock, deadline=20)
    status, body = _upload_answer(data)
    assert status == 200
    assert body == b"%d %s True" % (len(lines), hashlib.sha256(payload).hexdigest().encode())
