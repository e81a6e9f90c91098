"""cppgunicorn: a WSGI HTTP server in C++, a drop-in replacement for gunicorn.

The server itself is the ``cppgunicorn`` executable installed beside this
package; :func:`run` starts it from Python with gunicorn-style arguments.
"""
import os
import shutil
import sys

__all__ = ["__version__", "executable", "run"]

__version__ = "0.1.0"


def executable():
    """Path of the ``cppgunicorn`` binary installed with this package."""
    beside = os.path.join(os.path.dirname(sys.executable), "cppgunicorn")
    if os.path.exists(beside):
        return beside
    found = shutil.which("cppgunicorn")
    if found is None:
        raise FileNotFoundError("the cppgunicorn executable is not installed")
    return found


def run(args=None):
    """Replace this process with the server, given command-line arguments."""
    argv = list(sys.argv[1:] if args is None else args)
    path = executable()
    os.execv(path, [path] + argv)
