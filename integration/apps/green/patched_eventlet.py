"""An eventlet app as people write them: it patches at import."""
import eventlet

eventlet.monkey_patch()

from app import app  # noqa: E402  (after the patch, as eventlet asks)
