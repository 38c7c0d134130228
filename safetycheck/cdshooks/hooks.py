"""One CDS Hooks call: read the request, fill prefetch, build the v1 check body; then result -> cards."""

import datetime as dt
from dataclasses import dataclass, field

from ..parsing import ParsedMedication
from . import cards as card_builder
from .discovery import HOOK_OF, prefetch
from .extract import Extraction, pseudonym, read_labs, read_medications, read_patient, read_smoking, read_weight
from .fetch import FetchFailed, fetch
from .fhir import Resources, collect
from .regimen import Recognition, recognise

MED_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationOrder")
# Without the active medication list an interaction check would silently miss drugs: 412.
REQUIRED_PREFETCH = ("medicationRequests",)


class HookError(Exception):
    """The call cannot be answered with cards: 400 (bad request) or 412 (required data not available)."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Settings:
    """Per-client settings (from the client registration), with the service defaults."""

    base_url: str
    lab_window_days: int = 14
    weight_window_days: int = 90
    smoking_window_days: int = 365  # a status older than this is not taken as today's (a default, per client)
    regimen: str | None = None
    protocol: str | None = None
    fhir_servers: tuple = ()
    # A page a person can open (the auditor's view of the stored check, behind its login); the JSON API needs a key.
    check_link: str = "{base}/review/{check_id}"


@dataclass
class Prepared:
    """Everything read from the call, and the v1 check body when a regimen was recognised."""

    hook: str
    hook_instance: str
    patient: str | None
    extraction: Extraction
    recognition: Recognition
    body: dict | None = None
    selected: tuple | None = None
    orders_by_generic: dict = field(default_factory=dict)
    regimen_drugs: set = field(default_factory=set)


def _server_allowed(server: str | None, settings: Settings) -> bool:
    # Fetching from any URL a caller names would be request forgery: only registered servers.
    return bool(server) and any(server.rstrip("/").startswith(s.rstrip("/")) for s in settings.fhir_servers)


def _prefetch_values(payload: dict, templates: dict, settings: Settings, fetcher) -> tuple[dict, dict]:
    given = payload.get("prefetch") if isinstance(payload.get("prefetch"), dict) else {}
    context = payload["context"]
    server = payload.get("fhirServer")
    token = (payload.get("fhirAuthorization") or {}).get("access_token")
    values, failed = {}, {}
    for key, template in templates.items():
        value = given.get(key)
        outcome = isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
        if key in given and not outcome:
            values[key] = value  # null: the client says there is no such data (CDS Hooks 3.0)
            continue
        if not _server_allowed(server, settings) or not context.get("patientId"):
            failed[key] = ("the client reported an error fetching it" if outcome else "not prefetched") + (
                "; no registered FHIR server to fetch from" if not _server_allowed(server, settings) else "")
            continue
        try:
            values[key] = fetcher(server, template, context, token)
        except FetchFailed as err:
            failed[key] = f"fetch from the FHIR server failed ({err})"
    return values, failed


def _generics(checker, medications: list) -> list[tuple[str, ...]]:
    out = []
    for med in medications:
        parsed = ParsedMedication(text=med["name"], name=med["name"])
        out.append(tuple(checker.matcher.match(parsed).ingredients))
    return out


def prepare(payload, service_id: str, checker, codes, settings: Settings, today: dt.date,
            fetcher=fetch) -> Prepared:
    """Validate and read the call; HookError(400/412) when it cannot be answered with cards."""
    if not isinstance(payload, dict):
        raise HookError(400, "The body must be a JSON object.")
    hook = HOOK_OF[service_id]
    if payload.get("hook") != hook:
        raise HookError(400, f"hook must be '{hook}' for service {service_id}.")
    if not isinstance(payload.get("hookInstance"), str) or not payload["hookInstance"]:
        raise HookError(400, "hookInstance (a UUID string) is required.")
    if not isinstance(payload.get("context"), dict):
        raise HookError(400, "context (an object) is required.")
    if payload.get("fhirAuthorization") and not payload.get("fhirServer"):
        raise HookError(400, "fhirServer is required when fhirAuthorization is sent (cds-r-1).")
    kb = checker.kb
    context = payload["context"]
    patient_id = context.get("patientId") if isinstance(context.get("patientId"), str) else None
    values, failed = _prefetch_values(payload, prefetch(kb, codes), settings, fetcher)
    missing = [k for k in REQUIRED_PREFETCH if k in failed]
    if missing:
        raise HookError(412, "Required data could not be had: " + "; ".join(f"{k}: {failed[k]}" for k in missing)
                        + ". The check was not done.")
    drafts = collect(context.get("draftOrders"), context.get("medications"))
    found = collect(context.get("draftOrders"), context.get("medications"), *values.values())
    ext = Extraction()
    read_patient(collect(values.get("patient")), patient_id, today, ext)
    active = collect(values.get("medicationRequests"), values.get("medicationStatements"))
    read_medications([("draftOrders", drafts.of_type(*MED_TYPES)), ("active", active.of_type(*MED_TYPES))],
                     found, codes, ext)
    observations = collect(values.get("labs"), values.get("weight"), values.get("smoking"))
    read_labs(observations, codes, kb, today, settings.lab_window_days, ext)
    read_weight(observations, today, settings.weight_window_days, ext)
    read_smoking(observations, codes, today, settings.smoking_window_days, ext)
    ext.not_assessed += [f"{key}: {why}." for key, why in sorted(failed.items())]
    generics = _generics(checker, ext.medications)
    recognition = recognise(kb, {g for gs in generics for g in gs}, settings.regimen)
    patient = pseudonym(payload.get("fhirServer"), patient_id)
    prepared = Prepared(hook, payload["hookInstance"], patient, ext, recognition)
    if recognition.regimen is None:
        return prepared
    regimen = kb.regimens[recognition.regimen]
    prepared.regimen_drugs = set(regimen["drugs"])
    body = {"regimen": recognition.regimen, "mode": "dispensing", "date": today.isoformat(),
            "patient": {"id": patient, **ext.patient} if patient else dict(ext.patient),
            "medications": ext.medications, "labs": ext.labs, "current_doses": {}}
    if settings.protocol:
        body["protocol"] = settings.protocol
    draft_refs = _draft_refs(drafts)
    for med, how, gs in zip(ext.medications, ext.provenance, generics, strict=True):
        for drug in set(gs) & prepared.regimen_drugs:
            if med.get("unit") == "mg" and med.get("dose") is not None:
                body["current_doses"].setdefault(drug, med["dose"])
            resource = draft_refs.get(how["resource"])
            if resource is not None and resource.get("resourceType") == "MedicationRequest":
                prepared.orders_by_generic.setdefault(drug, resource)
    if hook == "order-select":
        chosen = {s for s in context.get("selections") or [] if isinstance(s, str)}
        indexes = {i for i, how in enumerate(ext.provenance) if how["resource"] in chosen}
        prepared.selected = (indexes, {g for i in indexes for g in generics[i]})
    prepared.body = body
    return prepared


def _draft_refs(drafts: Resources) -> dict:
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in drafts.items if r.get("id")}


def respond(result: dict, prepared: Prepared, settings: Settings) -> dict:
    """The cards for a stored check result."""
    link = None
    if result.get("check_id"):
        link = {"label": f"Stored safety check {result['check_id']}", "type": "absolute",
                "url": settings.check_link.format(base=settings.base_url, check_id=result["check_id"])}
    found = card_builder.cards_for(
        result, patient=prepared.patient, base_url=settings.base_url, check_link=link,
        provenance=prepared.extraction.provenance,
        labs_used={**prepared.extraction.lab_sources, "_window": prepared.extraction.lab_window_days}
        if prepared.extraction.lab_sources else {},
        orders_by_generic=prepared.orders_by_generic, selected=prepared.selected,
        regimen_drugs=prepared.regimen_drugs)
    notes = prepared.extraction.not_assessed
    if notes and (prepared.selected is None or found):
        detail = "\n".join(f"- {n}" for n in notes)
        found.append(card_builder.notice_card(
            "fhir-data-not-used", "Some FHIR data could not be used; the affected rules were not assessed.",
            detail, settings.base_url, "info", prepared.patient))
    return {"cards": found}


def recognition_cards(prepared: Prepared, settings: Settings) -> dict:
    """No regimen: no card when no myeloma drug is in sight, else a warning that nothing was checked."""
    if not prepared.recognition.seen:
        return {"cards": []}
    reason = prepared.recognition.reason
    return {"cards": [card_builder.notice_card(
        "regimen-not-recognised", "Myeloma regimen not recognised: safety check not done, review manually.",
        f"Regimen drugs seen: {', '.join(prepared.recognition.seen)}; {reason}. Ask the service operator to "
        "pin the regimen for this client, or check the orders by hand.", settings.base_url, "warning",
        prepared.patient)]}


def unavailable_card(settings: Settings, why: str) -> dict:
    """The check could not be stored (or run): one warning card rather than nothing."""
    return {"cards": [card_builder.notice_card(
        "safety-check-unavailable", "Safety check unavailable, review manually.",
        f"The medication safety check could not be completed and stored ({why}); no finding is implied.",
        settings.base_url, "warning")]}
