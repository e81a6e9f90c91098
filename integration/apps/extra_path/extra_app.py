import sys


def app(environ, start_response):
    # Proves which interpreter runs us and that the venv's packages import.
    import flask
    body = f"{sys.prefix}\n{flask.__name__}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
