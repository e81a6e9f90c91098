# Hooks that record, as JSON lines in $HOOK_LOG, the attributes of their
# arguments that real hooks read. No nworkers_changed hook: num_workers must
# be right without it.
import json
import os

_LOG = os.environ["HOOK_LOG"]


def _write(name, **fields):
    with open(_LOG, "a") as f:
        f.write(json.dumps({"hook": name, **fields}) + "\n")


def _server(server):
    return {"pid_is_master": server.pid == os.getpid(), "num_workers": server.num_workers,
            "workers_cfg": server.cfg.workers, "WORKERS": sorted(server.WORKERS)}


def on_starting(server):
    _write("on_starting", **_server(server))


def when_ready(server):
    _write("when_ready", **_server(server))


def pre_fork(server, worker):
    _write("pre_fork", age=worker.age, pid=worker.pid, **_server(server))


def post_fork(server, worker):
    _write("post_fork", pid_is_self=worker.pid == os.getpid(), age=worker.age,
           alive=worker.alive, timeout=worker.cfg.timeout, has_log=hasattr(worker.log, "info"))


def post_worker_init(worker):
    _write("post_worker_init", pid_is_self=worker.pid == os.getpid(), ppid=worker.ppid)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)
    _write("pre_request", method=req.method, path=req.path, uri=req.uri, query=req.query,
           version=list(req.version), headers=[list(h) for h in req.headers])


def post_request(worker, req, environ, resp):
    _write("post_request", path=req.path, path_info=environ["PATH_INFO"])


def child_exit(server, worker):
    _write("child_exit", pid=worker.pid, **_server(server))
