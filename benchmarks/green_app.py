"""The app of benchmarks/green_workers.py: a hello world, a sleep, and a
background greenlet started after the response.

``PATCH=gevent`` in the environment makes it patch at import, as gevent
apps do (used to run it under the thread pool, design (b))."""
import os
import time

if os.environ.get("PATCH") == "gevent":
    from gevent import monkey

    monkey.patch_all()

BODY = b"Hello, World!"
_background = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    elif path == "/spawn":
        import gevent

        gevent.spawn_later(0.1, _background.append, 1)
    elif path == "/background":
        body = str(len(_background)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
