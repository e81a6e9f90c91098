"""Serving a WSGI app object from the calling process: no fork, no master,
the interpreter that calls serve() is the one that runs the app.

The C++ side (``cppgunicorn._server.InProcessServer``, over the library's
``cppgunicorn::Server`` in Mode::kInProcess) is one worker's loop run in
this process: it binds, serves on a thread of its own, and stops when told
to, from any thread. This module gives it the Python shape people expect
from waitress.serve() or http.server: a blocking serve(), a Server object
with start()/stop()/serve_forever(), and a context manager for fixtures.

Which thread does what:

* The loop runs on the server's own thread, without the GIL except
  around the app's calls; with threads > 1 the app is called on that many
  threads of the server's pool instead.
* A Python thread ("cppgunicorn-server-wait") waits, without the GIL, for
  the server to end and then sets an Event.
* The thread that called serve() or serve_forever() waits on that Event:
  the GIL is free for every other Python thread, and on the main thread
  Ctrl-C (SIGINT) interrupts the wait with KeyboardInterrupt at once, as
  it would any Python code; the server is then stopped before the
  exception goes on.
"""
import atexit
import difflib
import threading
import weakref

from . import _config

__all__ = ["Server", "serve", "serve_in_thread"]

# Servers whose loop thread may still run: stopped before the interpreter
# finalises, since a loop thread that wakes up to call the app after that
# would find no interpreter to call it with.
_running = weakref.WeakSet()
_running_lock = threading.Lock()


def _settings_texts(settings, known):
    """Keyword settings as (name, [text, ...]) pairs for the settings
    table, read as a Python config file's values are (so bind=["a", "b"],
    keepalive=5 and sendfile=False mean what they mean there)."""
    out = []
    for name, value in settings.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = " (did you mean %r?)" % close[0] if close else ""
            raise TypeError("Server() got an unexpected keyword argument %r: not a gunicorn "
                            "setting%s" % (name, hint))
        if value is None:
            continue
        texts, is_object = _config.setting_text(value)
        if is_object:
            raise ValueError(
                "Invalid value for %s: %r (server hooks are not supported by "
                "cppgunicorn.serve(); the app object can do what a hook would, or use the "
                "cppgunicorn command with a config file)" % (name, value))
        out.append((name, texts))
    return out


