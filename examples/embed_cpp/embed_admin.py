"""The WSGI app of the embed_cpp example: examples/flask_app as it is, plus
two routes of the host program's own, through the `embed_host` module that
the C++ program registers in its interpreter."""
import embed_host
from flask import jsonify

from app import app  # examples/flask_app/app.py


@app.get("/host/primes")
def primes():
    # Computed by the host's own thread, beside the server.
    count, largest = embed_host.primes()
    return jsonify(count=count, largest=largest)


@app.post("/host/shutdown")
def shutdown():
    # The host decides: it stops the server once this response is out.
    embed_host.request_shutdown()
    return jsonify(stopping=True)
