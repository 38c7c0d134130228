"""A v1 check result -> a FHIR R4 Bundle of DetectedIssue resources (Accept: application/fhir+json)."""

from .cards import card_uuid

# Our severity -> DetectedIssue.severity (http://hl7.org/fhir/detectedissue-severity).
SEVERITY = {"critical": "high", "major": "high", "moderate": "moderate", "minor": "low", "info": "low"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
WARNING_CODE_SYSTEM = "urn:safetycheck:warning-code"
NCPDP_REASON_SYSTEM = "urn:safetycheck:ncpdp-439-E4"


def detected_issue(warning: dict, result: dict, patient_ref: str | None, implicated: list[str]) -> dict:
    """One warning as a DetectedIssue; DRG (drug interaction alert) is added for interactions."""
    coding = [{"system": WARNING_CODE_SYSTEM, "code": warning["code"]}]
    if warning.get("kind") == "interaction":
        coding.append({"system": ACT_CODE, "code": "DRG", "display": "Drug Interaction Alert"})
    dur = warning.get("ncpdp")
    if dur:
        coding.append({"system": NCPDP_REASON_SYSTEM, "code": dur["reason_for_service"]})
    issue = {
        "resourceType": "DetectedIssue",
        "id": card_uuid((result.get("patient") or {}).get("id"), warning),
        "status": "final",
        "code": {"coding": coding, "text": warning["code"]},
        "severity": SEVERITY.get(warning.get("severity"), "moderate"),
        "identifiedDateTime": result["created_at"],
        "detail": warning.get("message", ""),
        "reference": f"urn:safetycheck:check:{result['check_id']}",
    }
    if patient_ref:
        issue["patient"] = {"reference": patient_ref}
    if implicated:
        issue["implicated"] = [{"reference": ref} for ref in implicated]
    if warning.get("action"):
        issue["mitigation"] = [{"action": {"text": warning["action"]}}]
    return issue


def bundle(result: dict, patient_ref: str | None = None, provenance: list | None = None) -> dict:
    """A collection Bundle identified by the check id, one DetectedIssue per warning."""
    provenance = provenance or []
    entries = []
    for warning in result.get("warnings") or []:
        index = warning.get("medication_index")
        implicated = []
        if index is not None and index < len(provenance) and "/" in str(provenance[index].get("resource")):
            implicated.append(provenance[index]["resource"])
        issue = detected_issue(warning, result, patient_ref, implicated)
        entries.append({"fullUrl": f"urn:uuid:{issue['id']}", "resource": issue})
    return {"resourceType": "Bundle", "type": "collection",
            "identifier": {"system": "urn:safetycheck:check", "value": result["check_id"]},
            "timestamp": result["created_at"], "entry": entries}
