"""One app for the HTTP hardening tests (integration/test_http_*.py).

Every call appends one line (the method and path) to ``$CALL_LOG`` first, so
a test can tell that a rejected request never reached the app. Routes:

* ``/``             "ok"
* ``/big?mb=N``     N MiB of body from a generator (length unknown)
* ``/upload``       reads wsgi.input to the end in 64 KiB reads; answers
                    "<length> <sha256>"; never holds the whole body
* ``/headers?bad=K``  start_response with a header broken as K says
* ``/short``, ``/long``  a body shorter / longer than its Content-Length
* ``/file?path=P&len=1``  wsgi.file_wrapper over open(P, "rb")
* ``/bytesio``      wsgi.file_wrapper over a BytesIO (no fileno)
* ``/lines``        reads wsgi.input with readline(); answers
                    "<lines> <sha256> <wsgi.input_terminated>"
* ``/pid``          the worker's pid
"""
import hashlib
import io
import os
import urllib.parse

CALL_LOG = os.environ.get("CALL_LOG")

BAD_HEADERS = {
    "crlf-value": ("X-Split", "a\r\nSet-Cookie: evil=1"),
    "lf-value": ("X-Split", "a\nb"),
    "cr-value": ("X-Split", "a\rb"),
    "nul-value": ("X-Split", "a\x00b"),
    "crlf-name": ("X-Split\r\nEvil", "1"),
    "space-name": ("Bad Name", "1"),
    "colon-name": ("Bad:Name", "1"),
    "empty-name": ("", "1"),
    "nonascii-name": ("X-\u00e9", "1"),
    "ctl-value": ("X-Ctl", "a\x01b"),
}


def _log(environ):
    if CALL_LOG:
        with open(CALL_LOG, "a", encoding="latin-1") as f:
            f.write(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}\n")


def app(environ, start_response):
    _log(environ)
    path = environ.get("PATH_INFO", "")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/big":
        mb = int(query.get("mb", ["64"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = b"x" * (1024 * 1024)
        return (block for _ in range(mb))
    if path == "/upload":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        total = 0
        while True:
            data = stream.read(65536)
            if not data:
                break
            total += len(data)
            digest.update(data)
        body = f"{total} {digest.hexdigest()}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/headers":
        name, value = BAD_HEADERS[query["bad"][0]]
        start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
        return [b"must not be sent"]
    if path == "/status":
        # start_response with the status text given (a bare code, a
        # control character in the reason).
        start_response(query["s"][0], [("Content-Type", "text/plain")])
        return [b"status body"]
    if path == "/lengths":
        # Content-Length values as given, one header each.
        start_response("200 OK", [("Content-Length", v) for v in query["v"]])
        return [b"12345"]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only ten.."]
    if path == "/long":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"12345", b"and more"]
    if path == "/file":
        f = open(query["path"][0], "rb")
        headers = [("Content-Type", "application/octet-stream")]
        if query.get("len"):
            headers.append(("Content-Length", str(os.fstat(f.fileno()).st_size)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/bytesio":
        data = bytes(range(256)) * 4096
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 8192)
    if path == "/lines":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        lines = 0
        for line in iter(stream.readline, b""):
            lines += 1
            digest.update(line)
        body = f"{lines} {digest.hexdigest()} {environ['wsgi.input_terminated']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
