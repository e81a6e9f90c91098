"""An example Flask app using what real Flask apps use.

Serve it with:  cppgunicorn --chdir examples/flask_app app:app
"""
import hashlib
import os
from pathlib import Path

from flask import (Flask, Response, jsonify, redirect, render_template, request,
                   send_file, session, stream_with_context, url_for)

HERE = Path(__file__).resolve().parent

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY", "example-only-secret")
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024

ITEMS = [
    {"id": 1, "name": "teapot", "price": 12.5},
    {"id": 2, "name": "kettle", "price": 30.0},
    {"id": 3, "name": "cup", "price": 4.25},
]


class OutOfTea(Exception):
    """A domain error that the app turns into a 418 with its own handler."""


@app.route("/")
def index():
    return render_template("index.html", items=ITEMS, user=session.get("user"))


@app.get("/api/items")
def list_items():
    return jsonify(items=ITEMS, count=len(ITEMS))


@app.post("/api/echo")
def echo():
    payload = request.get_json(force=True, silent=False)
    return jsonify(received=payload, keys=sorted(payload) if isinstance(payload, dict) else [],
                   method=request.method)


@app.get("/upload")
def upload_form():
    return render_template("upload.html")


@app.post("/upload")
def upload():
    f = request.files.get("file")
    if f is None:
        return jsonify(error="no file field"), 400
    data = f.read()
    return jsonify(filename=f.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get("note", ""))


@app.get("/stream")
def stream():
    n = int(request.args.get("n", 10))

    @stream_with_context
    def lines():
        for i in range(n):
            yield f"line {i} of {n} for {request.path}\n"

    # No length is known: HTTP/1.1 responses go out chunked.
    return Response(lines(), mimetype="text/plain")


@app.get("/big")
def big():
    mb = int(request.args.get("mb", 1))
    block = b"0123456789abcdef" * 4096  # 64 KiB

    def blocks():
        for _ in range(mb * 16):
            yield block

    return Response(blocks(), mimetype="application/octet-stream",
                    headers={"Content-Length": str(mb * 1024 * 1024)})


@app.get("/old")
def old():
    return redirect(url_for("index"))


@app.get("/login")
def login():
    session["user"] = request.args.get("name", "guest")
    return jsonify(logged_in=session["user"])


@app.get("/whoami")
def whoami():
    return jsonify(user=session.get("user"))


@app.get("/cookie")
def cookie():
    resp = jsonify(seen=request.cookies.get("flavour"))
    resp.set_cookie("flavour", request.args.get("value", "oatmeal"), httponly=True)
    return resp


@app.get("/download")
def download():
    return send_file(HERE / "files" / "sample.txt", mimetype="text/plain",
                     as_attachment=True, download_name="sample.txt")


@app.get("/tea")
def tea():
    raise OutOfTea("the pot is empty")


@app.get("/boom")
def boom():
    raise RuntimeError("this route always fails")


@app.errorhandler(404)
def not_found(error):
    return jsonify(error="not found", path=request.path), 404


@app.errorhandler(OutOfTea)
def out_of_tea(error):
    return jsonify(error=str(error)), 418
