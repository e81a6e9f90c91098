"""An app imported from a sub-directory (--chdir src, --pythonpath src):
it answers with its name, the worker's directory and where it was found."""
import os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"srcapp cwd={os.getcwd()} file={__file__}".encode()]
