"""The metrics tests' app: answers by path.

/status/N   answers with status N
/boom       raises (a 500 and an app error)
/slow?s=S   sleeps S seconds, then answers
/leak?mib=N keeps N MiB more of this worker's memory alive, then answers
/pid        this worker's pid
anything else: 200 "hello"
"""
import os
import time

_kept = []

# A slow import: no worker serves until it is done (/healthz says 503).
time.sleep(float(os.environ.get("METRICS_APP_IMPORT_DELAY", "0")))


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        start_response(f"{code} X", [("Content-Type", "text/plain")])
        return [b"status\n"]
    if path == "/boom":
        raise RuntimeError("boom on purpose")
    if path == "/slow":
        time.sleep(float(query.get("s", "1")))
    if path == "/leak":
        # Touched pages: resident, not just reserved.
        _kept.append(bytearray(os.urandom(1)) * (int(query.get("mib", "16")) << 20))
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]
