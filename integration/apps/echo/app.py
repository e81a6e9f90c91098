"""A plain WSGI echo app (no framework) for the request-corpus replay.

Every request is answered ``200`` with a JSON object describing what reached
the app: the CGI keys, every ``HTTP_*`` key, the body (base64) and a few
``wsgi.*`` values.  When ``$ECHO_LOG`` names a file, one JSON line per call
is appended to it first, so that a test can tell whether a request reached
the app at all.

``app`` is wrapped in :func:`wsgiref.validate.validator`, with its warnings
turned into errors: a server that hands the app a non-PEP 3333 environ gets
a 500 instead of a silent pass.
"""
import base64
import json
import os
import warnings
import wsgiref.validate

warnings.simplefilter("error", wsgiref.validate.WSGIWarning)
# wsgiref's method list predates RFC 9110 and lacks CONNECT, a standard
# method (RFC 9110 §9.3.6); only that one warning is not an error.
warnings.filterwarnings("ignore", message="Unknown REQUEST_METHOD: 'CONNECT'",
                        category=wsgiref.validate.WSGIWarning)

ECHO_LOG = os.environ.get("ECHO_LOG")

CGI_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI",
            "SERVER_PROTOCOL", "SCRIPT_NAME", "CONTENT_TYPE", "CONTENT_LENGTH",
            "REMOTE_ADDR")
CHUNK = 65536


def read_body(environ):
    """Reads the whole request body the way PEP 3333 allows."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    if length:
        remaining = int(length)
        parts = []
        while remaining > 0:
            data = stream.read(min(remaining, CHUNK))
            if not data:
                break  # the client went away: hand over what arrived
            parts.append(data)
            remaining -= len(data)
        return b"".join(parts)
    if environ.get("wsgi.input_terminated"):
        # The server signals end of input (a chunked body): read until EOF.
        parts = []
        while True:
            data = stream.read(CHUNK)
            if not data:
                return b"".join(parts)
            parts.append(data)
    return b""  # no length and no terminated input: no body to read


def echo(environ, start_response):
    body = read_body(environ)
    seen = {k: environ[k] for k in CGI_KEYS if k in environ}
    seen.update((k, v) for k, v in environ.items() if k.startswith("HTTP_"))
    seen["body_b64"] = base64.b64encode(body).decode("ascii")
    seen["wsgi.url_scheme"] = environ.get("wsgi.url_scheme")
    seen["wsgi.input_terminated"] = bool(environ.get("wsgi.input_terminated"))
    seen["pid"] = os.getpid()
    # Strings in the environ are latin-1 "bytes as str": JSON keeps them as
    # the same code points, so the test compares them unchanged.
    line = json.dumps(seen, sort_keys=True)
    if ECHO_LOG:
        with open(ECHO_LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    out = line.encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


app = wsgiref.validate.validator(echo)
