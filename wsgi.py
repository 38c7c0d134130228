"""WSGI entry point: gunicorn wsgi:app."""

from safetycheck import create_app

app = create_app()
