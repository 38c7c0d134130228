"""JSON API adapter (/api/v1): schema in, core pipeline, schema out."""

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from .schemas import MatchRequestSchema, MatchResponseSchema

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Medication safety checks")


def _checker():
    return current_app.extensions["safetycheck"]


@bp.route("/match")
class Match(MethodView):
    @bp.arguments(MatchRequestSchema)
    @bp.response(200, MatchResponseSchema)
    def post(self, body):
        """Tell which drug(s) each medication string is, how sure we are, and its classes."""
        checker = _checker()
        results = checker.match_texts(body["names"])
        return {
            "ruleset_version": checker.kb.version,
            "results": [r.as_dict(checker.kb) for r in results],
        }
