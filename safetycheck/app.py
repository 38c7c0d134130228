"""Application factory: configuration, the validated knowledge base, and the HTTP adapters."""

from pathlib import Path

from flask import Flask, jsonify, render_template
from flask_smorest import Api

from . import auth, cli, db, error_pages, ncpdp
from .config import DEFAULTS
from .knowledge import load_knowledge_base, vocabulary
from .pipeline import Checker
from .service import CheckService

API_SETTINGS = {
    "API_TITLE": "safetycheck",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; a knowledge-base problem stops start-up with file, row and fix."""
    app = Flask(__name__, instance_relative_config=True)
    repo_root = Path(app.root_path).parent
    # CACHE_DIR holds start-up data derived from the vocabulary and data/; "" turns caching off.
    app.config.from_mapping(DEFAULTS, DATA_DIR=str(repo_root / "data"),
                            CACHE_DIR=str(repo_root / "instance" / "cache"), **API_SETTINGS)
    app.config.from_prefixed_env("SAFETYCHECK")
    # Contract: the database path is $SAFETYCHECK_DB, default instance/safetycheck.db.
    app.config.setdefault("DATABASE", app.config.get("DB") or str(Path(app.instance_path) / "safetycheck.db"))
    app.config.setdefault("MIGRATIONS_PATH", str(repo_root / "migrations" / "migrations.py"))
    if test_config:
        app.config.update(test_config)

    cache_dir = app.config["CACHE_DIR"] or None
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

    db.init_app(app)
    cli.init_app(app)
    auth.configure(app)

    @app.get("/healthz")
    def healthz():
        """Liveness: the process is up and its rule set loaded."""
        return jsonify(status="ok", ruleset_version=kb.version)

    @app.get("/readyz")
    def readyz():
        """Readiness: the database answers, every migration is applied, the rule set is loaded."""
        try:
            pending = db.pending_migrations(app.config["DATABASE"], app.config["MIGRATIONS_PATH"])
        except Exception as err:  # noqa: BLE001 - any database failure means not ready
            return jsonify(status="unavailable", reason=f"database: {err}"), 503
        if pending:
            return jsonify(status="unavailable", reason="run flask --app wsgi db migrate",
                           pending=pending), 503
        return jsonify(status="ready", ruleset_version=kb.version)

    @app.get("/api/docs")
    def api_docs():
        """A browsable view of /api/openapi.json that needs nothing from the internet."""
        return render_template("api_docs.html")

    api = Api(app)
    from .api import bp as api_bp

    api.register_blueprint(api_bp)
    from .cdshooks.views import bp as cds_bp

    app.register_blueprint(cds_bp)
    error_pages.init_app(app, api)
    return app
