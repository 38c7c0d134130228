"""JSON API adapter (/api/v1): schema in, core pipeline, schema out."""

import logging

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from .. import audit
from ..auth import require_key
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
from ..models import CheckRequest, InputError, MedicationInput
from ..parsing import split_lines
from ..pipeline import run_check
from .strictjson import StrictJSONParser

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Medication safety checks")
bp.ARGUMENTS_PARSER = StrictJSONParser()  # duplicate keys, lone surrogates, deep nesting: 400 naming them
log = logging.getLogger(__name__)


@bp.before_request
def _authenticate_and_require_json():
    """Every API call needs a key; every POST must be JSON (415 otherwise)."""
    require_key()
    if request.method == "POST" and not request.is_json:
        abort(415, message="Send the body as application/json.")


def _checker():
    return current_app.extensions["safetycheck"]


def to_request(body: dict) -> CheckRequest:
    """Validated JSON -> the core's CheckRequest (medication_text lines appended as free text)."""
    meds = [MedicationInput(**m) for m in body.get("medications", [])]
    meds += [MedicationInput(text=line) for line in split_lines(body.get("medication_text", ""))]
    return CheckRequest(
        regimen=body["regimen"], mode=body["mode"], protocol=body.get("protocol"), date=body.get("date"),
        screening_date=body.get("screening_date"), registration_date=body.get("registration_date"),
        c1d1_date=body.get("c1d1_date"),
        cycle=body.get("cycle"), day=body.get("day"), patient=body["patient"], medications=tuple(meds),
        labs=body["labs"], current_doses=body["current_doses"], toxicities=body["toxicities"],
        serology=body.get("serology", {}),
    )


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


def answer_check(body: dict, channel: str):
    """Run a check and store it before answering; no stored row, no advice (5xx)."""
    db = get_db()
    key = request.headers.get("Idempotency-Key")
    if key:
        _, digest = audit.canonical_request(body)
        try:
            stored = audit.find_idempotent(db, g.api_client, key, digest)
        except audit.IdempotencyConflict:
            abort(422, message="Idempotency-Key was used with a different request body.",
                  errors={"headers": {"Idempotency-Key": ["reused with a different body"]}})
        if stored:
            return current_app.response_class(stored, mimetype="application/json")  # byte for byte
    try:
        result = run_check(_checker(), to_request(body))
    except InputError as err:
        abort(422, message="Unprocessable request", errors={"json": err.errors})
    response = {"check_id": audit.new_id(), "created_at": audit.now(), **result}
    try:
        stored_json = audit.record_check(db, channel=channel, api_client=g.api_client, request=body,
                                         response=response, idempotency_key=key)  # a concurrent twin's answer
    except audit.IdempotencyConflict:
        abort(422, message="Idempotency-Key was used with a different request body.",
              errors={"headers": {"Idempotency-Key": ["reused with a different body"]}})
    except Exception as err:  # noqa: BLE001 - any storage failure means no advice
        reason = audit.store_failure(err)
        log.error("audit write failed, check not answered: %s", reason, exc_info=True)
        abort(503, message=f"The check could not be stored in the audit log, so no advice is given: {reason}.")
    # Send exactly the bytes that were stored (and hashed): one serialisation, no drift.
    return current_app.response_class(stored_json, mimetype="application/json")


@bp.route("/checks")
class Checks(MethodView):
    @bp.arguments(CheckRequestSchema)
    @bp.response(200, CheckResponseSchema)
    def post(self, body):
        """Check a patient's medications and labs against a regimen (and protocol); stored before answered."""
        # Returned as stored (the schema documents it): re-dumping 20 medications through nested
        # schemas cost more than the check itself.
        return answer_check(body, "api")

    @bp.arguments(CheckQuerySchema, location="query")
    @bp.response(200, CheckListSchema)
    def get(self, query):
        """The audit queue: filter by verdict, warning code, reviewed, since/until; paged."""
        return audit.list_checks(get_db(), **query)


@bp.route("/checks/<check_id>")
class CheckById(MethodView):
    @bp.response(200, StoredCheckSchema)
    def get(self, check_id):
        """One stored check: request, response, rule-set version and reviews."""
        stored = audit.get_check(get_db(), check_id)
        if stored is None:
            abort(404, message=f"No check {check_id}.")
        return stored


@bp.route("/checks/<check_id>/reviews")
class Reviews(MethodView):
    @bp.arguments(ReviewRequestSchema)
    @bp.response(201, ReviewSchema)
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
