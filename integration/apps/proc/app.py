"""A plain WSGI app for the process-management tests.

Every answer names the worker that served it (``pid=N``) so that a test can
tell which worker a connection landed on.  Paths:

``/pid``            this worker's pid
``/sleep?s=N&touch=PATH``  create PATH (so a test knows the request is in
                    the app), sleep N seconds, then answer
``/environ?NAME``   whether the worker's os.environ has NAME
``/error``          raise: the worker logs the traceback to the error log
``/loop``           never return (a stuck worker, for --timeout)
``/import``         the pid that imported this module and the contents of
                    ``$PROC_APP_MARKER`` (a file) read at import time: shows
                    whether the app was re-imported (HUP) or preloaded; a
                    marker containing "slow" makes the import take 1 s
``/whoami``         uid, gid and umask of the worker
``/wsgi``           wsgi.multiprocess and wsgi.multithread as the worker
                    sets them
``/orphan``         fork a child that forks a grandchild and exits at once:
                    the grandchild is re-parented to the nearest subreaper
                    (PID 1 in a container, or the master when it is marked
                    as one) and exits 1 s later, to be reaped there;
                    the answer names it (``orphan=N``)
"""
import os
import time

IMPORTED_BY = os.getpid()
_marker = os.environ.get("PROC_APP_MARKER")
MARKER = open(_marker).read().strip() if _marker and os.path.exists(_marker) else ""
if "slow" in MARKER:
    time.sleep(1.0)  # an app that takes a while to import

_crash_if = os.environ.get("PROC_APP_CRASH_IF_EXISTS")
if os.environ.get("PROC_APP_CRASH_AFTER_BOOT") or (_crash_if and os.path.exists(_crash_if)):
    # A worker that dies for no reason soon after booting: a crash loop
    # (always, or while the file $PROC_APP_CRASH_IF_EXISTS exists).
    import threading
    threading.Timer(0.05, os._exit, (9,)).start()


def _answer(start_response, body, status="200 OK"):
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _query(environ, name, default):
    for part in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return default


def app(environ, start_response):
    path = environ["PATH_INFO"]
    pid = os.getpid()
    if path == "/sleep":
        touch = _query(environ, "touch", "")
        if touch:
            open(touch, "w").close()
        time.sleep(float(_query(environ, "s", "1")))
        return _answer(start_response, f"pid={pid} slept")
    if path == "/environ":
        name = environ.get("QUERY_STRING", "")
        return _answer(start_response,
                       f"pid={pid} {name}={os.environ[name]}" if name in os.environ
                       else f"pid={pid} {name} missing")
    if path == "/error":
        raise RuntimeError(f"failing on purpose in worker {pid}")
    if path == "/loop":
        while True:
            pass
    if path == "/import":
        return _answer(start_response, f"pid={pid} imported_by={IMPORTED_BY} marker={MARKER}")
    if path == "/wsgi":
        return _answer(start_response,
                       f"pid={pid} multiprocess={environ['wsgi.multiprocess']} "
                       f"multithread={environ['wsgi.multithread']}")
    if path == "/whoami":
        mask = os.umask(0)
        os.umask(mask)
        return _answer(start_response,
                       f"pid={pid} uid={os.getuid()} gid={os.getgid()} umask={mask:o}")
    if path == "/orphan":
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(1.0)
                os._exit(0)
            os.write(write_end, str(grandchild).encode())
            os._exit(0)
        os.close(write_end)
        orphan = os.read(read_end, 32).decode()
        os.close(read_end)
        os.waitpid(child, 0)
        return _answer(start_response, f"pid={pid} orphan={orphan}")
    return _answer(start_response, f"pid={pid}")
