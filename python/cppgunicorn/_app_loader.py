"""Loads the WSGI application named by an app URI, with gunicorn's grammar:
"module", "module:name", "pkg.module:obj.attr", "module:factory()",
"module:factory('arg', key=1)" (literal arguments only).

Python does the parsing: `ast` knows the expression grammar, and a
literal_eval of the arguments is exactly what gunicorn allows. The server
(src/wsgi/app_loader.cpp) calls load() in each worker, or once in the
master with --preload; the master imports this module before it forks, so
a worker needs no import of its own to load the app.
"""
import ast
import importlib


class AppLoadError(Exception):
    pass


class AppModuleNotFound(AppLoadError):
    """The app's module itself does not exist: a worker boot error (exit 3)."""


def _resolve(expr, mod, module_name, text):
    if isinstance(expr, ast.Name):
        try:
            return getattr(mod, expr.id)
        except AttributeError:
            raise AppLoadError(
                "Failed to find attribute %r in %r." % (expr.id, module_name)) from None
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, mod, module_name, text)
        try:
            return getattr(base, expr.attr)
        except AttributeError:
            raise AppLoadError("Failed to find attribute %r in %r." % (
                ast.unparse(expr), module_name)) from None
    raise AppLoadError(
        "Failed to parse %r as an attribute name or function call." % text)


def load(uri):
    module_name, _, obj = uri.partition(":")
    obj = obj or "application"
    if not module_name:
        raise AppLoadError("No application module specified.")
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only a missing app module is the user's typo; a missing import
        # inside it deserves its traceback.
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            if module_name.endswith(".py"):
                raise AppModuleNotFound(
                    "Failed to find application, did you mean '%s:%s'?"
                    % (module_name.rsplit(".", 1)[0], obj)) from None
            raise AppModuleNotFound("No module named %r" % e.name) from None
        raise
    try:
        expr = ast.parse(obj.strip(), mode="eval").body
    except SyntaxError:
        raise AppLoadError(
            "Failed to parse %r as an attribute name or function call." % obj) from None
    if isinstance(expr, ast.Call):
        try:
            args = [ast.literal_eval(a) for a in expr.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
        except ValueError:
            raise AppLoadError(
                "Failed to parse arguments as literal values: %r" % obj) from None
        factory = _resolve(expr.func, mod, module_name, obj)
        if not callable(factory):
            raise AppLoadError("%r is not callable." % ast.unparse(expr.func))
        app = factory(*args, **kwargs)
    else:
        app = _resolve(expr, mod, module_name, obj)
    if app is None:
        raise AppLoadError("Failed to find application object: %r" % obj)
    if not callable(app):
        raise AppLoadError(
            "Application object must be callable: %r in %r is %s."
            % (obj, module_name, type(app).__name__))
    return app
