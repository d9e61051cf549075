"""Django's PostgreSQL backend with a client-side deadline on every wait for the server (see base.py)."""
