"""The Python side of configuration, run in the master.

read() executes a config file (gunicorn.conf.py, or python:module.name)
exactly as gunicorn's Application does and turns its module-level settings
into text for the settings table (src/config); resolve() imports a hook
given as "module.function" (command line, TOML); configure() puts the
hooks in force and builds the `server` object hooks receive. The server
(src/wsgi/python_config.cpp) calls them in that order, at start and on
each HUP.
"""
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import types

from . import _hooks

# Hooks read from a file or resolved from text, in force once configure()
# accepts the whole configuration (a HUP whose config fails keeps the old).
_pending_hooks = {}
# The logconfig_dict a config file defined (cppgunicorn._logging applies it).
logconfig_dict = None


def read(location, names):
    """The settings in `names` that the file or module defines, as
    (name, [text, ...], is_python_object) tuples."""
    global _pending_hooks, logconfig_dict
    _pending_hooks = {}
    wanted = set(names)
    if location.startswith("python:"):
        ns = vars(importlib.import_module(location[len("python:"):]))
    else:
        filename = location[len("file:"):] if location.startswith("file:") else location
        name = "__config__"
        if os.path.splitext(filename)[1] in (".py", ".pyc"):
            spec = importlib.util.spec_from_file_location(name, filename)
        else:
            loader = importlib.machinery.SourceFileLoader(name, filename)
            spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        ns = vars(mod)
    out = []
    for key, value in list(ns.items()):
        if key not in wanted or value is None:
            continue
        if key == "logconfig_dict" and isinstance(value, dict):
            logconfig_dict = value
        texts, is_object = setting_text(value)
        if is_object:
            _pending_hooks[key] = value
        out.append((key, texts, is_object))
    return out


def setting_text(value):
    """A setting's Python value as the settings table reads it: ([text,
    ...], is_python_object). A list gives one text per item; a callable
    (a hook) gives its description and True. Config files and
    cppgunicorn.serve(**settings) read values through this one function."""
    if isinstance(value, bool):
        return ["true" if value else "false"], False
    if isinstance(value, (int, float, str)):
        return [str(value)], False
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value], False
    if isinstance(value, dict):
        return [",".join("%s=%s" % kv for kv in value.items())], False
    if inspect.isclass(value):
        return [value.__module__ + "." + value.__qualname__], False
    if callable(value):
        return ["<%s()>" % getattr(value, "__qualname__", type(value).__name__)], True
    return [str(value)], False


def resolve(name, path):
    """A hook given as text: "module.function"."""
    module_name, _, attr = path.rpartition(".")
    _pending_hooks[name] = getattr(importlib.import_module(module_name), attr)


def _typed(name, text):
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if name in ("bind", "raw_env", "forwarded_allow_ips", "forwarder_headers"):
        return [t for t in text.split(",") if t]
    try:
        return int(text)
    except ValueError:
        return text


def configure(values, env):
    """The configuration is final: its hooks, server.cfg (from the settings
    as --print-config shows them) and -e/--env in os.environ."""
    _hooks.hooks = dict(_pending_hooks)
    server = _hooks.server
    server.cfg = types.SimpleNamespace(**{k: _typed(k, v) for k, v in values.items()})
    server.proc_name = values.get("proc_name") or values.get("default_proc_name", "")
    for k, v in env.items():
        os.environ[k] = v
