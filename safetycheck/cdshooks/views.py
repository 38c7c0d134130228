"""/cds-services: discovery, hook calls and feedback (CDS Hooks 2.0), and the FHIR intake for /api/v1/checks."""

import datetime as dt
import json
import logging
from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request

from . import store
from .discovery import HOOK_OF, services
from .extract import load_codes
from .fhir import BadBody, parse_body
from .hooks import HookError, Settings, prepare, recognition_cards, respond, unavailable_card
from .security import JwtRefused

bp = Blueprint("cdshooks", __name__, url_prefix="/cds-services")
log = logging.getLogger(__name__)
CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "rules-catalogue.md"


def outcome(status: int, message: str, code: str = "processing"):
    """Errors as a FHIR OperationOutcome (CDS Hooks 3.0 guidance), JSON for 2.0 clients too."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    return current_app.response_class(json.dumps(body), status=status, mimetype="application/json")


def clients() -> dict:
    """Registered clients: CDS_CLIENTS (a dict, or a path to a JSON file) keyed by JWT issuer."""
    configured = current_app.config.get("CDS_CLIENTS") or {}
    if isinstance(configured, str):
        configured = json.loads(Path(configured).read_text(encoding="utf-8"))
    return configured.get("clients", configured)


@bp.record_once
def _load_at_start_up(state) -> None:
    """The code tables are data: validated when the app is built, so a bad row stops start-up."""
    app = state.app
    app.extensions["safetycheck_cds_codes"] = load_codes(app.config["DATA_DIR"], app.extensions["safetycheck"].kb)


def _state() -> dict:
    ext = current_app.extensions
    if "safetycheck_cds" not in ext:
        from .security import Verifier  # PyJWT and cryptography load on the first CDS call, not at start-up

        ext["safetycheck_cds"] = {
            "codes": ext["safetycheck_cds_codes"],
            "verifier": Verifier(clients(), remember_jti=lambda i, j, e: store.remember_jti(_db(), i, j, e)),
        }
    return ext["safetycheck_cds"]


def _db():
    from ..db import get_db

    return get_db()


def base_url() -> str:
    return (current_app.config.get("CDS_BASE_URL") or request.host_url).rstrip("/")


def authenticate(service_url: str) -> dict:
    """The verified client registration (401 otherwise); SAFETYCHECK_DEV=1 admits unsigned local calls."""
    if current_app.extensions.get("safetycheck_keys") is None and not request.headers.get("Authorization"):
        return {"iss": "dev-open", "client": {}}
    return _state()["verifier"].verify(request.headers.get("Authorization"), service_url)


def settings_for(client: dict) -> Settings:
    return Settings(
        base_url=base_url(),
        lab_window_days=int(client.get("lab_window_days", current_app.config.get("CDS_LAB_WINDOW_DAYS", 14))),
        weight_window_days=int(client.get("weight_window_days", 90)),
        smoking_window_days=int(client.get("smoking_window_days", 365)),
        regimen=client.get("regimen"), protocol=client.get("protocol"),
        fhir_servers=tuple(client.get("fhir_servers") or ()),
        check_link=current_app.config.get("CDS_CHECK_LINK", "{base}/review/{check_id}"))


@bp.get("")
def discovery():
    """The services this server offers, with their prefetch templates."""
    checker = current_app.extensions["safetycheck"]
    return jsonify(services(checker.kb, _state()["codes"]))


@bp.get("/rules")
def rules():
    """The rule catalogue that every card's source.url points into (anchor = rule id)."""
    return current_app.response_class(CATALOGUE.read_text(encoding="utf-8"), mimetype="text/markdown")


def run_and_record(body: dict, client_id: str, hook_instance: str) -> dict:
    """The check service runs the check and stores it (channel cds-hooks) before anything is answered.

    Raises on anything that is not a stored answer (CheckRefused, NotRecorded, a bad body): the caller
    answers one "unavailable" card.
    """
    from ..contract import v1

    validated = v1.load_body(body)
    answer = current_app.extensions["safetycheck_service"].check(
        _db(), v1.to_request(validated), validated, channel="cds-hooks", client=client_id,
        idempotency_key=hook_instance)  # a retried hookInstance is answered from the store
    return answer.response


@bp.get("/<service_id>")
def service_get(service_id):
    """A service is called with POST; an unknown id is 404 either way."""
    if service_id not in HOOK_OF:
        return outcome(404, f"No CDS service {service_id}.", "not-found")
    return outcome(405, "Call a CDS service with POST.", "not-supported")


def _accepted_post(service_id: str, path: str):
    """((JWT claims, JSON body), None) for a POST to a known service at `path`, else ((None, None), the refusal):
    404 for an unknown service, 401 for a refused JWT, 400 for a body that is not the JSON we take."""
    if service_id not in HOOK_OF:
        return (None, None), outcome(404, f"No CDS service {service_id}.", "not-found")
    try:
        claims = authenticate(f"{base_url()}{path}")
    except JwtRefused as err:
        return (None, None), outcome(401, f"JWT refused: {err}", "security")
    try:
        payload = parse_body(request.get_data(cache=False))
    except BadBody as err:
        return (None, None), outcome(400, str(err), "structure")
    return (claims, payload), None