class Server:
    """A cppgunicorn server for one WSGI app object, in this process.

    ``bind`` is one address or a list ("HOST:PORT", "unix:PATH", "fd://N");
    port 0 binds a free port, which ``port``, ``address`` and ``url`` then
    give. ``threads`` > 1 calls the app on that many threads. Any other
    keyword is a gunicorn setting under its gunicorn name (keepalive=5,
    limit_request_line=8190, certfile=..., accesslog="-"), checked as the
    command line checks it: a bad value raises ValueError naming the
    setting, an unknown name TypeError. Settings that need a master or
    worker processes (workers > 1, daemon, user, reload, max_requests...)
    raise ValueError from start().

    Nothing is bound until start() or serve_forever(). A Server serves
    once: after stop(), make a new one.
    """

    def __init__(self, app, bind="127.0.0.1:8000", threads=1, **settings):
        if not callable(app):
            raise TypeError("app must be a WSGI callable, not %s" % type(app).__name__)
        from . import _server

        settings = dict(settings, bind=bind, threads=threads)
        self.app = app
        self._native = _server.InProcessServer(
            app, _settings_texts(settings, _server.setting_names()))
        self._started = False
        self._waiter = None
        self._done = threading.Event()
        self._status = None
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------

    @property
    def addresses(self):
        """Every bound address as the error log names it:
        "http://127.0.0.1:54321", "https://...", "unix:/path/to/sock"."""
        return list(self._native.addresses())

    @property
    def address(self):
        """The first bound address: (host, port) for TCP, the path for a
        unix socket. None before start()."""
        addresses = self.addresses
        if not addresses:
            return None
        first = addresses[0]
        if first.startswith("unix:"):
            return first[len("unix:"):]
        host, _, port = first.split("://", 1)[-1].rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def port(self):
        """The first TCP listener's port (the one the kernel chose for port
        0). None before start() or for a unix socket."""
        address = self.address
        return address[1] if isinstance(address, tuple) else None

    @property
    def url(self):
        """The first TCP listener as a base URL: "http://127.0.0.1:54321"."""
        return next((a for a in self.addresses if not a.startswith("unix:")), None)

    @property
    def running(self):
        return self._started and not self._done.is_set()

    # -- life cycle ----------------------------------------------------------

    def start(self):
        """Binds every address and serves on a thread of the server's own;
        returns the server once it serves. Raises OSError when an address
        cannot be bound, ValueError for a setting the in-process server
        cannot honour (nothing is left listening then)."""
        with self._lock:
            if self._started:
                raise RuntimeError("this Server has been started already")
            self._native.start()
            self._started = True
            with _running_lock:
                _running.add(self)
            self._waiter = threading.Thread(target=self._wait, name="cppgunicorn-server-wait",
                                            daemon=True)
            self._waiter.start()
        return self

    def _wait(self):
        try:
            self._status = self._native.wait()
        finally:
            with _running_lock:
                _running.discard(self)
            self._done.set()

    def serve_forever(self):
        """Serves until stop() is called from another thread, or Ctrl-C:
        KeyboardInterrupt stops the server at once (open connections are
        closed) and is raised again. Starts the server first if start()
        was not called."""
        if not self._started:
            self.start()
        try:
            # Event.wait() drops the GIL and, on the main thread, returns
            # to Python for every signal: KeyboardInterrupt is raised here.
            self._done.wait()
        except BaseException:
            self.stop(graceful=False)
            raise
        self._check_status()

    def stop(self, graceful=True, timeout=None):
        """Stops the server and waits for it; from any thread, any number
        of times. graceful: stop accepting, let the requests under way
        finish (up to the ``graceful_timeout`` setting, 30 s by default),
        then close; else close every connection now. Returns whether the
        server had ended within ``timeout`` seconds (None: no limit; 0:
        only ask, as the app itself must when it stops its own server)."""
        if not self._started:
            return True
        self._native.stop(-1 if graceful else 0)
        if not self._done.wait(timeout):
            return False
        if threading.current_thread() is not self._waiter:
            self._waiter.join()  # it ends right after setting the event
        return True

    def _check_status(self):
        if self._status:
            raise RuntimeError("the server stopped with status %d; the error log says why"
                               % self._status)

    def __enter__(self):
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()
        self._check_status()

    def __repr__(self):
        state = "running" if self.running else "stopped" if self._started else "not started"
        return "<cppgunicorn.Server %s %s>" % (" ".join(self.addresses) or "unbound", state)


def serve(app, bind="127.0.0.1:8000", threads=1, **settings):
    """Serves the WSGI ``app`` from this process until Ctrl-C (see Server
    for the arguments), then returns None, as waitress.serve() does. Other
    threads of the process run on while it serves. To stop it from code,
    use ``Server(app, ...).serve_forever()`` and call ``stop()`` on that
    Server from another thread."""
    server = Server(app, bind=bind, threads=threads, **settings)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def serve_in_thread(app, bind="127.0.0.1:0", threads=1, **settings):
    """A started Server, serving on a thread of its own; use it in a
    ``with`` block, which stops it at the end::

        with cppgunicorn.serve_in_thread(app) as server:
            requests.get(server.url + "/")

    The default bind is a free port on 127.0.0.1, for tests."""
    return Server(app, bind=bind, threads=threads, **settings).start()


@atexit.register
def _stop_running_servers():
    with _running_lock:
        servers = list(_running)
    for server in servers:
        server.stop(graceful=False, timeout=5)
