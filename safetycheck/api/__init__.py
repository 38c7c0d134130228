"""JSON API adapter (/api/v1): schema in, core pipeline, schema out."""

import uuid
from datetime import UTC, datetime

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from ..models import CheckRequest, InputError, MedicationInput
from ..parsing import split_lines
from ..pipeline import run_check
from .schemas import CheckRequestSchema, CheckResponseSchema, MatchRequestSchema, MatchResponseSchema

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Medication safety checks")


def _checker():
    return current_app.extensions["safetycheck"]


def to_request(body: dict) -> CheckRequest:
    """Validated JSON -> the core's CheckRequest (medication_text lines appended as free text)."""
    meds = [MedicationInput(**m) for m in body.get("medications", [])]
    meds += [MedicationInput(text=line) for line in split_lines(body.get("medication_text", ""))]
    return CheckRequest(
        regimen=body["regimen"], mode=body["mode"], protocol=body.get("protocol"), date=body.get("date"),
        cycle=body.get("cycle"), day=body.get("day"), patient=body["patient"], medications=tuple(meds),
        labs=body["labs"], current_doses=body["current_doses"], toxicities=body["toxicities"],
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


@bp.route("/checks")
class Checks(MethodView):
    @bp.arguments(CheckRequestSchema)
    @bp.response(200, CheckResponseSchema)
    def post(self, body):
        """Check a patient's medications and labs against a regimen (and protocol)."""
        try:
            result = run_check(_checker(), to_request(body))
        except InputError as err:
            abort(422, message="Unprocessable request", errors={"json": err.errors})
        return {"check_id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(), **result}


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
