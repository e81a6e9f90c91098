"""One app for the request-streaming tests (integration/test_request_streaming.py).

Each call appends "<METHOD> <path>" to ``$CALL_LOG`` when it starts, and
"<path> <outcome>" when it is done with wsgi.input, so a test can tell when
the app was called and what its reads saw. Routes:

* ``/echo?n=N``    a streamed response that yields what each
                   ``wsgi.input.read(N)`` returned, until b""
* ``/echo-lines``  yields each line of ``for line in wsgi.input``
* ``/readline?size=N``  yields each ``wsgi.input.readline(N)``
* ``/readlines``   ``wsgi.input.readlines()``: "<count> <total bytes>"
* ``/early``       answers at once, without reading the body
* ``/slurp``       ``wsgi.input.read()``: "<length> <sha256>"; logs
                   "short <n>" when fewer bytes than CONTENT_LENGTH came,
                   and the exception's type when a read raised
* ``/count``       reads 64 KiB at a time, sleeping 2 ms after each (an app
                   slower than the client): "<length> <sha256>"
* ``/hello``       "hello"
* ``/pid``         the worker's pid
"""
import hashlib
import os
import time
import urllib.parse

CALL_LOG = os.environ.get("CALL_LOG")


def _log(line):
    if CALL_LOG:
        with open(CALL_LOG, "a", encoding="latin-1") as f:
            f.write(line + "\n")


def _echo(stream, n, path):
    while True:
        data = stream.read(n)
        if not data:
            break
        yield data
    _log(f"{path} done")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    _log(f"{environ['REQUEST_METHOD']} {path}")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    stream = environ["wsgi.input"]
    headers = [("Content-Type", "application/octet-stream")]
    if path == "/echo":
        start_response("200 OK", headers)
        return _echo(stream, int(query.get("n", ["1024"])[0]), path)
    if path == "/echo-lines":
        start_response("200 OK", headers)
        return (line for line in stream)
    if path == "/readline":
        size = int(query.get("size", ["-1"])[0])
        start_response("200 OK", headers)
        return iter(lambda: stream.readline(size), b"")
    if path == "/readlines":
        lines = stream.readlines()
        body = b"%d %d" % (len(lines), sum(len(line) for line in lines))
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/early":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"early"]
    if path == "/slurp":
        try:
            data = stream.read()
        except Exception as e:
            _log(f"{path} {type(e).__name__}")
            raise
        expected = environ.get("CONTENT_LENGTH")
        if expected and len(data) < int(expected):
            _log(f"{path} short {len(data)}")
        else:
            _log(f"{path} read {len(data)}")
        body = b"%d %s" % (len(data), hashlib.sha256(data).hexdigest().encode())
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/count":
        digest = hashlib.sha256()
        total = 0
        while True:
            data = stream.read(65536)
            if not data:
                break
            total += len(data)
            digest.update(data)
            time.sleep(0.002)
        body = b"%d %s" % (total, digest.hexdigest().encode())
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]
