"""One app for the streamed-response tests (integration/test_streamed_responses.py).

Bodies are generators of bytes, so the server cannot know their length.
Chunk contents come from ``pattern(i, n)``, which the tests rebuild. Routes:

* ``/sizes?a,b,c``      chunks of those sizes, in order
* ``/sizes-length?a,b,c``  the same with the Content-Length of their sum;
                        ``&extra=N`` yields N bytes more than it says
* ``/bulk-then-flag?<file>``  a 64 KiB chunk, then waits (at most 10 s)
                        for the file to exist, then ``flag seen`` or
                        ``gave up``
* ``/endless?<file>``   64 KiB chunks until the client goes; its close()
                        writes ``closed`` to the file
* ``/fail-after?n``     n chunks of 64 KiB, then raises
* ``/pid``              the worker's pid
"""
import os
import time
import urllib.parse


def pattern(i, n):
    """Chunk i of a body, n bytes: a repeated marker that says which chunk."""
    unit = b"%d:" % i
    return (unit * (n // len(unit) + 1))[:n]


def _sizes(query):
    return [int(s) for s in query.split(",") if s]


class _Closing:
    """An iterable whose close() leaves a trace (PEP 3333: servers call it)."""

    def __init__(self, gen, trace):
        self._gen = gen
        self._trace = trace

    def __iter__(self):
        return self._gen

    def close(self):
        self._gen.close()
        with open(self._trace, "w") as f:
            f.write("closed")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = urllib.parse.unquote(environ.get("QUERY_STRING", ""))
    headers = [("Content-Type", "application/octet-stream")]

    if path == "/sizes":
        start_response("200 OK", headers)
        return (pattern(i, n) for i, n in enumerate(_sizes(query)))

    if path == "/sizes-length":
        spec, _, extra = query.partition("&extra=")
        sizes = _sizes(spec)
        start_response("200 OK", headers + [("Content-Length", str(sum(sizes)))])
        if extra:
            sizes.append(int(extra))
        return (pattern(i, n) for i, n in enumerate(sizes))

    if path == "/bulk-then-flag":
        def gen():
            yield pattern(0, 65536)
            deadline = time.monotonic() + 10
            while not os.path.exists(query) and time.monotonic() < deadline:
                time.sleep(0.01)
            yield b"flag seen" if os.path.exists(query) else b"gave up"
        start_response("200 OK", headers)
        return gen()

    if path == "/endless":
        def gen():
            i = 0
            while True:
                yield pattern(i, 65536)
                i += 1
        start_response("200 OK", headers)
        return _Closing(gen(), query)

    if path == "/fail-after":
        def gen():
            for i in range(int(query)):
                yield pattern(i, 65536)
            raise RuntimeError("the body broke")
        start_response("200 OK", headers)
        return gen()

    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
