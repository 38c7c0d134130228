"""safetycheck: medication safety checks for multiple-myeloma regimens.

Importing the package loads no Flask: `create_app` imports the web layer only when called.
"""

__all__ = ["create_app"]


def create_app(test_config: dict | None = None):
    """Build the Flask app (see safetycheck.app.create_app)."""
    from .app import create_app as build

    return build(test_config)