@bp.post("/<service_id>")
def call(service_id):
    """One hook call -> cards; stored as a check before the cards go out."""
    (claims, payload), refused = _accepted_post(service_id, f"/cds-services/{service_id}")
    if refused is not None:
        return refused
    settings = settings_for(claims["client"])
    checker = current_app.extensions["safetycheck"]
    today = dt.datetime.now(dt.UTC).date()
    try:
        prepared = prepare(payload, service_id, checker, _state()["codes"], settings, today)
    except HookError as err:
        return outcome(err.status, err.message, "incomplete" if err.status == 412 else "invalid")
    if prepared.body is None:
        return jsonify(recognition_cards(prepared, settings))
    client_id = f"cds:{claims['iss']}"
    try:
        result = run_and_record(prepared.body, client_id, f"{service_id}:{prepared.hook_instance}")
    except Exception as err:  # noqa: BLE001 - no stored check, no advice: one card that says so
        log.exception("cds-hooks check not run or not stored")
        return jsonify(unavailable_card(settings, type(err).__name__))
    g.cds_check_id = result["check_id"]
    answer = respond(result, prepared, settings)
    try:
        store.remember_cards(_db(), result["check_id"], [c["uuid"] for c in answer["cards"]])
    except Exception:  # noqa: BLE001 - the check is stored; feedback on these cards will be reported unknown
        log.exception("card index not written")
    return jsonify(answer)


def _reasons(item: dict) -> list[dict]:
    """overrideReason (spec: one object) or overrideReasons (a major EHR: a list, or one object)."""
    given = item.get("overrideReason") or item.get("overrideReasons") or []
    return [r for r in (given if isinstance(given, list) else [given]) if isinstance(r, dict)]


def _note(item: dict) -> str:
    parts = [f"CDS Hooks feedback on card {item['card']}: {item['outcome']}"]
    if item.get("outcomeTimestamp"):
        parts[0] += f" at {item['outcomeTimestamp']}"
    for reason in _reasons(item):
        coding = reason.get("reason") if isinstance(reason.get("reason"), dict) else (
            reason if reason.get("code") else {})
        if coding:
            parts.append(f"reason {coding.get('code')} ({coding.get('display', '')}) [{coding.get('system', '')}]")
        if reason.get("userComment"):
            parts.append(f"comment: {reason['userComment']}")
    accepted = [s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)]
    if accepted:
        parts.append(f"accepted suggestions: {', '.join(map(str, accepted))}")
    return "; ".join(parts)


@bp.post("/<service_id>/feedback")
def feedback(service_id):
    """Feedback -> reviews of the stored check that sent the card; the same feedback twice is stored once."""
    (claims, payload), refused = _accepted_post(service_id, f"/cds-services/{service_id}/feedback")
    if refused is not None:
        return refused
    items = payload.get("feedback") if isinstance(payload, dict) else None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        return outcome(400, "feedback (a list of {card, outcome, outcomeTimestamp, ...}) is required.", "invalid")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("card"), str) or item.get("outcome") not in (
                "accepted", "overridden"):
            return outcome(400, f"feedback[{i}] needs card (a uuid) and outcome accepted|overridden.", "invalid")
    db = _db()
    stored, repeated, unknown = 0, 0, []
    for item in items:
        check_id = store.check_for_card(db, item["card"])
        if check_id is None:
            unknown.append(item["card"])
            continue
        if store.store_feedback(db, store.feedback_key(item), item["card"], check_id, f"cds-hooks:{claims['iss']}",
                                item["outcome"], _note(item)):
            stored += 1
        else:
            repeated += 1
    return jsonify({"stored": stored, "already_stored": repeated, "unknown_cards": unknown})


FHIR_JSON = "application/fhir+json"
# Synthea patient exports and prefetch bundles run to megabytes; JSON API bodies keep the app's limit.
FHIR_MAX_BYTES = 32 * 1024 * 1024


@bp.before_request
def _allow_fhir_sized_bodies():
    request.max_content_length = int(current_app.config.get("CDS_MAX_CONTENT_LENGTH", FHIR_MAX_BYTES))


@bp.before_app_request
def fhir_intake():
    """POST /api/v1/checks with a FHIR R4 Bundle: read it into the v1 body, then the API's own check path."""
    if request.method != "POST" or request.path != "/api/v1/checks" or request.mimetype != FHIR_JSON:
        return None
    request.max_content_length = int(current_app.config.get("CDS_MAX_CONTENT_LENGTH", FHIR_MAX_BYTES))
    from ..api import answer_check
    from ..auth import require_key
    from .detectedissue import bundle as detected_issues
    from .intake import IntakeError, bundle_to_body

    require_key()
    try:
        payload = parse_body(request.get_data(cache=True))
    except BadBody as err:
        return jsonify(code=400, status="Bad Request", message=str(err)), 400
    checker = current_app.extensions["safetycheck"]
    try:
        body, extraction = bundle_to_body(payload, request.args, checker, _state()["codes"],
                                          int(current_app.config.get("CDS_LAB_WINDOW_DAYS", 14)))
        from ..contract import v1

        body = v1.load_body(body)
    except IntakeError as err:
        return jsonify(code=422, status="Unprocessable Entity", message="Unprocessable FHIR bundle",
                       errors={"fhir": err.errors}), 422
    except Exception as err:  # noqa: BLE001 - marshmallow ValidationError: name the field, store nothing
        messages = getattr(err, "messages", None)
        if messages is None:
            raise
        return jsonify(code=422, status="Unprocessable Entity", message="Unprocessable FHIR bundle",
                       errors={"json": messages}), 422
    response = answer_check(body, "api")
    if FHIR_JSON not in (request.headers.get("Accept") or ""):
        return response
    result = json.loads(response.get_data())
    patients = [r for r in (payload.get("entry") or []) if isinstance(r, dict)]
    patient_ref = next((f"Patient/{e['resource']['id']}" for e in patients if isinstance(e.get("resource"), dict)
                        and e["resource"].get("resourceType") == "Patient" and e["resource"].get("id")), None)
    return current_app.response_class(json.dumps(detected_issues(result, patient_ref, extraction.provenance)),
                                      mimetype=FHIR_JSON)
