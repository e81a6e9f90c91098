"""WSGI apps for the in-process tests (integration/test_serve_inprocess.py),
imported by the test module and by the scripts beside this file."""
import os
import sys
import threading
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "flask_app"


def flask_example():
    """examples/flask_app's app object, as a program that embeds it would
    import it (its directory on sys.path)."""
    if str(EXAMPLE_DIR) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_DIR))
    from app import app
    return app


def hello(environ, start_response):
    body = b"hello from pid %d\n" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def raising(environ, start_response):
    raise LookupError("the in-process app failed on purpose")


class Rendezvous:
    """An app whose /meet requests wait for each other: `parties` of them
    must be inside the app at the same time, else each answers 503 after
    `timeout` s. Only a server that calls the app on several threads at
    once can answer them all with 200."""

    def __init__(self, parties, timeout=10.0):
        self.barrier = threading.Barrier(parties, timeout=timeout)
        self.threads = set()
        self.multithread = []

    def __call__(self, environ, start_response):
        self.threads.add(threading.get_ident())
        self.multithread.append(environ["wsgi.multithread"])
        try:
            self.barrier.wait()
            status, body = "200 OK", b"met\n"
        except threading.BrokenBarrierError:
            status, body = "503 Service Unavailable", b"alone\n"
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [body]
