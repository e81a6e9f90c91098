"""Apps reachable through every app-URI form gunicorn accepts."""


def _make(tag):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [tag.encode()]
    return app


application = _make("application")
app = _make("app")


def create_app():
    return _make("factory")


def create_app_with(name, key=0):
    return _make(f"factory:{name}:{key}")


class Holder:
    inner = staticmethod(_make("attr"))


holder = Holder()
not_callable = 42
returns_none = None
