"""The apps every server in the side-by-side benchmark serves, unchanged.

Module-level WSGI callables (``apps:NAME``):

    raw       bare WSGI hello world, with Content-Length
    flask_app Flask: ``/`` hello world, ``/json`` a ~1 KB JSON document
    stream    bare WSGI, 1 MiB as a generator of 64 KiB chunks, no Content-Length
    upload    bare WSGI, reads the whole request body (the 100 KB POST) and
              answers its length

The same module is imported by run.py for the in-process limit (each app
called directly in a loop), so servers and limit run identical code.
"""
from flask import Flask, jsonify

BODY = b"Hello, World!"


def raw(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


flask_app = Flask(__name__)

# ~1 KB once serialised: 16 records with a few fields each.
JSON_DOC = {
    "items": [
        {"id": i, "name": f"item-{i:03d}", "price": round(i * 1.25, 2), "tags": ["a", "b"], "ok": i % 2 == 0}
        for i in range(16)
    ],
    "count": 16,
}


@flask_app.route("/")
def hello():
    return "Hello, World!"


@flask_app.route("/json")
def json_doc():
    return jsonify(JSON_DOC)


CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 16  # 16 x 64 KiB = 1 MiB


def stream(environ, start_response):
    # No Content-Length: the server chooses chunked encoding (HTTP/1.1) or
    # close-delimited framing.
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        for _ in range(STREAM_CHUNKS):
            yield CHUNK

    return gen()


def upload(environ, start_response):
    inp = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    total = 0
    if length > 0:
        while total < length:
            chunk = inp.read(min(65536, length - total))
            if not chunk:
                break
            total += len(chunk)
    else:  # chunked upload or unknown length: read to the end
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            total += len(chunk)
    out = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
