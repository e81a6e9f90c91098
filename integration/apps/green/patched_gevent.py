"""A gevent app as people write them: it patches at import."""
from gevent import monkey

monkey.patch_all()

from app import app  # noqa: E402  (after the patch, as gevent asks)
