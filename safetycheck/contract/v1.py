"""v1 JSON <-> core: a validated request body -> CheckRequest, a CheckResult -> the v1 response body.

Shared by every adapter (HTTP API, CLI, web form, CDS Hooks); imports neither Flask nor the audit store.
"""

from ..models import CheckRequest, MedicationInput
from ..parsing import split_lines
from ..pipeline import CheckResult, MedicationResult
from .schemas import CheckRequestSchema

_SCHEMA: list = [None, None]  # (regimens, its schema): one instance per knowledge base, not one per body


def load_body(body: dict, kb=None) -> dict:
    """Validate a v1 request body (raises marshmallow.ValidationError naming each bad field)."""
    regimens = kb.regimens if kb is not None else None
    regimens_seen, schema = _SCHEMA
    if schema is None or regimens_seen is not regimens:
        schema = CheckRequestSchema(regimens=regimens)
        _SCHEMA[:] = [regimens, schema]
    return schema.load(body)


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


def result_body(result: CheckResult, kb) -> dict:
    """The v1 response body of a check, without check_id and created_at (the service adds them)."""
    return {
        "ruleset_version": result.ruleset_version,
        "regimen": result.regimen,
        "protocol": result.protocol,
        "mode": result.mode,
        "verdict": result.verdict,
        # Per-class sources are for /match; in a check each warning already names its source,
        # and repeating every membership made the stored and sent response three times larger.
        "medications": [r.as_dict(kb, memberships=False) for r in result.medications],
        "warnings": [w.as_dict() for w in result.warnings],
        "dose_recommendations": [d.as_dict() for d in result.dose_recommendations],
        "derived": result.derived,
        "missing": list(result.missing),
        "protocol_flags": list(result.protocol_flags),
    }


def response_body(result: CheckResult, kb, check_id: str, created_at: str) -> dict:
    """The full v1 response of POST /api/v1/checks (what is stored and sent)."""
    return {"check_id": check_id, "created_at": created_at, **result_body(result, kb)}


def match_body(results: list[MedicationResult], kb) -> dict:
    """The v1 response of POST /api/v1/match (class memberships with their sources included)."""
    return {"ruleset_version": kb.version, "results": [r.as_dict(kb) for r in results]}
