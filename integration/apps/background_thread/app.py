"""An app with a Python thread of its own, started at import, that counts
its wake-ups: ``/count`` answers how many so far. The worker's loop thread
must let it run while it waits for requests (it may hold the GIL across
one loop iteration, never while it waits for I/O)."""
import threading
import time

count = 0


def _tick():
    global count
    while True:
        time.sleep(0.01)
        count += 1


threading.Thread(target=_tick, daemon=True).start()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(count).encode()]
