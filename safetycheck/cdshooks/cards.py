"""A v1 check result -> CDS Hooks 2.0 cards: one per warning, stable topic and uuid per finding."""

import copy
import re
import uuid

# Our severity -> CDS indicator. critical = do not dispense (verdict block); major and moderate = review
# (verdict review); minor and info never change the verdict.
INDICATOR = {"critical": "critical", "major": "warning", "moderate": "warning", "minor": "info", "info": "info"}
TOPIC_SYSTEM = "urn:safetycheck:rule"
# A fixed namespace: the same finding for the same patient gets the same uuid on every call.
NAMESPACE = uuid.UUID("3f0c2a5e-6d4b-5c1a-9e77-0b1d2c3e4f50")
SUMMARY_MAX = 140
UCUM = "http://unitsofmeasure.org"
# HL7 CDS Hooks override reasons: CodeSystem non-adherence-reason-codes (HL7/cds-hooks
# input/vocabulary/CodeSystem-non-adherence-reason-codes.json); displays exactly as published.
OVERRIDE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
OVERRIDE_REASONS = (
    ("patient-ineligible", "Patient does not meet eligibility for recommended action"),
    ("action-performed-no-adverse-effect", "Intended action was performed previously without adverse effect"),
    ("need-more-info", "Could not address recommended action due to need for more information/pending "
                       "results/pending consult"),
    ("expert-contradicts", "Advice from expert contradicts the recommended action"),
    ("policy-contradicts", "Institutional policy/guideline contradicts the recommended action"),
    ("risk-benefit-ratio", "Recipient assessment of risk/benefit ratio"),
)


def override_reasons() -> list[dict]:
    return [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS]


def summary(text: str) -> str:
    """The first sentence, cut at a word boundary to at most 140 characters."""
    first = re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0]
    if len(first) <= SUMMARY_MAX:
        return first
    cut = first[:SUMMARY_MAX - 1].rsplit(" ", 1)[0]
    return cut + "…"


def topic_code(warning: dict) -> str:
    """Alphanumeric, stable per rule (and per input for a missing-input rule); EHRs suppress by it."""
    parts = [warning.get("rule_id", ""), warning.get("code", "")]
    if warning.get("field"):
        parts.append(warning["field"])
    return re.sub(r"[^A-Za-z0-9]", "", "".join(parts)).upper()


def finding_key(patient: str | None, warning: dict) -> str:
    """What makes a finding the same on order-select and order-sign (never the call or the index)."""
    return "|".join(str(warning.get(k) or "") for k in ("rule_id", "code", "drug", "affects", "field")) + (
        f"|{patient or ''}")


def card_uuid(patient: str | None, warning: dict) -> str:
    return str(uuid.uuid5(NAMESPACE, finding_key(patient, warning)))


def _detail(warning: dict, provenance: list, labs_used: dict) -> str:
    src = warning.get("source") or {}
    lines = [warning.get("message", "")]
    if warning.get("action"):
        lines.append(f"**Action:** {warning['action']}")
    lines.append(f"**Source:** {src.get('title', '')}" + (f", {src['section']}" if src.get("section") else ""))
    lines.append(f"**Rule:** `{warning.get('rule_id')}` ({warning.get('code')}, severity {warning.get('severity')})")
    dur = warning.get("ncpdp")
    if dur:
        lines.append(f"**NCPDP DUR:** reason for service (439-E4) {dur['reason_for_service']}, "
                     f"clinical significance (528-FS) {dur['clinical_significance'] or 'blank'}")
    index = warning.get("medication_index")
    if index is not None and index < len(provenance):
        how = provenance[index]
        read = (f"RxNorm {how['code']}" if how["identified_by"] == "rxnorm"
                else f"text '{how.get('text')}' through the name matcher")
        lines.append(f"**Medication read from:** {how['resource']} ({read})")
    if labs_used:
        used = ", ".join(f"{k} ({v['observation']}, LOINC {v['loinc']}, {v['date']})" for k, v in
                         sorted(labs_used.items()) if not k.startswith("_"))
        lines.append(f"**Labs used (newest within {labs_used.get('_window', '?')} days):** {used}")
    return "\n\n".join(lines)


