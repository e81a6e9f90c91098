"""Apps that say which worker process served a request, for respawn.py and
accept_balance.py (``pid_app:NAME``):

    flask_pid  Flask, ``/`` answers the pid of the process that served it
    counting   bare WSGI hello world that also counts, per process, the
               requests it served and the distinct client ports (connections)
               it saw, in a file ``$PID_APP_DIR/<pid>`` it maps into memory:
               no system call per request, so the count does not slow the
               server it measures. accept_balance.py reads the files after
               the run.
"""
import mmap
import os
import struct

from flask import Flask

flask_pid = Flask(__name__)


@flask_pid.route("/")
def pid():
    return str(os.getpid())


BODY = b"Hello, World!"
_COUNTER = struct.Struct("<QQ")  # requests, connections
_state = {"pid": None, "map": None, "requests": 0, "ports": set()}


def _counter_map():
    # One file per process, made on its first request (after any fork).
    if _state["pid"] != os.getpid():
        path = os.path.join(os.environ["PID_APP_DIR"], str(os.getpid()))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, _COUNTER.size)
        _state.update(pid=os.getpid(), map=mmap.mmap(fd, _COUNTER.size), requests=0, ports=set())
        os.close(fd)
    return _state["map"]


def counting(environ, start_response):
    m = _counter_map()
    _state["requests"] += 1
    _state["ports"].add(environ.get("REMOTE_PORT"))
    _COUNTER.pack_into(m, 0, _state["requests"], len(_state["ports"]))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
