"""The app real-world command lines serve: it answers with what the server
told it (a few environ keys and -e variables) as JSON, and what a test
needs to see the effect of a flag:

* ``imported_by``: the pid that imported this module (the master under
  --preload), ``pid`` the worker's; ``umask`` and ``cwd`` of the worker;
  ``version``: VERSION below, which a --reload test rewrites;
  ``socket_module``: where socket.socket comes from (patched or not)
* ``/__error``: raises (a traceback in the error log)
* ``/__print?text``: prints text to stdout
* ``/__file``: this file through wsgi.file_wrapper
"""
import json
import os

VERSION = "1"
IMPORTED_BY = os.getpid()

KEYS = ("REMOTE_ADDR", "wsgi.url_scheme", "SCRIPT_NAME", "PATH_INFO", "wsgi.multithread",
        "wsgi.multiprocess", "HTTP_SCRIPT_NAME", "HTTP_PATH_INFO", "HTTP_X_OTHER")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/__error":
        raise RuntimeError("cmdlines app failing on purpose")
    if path == "/__print":
        print(environ.get("QUERY_STRING", ""), flush=True)
    if path == "/__file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"), 4096)
    body = {k: environ.get(k) for k in KEYS}
    body["FOO"] = os.environ.get("FOO")
    body["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE")
    body["pid"] = os.getpid()
    body["imported_by"] = IMPORTED_BY
    mask = os.umask(0)
    os.umask(mask)
    body["umask"] = "%o" % mask
    body["cwd"] = os.getcwd()
    body["version"] = VERSION
    import socket
    body["socket_module"] = socket.socket.__module__  # gevent.* / eventlet.* when patched
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


application = app


def create_app():
    return app
