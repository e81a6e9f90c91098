"""Flask apps for --static-from-app: one with its static folder (static/,
served at /assets), one without any, and one wrapped in a middleware."""
from flask import Flask

app = Flask(__name__, static_url_path="/assets")


@app.route("/")
def index():
    return "flask index"


no_static = Flask(__name__, static_folder=None)


def wrapped(environ, start_response):
    return app(environ, start_response)
