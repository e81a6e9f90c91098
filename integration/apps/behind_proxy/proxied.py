"""The example Flask app as it is deployed behind nginx, with one route of
its own: ``/__environ...`` answers with the environ the server built, as
JSON, so that tests can compare servers key by key.

Strings, booleans and numbers are given as they are, tuples as lists; any
other value as its interface (``wsgi.input`` and ``wsgi.errors``: which of
the PEP 3333 methods it has), since the classes differ from server to
server. The body is read to its end and given as ``body_size`` and
``body_sha256``.
"""
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flask_app"))

from app import app as flask_app  # noqa: E402

# PEP 3333, "Input and Error Streams".
STREAM_METHODS = ("read", "readline", "readlines", "__iter__", "write", "writelines", "flush")


def describe(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return {"interface": [m for m in STREAM_METHODS if callable(getattr(value, m, None))]}


def dump_environ(environ, start_response):
    body = environ["wsgi.input"].read()
    dump = {key: describe(value) for key, value in environ.items()}
    dump["body_size"] = len(body)
    dump["body_sha256"] = hashlib.sha256(body).hexdigest()
    data = json.dumps(dump, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/__environ"):
        return dump_environ(environ, start_response)
    return flask_app(environ, start_response)
