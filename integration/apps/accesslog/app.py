"""Answers with known headers and body sizes, and prints (for
--capture-output)."""
import sys


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/print":
        print("printed by the app", flush=True)
        sys.stderr.write("written to stderr by the app\n")
        sys.stderr.flush()
    if path == "/empty":
        start_response("204 No Content", [("X-Out", "empty")])
        return []
    environ["my.var"] = "from-app"
    body = b"0123456789"
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Out", 'va"lue'),
                                   ("Content-Length", str(len(body)))])
    return [body]
