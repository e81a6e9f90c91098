"""Imported at start-up by any Python with this directory on PYTHONPATH.

In every process forked after that (the server's workers), any import of a
module the parent had not imported raises ImportError, except the apps of
this directory: whatever a worker still imports after the fork shows up as
a failed boot."""
import os
import sys

APPS = {"serving_app", "raising_app", "stdlib_app"}


class RefuseImportsAfterFork:
    def find_spec(self, name, path=None, target=None):
        if name in APPS:
            return None
        raise ImportError("%s imported after fork" % name)


def _refuse_imports():
    sys.meta_path.insert(0, RefuseImportsAfterFork())


os.register_at_fork(after_in_child=_refuse_imports)
