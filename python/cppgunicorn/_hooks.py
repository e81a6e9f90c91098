"""Server hooks as gunicorn calls them, and the objects they receive.

The hook functions come from the configuration (cppgunicorn._config puts
them in `hooks` once the whole configuration is accepted). The server
(src/wsgi/python_config.cpp) calls them through call(), call_worker(),
pre_request() and post_request(); `server`, `worker`, the request and the
response objects carry the attributes gunicorn's have that hooks use.

The master imports this module before it forks, so a worker runs its hooks
without importing anything.
"""
import faulthandler
import inspect
import os
import signal
import traceback
import types

# name -> function, in force for this process.
hooks = {}


def _log_write(level, message):
    # The server's error log, written by the server's own module (made by
    # the C++ side, src/wsgi/objects.cpp, before any hook runs).
    import _cppgunicorn
    _cppgunicorn.log_write(level, message)


class Log:
    """What hooks use as server.log / worker.log: the server's error log."""

    @staticmethod
    def _format(msg, args):
        text = str(msg)
        if args:
            try:
                text = text % args
            except Exception:
                pass
        return text

    def _emit(self, level, msg, args):
        _log_write(level, self._format(msg, args))

    def debug(self, msg, *args, **kwargs): self._emit(10, msg, args)
    def info(self, msg, *args, **kwargs): self._emit(20, msg, args)
    def warning(self, msg, *args, **kwargs): self._emit(30, msg, args)
    warn = warning
    def error(self, msg, *args, **kwargs): self._emit(40, msg, args)
    def critical(self, msg, *args, **kwargs): self._emit(50, msg, args)

    def exception(self, msg, *args, **kwargs):
        _log_write(40, self._format(msg, args) + "\n" + traceback.format_exc().rstrip())

    def log(self, level, msg, *args, **kwargs):
        self._emit(int(level), msg, args)

    def reopen_files(self): pass
    def close_on_exec(self): pass


log = Log()
server = types.SimpleNamespace(log=log, pid=os.getpid(), cfg=types.SimpleNamespace(),
                               num_workers=1, proc_name="", app=None)
worker = None


def _arity(fn):
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 4


def call(name, *args):
    fn = hooks.get(name)
    if fn is None:
        return
    try:
        if name == "post_request" and _arity(fn) < 4:
            args = args[:_arity(fn)]
        fn(*args)
    except Exception:
        log.exception("Exception in %s hook", name)


def make_worker(pid, age):
    return types.SimpleNamespace(pid=pid or "[booting]", ppid=os.getpid() if not pid else os.getppid(),
                                 age=age, log=log, cfg=server.cfg, alive=True, booted=True,
                                 aborted=False, nr=0, tmp=None, app=server.app)


def set_worker(pid, age):
    global worker
    server.pid = os.getppid()
    worker = make_worker(pid, age)


def call_worker(name, pid, age, with_server):
    w = make_worker(pid, age) if worker is None or worker.pid != pid else worker
    if with_server:
        call(name, server, w)
    else:
        call(name, w)


def install_worker_abort():
    def on_abort(signum, frame):
        # faulthandler would have printed where the worker was stuck.
        faulthandler.dump_traceback(all_threads=True)
        worker.aborted = True
        call("worker_abort", worker)
        os._exit(1)

    signal.signal(signal.SIGABRT, on_abort)


def _request(environ):
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-"), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers.append((key.replace("_", "-"), value))
    proto = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    try:
        version = tuple(int(p) for p in proto.split("/", 1)[1].split("."))
    except Exception:
        version = (1, 1)
    uri = environ.get("RAW_URI", "")
    return types.SimpleNamespace(
        method=environ.get("REQUEST_METHOD"), uri=uri, path=uri.split("?", 1)[0],
        query=environ.get("QUERY_STRING", ""), version=version, headers=headers,
        scheme=environ.get("wsgi.url_scheme", "http"),
        remote_addr=environ.get("REMOTE_ADDR"))


def pre_request(environ):
    req = _request(environ)
    environ["cppgunicorn.hook_request"] = req
    call("pre_request", worker, req)


def post_request(environ, status, headers):
    req = environ.pop("cppgunicorn.hook_request", None) or _request(environ)
    try:
        code = int(status.split(None, 1)[0])
    except Exception:
        code = None
    resp = types.SimpleNamespace(status=status, status_code=code, headers=list(headers))
    call("post_request", worker, req, environ, resp)
