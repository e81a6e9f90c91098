"""An app imported from a sub-directory (--chdir src, --pythonpath src)."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"srcapp"]
