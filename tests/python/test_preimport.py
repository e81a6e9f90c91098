import subprocess
import sys
from pathlib import Path

import pytest

from cppgunicorn import _preimport

PYTHON_DIR = str(Path(__file__).resolve().parents[2] / "python")


def test_every_module_named_exists_in_this_python():
    # A name gone from the standard library (a typo, a module removed in a
    # newer Python) would be skipped without a word by import_shared().
    assert _preimport.import_shared() == []


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="Python 3.10+ lists its modules")
def test_only_standard_library_modules_are_imported():
    # In a fresh interpreter: nothing outside the standard library (an app's
    # package) may come in with them.
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules);"
            "from cppgunicorn import _preimport; _preimport.import_shared();"
            "new = {m.split('.')[0] for m in set(sys.modules) - before};"
            "print(sorted(n for n in new if n not in sys.stdlib_module_names and n != 'cppgunicorn'))"
            % PYTHON_DIR)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_module_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(_preimport, "MODULES", ("json", "no_such_module_here"))
    assert _preimport.import_shared() == ["no_such_module_here"]
