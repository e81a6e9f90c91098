"""The app real-world command lines serve: it answers with what the server
told it (a few environ keys and -e variables) as JSON."""
import json
import os

KEYS = ("REMOTE_ADDR", "wsgi.url_scheme", "SCRIPT_NAME", "PATH_INFO", "wsgi.multithread",
        "wsgi.multiprocess", "HTTP_SCRIPT_NAME", "HTTP_PATH_INFO", "HTTP_X_OTHER")


def app(environ, start_response):
    body = {k: environ.get(k) for k in KEYS}
    body["FOO"] = os.environ.get("FOO")
    body["pid"] = os.getpid()
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


application = app


def create_app():
    return app
