"""POST /api/v1/checks input handling, and the knowledge-base endpoints."""

import pytest

from .conftest import BOTH_ENGINES, keyed_client

ENGINES = BOTH_ENGINES  # tests using the `app` fixture run on SQLite and on PostgreSQL

BASE = {
    "regimen": "ipd", "mode": "dispensing", "date": "2026-11-22", "cycle": 2, "day": 8,
    "patient": {"id": "p1", "age_years": 67, "sex": "female", "weight_kg": 70, "on_dialysis": False,
                "smoker": False},
    "medications": [{"text": "aspirin 81 mg daily"}, {"text": "acyclovir 400 mg BID"}],
    "labs": {"anc": {"value": 2.5, "unit": "10*9/L"}, "platelets": {"value": 180, "unit": "10*9/L"},
             "creatinine": {"value": 0.9, "unit": "mg/dL"},
             "bilirubin_total": {"value": 0.6, "unit": "mg/dL", "uln": 1.2}},
}


def post(client, **changes):
    body = {**BASE, **changes}
    return client.post("/api/v1/checks", json=body)


def test_clean_case_passes_with_no_noise(client):
    response = post(client)
    assert response.status_code == 200
    assert response.json["verdict"] == "pass"
    assert response.json["warnings"] == []
    assert response.json["derived"]["crcl_ml_min"]["method"] == "cockcroft-gault"


@pytest.mark.parametrize(
    ("labs", "field", "text"),
    [
        ({"anc": {"value": 2.5, "unit": "furlongs"}}, "unit", "not understood"),
        ({"anc": {"value": 5000, "unit": "10*9/L"}}, "value", "outside the plausible range"),
        ({"creatinine": {"value": -1, "unit": "mg/dL"}}, "value", "outside the plausible range"),
        ({"urine_albumin_creatinine_ratio": {"value": 30, "unit": "mg/mmol"}}, "unit", "not understood"),
    ],
)
def test_bad_lab_is_a_422_naming_the_field(client, labs, field, text):
    response = post(client, labs=labs)
    assert response.status_code == 422
    key = next(iter(labs))
    assert text in response.json["errors"]["json"]["labs"][key][field][0]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"regimen": "xyz"}, "regimen"),
        ({"protocol": "nct05922501"}, "protocol"),  # protocol of another regimen
        ({"mode": "guessing"}, "mode"),
        ({"colour": "red"}, "colour"),
        ({"medications": [{"text": "a", "name": "b"}]}, "medications"),
        ({"labs": {"sodium": {"value": 140, "unit": "mmol/L"}}}, "labs"),
        ({"patient": {"sex": "x"}}, "patient"),
    ],
)
def test_invalid_request_is_a_422_naming_the_field(client, changes, path):
    response = post(client, **changes)
    assert response.status_code == 422
    assert path in response.json["errors"]["json"]


def test_units_convert_to_the_same_verdict(client):
    si = post(client, labs={"anc": {"value": 2500, "unit": "/uL"}, "platelets": {"value": 180000, "unit": "/mm3"},
                            "creatinine": {"value": 79.6, "unit": "umol/L"},
                            "bilirubin_total": {"value": 10.3, "unit": "µmol/L", "uln": 20.5}})
    assert si.json["verdict"] == "pass"
    assert si.json["derived"]["crcl_ml_min"]["value"] == pytest.approx(
        post(client).json["derived"]["crcl_ml_min"]["value"], abs=0.2)


def test_missing_lab_is_reported_and_blocks_a_pass(client):
    labs = dict(BASE["labs"])
    del labs["platelets"]
    body = post(client, labs=labs).json
    assert body["verdict"] == "review"
    assert "labs.platelets" in body["missing"]
    assert {"MISSING_LAB"} == {w["code"] for w in body["warnings"]}


def test_medication_text_lines_are_checked_too(client):
    body = post(client, medications=[], medication_text="1. aspirin 81 mg\n\n- Cipro 500 mg BID\n").json
    assert [m["input"] for m in body["medications"]] == ["aspirin 81 mg", "Cipro 500 mg BID"]
    assert "pom-cyp1a2-strong" in {w["rule_id"] for w in body["warnings"]}


def test_ambiguous_medication_is_a_warning_and_never_a_pass(app):
    app.extensions["safetycheck"].matcher.cutoff = 70
    app.extensions["safetycheck"].matcher.margin = 30
    body = keyed_client(app).post("/api/v1/checks", json={**BASE, "medications": [
        {"text": "aspirin 81 mg daily"}, {"text": "hydroxazine 25 mg"}]}).json
    assert body["verdict"] == "review"
    warning = next(w for w in body["warnings"] if w["code"] == "AMBIGUOUS_MEDICATION")
    assert warning["rule_id"] == "ambiguous-medication" and warning["medication_index"] == 1


def test_knowledge_endpoints_carry_sources(client):
    regimens = client.get("/api/v1/regimens").json
    assert {r["id"] for r in regimens["regimens"]} == {"ipd", "mezi-ixa-dex", "isa-bela-pom-dex"}
    assert all(r["source"] for r in regimens["regimens"])
    protocols = client.get("/api/v1/protocols").json["protocols"]
    assert {p["id"] for p in protocols} == {"ipd-2l-3l", "pix-emd-pcl", "mezi-ixa-dex", "nct05922501"}
    pix = next(p for p in protocols if p["id"] == "pix-emd-pcl")
    assert {e["window_days"] for e in pix["exclusions"]} == {7}
    classes = client.get("/api/v1/drug-classes").json["classes"]
    strong = next(c for c in classes if c["class"] == "CYP1A2_STRONG_INHIBITOR")
    assert {"label", "protocol"} <= {m["authority"] for m in strong["members"] if m["drug"] == "ciprofloxacin"}
    assert all(m["source"] for c in classes for m in c["members"])


def test_crcl_is_compared_unrounded(client):
    # (140 - 70) x 60 / (72 x 1.945) = 29.991 mL/min: rounded to 0.1 it would read 30.0 and pass ">= 30".
    patient = {"id": "p", "age_years": 70, "sex": "male", "weight_kg": 60, "on_dialysis": False}
    labs = {**BASE["labs"], "creatinine": {"value": 1.9450, "unit": "mg/dL"}}
    body = post(client, patient=patient, labs=labs).json
    crcl = body["derived"]["crcl_ml_min"]["value"]
    assert 29.9 < crcl < 30
    assert "ixa-renal" in {w["rule_id"] for w in body["warnings"]}
