"""The app for the uwsgi tests (integration/test_uwsgi.py).

Every call appends its method and PATH_INFO to ``$CALL_LOG`` first, so a
test can tell that a refused packet never reached the app. Routes:

* ``.../environ``     the environ's str values, as JSON
* ``/upload``         reads wsgi.input to the end in 64 KiB reads; answers
                      "<length> <sha256>"
* ``/stream?n=N``     N lines from a generator (length unknown)
* anything else       "ok"
"""
import hashlib
import json
import os
import urllib.parse

CALL_LOG = os.environ.get("CALL_LOG")


def app(environ, start_response):
    if CALL_LOG:
        with open(CALL_LOG, "a", encoding="latin-1") as f:
            f.write(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}\n")
    path = environ.get("PATH_INFO", "")
    if path.endswith("/environ"):
        body = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)},
                          sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/upload":
        digest = hashlib.sha256()
        size = 0
        while True:
            block = environ["wsgi.input"].read(65536)
            if not block:
                break
            digest.update(block)
            size += len(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{size} {digest.hexdigest()}".encode()]
    if path == "/stream":
        n = int(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("n", ["3"])[0])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"line {i}\n".encode() for i in range(n))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
