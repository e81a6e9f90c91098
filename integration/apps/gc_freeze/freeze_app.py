# Answers how many objects the worker's garbage collector has frozen
# (gc.freeze() in the master before the fork), and whether an object this
# module made at import is among them: frozen objects are in none of the
# collector's generations, so gc.get_objects() leaves them out.
import gc

MADE_AT_IMPORT = {"a": [1, 2, 3]}


def app(environ, start_response):
    frozen = not any(o is MADE_AT_IMPORT for o in gc.get_objects())
    body = "%d %s" % (gc.get_freeze_count(), frozen)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
