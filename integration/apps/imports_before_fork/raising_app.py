# Raises while it is imported: the worker logs the formatted traceback.


def configure():
    raise RuntimeError("raised while importing raising_app")


configure()
app = None
