"""Served under hooks.conf.py: / answers, /sleep hangs past --timeout."""
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(30)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "hooks")])
    return [b"ok"]
