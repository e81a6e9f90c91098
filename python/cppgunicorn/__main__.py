"""``python -m cppgunicorn ...`` runs the server with the same arguments."""
from cppgunicorn import run

run()
