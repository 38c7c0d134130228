"""API keys: from $SAFETYCHECK_API_KEYS, or one generated under instance/ so the API is never open by accident."""

import hmac
import logging
import secrets
import sys
from pathlib import Path

from flask import current_app, g, request
from flask_smorest import abort

from .seal import create_secret_file, read_secret_file

KEY_FILE = "api_key"
DEV_WARNING = ("WARNING: SAFETYCHECK_DEV=1 and no SAFETYCHECK_API_KEYS: the API is OPEN to anyone who can reach "
               "this port, with no API key. For local trials only; never with patient data.")
log = logging.getLogger("safetycheck")


def parse_keys(value: str) -> dict[str, str]:
    """'label:key,key2' -> {key: label}; a key without a label is named by its position."""
    keys = {}
    for i, item in enumerate(p.strip() for p in value.split(",") if p.strip()):
        label, _, key = item.rpartition(":")
        keys[key] = label or f"key-{i + 1}"
    return keys


def instance_key(instance_path: str) -> tuple[str, bool]:
    """The generated key (owner-only file), created atomically on first use; returns (key, created).

    Two processes starting at once agree: the file appears whole (a hard link) or not at all, and one that others
    could write is refused (whoever can write it can choose the key).
    """
    path = Path(instance_path) / KEY_FILE
    created = False
    if not path.exists():
        created = create_secret_file(path, secrets.token_urlsafe(32))
    return read_secret_file(path, "API key"), created


def configure(app) -> None:
    """Decide the key set once, at start-up."""
    if str(app.config.get("DEV", "")).lower() in ("1", "true") and not app.config.get("API_KEYS"):
        app.extensions["safetycheck_keys"] = None  # SAFETYCHECK_DEV=1: open, for local trials only
        message = DEV_WARNING
        log.warning(message)
        print(message, file=sys.stderr, flush=True)
        return
    configured = app.config.get("API_KEYS")
    if configured:
        app.extensions["safetycheck_keys"] = parse_keys(str(configured))
        return
    folder = app.config.get("INSTANCE_PATH") or app.instance_path
    key, created = instance_key(folder)
    if created:
        print(f"safetycheck: created API key {key} in {Path(folder) / KEY_FILE}", flush=True)
    app.extensions["safetycheck_keys"] = {key: "instance-key"}


def presented_key() -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


def require_key() -> None:
    """before_request for the API: 401 unless a configured key is presented (constant-time compare)."""
    keys = current_app.extensions["safetycheck_keys"]
    if keys is None:
        g.api_client = "dev-open"
        return
    presented = presented_key()
    label = None
    if presented:
        for key, name in keys.items():
            if hmac.compare_digest(presented.encode(), key.encode()):
                label = name
    if label is None:
        abort(401, message="Missing or invalid API key: send X-API-Key or Authorization: Bearer.",
              headers={"WWW-Authenticate": 'Bearer realm="safetycheck", ApiKey realm="safetycheck" header="X-API-Key"'})
    g.api_client = label
