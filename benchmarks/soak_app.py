"""The app of the soak (soak.py) and of the max-requests run (max_requests.py).

A bare WSGI callable, ``soak_app:app``, routed on PATH_INFO. Every answer the
app itself makes carries ``X-Pid`` (the worker's pid), so a client knows which
worker holds its connection, and depends on the request's ``id=N`` query
parameter, so an answer that belongs to another request is caught:

    /hello?id=N    200, ``hello N\\n`` with Content-Length
    /json?id=N     200, a ~1 KB JSON document that names N, with Content-Length
    /stream?id=N   200, a generator of 1 to 8 chunks of 4 KiB (chunked framing:
                   no Content-Length)
    /upload?id=N   200, reads the whole body (Content-Length or chunked) and
                   answers ``LENGTH CRC32\\n``
    /error?id=N    the app raises: the server answers 500

The client side (soak.py) computes the expected bodies with the functions
below, so app and checker cannot drift apart.

``SOAK_FIRST_ANSWER_FILE``, if set, names a file to which each process appends
``pid import_time first_answer_time`` (wall clock) once, at its first answer:
max_requests.py takes a worker's boot time from it.
"""
import json
import os
import time
import zlib

_IMPORTED = time.time()
_FIRST_FILE = os.environ.get("SOAK_FIRST_ANSWER_FILE")
_answered = False

STREAM_CHUNK = 4096


def hello_body(rid):
    return b"hello %d\n" % rid


def json_body(rid):
    doc = {
        "id": rid,
        "items": [
            {"n": i, "name": "item-%03d" % i, "price": round(i * 1.25, 2), "tags": ["a", "b"], "ok": i % 2 == 0}
            for i in range(12)
        ],
        "count": 12,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def stream_chunks(rid):
    out = []
    for i in range(rid % 8 + 1):
        head = b"%d:%d:" % (rid, i)
        out.append(head + b"s" * (STREAM_CHUNK - len(head)))
    return out


def upload_answer(body):
    return b"%d %d\n" % (len(body), zlib.crc32(body))


class AppRaised(Exception):
    pass


def _note_first_answer():
    global _answered
    _answered = True
    if _FIRST_FILE:
        with open(_FIRST_FILE, "a") as f:
            f.write("%d %.6f %.6f\n" % (os.getpid(), _IMPORTED, time.time()))


def app(environ, start_response):
    if not _answered:
        _note_first_answer()
    path = environ.get("PATH_INFO", "")
    qs = environ.get("QUERY_STRING", "")
    rid = int(qs[3:]) if qs.startswith("id=") else 0
    pid = str(os.getpid())
    if path == "/hello":
        body = hello_body(rid)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                                  ("X-Pid", pid)])
        return [body]
    if path == "/json":
        body = json_body(rid)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                  ("X-Pid", pid)])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Pid", pid)])

        def gen():
            for chunk in stream_chunks(rid):
                yield chunk

        return gen()
    if path == "/upload":
        inp = environ["wsgi.input"]
        parts = []
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            parts.append(chunk)
        body = upload_answer(b"".join(parts))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                                  ("X-Pid", pid)])
        return [body]
    if path == "/error":
        raise AppRaised("soak: this endpoint raises on purpose (id=%d)" % rid)
    body = b"not found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                                     ("X-Pid", pid)])
    return [body]
