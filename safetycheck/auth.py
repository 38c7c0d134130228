"""API keys: from $SAFETYCHECK_API_KEYS, or one generated under instance/ so the API is never open by accident."""

import hmac
import os
import secrets
from pathlib import Path

from flask import current_app, g, request
from flask_smorest import abort

KEY_FILE = "api_key"


def parse_keys(value: str) -> dict[str, str]:
    """'label:key,key2' -> {key: label}; a key without a label is named by its position."""
    keys = {}
    for i, item in enumerate(p.strip() for p in value.split(",") if p.strip()):
        label, _, key = item.rpartition(":")
        keys[key] = label or f"key-{i + 1}"
    return keys


def instance_key(instance_path: str) -> tuple[str, bool]:
    """The generated key (owner-only file), created on first use; returns (key, created)."""
    path = Path(instance_path) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip(), False
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, True


def configure(app) -> None:
    """Decide the key set once, at start-up."""
    if str(app.config.get("DEV", "")).lower() in ("1", "true") and not app.config.get("API_KEYS"):
        app.extensions["safetycheck_keys"] = None  # SAFETYCHECK_DEV=1: open, for local trials only
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
