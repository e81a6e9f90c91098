"""Standard-library modules the master imports before it forks workers.

A worker forked from the master shares, copy-on-write, every module the
master imported: its code objects, dicts and functions, and the relocated
pages of the extension libraries they load (libssl, libcrypto, libz...).
What a worker imports after the fork is its own: four workers hold four
copies. gunicorn's master is Python and has the modules below imported
before its first fork (gunicorn 27.0, Python 3.11: the standard-library
part of its ``sys.modules`` at ``when_ready``); an app served by gunicorn
always finds them imported. Importing the same ones here changes nothing an
app can tell from gunicorn, and moves their memory from each worker's
private count to one shared copy (``docs/performance.md``, "Memory").

Nothing outside the standard library is imported: the app and its
packages are still imported by each worker after the fork, as gunicorn's
default does (``--preload`` imports the app in the master instead).

The green worker classes skip this: they monkey-patch ``socket``, ``ssl``,
``threading``, ``select`` and ``queue`` first thing after the fork, and a
patch finds less to fix up in modules not imported yet.
"""
import importlib

MODULES = (
    "argparse", "array", "base64", "binascii", "bisect", "bz2", "calendar", "copy", "csv",
    "datetime", "email", "email.base64mime", "email.charset", "email.encoders", "email.errors",
    "email.header", "email.iterators", "email.message", "email.quoprimime", "email.utils",
    "fcntl", "fnmatch", "gettext", "glob", "grp", "heapq", "html", "html.entities",
    "importlib.abc", "importlib.metadata", "importlib.resources", "importlib.util", "inspect",
    "ipaddress", "json", "json.decoder", "json.encoder", "json.scanner", "locale", "logging",
    "logging.config", "logging.handlers", "lzma", "math", "pathlib", "pickle", "platform",
    "pwd", "queue", "quopri", "random", "select", "selectors", "shlex", "shutil", "socket",
    "socketserver", "ssl", "string", "struct", "tempfile", "textwrap", "threading", "tokenize",
    "typing", "urllib", "urllib.parse", "weakref", "zipfile", "zlib",
)


def import_shared():
    """Imports MODULES; returns the names that could not be imported (a
    Python built without ssl, bz2 or lzma: the worker imports nothing
    more than before for those)."""
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing
