"""Application factory: configuration, the validated knowledge base, and the HTTP adapters."""

import logging
import os
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask_smorest import Api
from werkzeug.exceptions import RequestURITooLarge

from . import auth, cli, db, error_pages, gcpause, ncpdp, web
from .config import DEFAULTS
from .errors import StoreUnavailable
from .knowledge import load_knowledge_base, vocabulary
from .pipeline import Checker
from .service import CheckService

log = logging.getLogger("safetycheck")
# Settings that are text whatever they look like (keys, paths): never parsed as JSON numbers or booleans.
STRING_SETTINGS = ("API_KEYS", "AUDIT_KEY", "AUDIT_KEY_FILE", "AUDIT_ANCHOR", "DB", "DATA_DIR", "CACHE_DIR", "DEV")
API_SETTINGS = {
    "API_TITLE": "safetycheck",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    # Every /api/v1 operation needs the API key (either form); /healthz, /readyz and the docs do not.
    "API_SPEC_OPTIONS": {"security": [{"ApiKey": []}, {"Bearer": []}]},
}


class JSONErrorsApi(Api):
    """flask-smorest's JSON errors, keeping the headers HTTP requires (Allow on 405, Retry-After, ...)."""

    def handle_http_exception(self, error):
        payload, code, headers = super().handle_http_exception(error)
        kept = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return payload, code, {**kept, **(headers or {})}


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; a knowledge-base problem stops start-up with file, row and fix."""
    app = Flask(__name__, instance_relative_config=True)
    repo_root = Path(app.root_path).parent
    # CACHE_DIR holds start-up data derived from the vocabulary and data/; "" turns caching off.
    app.config.from_mapping(DEFAULTS, DATA_DIR=str(repo_root / "data"),
                            CACHE_DIR=str(repo_root / "instance" / "cache"), **API_SETTINGS)
    app.config.from_prefixed_env("SAFETYCHECK")
    for name in STRING_SETTINGS:  # from_prefixed_env parses JSON: key "1e3" would become 1000.0
        if f"SAFETYCHECK_{name}" in os.environ:
            app.config[name] = os.environ[f"SAFETYCHECK_{name}"]
    # Contract: the database path is $SAFETYCHECK_DB, default instance/safetycheck.db.
    app.config.setdefault("DATABASE", app.config.get("DB") or str(Path(app.instance_path) / "safetycheck.db"))
    app.config.setdefault("MIGRATIONS_PATH", str(repo_root / "migrations" / "migrations.py"))
    if test_config:
        app.config.update(test_config)
    web.configure_secret(app)  # before the slow knowledge load: a missing secret refuses at once

    cache_dir = app.config["CACHE_DIR"] or None
    with gcpause.paused():  # one pause over the whole load, not one rescan between its steps
        kb = app.config.get("KNOWLEDGE_BASE") or load_knowledge_base(
            app.config["DATA_DIR"], vocab=vocabulary.load(cache_dir=cache_dir))
        checker = Checker(
            kb,
            dur_codes=ncpdp.load(app.config["DATA_DIR"]),
            score_cutoff=float(app.config["MATCH_SCORE_CUTOFF"]),
            margin=float(app.config["MATCH_AMBIGUITY_MARGIN"]),
            min_fuzzy_length=int(app.config["MATCH_MIN_FUZZY_LENGTH"]),
            cache_dir=cache_dir,
        )
    app.extensions["safetycheck"] = checker
    app.extensions["safetycheck_service"] = CheckService(checker)

    app.extensions["safetycheck_seal"] = db.seal_for(app)
    db.init_app(app)
    cli.init_app(app)
    auth.configure(app)

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(err):
        """The audit store cannot take the check: 503, and nothing is answered."""
        log.error("audit store unavailable: %s", err)
        return jsonify(code=503, status="Service Unavailable",
                       message=f"The audit store is unavailable, so no advice is given: {err}"), 503

    @app.before_request
    def refuse_overlong_urls():
        """An over-long URL gets a JSON 414 (gunicorn's own limit, a plain 400, is set far above this)."""
        if len(request.full_path) > int(app.config["MAX_URL_LENGTH"]):
            raise RequestURITooLarge(f"The URL is longer than {app.config['MAX_URL_LENGTH']} characters.")

    @app.after_request
    def security_headers(response):
        """Answers carry PHI: never cached (browsers, proxies), never content-sniffed."""
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/healthz")
    def healthz():
        """Liveness: the process is up and its rule set loaded."""
        return jsonify(status="ok", ruleset_version=kb.version)

    @app.get("/readyz")
    def readyz():
        """Readiness: the database is there (never created here), migrated, writable, not full, and its chain
        head matches the anchor; the rule set is loaded."""
        try:
            reason = db.readiness(app.config["DATABASE"], app.config["MIGRATIONS_PATH"],
                                  int(app.config["READY_MIN_FREE_BYTES"]))
        except Exception as err:  # noqa: BLE001 - any database failure means not ready
            reason = f"database: {err}"
        if reason:
            return jsonify(status="unavailable", reason=reason), 503
        return jsonify(status="ready", ruleset_version=kb.version)

    @app.get("/api/docs")
    def api_docs():
        """A browsable view of /api/openapi.json that needs nothing from the internet."""
        return render_template("api_docs.html")

    api = JSONErrorsApi(app)
    api.spec.components.security_scheme("ApiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    api.spec.components.security_scheme("Bearer", {"type": "http", "scheme": "bearer",
                                                   "description": "the same API key as a bearer token"})
    from .api import bp as api_bp

    api.register_blueprint(api_bp)
    from .cdshooks.views import bp as cds_bp

    app.register_blueprint(cds_bp)
    error_pages.init_app(app, api)
    web.init_app(app)
    return app
