# Every server hook gunicorn has, each writing one line to $HOOK_LOG with
# what real hooks use from their arguments.
import os

_LOG = os.environ["HOOK_LOG"]


def _write(*parts):
    with open(_LOG, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")


def on_starting(server):
    server.log.info("hook on_starting")
    _write("on_starting", server.pid)


def on_reload(server):
    _write("on_reload", server.pid)


def when_ready(server):
    _write("when_ready", server.num_workers, server.cfg.workers)


def pre_fork(server, worker):
    _write("pre_fork", worker.age)


def post_fork(server, worker):
    _write("post_fork", worker.pid == os.getpid(), worker.age)


def post_worker_init(worker):
    worker.log.info("hook post_worker_init")
    _write("post_worker_init", worker.pid == os.getpid())


def worker_int(worker):
    _write("worker_int", worker.pid)


def worker_abort(worker):
    _write("worker_abort", worker.pid)


def pre_exec(server):
    _write("pre_exec")


def pre_request(worker, req):
    _write("pre_request", req.method, req.path, dict(req.headers).get("X-TEST"))
    if req.path == "/raise":
        raise RuntimeError("a hook that raises")


def post_request(worker, req, environ, resp):
    _write("post_request", req.method, req.path, environ["PATH_INFO"], resp.status)


def child_exit(server, worker):
    _write("child_exit", worker.pid, worker.age)


def worker_exit(server, worker):
    _write("worker_exit", worker.pid)


def nworkers_changed(server, new_value, old_value):
    _write("nworkers_changed", new_value, old_value)


def on_exit(server):
    _write("on_exit")
