# Standard-library modules every gunicorn master has imported before it
# forks (python/cppgunicorn/_preimport.py): our master imports them too,
# so a worker that imports them finds them in sys.modules.
import email.utils
import json
import logging.handlers
import socket
import ssl
import tempfile
import urllib.parse


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [json.dumps([email.utils.__name__, logging.handlers.__name__, socket.__name__,
                        ssl.__name__, tempfile.__name__, urllib.parse.__name__]).encode()]
