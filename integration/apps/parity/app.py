"""Answers with its environ as JSON: every str value, and the other keys."""
import json


def app(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise RuntimeError("parity app raising on purpose")
    body = json.dumps({
        "str": {k: v for k, v in environ.items() if isinstance(v, str)},
        "keys": sorted(environ),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
