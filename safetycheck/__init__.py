"""safetycheck: medication safety checks for multiple-myeloma regimens."""

from .app import create_app

__all__ = ["create_app"]
