"""An app for the gevent and eventlet worker classes: it sleeps in the ways
a green app does, fetches from another server, streams, reads bodies,
raises, holds the hub in an unpatched busy loop, spawns background
greenlets, and counts the calls in flight at once."""
import json
import os
import sys
import threading
import time
import urllib.request
from urllib.parse import parse_qs

_inflight = 0
_max_inflight = 0
_background = []  # what background greenlets left behind
_local = threading.local()


def _json(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _sleep(how, seconds):
    if how == "gevent":
        import gevent
        gevent.sleep(seconds)
    elif how == "eventlet":
        import eventlet
        eventlet.sleep(seconds)
    else:
        time.sleep(seconds)  # patched by the worker


def _patched():
    """Whether time.sleep and socket are the green ones."""
    import socket
    return {"time.sleep": time.sleep.__module__, "socket": socket.socket.__module__}


def _spawn_later(delay, value):
    if "gevent" in sys.modules and time.sleep.__module__.startswith("gevent"):
        import gevent
        gevent.spawn_later(delay, _background.append, value)
    else:
        import eventlet
        eventlet.spawn_after(delay, _background.append, value)


def app(environ, start_response):
    global _inflight, _max_inflight
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/sleep":
        _inflight += 1
        _max_inflight = max(_max_inflight, _inflight)
        try:
            _sleep(q.get("how", "time"), float(q.get("t", "1")))
        finally:
            _inflight -= 1
        return _json(start_response, {"slept": q.get("t", "1")})
    if path == "/stats":
        value = {"pid": os.getpid(), "max_inflight": _max_inflight,
                 "inflight": _inflight, "background": list(_background)}
        if q.get("reset"):
            _max_inflight = 0
        return _json(start_response, value)
    if path == "/environ":
        return _json(start_response, {"multithread": environ["wsgi.multithread"],
                                      "multiprocess": environ["wsgi.multiprocess"],
                                      "patched": _patched()})
    if path == "/fetch":
        with urllib.request.urlopen(q["url"], timeout=30) as r:
            return _json(start_response, {"upstream": r.read().decode()})
    if path == "/stream":
        def chunks():
            for i in range(int(q.get("n", "3"))):
                yield b"chunk %d\n" % i
                _sleep(q.get("how", "time"), float(q.get("t", "0.2")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/raise":
        raise RuntimeError("boom from the green app")
    if path == "/busy":
        # Holds the hub: pure Python that never yields.
        end = time.monotonic() + float(q.get("t", "60"))
        while time.monotonic() < end:
            pass
        return _json(start_response, {"busy": True})
    if path == "/spawn":
        _spawn_later(float(q.get("t", "0.2")), q.get("v", "done"))
        return _json(start_response, {"spawned": True})
    if path == "/local":
        # threading.local is per greenlet once patched: a value set here
        # survives another request's sleep in between.
        _local.value = q["v"]
        _sleep(q.get("how", "time"), 0.3)
        return _json(start_response, {"value": _local.value})
    if path == "/big":
        size = int(q.get("n", "1000000"))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size * 4))])
        return (b"x" * size for _ in range(4))
    return _json(start_response, {"path": path})
