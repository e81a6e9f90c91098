"""``python -m cppgunicorn ...`` runs the server with the same arguments."""
from cppgunicorn import main

if __name__ == "__main__":
    main()
