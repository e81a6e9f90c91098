"""A plain WSGI app exercising the PEP 3333 surface the server provides."""
import json
import os
import sys
import time

# Records close() calls so that tests can see every response was closed.
CLOSE_LOG = os.environ.get("FEATURES_CLOSE_LOG")


def _record_close(tag):
    if CLOSE_LOG:
        with open(CLOSE_LOG, "a") as f:
            f.write(tag + "\n")


class Closing:
    """An iterable with close(), PEP 3333's hook for cleanup."""

    def __init__(self, tag, chunks, delay=0.0, fail_at=None):
        self.tag, self.chunks, self.delay, self.fail_at = tag, chunks, delay, fail_at

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if self.fail_at is not None and i == self.fail_at:
                raise RuntimeError("failure in the middle of the body")
            if self.delay:
                time.sleep(self.delay)
            yield chunk

    def close(self):
        _record_close(self.tag)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    inp = environ["wsgi.input"]

    if path == "/input":
        # Exercise every wsgi.input method against one body.
        mode = environ.get("QUERY_STRING", "")
        if mode == "read":
            out = [inp.read(3), inp.read(), inp.read()]
        elif mode == "readline":
            out = [inp.readline(), inp.readline(2), inp.readline(), inp.readline()]
        elif mode == "readlines":
            out = inp.readlines()
        elif mode == "iter":
            out = list(inp)
        else:
            out = [inp.read(int(environ.get("CONTENT_LENGTH") or 0))]
        body = json.dumps([c.decode("latin-1") for c in out]).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    if path == "/environ":
        keys = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
        keys["wsgi.version"] = list(environ["wsgi.version"])
        keys["wsgi.input_type"] = type(environ["wsgi.input"]).__name__
        keys["has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
        keys["errors_has_write"] = hasattr(environ["wsgi.errors"], "write")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(keys).encode()]

    if path == "/raise":
        raise RuntimeError("raised before the response started")

    if path == "/no-start-response":
        return [b"body without a status"]

    if path == "/bad-header":
        start_response("200 OK", [("X-Split", "a\r\nInjected: yes")])
        return [b"never sent"]

    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        write(b"then-")
        return [b"iterated"]

    if path == "/exc-info-before":
        # An app may replace its response before the head is sent.
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"replaced"]

    if path == "/exc-info-after":
        # Once the head is out, start_response(exc_info) must re-raise.
        def body():
            yield b"first"
            try:
                raise KeyError("late")
            except KeyError:
                try:
                    start_response("500 Oops", [], sys.exc_info())
                except KeyError:
                    _record_close("reraised")
            yield b"-second"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()

    if path == "/closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("closing", [b"a", b"b", b"c"])

    if path == "/slow-closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("slow-closing", [b"x" * 65536] * 400, delay=0.005)

    if path == "/fail-mid-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("fail-mid-body", [b"a", b"b", b"c"], fail_at=1)

    if path == "/file-wrapper":
        f = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 1024)

    if path == "/length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"abc", b"def"]

    if path == "/empty":
        start_response("204 No Content", [])
        return []

    if path == "/stderr":
        environ["wsgi.errors"].write("message-to-wsgi-errors\n")
        environ["wsgi.errors"].flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    if path in ("/stream-until-flag", "/wait-for-flag"):
        # Waits (at most 10 s) for the file the query names, which the test
        # creates only after it has read what came before.
        flag = environ.get("QUERY_STRING", "")

        def wait():
            deadline = time.monotonic() + 10
            while not os.path.exists(flag) and time.monotonic() < deadline:
                time.sleep(0.01)

        if path == "/wait-for-flag":
            wait()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"flag seen"]

        def events():
            yield b"first event"
            wait()
            yield b"second event"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return events()

    if path == "/bytes":
        # n bytes of a pattern that shows any reordering or loss.
        n = int(environ.get("QUERY_STRING") or 0)
        body = (b"%08d" % (n % 10**8) + b"0123456789abcdef" * (n // 16 + 1))[:n]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]

    if path == "/body-left-out-for-head":
        # As Werkzeug and other frameworks do: no body for HEAD, and no
        # Content-Length given.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"the GET body"]

    if path == "/reason":
        start_response("299 Custom Reason Phrase", [("X-Custom", "yes")])
        return [b"custom"]

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found: " + path.encode("latin-1")]
