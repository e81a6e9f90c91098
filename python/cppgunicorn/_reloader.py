"""--reload: which of the files the worker has imported (or was told to
watch) changed on disk. The worker calls Watch.check() about once a second
(src/wsgi/reloader.cpp)."""
import glob
import os
import sys


class Watch:
    def __init__(self, extra):
        self.extra = list(extra)
        self.mtimes = {}
        self.check()

    def files(self):
        out = set()
        for module in list(sys.modules.values()):
            name = getattr(module, "__file__", None)
            if isinstance(name, str):
                out.add(name[:-1] if name.endswith(".pyc") else name)
        for pattern in self.extra:
            if any(c in pattern for c in "*?["):
                out.update(glob.glob(pattern, recursive=True))
            else:
                out.add(pattern)
        return out

    def check(self):
        for name in self.files():
            try:
                mtime = os.stat(name).st_mtime
            except OSError:
                continue
            old = self.mtimes.get(name)
            if old is None:
                self.mtimes[name] = mtime
            elif mtime > old:
                return name
        return ""
