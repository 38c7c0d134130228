"""Issue 7 mechanisms that golden cases cannot show: anchor wording, exact arithmetic, route parsing."""

from decimal import Decimal

import pytest

from safetycheck.labs import compare, convert, times
from safetycheck.parsing import normalize_route, parse_line

BASE = {"regimen": "isa-bela-pom-dex", "protocol": "nct05922501", "mode": "screening", "date": "2026-11-22",
        "patient": {"age_years": 64, "sex": "male", "weight_kg": 78, "contact_lens_use": False},
        "serology": {"hbsag": "negative", "anti_hbc": "negative"},
        "toxicities": {"peripheral_neuropathy_grade": 0},
        "medications": [{"text": "aspirin 81 mg PO daily"}, {"text": "acyclovir 400 mg PO BID"},
                        {"name": "filgrastim", "last_dose_date": "2026-11-15"}]}


def _gcsf(shared_client, **extra):
    body = shared_client.post("/api/v1/checks", json={**BASE, **extra}).json
    return [w for w in body["warnings"] if w["rule_id"] == "isa-gcsf"]


def test_window_without_its_anchor_says_it_counted_from_date(shared_client):
    (warning,) = _gcsf(shared_client)
    assert "screening_date not given: counted from date 2026-11-22" in warning["message"]


def test_window_with_its_anchor_names_it(shared_client):
    (warning,) = _gcsf(shared_client, screening_date="2026-11-20")
    assert "counted from screening_date 2026-11-20" in warning["message"]
    assert warning["eligible_on"] == "2026-11-30"


@pytest.mark.parametrize(("op", "left", "multiple", "uln", "expected"), [
    (">", 1.8, 1.5, 1.2, False), (">", 1.81, 1.5, 1.2, True), ("<", 1.65, 1.5, 1.1, False),
    ("<", 0.3, 3, 0.1, False), (">=", 0.3, 3, 0.1, True),
])
def test_uln_multiples_compare_as_by_hand(op, left, multiple, uln, expected):
    assert compare(op, left, times(multiple, uln)) is expected


def test_conversions_round_to_six_significant_digits():
    assert convert(30.78, 0.0584795322) == 1.8
    assert convert(88.4, 0.0113122172) == 1.0
    assert times(1.5, 1.2) == Decimal("1.80")


@pytest.mark.parametrize(("line", "route"), [
    ("ketoconazole 2% cream BID", "topical"), ("Nizoral 2% shampoo", "topical"),
    ("prednisolone 1% eye drops QID", "ophthalmic"), ("ciprofloxacin otic drops", "otic"),
    ("fluticasone HFA 2 puffs BID", "inhalation"), ("clotrimazole vaginal cream", "vaginal"),
    ("ketoconazole 200 mg daily", None), ("fentanyl 25 mcg patch", "transdermal"),
])
def test_route_read_from_dose_form(line, route):
    assert parse_line(line).route == route


def test_structured_route_normalised():
    assert normalize_route("Topical") == "topical"
    assert normalize_route("PO") == "oral"
    assert normalize_route("eye drops") == "ophthalmic"
    assert normalize_route("intrathecal") == "intrathecal"  # unknown stays, and counts as systemic


IPD_HOLD = {"regimen": "ipd", "mode": "dispensing", "date": "2026-11-22", "day": 8,
            "patient": {"age_years": 64, "sex": "male", "weight_kg": 78, "on_dialysis": False},
            "medications": [{"text": "aspirin 81 mg PO daily"}, {"text": "acyclovir 400 mg PO BID"}],
            "labs": {"anc": {"value": 400, "unit": "/uL"}, "platelets": {"value": 150000, "unit": "/uL"},
                     "creatinine": {"value": 1.0, "unit": "mg/dL"},
                     "bilirubin_total": {"value": 0.6, "unit": "mg/dL", "uln": 1.2}}}


@pytest.mark.parametrize(("current", "resume"), [
    (3, {"mg": 2.0, "action": "resume"}), (2, {"mg": 1.0, "action": "resume"}),
    (1, {"mg": None, "action": "discontinue"}),
])
def test_pomalidomide_hold_gives_a_structured_resume_dose(shared_client, current, resume):
    body = shared_client.post("/api/v1/checks", json={**IPD_HOLD, "current_doses": {"pomalidomide": current}}).json
    (pom,) = [d for d in body["dose_recommendations"] if d["drug"] == "pomalidomide"]
    assert pom["action"] == "hold" and pom["resume"] == resume


def test_pomalidomide_resume_without_current_dose_states_the_rule(shared_client):
    body = shared_client.post("/api/v1/checks", json=IPD_HOLD).json
    (pom,) = [d for d in body["dose_recommendations"] if d["drug"] == "pomalidomide"]
    assert pom["resume"]["mg"] is None and "discontinue below 1 mg" in pom["resume"]["rule"]


def test_ninlaro_hold_with_pomalidomide_says_one_level_lower(shared_client):
    body = shared_client.post("/api/v1/checks", json=IPD_HOLD).json
    (hold,) = [w for w in body["warnings"] if w["rule_id"] == "ixa-anc-hold"]
    assert "4 -> 3 -> 2.3 mg" in hold["action"] and "IRd" in hold["action"]
