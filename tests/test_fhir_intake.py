"""POST /api/v1/checks with a FHIR R4 Bundle (application/fhir+json), and DetectedIssue output."""

import json
import sqlite3

from fhir.resources.R4B.bundle import Bundle

from . import cds_fixtures as f
from .conftest import API_KEY

FHIR = "application/fhir+json"


def synthea_bundle():
    """Shaped like a Synthea patient export: a transaction Bundle, urn:uuid fullUrls and references, request
    entries, other resource types (Encounter, Condition, Immunization) the check does not read."""
    pid = "b2a8f3de-93c4-4d1c-9a7e-2f6c6b1d0e11"

    def entry(resource, kind):
        return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource,
                "request": {"method": "POST", "url": kind}}

    def med(mid, text, code=None):
        concept = {"text": text}
        if code:
            concept["coding"] = [{"system": f.RXNORM, "code": code, "display": text}]
        return entry({"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
                      "medicationCodeableConcept": concept, "subject": {"reference": f"urn:uuid:{pid}"},
                      "authoredOn": f.days_ago(3)}, "MedicationRequest")

    labs = [entry({**o, "subject": {"reference": f"urn:uuid:{pid}"}, "issued": o["effectiveDateTime"]},
                  "Observation") for o in (e["resource"] for e in f.ipd_labs()["entry"] + f.weight()["entry"])]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        entry({"resourceType": "Patient", "id": pid, "birthDate": "1958-09-10", "gender": "male",
               "name": [{"use": "official", "family": "Example", "given": ["Test"]}],
               "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                              "valueCode": "M"}]}, "Patient"),
        entry({"resourceType": "Encounter", "id": "enc-9", "status": "finished",
               "class": {"code": "AMB"}, "subject": {"reference": f"urn:uuid:{pid}"}}, "Encounter"),
        entry({"resourceType": "Condition", "id": "cond-1", "subject": {"reference": f"urn:uuid:{pid}"},
               "code": {"text": "Multiple myeloma"}}, "Condition"),
        med("m1", "ixazomib 4 MG Oral Capsule", "1723770"),
        med("m2", "pomalidomide 4 MG Oral Capsule"),
        med("m3", "dexamethasone 4 MG Oral Tablet"),
        med("m4", "Ciprofloxacin 500 MG Oral Tablet", "309309"),
        med("m5", "aspirin 81 MG Oral Tablet"),
        entry({"resourceType": "Immunization", "id": "imm-1", "status": "completed",
               "vaccineCode": {"text": "Influenza, seasonal"}, "patient": {"reference": f"urn:uuid:{pid}"},
               "occurrenceDateTime": f.days_ago(100)}, "Immunization"),
        *labs,
    ]}


def post_fhir(client, body, query="", accept="application/json"):
    return client.post(f"/api/v1/checks{query}", data=json.dumps(body), content_type=FHIR,
                       headers={"Accept": accept})


def test_a_synthea_shaped_bundle_is_checked_and_stored_like_a_json_check(client, app):
    response = post_fhir(client, synthea_bundle(), "?regimen=ipd")
    assert response.status_code == 200, response.json
    body = response.json
    rules = {w["rule_id"] for w in body["warnings"]}
    assert {"pom-cyp1a2-strong", "dex-cyp3a-moderate-inhibitor"} <= rules
    assert all(w["ncpdp"]["reason_for_service"] for w in body["warnings"])
    db = sqlite3.connect(app.config["DATABASE"])
    channel, request_json = db.execute("SELECT channel, request_json FROM checks WHERE check_id = ?",
                                       [body["check_id"]]).fetchone()
    assert channel == "api"
    stored = json.loads(request_json)
    assert stored["patient"]["sex"] == "male" and stored["labs"]["anc"]["unit"] == "10*3/uL"


def test_a_bundles_smoking_status_is_read(client, app):
    bundle = synthea_bundle()
    bundle["entry"].append({"fullUrl": "urn:uuid:smk", "resource": f.smoking_status("449868002"),
                            "request": {"method": "POST", "url": "Observation"}})
    response = post_fhir(client, bundle, "?regimen=ipd")
    assert response.status_code == 200, response.data
    assert "pom-cyp1a2-inducer" in {w["rule_id"] for w in response.json["warnings"]}
    assert "patient.smoker" not in response.json["missing"]
    assert "patient.smoker" in post_fhir(client, synthea_bundle(), "?regimen=ipd").json["missing"]


def test_the_regimen_is_recognised_when_not_given(client):
    assert post_fhir(client, synthea_bundle()).json["regimen"] == "ipd"


def test_no_regimen_and_none_recognisable_is_422_naming_it_and_nothing_stored(client, app):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": f.patient()}]}
    response = post_fhir(client, bundle)
    assert response.status_code == 422 and "regimen" in response.json["errors"]["fhir"]
    assert sqlite3.connect(app.config["DATABASE"]).execute("SELECT count(*) FROM checks").fetchone()[0] == 0


def test_malformed_fhir_json_is_400(client):
    response = client.post("/api/v1/checks", data=b"{", content_type=FHIR)
    assert response.status_code == 400


def test_the_fhir_intake_needs_the_api_key(app):
    response = app.test_client().post("/api/v1/checks?regimen=ipd", data=json.dumps(synthea_bundle()),
                                      content_type=FHIR)
    assert response.status_code == 401
    assert API_KEY


def test_detected_issues_are_returned_on_request_and_validate_as_r4(client):
    response = post_fhir(client, synthea_bundle(), "?regimen=ipd", accept=FHIR)
    assert response.status_code == 200 and response.mimetype == FHIR
    bundle = response.json
    Bundle.model_validate(bundle)  # fhir.resources R4B: structure, cardinality, primitives of every entry
    issues = [e["resource"] for e in bundle["entry"]]
    pom = next(i for i in issues if i["code"]["text"] == "CYP1A2_STRONG_INHIBITOR")
    assert pom["severity"] == "high" and pom["implicated"] == [{"reference": "MedicationRequest/m4"}]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "DRG",
            "display": "Drug Interaction Alert"} in pom["code"]["coding"]
    assert bundle["identifier"]["value"]


def test_a_multi_megabyte_export_is_accepted(client):
    bundle = synthea_bundle()
    filler = {"resourceType": "Observation", "status": "final", "code": {"text": "Pain severity"},
              "valueQuantity": {"value": 2, "unit": "{score}"}, "note": [{"text": "x" * 1000}]}
    bundle["entry"] += [{"fullUrl": f"urn:uuid:filler-{i}", "resource": {**filler, "id": f"filler-{i}"}}
                        for i in range(2500)]
    raw = json.dumps(bundle)
    assert len(raw) > 2 * 1024 * 1024
    response = client.post("/api/v1/checks?regimen=ipd", data=raw, content_type=FHIR)
    assert response.status_code == 200, response.status_code
