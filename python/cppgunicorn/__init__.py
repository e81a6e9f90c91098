"""cppgunicorn: a WSGI HTTP server in C++, a drop-in replacement for gunicorn.

The server is the extension module ``cppgunicorn._server``; the
``cppgunicorn`` command and ``python -m cppgunicorn`` run it in the Python
they were installed for. :func:`run` does the same from Python code.

:func:`serve`, :class:`Server` and :func:`serve_in_thread` serve a WSGI app
object from the calling process instead: no fork, this interpreter
(``cppgunicorn._inprocess``; docs/embedding.md).

The package's underscored modules hold the Python the server runs (config
files, hooks, logging, app loading). The ``cppgunicorn`` executable of a
CMake build runs them too, from the source tree, without ``_server``: so
nothing here imports ``_server`` until it is asked for.
"""
import os
import shutil
import sys

__all__ = ["Server", "__version__", "executable", "main", "run", "serve", "serve_in_thread",
           "version_line"]


def __getattr__(name):
    # __version__ and version_line come from the extension module, imported
    # on first use.
    if name in ("__version__", "version_line"):
        from . import _server
        return getattr(_server, name)
    if name in ("Server", "serve", "serve_in_thread"):
        from . import _inprocess
        return getattr(_inprocess, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def executable():
    """Path of the ``cppgunicorn`` command installed with this package."""
    beside = os.path.join(os.path.dirname(sys.executable), "cppgunicorn")
    if os.path.exists(beside):
        return beside
    found = shutil.which("cppgunicorn")
    if found is None:
        raise FileNotFoundError("the cppgunicorn command is not installed")
    return found


def run(args=None, program=None):
    """Serve in this process with gunicorn-style command-line arguments
    (default: ``sys.argv[1:]``) until the master stops; returns the exit
    status. The process becomes the master: it forks the workers and takes
    the signals gunicorn's master takes. ``program`` is the command a USR2
    upgrade runs, before the same arguments (default: ``python -m
    cppgunicorn`` with this interpreter)."""
    from . import _server

    argv = list(sys.argv[1:] if args is None else args)
    if program is None:
        program = [sys.executable, "-m", "cppgunicorn"]
    return _server.serve(argv, list(program))


def main():
    """The ``cppgunicorn`` command (and ``python -m cppgunicorn``)."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(script) == "__main__.py" or not os.path.isfile(script):
        program = None
    else:
        # As gunicorn does: this interpreter runs the same script again.
        program = [sys.executable, script]
    sys.exit(run(program=program))
