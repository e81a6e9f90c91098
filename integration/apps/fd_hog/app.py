"""An app that takes every free descriptor of its worker, and gives them back.

``/hog``      open /dev/null until the open-files limit is reached, keep them
``/release``  close them
``/``         answer "ok"
"""
import os

_held = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hog":
        try:
            while True:
                _held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        body = f"holding {len(_held)}".encode()
    elif path == "/release":
        while _held:
            os.close(_held.pop())
        body = b"released"
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