def _with_dose(order: dict, mg: float) -> dict:
    """The draft order as a conformant R4 MedicationRequest with the recommended dose."""
    resource = {k: copy.deepcopy(order[k]) for k in ("id", "status", "intent", "subject",
                                                    "medicationCodeableConcept", "medicationReference")
                if k in order}
    resource = {"resourceType": "MedicationRequest", **resource}
    old = (order.get("dosageInstruction") or [{}])
    old = old[0] if isinstance(old, list) and old and isinstance(old[0], dict) else {}
    dosage: dict = {"text": f"{mg:g} mg (dose changed by safetycheck recommendation)"}
    if isinstance(old.get("timing"), dict):
        dosage["timing"] = copy.deepcopy(old["timing"])
    if isinstance(old.get("route"), dict):
        dosage["route"] = copy.deepcopy(old["route"])
    dosage["doseAndRate"] = [{"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}]
    resource["dosageInstruction"] = [dosage]
    return resource


def suggestions(warning: dict, card_id: str, doses: list, orders_by_generic: dict) -> list[dict]:
    """One action per suggestion: update (reduce) or delete (hold) the draft order of the affected drug."""
    out = []
    for dose in doses:
        if warning.get("rule_id") not in dose.get("rule_ids", []):
            continue
        order = orders_by_generic.get(dose["drug"])
        if not order or not order.get("id"):
            continue
        ref = f"MedicationRequest/{order['id']}"
        if dose["action"] == "reduce" and dose.get("recommended_mg"):
            mg = float(dose["recommended_mg"])
            action = {"type": "update", "description": f"Change the {dose['drug']} order to {mg:g} mg.",
                      "resource": _with_dose(order, mg)}
            label = f"Reduce {dose['drug']} to {mg:g} mg"
        elif dose["action"] in ("hold", "discontinue"):
            action = {"type": "delete", "description": f"Remove the {dose['drug']} order ({dose['action']}).",
                      "resourceId": ref}
            label = f"{dose['action'].capitalize()} {dose['drug']}: remove today's order"
        else:
            continue
        out.append({"label": label, "uuid": str(uuid.uuid5(uuid.UUID(card_id), f"{dose['action']}|{ref}")),
                    "isRecommended": True, "actions": [action]})
    return out


def warning_card(warning: dict, *, patient: str | None, base_url: str, check_link: dict | None,
                 provenance: list, labs_used: dict, doses: list, orders_by_generic: dict) -> dict:
    """One card for one warning."""
    cid = card_uuid(patient, warning)
    src = warning.get("source") or {}
    card = {
        "uuid": cid,
        "summary": summary(warning.get("message") or warning.get("code", "")),
        "detail": _detail(warning, provenance, labs_used),
        "indicator": INDICATOR.get(warning.get("severity"), "warning"),
        "source": {
            "label": f"safetycheck: {src.get('title') or 'rule ' + str(warning.get('rule_id'))}"[:200],
            "url": f"{base_url}/cds-services/rules#{warning.get('rule_id')}",
            "topic": {"system": TOPIC_SYSTEM, "code": topic_code(warning),
                      "display": f"{warning.get('rule_id')} {warning.get('code')}"},
        },
        "overrideReasons": override_reasons(),
    }
    found = suggestions(warning, cid, doses, orders_by_generic)
    if found:
        card["suggestions"] = found
        card["selectionBehavior"] = "any"
    if check_link:
        card["links"] = [check_link]
    return card


def notice_card(key: str, summary_text: str, detail: str, base_url: str, indicator: str = "warning",
                patient: str | None = None) -> dict:
    """A card that is not a rule finding: regimen not recognised, data not usable, check unavailable."""
    return {
        "uuid": str(uuid.uuid5(NAMESPACE, f"notice|{key}|{patient or ''}")),
        "summary": summary(summary_text),
        "detail": detail,
        "indicator": indicator,
        "source": {"label": "safetycheck", "url": f"{base_url}/cds-services/rules#{key}",
                   "topic": {"system": TOPIC_SYSTEM, "code": re.sub(r"[^A-Za-z0-9]", "", key).upper(),
                             "display": key}},
    }


def about(warning: dict, medications: list) -> tuple[set, set]:
    """The medication indexes and generics a warning concerns (for order-select filtering)."""
    indexes = {warning["medication_index"]} if warning.get("medication_index") is not None else set()
    generics = {g for g in (warning.get("drug"), warning.get("affects")) if g}
    for i in indexes:
        if i < len(medications):
            match = medications[i].get("match") or {}
            generics |= set(match.get("ingredients") or [])
    return indexes, generics


def cards_for(result: dict, *, patient: str | None, base_url: str, check_link: dict | None, provenance: list,
              labs_used: dict, orders_by_generic: dict, selected: tuple[set, set] | None,
              regimen_drugs: set) -> list[dict]:
    """Cards for every warning; in order-select only those about the selected orders."""
    cards = []
    medications = result.get("medications") or []
    for warning in result.get("warnings") or []:
        if selected is not None:
            indexes, generics = about(warning, medications)
            sel_indexes, sel_generics = selected
            regimen_level = not indexes and not generics
            if not (indexes & sel_indexes or generics & sel_generics
                    or (regimen_level and sel_generics & regimen_drugs)):
                continue
        cards.append(warning_card(warning, patient=patient, base_url=base_url, check_link=check_link,
                                  provenance=provenance, labs_used=labs_used,
                                  doses=result.get("dose_recommendations") or [],
                                  orders_by_generic=orders_by_generic))
    return cards

