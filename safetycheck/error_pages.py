"""Errors by channel: JSON for /api/* and /cds-services/* (the v1 error shape), an HTML page elsewhere."""

from flask import render_template, request
from werkzeug.exceptions import HTTPException

JSON_PREFIXES = ("/api/", "/cds-services")


def wants_json() -> bool:
    """Machine channels get JSON; the pages people use get HTML."""
    return request.path.startswith(JSON_PREFIXES) or request.path in ("/healthz", "/readyz")


def init_app(app, api) -> None:
    """Replace flask-smorest's app-wide JSON handler with one that answers in the channel's format."""

    def handle_http_exception(error: HTTPException):
        if wants_json():
            return api.handle_http_exception(error)
        return render_template("error.html", error=error), error.code

    app.register_error_handler(HTTPException, handle_http_exception)
