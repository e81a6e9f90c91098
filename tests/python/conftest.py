"""Unit tests of the Python the server runs (python/cppgunicorn/_*.py),
imported from the source tree, without the server: `_cppgunicorn` (the
module the C++ side makes) is replaced by a recorder of log writes."""
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))


@pytest.fixture
def error_log(monkeypatch):
    """The (level, message) pairs the package writes to the server's error log."""
    written = []
    fake = types.ModuleType("_cppgunicorn")
    fake.log_write = lambda level, message: written.append((level, message))
    monkeypatch.setitem(sys.modules, "_cppgunicorn", fake)
    return written


@pytest.fixture
def fresh_hooks(monkeypatch):
    """cppgunicorn._hooks and _config with no hooks, worker or settings of an
    earlier test."""
    import types as t

    from cppgunicorn import _config, _hooks
    monkeypatch.setattr(_hooks, "hooks", {})
    monkeypatch.setattr(_hooks, "worker", None)
    monkeypatch.setattr(_hooks, "server", t.SimpleNamespace(
        log=_hooks.log, pid=0, cfg=t.SimpleNamespace(), num_workers=1, proc_name="", app=None))
    monkeypatch.setattr(_config, "_pending_hooks", {})
    monkeypatch.setattr(_config, "logconfig_dict", None)
    return _hooks
