"""JSON API adapter (/api/v1): schema in, the check service, schema out."""

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from .. import audit
from ..auth import require_key
from ..contract import v1
from ..contract.schemas import (
    CheckListSchema,
    CheckQuerySchema,
    CheckRequestSchema,
    CheckResponseSchema,
    MatchRequestSchema,
    MatchResponseSchema,
    ReviewRequestSchema,
    ReviewSchema,
    StoredCheckSchema,
)
from ..db import get_db
from ..service import CheckRefused, NotRecorded
from .strictjson import StrictJSONParser

# One instance per schema, made once: given a class, webargs builds a new instance per request, and each
# instance deep-copies its fields and builds every nested schema again (a third of a check's time).
MATCH_REQUEST, MATCH_RESPONSE = MatchRequestSchema(), MatchResponseSchema()
CHECK_REQUEST, CHECK_RESPONSE, CHECK_QUERY, CHECK_LIST = (CheckRequestSchema(), CheckResponseSchema(),
                                                          CheckQuerySchema(), CheckListSchema())
STORED_CHECK, REVIEW_REQUEST, REVIEW = StoredCheckSchema(), ReviewRequestSchema(), ReviewSchema()

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Medication safety checks")
bp.ARGUMENTS_PARSER = StrictJSONParser()  # duplicate keys, lone surrogates, deep nesting: 400 naming them


@bp.before_request
def _authenticate_and_require_json():
    """Every API call needs a key; every POST must be JSON (415 otherwise)."""
    require_key()
    if request.method == "POST" and not request.is_json:
        abort(415, message="Send the body as application/json.")


def _checker():
    return current_app.extensions["safetycheck"]


@bp.route("/match")
class Match(MethodView):
    @bp.arguments(MATCH_REQUEST)
    @bp.response(200, MATCH_RESPONSE)
    def post(self, body):
        """Tell which drug(s) each medication string is, how sure we are, and its classes."""
        checker = _checker()
        return v1.match_body(checker.match_texts(body["names"]), checker.kb)


def _service():
    return current_app.extensions["safetycheck_service"]


def answer_check(body: dict, channel: str):
    """Translate only: the validated body -> the service (which hashes, runs and stores) -> the stored bytes."""
    try:
        answer = _service().check(get_db(), v1.to_request(body), body, channel=channel, client=g.api_client,
                                  idempotency_key=request.headers.get("Idempotency-Key"))
    except CheckRefused as err:
        abort(422, message=err.message, errors={"json" if err.location == "body" else err.location: err.errors})
    except NotRecorded as err:
        abort(503, message=err.message)
    # Send exactly the bytes that were stored (and hashed): one serialisation, no drift.
    return current_app.response_class(answer.response_json, mimetype="application/json")


@bp.route("/checks")
class Checks(MethodView):
    @bp.arguments(CHECK_REQUEST)
    @bp.response(200, CHECK_RESPONSE)
    def post(self, body):
        """Check a patient's medications and labs against a regimen (and protocol); stored before answered."""
        # Returned as stored (the schema documents it): re-dumping 20 medications through nested
        # schemas cost more than the check itself.
        return answer_check(body, "api")

    @bp.arguments(CHECK_QUERY, location="query")
    @bp.response(200, CHECK_LIST)
    def get(self, query):
        """The audit queue: filter by verdict, warning code, reviewed, since/until; paged."""
        return audit.list_checks(get_db(), **query)


@bp.route("/checks/<check_id>")
class CheckById(MethodView):
    @bp.response(200, STORED_CHECK)
    def get(self, check_id):
        """One stored check: request, response, rule-set version and reviews."""
        stored = audit.get_check(get_db(), check_id)
        if stored is None:
            abort(404, message=f"No check {check_id}.")
        return stored


@bp.route("/checks/<check_id>/reviews")
class Reviews(MethodView):
    @bp.arguments(REVIEW_REQUEST)
    @bp.response(201, REVIEW)
    def post(self, body, check_id):
        """Record an auditor's decision on a stored check (an override needs a note)."""
        db = get_db()
        if not audit.check_exists(db, check_id):
            abort(404, message=f"No check {check_id}.")
        return audit.add_review(db, check_id, g.api_client, body["decision"], body.get("note"))


@bp.route("/regimens")
class Regimens(MethodView):
    @bp.response(200)
    def get(self):
        """Regimens with drugs, schedules, dose levels and sources."""
        kb = _checker().kb
        return {"ruleset_version": kb.version, "regimens": list(kb.regimens.values()),
                "dose_levels": list(kb.dose_levels.values())}


@bp.route("/protocols")
class Protocols(MethodView):
    @bp.response(200)
    def get(self):
        """Protocols with lab thresholds, exclusions and windows, flagged seed defects, sources."""
        kb = _checker().kb
        return {"ruleset_version": kb.version, "protocols": list(kb.protocols.values())}


@bp.route("/drug-classes")
class DrugClasses(MethodView):
    @bp.response(200)
    def get(self):
        """Classes and every membership with its authority and source."""
        kb = _checker().kb
        members: dict[str, list] = {}
        for drug, memberships in sorted(kb.memberships.items()):
            for m in memberships:
                members.setdefault(m.drug_class, []).append(
                    {"drug": drug, "authority": m.authority, "scope": m.scope, "factor": m.factor,
                     "source": m.source, "note": m.note})
        return {"ruleset_version": kb.version, "classes": [
            {"class": c.id, "group": c.group, "description": c.description, "source": c.source,
             "members": members.get(c.id, [])} for c in kb.classes.values()]}
