"""WSGI apps for the in-process tests (integration/test_serve_inprocess.py),
imported by the test module and by the scripts beside this file."""
import importlib.util
import os
import sys
import threading
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "flask_app"


def flask_example():
    """examples/flask_app's app object, loaded from its file under a module
    name of its own: another test module may already have imported some
    other `app` module into this process."""
    name = "cppgunicorn_flask_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE_DIR / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Flask finds its root path (templates) through it
        spec.loader.exec_module(module)
    return sys.modules[name].app


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
