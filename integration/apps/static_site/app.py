"""The app behind the static mounts: it says that it answered, and which
path it got, so a test can tell a static answer from the app's."""
import os


def app(environ, start_response):
    if environ["PATH_INFO"] == "/pid":
        body = str(os.getpid()).encode()
    else:
        body = ("app " + environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
