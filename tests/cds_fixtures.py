"""Hand-written CDS Hooks 2.0 / FHIR R4 request shapes (after the spec's and US Core's published examples).

Deliberately non-conformant where real clients are: STU3 dosage, a Bundle without `type`, bare resources,
null prefetch, contained / bundled / relative / absolute medicationReference, text-only medications.
"""

import copy
import datetime as dt
import uuid

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
TODAY = dt.datetime.now(dt.UTC).date()


def days_ago(n: int) -> str:
    return f"{(TODAY - dt.timedelta(days=n)).isoformat()}T08:00:00Z"


def patient(pid="pat-1", birth="1959-03-02", gender="female"):
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def obs(oid, loinc, value, unit, code=None, when=1, category="laboratory", **extra):
    quantity = {"value": value, "unit": unit, "system": UCUM}
    if code is not False:
        quantity["code"] = code or unit
    res = {"resourceType": "Observation", "id": oid, "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": category}]}],
           "code": {"coding": [{"system": LOINC, "code": loinc}]}, "subject": {"reference": "Patient/pat-1"},
           "effectiveDateTime": days_ago(when), "valueQuantity": quantity}
    res.update(extra)
    return res


def searchset(*resources, with_type=True):
    bundle = {"resourceType": "Bundle", "entry": [{"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/"
                                                             f"{r.get('id')}", "resource": r} for r in resources]}
    if with_type:
        bundle["type"] = "searchset"
    return bundle


def ipd_labs():
    """ANC 2.5 x10^3/uL, platelets 180 x10^3/uL, Hb 11.5 g/dL, creatinine 0.9 mg/dL (unit only, as in the US Core
    example), bilirubin 10 umol/L under the SI LOINC with its reference high; an older creatinine ignored."""
    return searchset(
        obs("anc", "751-8", 2.5, "10*3/uL"),
        obs("plt", "777-3", 180, "10*3/uL"),
        obs("hgb", "718-7", 11.5, "g/dL"),
        obs("cr", "2160-0", 0.9, "mg/dL", code=False),
        obs("cr-old", "2160-0", 3.5, "mg/dL", when=40),
        obs("bili", "14631-6", 10, "umol/L", referenceRange=[{"high": {"value": 21, "unit": "umol/L",
                                                                        "system": UCUM, "code": "umol/L"}}]),
    )


def weight(kg=70):
    return searchset(obs("wt", "29463-7", kg, "kg", category="vital-signs"))


SNOMED = "http://snomed.info/sct"


def smoking_status(code="449868002", system=SNOMED, when=30, oid="smk", display=None):
    """A US Core Smoking Status Observation (LOINC 72166-2) with a coded answer."""
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "social-history"}]}],
            "code": {"coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]},
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": days_ago(when),
            "valueCodeableConcept": {"coding": [coding]}}


def draft_orders(cipro=True):
    """Pomalidomide by text only (STU3 doseQuantity on the dosage), ixazomib via a contained Medication
    (RxNorm), dexamethasone via a bundled urn:uuid Medication; ciprofloxacin by RxNorm. No Bundle.type."""
    dex_med = "urn:uuid:7b6e9a0c-1d2e-4f3a-8b5c-6d7e8f9a0b1c"
    entries = [
        {"resource": {
            "resourceType": "MedicationRequest", "id": "pom-1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "medicationCodeableConcept": {"text": "Pomalyst 4 MG Oral Capsule"},
            "dosageInstruction": [{"text": "4 mg daily days 1-21",
                                   "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "doseQuantity": {"value": 4, "unit": "mg", "system": UCUM, "code": "mg"}}]}},
        {"resource": {
            "resourceType": "MedicationRequest", "id": "ixa-1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "contained": [{"resourceType": "Medication", "id": "med1",
                           "code": {"coding": [{"system": RXNORM, "code": "1723765",
                                                "display": "ixazomib 3 MG Oral Capsule"}]}}],
            "medicationReference": {"reference": "#med1"},
            "dosageInstruction": [{"doseAndRate": {"doseQuantity": {"value": 3, "unit": "mg"}}}]}},
        {"fullUrl": dex_med, "resource": {
            "resourceType": "Medication", "code": {"text": "dexamethasone 4 MG Oral Tablet"}}},
        {"resource": {
            "resourceType": "MedicationRequest", "id": "dex-1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pat-1"}, "medicationReference": {"reference": dex_med},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg"}}]}]}},
    ]
    if cipro:
        entries.append({"resource": {
            "resourceType": "MedicationRequest", "id": "cipro-1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "309309",
                                                      "display": "Ciprofloxacin 500 MG Oral Tablet"}]},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}]}]}})
    return {"resourceType": "Bundle", "entry": entries}


def active_meds():
    """Aspirin as thromboprophylaxis, text only, in a searchset; acyclovir via an absolute reference."""
    acyclovir = {"resourceType": "Medication", "id": "acv",
                 "code": {"text": "acyclovir 400 MG Oral Tablet"}}
    return {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"fullUrl": "http://ehr.example/fhir/MedicationRequest/asa", "resource": {
            "resourceType": "MedicationRequest", "id": "asa", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "medicationCodeableConcept": {"text": "aspirin 81 MG Oral Tablet"}}},
        {"fullUrl": "http://ehr.example/fhir/MedicationRequest/acv-rx", "resource": {
            "resourceType": "MedicationRequest", "id": "acv-rx", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "medicationReference": {"reference": "http://ehr.example/fhir/Medication/acv"}}},
        {"fullUrl": "http://ehr.example/fhir/Medication/acv", "resource": acyclovir},
    ]}


def order_sign(**overrides):
    body = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-sign",
        "context": {"userId": "Practitioner/dr-1", "patientId": "pat-1", "encounterId": "enc-1",
                    "draftOrders": draft_orders()},
        "prefetch": {"patient": patient(), "medicationRequests": active_meds(), "medicationStatements": None,
                     "labs": ipd_labs(), "weight": weight(), "smoking": searchset(smoking_status("266919005"))},
        "extension": {"example-client-flags": {"alert-non-serious": False}},
    }
    body.update(overrides)
    return body


def order_select(selections=("MedicationRequest/cipro-1",), **overrides):
    body = order_sign(**overrides)
    body["hook"] = "order-select"
    body["context"] = copy.deepcopy(body["context"])
    body["context"]["selections"] = list(selections)
    return body
