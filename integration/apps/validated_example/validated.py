"""The example Flask app wrapped in wsgiref's validator, with its warnings
turned into errors, so every test that uses it also checks the server's
side of PEP 3333 (environ, wsgi.input, start_response, close())."""
import sys
import warnings
from pathlib import Path
from wsgiref.validate import WSGIWarning, validator

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flask_app"))

from app import app as flask_app  # noqa: E402

warnings.simplefilter("error", WSGIWarning)

app = validator(flask_app)
