"""Application factory: configuration, the validated knowledge base, and the HTTP adapters."""

from pathlib import Path

from flask import Flask, jsonify
from flask_smorest import Api

from .config import DEFAULTS
from .knowledge import load_knowledge_base
from .pipeline import Checker

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
    app.config.from_mapping(DEFAULTS, DATA_DIR=str(repo_root / "data"), **API_SETTINGS)
    app.config.from_prefixed_env("SAFETYCHECK")
    if test_config:
        app.config.update(test_config)

    kb = app.config.get("KNOWLEDGE_BASE") or load_knowledge_base(app.config["DATA_DIR"])
    checker = Checker(
        kb,
        score_cutoff=float(app.config["MATCH_SCORE_CUTOFF"]),
        margin=float(app.config["MATCH_AMBIGUITY_MARGIN"]),
        min_fuzzy_length=int(app.config["MATCH_MIN_FUZZY_LENGTH"]),
    )
    app.extensions["safetycheck"] = checker

    @app.get("/healthz")
    def healthz():
        """Liveness: the process is up and its rule set loaded."""
        return jsonify(status="ok", ruleset_version=kb.version)

    api = Api(app)
    from .api import bp as api_bp

    api.register_blueprint(api_bp)
    return app
