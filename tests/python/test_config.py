import sys
import textwrap

import pytest

from cppgunicorn import _config


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def as_dict(items):
    return {name: (values, is_object) for name, values, is_object in items}


def test_read_turns_each_wanted_setting_into_text(tmp_path, fresh_hooks):
    path = write(tmp_path, "gunicorn.conf.py", """
        import multiprocessing
        bind = ["127.0.0.1:8000", "unix:/tmp/s"]
        workers = 2 * 2
        preload_app = True
        timeout = 1.5
        raw_env = ("A=1",)
        accesslog = None
        not_a_setting = 1
        logconfig_dict = {"version": 1}
        worker_class = dict
        def on_starting(server):
            pass
        """)
    names = ["bind", "workers", "preload_app", "timeout", "raw_env", "accesslog",
             "logconfig_dict", "worker_class", "on_starting"]
    got = as_dict(_config.read(path, names))
    assert got["bind"] == (["127.0.0.1:8000", "unix:/tmp/s"], False)
    assert got["workers"] == (["4"], False)
    assert got["preload_app"] == (["true"], False)
    assert got["timeout"] == (["1.5"], False)
    assert got["raw_env"] == (["A=1"], False)
    assert "accesslog" not in got and "not_a_setting" not in got
    assert got["logconfig_dict"] == (["version=1"], False)
    assert got["worker_class"] == (["builtins.dict"], False)
    assert got["on_starting"] == (["<on_starting()>"], True)
    assert _config.logconfig_dict == {"version": 1}


def test_read_executes_a_file_without_py_suffix_and_registers_it(tmp_path, fresh_hooks):
    path = write(tmp_path, "server.conf", "workers = 3\n")
    assert as_dict(_config.read("file:" + path, ["workers"])) == {"workers": (["3"], False)}
    assert sys.modules["__config__"].__file__ == path


def test_read_takes_a_python_module(tmp_path, monkeypatch, fresh_hooks):
    write(tmp_path, "my_settings.py", "workers = 5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert as_dict(_config.read("python:my_settings", ["workers"])) == {"workers": (["5"], False)}


def test_an_error_in_the_file_propagates_with_its_line(tmp_path, fresh_hooks):
    path = write(tmp_path, "bad.py", "workers = 1\nraise ValueError('bad config')\n")
    with pytest.raises(ValueError, match="bad config"):
        _config.read(path, ["workers"])


def test_hooks_are_in_force_only_once_configured(tmp_path, fresh_hooks):
    path = write(tmp_path, "hooks.py", "def when_ready(server):\n    server.seen = True\n")
    _config.read(path, ["when_ready"])
    assert fresh_hooks.hooks == {}
    _config.configure({"workers": "2", "bind": "a,b", "daemon": "False", "proc_name": ""},
                      {})
    assert set(fresh_hooks.hooks) == {"when_ready"}
    cfg = fresh_hooks.server.cfg
    assert cfg.workers == 2 and cfg.bind == ["a", "b"] and cfg.daemon is False


def test_configure_names_the_server_and_exports_the_environment(monkeypatch, fresh_hooks):
    monkeypatch.delenv("CPPGUNICORN_TEST_ENV", raising=False)
    _config.configure({"proc_name": "", "default_proc_name": "app:app"},
                      {"CPPGUNICORN_TEST_ENV": "yes"})
    assert fresh_hooks.server.proc_name == "app:app"
    import os
    assert os.environ["CPPGUNICORN_TEST_ENV"] == "yes"


def test_resolve_imports_a_hook_named_by_text(fresh_hooks):
    _config.resolve("post_fork", "os.path.join")
    _config.configure({}, {})
    import os.path
    assert fresh_hooks.hooks["post_fork"] is os.path.join


def test_resolve_of_a_missing_function_raises(fresh_hooks):
    with pytest.raises(AttributeError):
        _config.resolve("post_fork", "os.no_such_function")
