"""An app for --threads: it counts the calls in flight at once, streams
large or endless bodies, raises, and keeps per-thread state in
threading.local()."""
import json
import os
import threading
import time
from urllib.parse import parse_qs

_cond = threading.Condition()
_inflight = 0
_max_inflight = 0
_closed = []          # ids of responses whose close() was called
_local = threading.local()
_arrived = {}         # round -> calls of /local-round that reached the app


def _json(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


class _Counted:
    """Counts this call as in flight for as long as it runs."""

    def __enter__(self):
        global _inflight, _max_inflight
        with _cond:
            _inflight += 1
            _max_inflight = max(_max_inflight, _inflight)
            _cond.notify_all()

    def __exit__(self, *exc):
        global _inflight
        with _cond:
            _inflight -= 1
            _cond.notify_all()


class Endless:
    """A body with no end; records its close() so tests can see a client
    that went away freed the thread."""

    def __init__(self, ident, size):
        self.ident, self.size = ident, size

    def __iter__(self):
        chunk = b"e" * self.size
        while True:
            yield chunk

    def close(self):
        with _cond:
            _closed.append(self.ident)


class NoClose:
    """An iterable without close(): nothing to call, and nothing to log."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def __iter__(self):
        return iter(self.chunks)


def _big(chunks, size):
    chunk = b"x" * size
    for _ in range(chunks):
        yield chunk


def _fails_midway():
    yield b"first chunk\n"
    raise RuntimeError("failure in the middle of a threaded body")


def app(environ, start_response):
    global _max_inflight
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}

    if path == "/gather":
        # Waits until `n` calls are in flight together (or `limit` seconds
        # passed), so a test sees real concurrency without timing anything.
        n, limit = int(q.get("n", 4)), float(q.get("limit", 10))
        with _Counted():
            deadline = time.monotonic() + limit
            with _cond:
                # The high-water mark, not the current count: once n were in
                # together, every one of them may go.
                while _max_inflight < n and time.monotonic() < deadline:
                    _cond.wait(deadline - time.monotonic())
        return _json(start_response, {"max": _max_inflight})

    if path == "/sleep":
        with _Counted():
            time.sleep(float(q.get("t", 0.1)))
        return _json(start_response, {"slept": q.get("t"), "id": q.get("id")})

    if path == "/stats":
        with _cond:
            return _json(start_response, {"inflight": _inflight, "max": _max_inflight,
                                          "closed": list(_closed), "pid": os.getpid()})

    if path == "/reset":
        with _cond:
            _max_inflight = _inflight
        return _json(start_response, {"max": _max_inflight})

    if path == "/environ":
        return _json(start_response, {
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "main_thread": threading.current_thread() is threading.main_thread(),
        })

    if path == "/local":
        # threading.local() is per thread and lasts across requests.
        _local.count = getattr(_local, "count", 0) + 1
        return _json(start_response, {"thread": threading.get_ident(),
                                      "count": _local.count})

    if path == "/local-round":
        # threading.local() while calls overlap: this call's tag and count
        # are set, then it waits until `n` calls of the same round are in
        # the app together, then reads them back. A local shared between
        # threads would by then hold another call's tag.
        n, rnd, tag = int(q.get("n", 4)), q["round"], q["tag"]
        limit = float(q.get("limit", 20))
        _local.count = getattr(_local, "count", 0) + 1
        _local.tag = tag
        if not hasattr(_local, "first_tag"):
            _local.first_tag = tag
        count = _local.count
        with _cond:
            _arrived[rnd] = _arrived.get(rnd, 0) + 1
            _cond.notify_all()
            deadline = time.monotonic() + limit
            while _arrived[rnd] < n and time.monotonic() < deadline:
                _cond.wait(deadline - time.monotonic())
            together = _arrived[rnd]
        return _json(start_response, {
            "thread": threading.get_ident(), "together": together,
            "count": count, "count_after": _local.count,
            "tag_after": _local.tag, "first_tag": _local.first_tag})

    if path == "/path":
        if "t" in q:
            time.sleep(float(q["t"]))
        return _json(start_response, {"id": q.get("id")})

    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _big(int(q.get("chunks", 16)), int(q.get("size", 65536)))

    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless(q.get("id", ""), int(q.get("size", 65536)))

    if path == "/noclose":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return NoClose([b"no ", b"close"])

    if path == "/list":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"a list"]

    if path == "/raise":
        raise RuntimeError("failure before start_response on a thread")

    if path == "/raise_in_body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _fails_midway()

    if path == "/stuck":
        with _Counted():
            time.sleep(float(q.get("t", 30)))
        return _json(start_response, {"stuck": False})

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
