"""The WSGI side of the static-file benchmark (benchmarks/static_files.py):
the same two files served through Python, by WhiteNoise and by Flask's
send_from_directory. $STATIC_ROOT names the directory."""
import os

STATIC_ROOT = os.environ.get("STATIC_ROOT", os.path.join(os.path.dirname(__file__), "static"))


def hello(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _whitenoise():
    from whitenoise import WhiteNoise
    # As a Django or Flask app with WhiteNoise in front: files under
    # /static/ come from STATIC_ROOT, the rest goes to the app.
    return WhiteNoise(hello, root=STATIC_ROOT, prefix="/static/")


def _flask():
    from flask import Flask, send_from_directory
    app = Flask(__name__, static_folder=None)

    @app.route("/static/<path:name>")
    def static_file(name):
        return send_from_directory(STATIC_ROOT, name)

    @app.route("/")
    def index():
        return "Hello, World!"

    return app


try:
    whitenoise_app = _whitenoise()
except ImportError:  # reported by the harness as "failed to run"
    whitenoise_app = None
flask_app = _flask()
