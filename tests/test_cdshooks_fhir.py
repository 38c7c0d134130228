"""Lenient FHIR reading, extraction, regimen recognition and NCPDP codes (pure, no HTTP)."""

import datetime as dt

import pytest

from safetycheck import ncpdp
from safetycheck.cdshooks import extract, fhir
from safetycheck.cdshooks.extract import Extraction, load_codes
from safetycheck.cdshooks.regimen import recognise, signature_drugs
from safetycheck.errors import DataFileError

from . import cds_fixtures as f
from .conftest import DATA_DIR


@pytest.fixture(scope="module")
def codes(kb):
    return load_codes(DATA_DIR, kb)


def test_body_with_a_byte_order_mark_is_read():
    assert fhir.parse_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": "\xff\xfe"}', b""])
def test_malformed_or_non_utf8_body_is_refused(raw):
    with pytest.raises(fhir.BadBody):
        fhir.parse_body(raw)


def test_bundle_without_type_entries_without_wrapper_outcomes_and_null():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
    bare = {"resourceType": "Patient", "id": "p"}
    found = fhir.collect({"resourceType": "Bundle", "entry": [{"resourceType": "Observation", "id": "o"},
                                                             {"resource": outcome}]}, bare, None)
    assert sorted(r["resourceType"] for r in found.items) == ["Observation", "Patient"]
    assert found.outcomes == [outcome]


def test_medication_references_contained_bundled_relative_absolute(codes):
    drafts = f.draft_orders()
    found = fhir.collect(drafts, f.active_meds(), {"resourceType": "Medication", "id": "rel",
                                                   "code": {"text": "omeprazole 20 MG"}})
    owner = drafts["entry"][1]["resource"]
    assert fhir.resolve("#med1", owner, found)["id"] == "med1"
    assert fhir.resolve("urn:uuid:7b6e9a0c-1d2e-4f3a-8b5c-6d7e8f9a0b1c", {}, found)["code"]["text"].startswith("dexa")
    assert fhir.resolve("Medication/rel", {}, found)["id"] == "rel"
    assert fhir.resolve("https://other.example/fhir/Medication/rel/_history/2", {}, found)["id"] == "rel"
    assert fhir.resolve("Medication/absent", {}, found) is None


def test_rxnorm_when_mapped_text_through_the_matcher_otherwise(codes):
    drafts = f.draft_orders()
    found = fhir.collect(drafts)
    out = Extraction()
    extract.read_medications([("draftOrders", found.of_type("MedicationRequest"))], found, codes, out)
    by_res = {p["resource"]: (m, p) for m, p in zip(out.medications, out.provenance, strict=True)}
    pom, how = by_res["MedicationRequest/pom-1"]
    assert how["identified_by"] == "text" and pom["name"].lower() == "pomalyst"
    assert (pom["dose"], pom["unit"], pom["frequency"]) == (4, "mg", "daily")  # STU3 doseQuantity on the dosage
    ixa, how = by_res["MedicationRequest/ixa-1"]
    assert how == {"resource": "MedicationRequest/ixa-1", "origin": "draftOrders", "identified_by": "rxnorm",
                   "code": "1723765"}
    assert (ixa["name"], ixa["dose"]) == ("ixazomib", 3)  # doseAndRate sent as an object
    cipro, how = by_res["MedicationRequest/cipro-1"]
    assert (cipro["name"], cipro["rxcui"], cipro["frequency"]) == ("ciprofloxacin", "309309", "BID")
    assert by_res["MedicationRequest/dex-1"][1]["text"] == "dexamethasone 4 MG Oral Tablet"


def test_unmapped_rxnorm_without_text_is_kept_unidentified(codes):
    res = {"resourceType": "MedicationRequest", "id": "x", "status": "active",
           "medicationCodeableConcept": {"coding": [{"system": fhir.RXNORM, "code": "99999999"}]}}
    med, how = extract.read_medication(res, fhir.collect(res), codes, "active")
    assert how["identified_by"] == "none" and how["unmapped_rxnorm"] == "99999999"
    assert med["name"] == "unidentified medication (MedicationRequest/x)"


def test_inactive_statuses_are_skipped(codes):
    stopped = {"resourceType": "MedicationRequest", "id": "s", "status": "stopped",
               "medicationCodeableConcept": {"text": "fluvoxamine 50 mg"}}
    out = Extraction()
    extract.read_medications([("active", [stopped])], fhir.collect(stopped), codes, out)
    assert out.medications == []


def test_labs_newest_within_window_ucum_converted_reference_high(kb, codes):
    out = Extraction()
    extract.read_labs(fhir.collect(f.ipd_labs()), codes, kb, f.TODAY, 14, out)
    assert out.labs["creatinine"]["value"] == 0.9  # the 40-day-old 3.5 is outside the window
    assert out.labs["creatinine"]["unit"] == "mg/dL"  # valueQuantity.unit when code is absent
    assert out.labs["bilirubin_total"] == {"value": 10, "unit": "umol/L", "uln": 21,
                                           "date": (f.TODAY - dt.timedelta(days=1)).isoformat()}
    assert out.lab_sources["bilirubin_total"]["loinc"] == "14631-6"
    assert out.labs["anc"]["unit"] == "10*3/uL"


def test_newer_of_two_in_window_wins(kb, codes):
    out = Extraction()
    bundle = f.searchset(f.obs("a", "777-3", 40, "10*3/uL", when=5), f.obs("b", "777-3", 120, "10*3/uL", when=2))
    extract.read_labs(fhir.collect(bundle), codes, kb, f.TODAY, 14, out)
    assert out.labs["platelets"]["value"] == 120


@pytest.mark.parametrize("quantity, why", [
    ({"value": 1.1, "unit": "furlong"}, "cannot be used"),
    ({"value": 0.5, "unit": "10*3/uL", "comparator": "<"}, "not a value"),
    ({"unit": "10*3/uL"}, "no numeric value"),
])
def test_unconvertible_lab_is_not_assessed_never_guessed(kb, codes, quantity, why):
    out = Extraction()
    observation = f.obs("x", "751-8", 1, "10*3/uL")
    observation["valueQuantity"] = quantity
    extract.read_labs(fhir.collect(observation), codes, kb, f.TODAY, 14, out)
    assert "anc" not in out.labs
    assert any(why in note for note in out.not_assessed)


def test_weight_in_pounds_and_age_and_sex(codes):
    out = Extraction()
    extract.read_weight(fhir.collect(f.obs("w", "29463-7", 154, "[lb_av]", category="vital-signs")), f.TODAY,
                        90, out)
    assert out.patient["weight_kg"] == round(154 * 0.45359237, 2)
    extract.read_patient(fhir.collect(f.patient(birth="1950-06-15")), "pat-1", dt.date(2026, 6, 14), out)
    assert out.patient["age_years"] == 75 and out.patient["sex"] == "female"


@pytest.mark.parametrize("code, system, smoker", [
    ("449868002", f.SNOMED, True),  # current every day smoker
    ("428041000124106", f.SNOMED, True),  # current some day smoker
    ("77176002", f.SNOMED, True),  # smoker, current status unknown: still a smoker
    ("8517006", f.SNOMED, False),  # former smoker
    ("266919005", f.SNOMED, False),  # never smoker
    ("LA18976-3", f.LOINC, True),  # IPS LOINC answer: current every day smoker
    ("LA18978-9", f.LOINC, False),  # IPS: never smoker
])
def test_smoking_status_is_read_from_its_coded_answer(codes, code, system, smoker):
    out = Extraction()
    extract.read_smoking(fhir.collect(f.smoking_status(code, system)), codes, f.TODAY, 365, out)
    assert out.patient["smoker"] is smoker and not out.not_assessed


@pytest.mark.parametrize("observations, why", [
    ([f.smoking_status("266927001")], "does not say"),  # unknown if ever smoked
    ([f.smoking_status("999999999")], "does not say"),  # a code we do not know
    ([f.smoking_status("449868002", system="http://example.org/local")], "does not say"),
    ([f.smoking_status("449868002", when=400)], "more than 365 days"),
    ([{**f.smoking_status(), "valueCodeableConcept": {"text": "smokes sometimes"}}], "smokes sometimes"),
    ([{**f.smoking_status(), "valueCodeableConcept": {"coding": [
        {"system": f.SNOMED, "code": "449868002"}, {"system": f.SNOMED, "code": "266919005"}]}}], "does not say"),
])
def test_a_smoking_status_that_does_not_say_is_not_guessed(codes, observations, why):
    out = Extraction()
    extract.read_smoking(fhir.collect(f.searchset(*observations)), codes, f.TODAY, 365, out)
    assert "smoker" not in out.patient
    assert any(why in note for note in out.not_assessed)


def test_the_newest_smoking_status_counts_and_a_voided_one_not_at_all(codes):
    newest_quit = f.smoking_status("8517006", when=10, oid="new")
    voided = {**f.smoking_status("449868002", when=1, oid="void"), "status": "entered-in-error"}
    out = Extraction()
    extract.read_smoking(fhir.collect(f.searchset(f.smoking_status("449868002", when=200, oid="old"), newest_quit,
                                                  voided)), codes, f.TODAY, 365, out)
    assert out.patient["smoker"] is False


def test_a_smoking_answers_file_row_without_a_source_stops_start_up(kb, tmp_path):
    for name in ("fhir_rxnorm.csv", "fhir_loinc.csv"):
        (tmp_path / name).write_text((DATA_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "fhir_smoking.csv").write_text("system,code,smoker,source\nsnomed,449868002,yes,\n"
                                               "snomed,8517006,maybe,US Core\n", encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        extract.load_codes(tmp_path, kb)
    assert "fhir_smoking.csv: row 2: no source" in str(err.value)
    assert "fhir_smoking.csv: row 3: smoker 'maybe'" in str(err.value)


def test_a_code_table_row_of_the_wrong_width_stops_start_up(kb, tmp_path):
    """Both kinds of code table share one reader: a row with a field too many or too few is named, never read
    (a short ncpdp row was an AttributeError; an fhir row with an extra field was read without it)."""
    for name in ("fhir_rxnorm.csv", "fhir_smoking.csv"):
        (tmp_path / name).write_text((DATA_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "fhir_loinc.csv").write_text("loinc,lab,source\n751-8,anc,LOINC,extra\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="fhir_loinc.csv: row 2: wrong number of fields"):
        extract.load_codes(tmp_path, kb)
    (tmp_path / ncpdp.REASON_FILE).write_text("code,reason_for_service,meaning,source,note\nPPI,DD,x,src\n",
                                              encoding="utf-8")
    (tmp_path / ncpdp.SIGNIFICANCE_FILE).write_text("severity,clinical_significance,meaning,source\n",
                                                    encoding="utf-8")
    with pytest.raises(DataFileError, match="ncpdp_reason_for_service.csv: row 2: wrong number of fields"):
        ncpdp.load(tmp_path)


def test_a_missing_code_table_stops_start_up_naming_it(tmp_path):
    (tmp_path / ncpdp.SIGNIFICANCE_FILE).write_text("severity,clinical_significance,meaning,source\n",
                                                    encoding="utf-8")
    with pytest.raises(DataFileError, match="ncpdp_reason_for_service.csv: missing"):
        ncpdp.load(tmp_path)


def test_regimen_recognition(kb):
    assert signature_drugs(kb) == {"ixazomib", "pomalidomide", "mezigdomide", "isatuximab", "belantamab mafodotin"}
    assert recognise(kb, {"ixazomib", "pomalidomide", "dexamethasone"}).regimen == "ipd"
    assert recognise(kb, {"ixazomib", "pomalidomide"}).regimen == "ipd"
    assert recognise(kb, {"mezigdomide", "ixazomib", "dexamethasone"}).regimen == "mezi-ixa-dex"
    assert recognise(kb, {"isatuximab", "belantamab mafodotin", "pomalidomide"}).regimen == "isa-bela-pom-dex"
    ambiguous = recognise(kb, {"pomalidomide", "dexamethasone"})
    assert ambiguous.regimen is None and ambiguous.seen == ("pomalidomide",)
    assert recognise(kb, {"dexamethasone", "aspirin"}).seen == ()
    assert recognise(kb, {"pomalidomide"}, pinned="ipd").regimen == "ipd"


def test_every_warning_code_has_an_ncpdp_reason(kb):
    codes = ncpdp.load(DATA_DIR)
    used = {r["code"] for r in kb.interaction_rules + kb.prophylaxis_rules + kb.bleeding_rules + kb.dose_rules}
    used |= {c.get("code", "") for p in kb.protocols.values() for c in p["exclusions"] + p["corticosteroid_limit"]}
    used |= {"LAB_INELIGIBLE", "CRITERION_UNCLEAR", "MISSING_LAB", "MISSING_PATIENT_DATA", "UNMATCHED_MEDICATION",
             "AMBIGUOUS_MEDICATION", "PROTOCOL_INELIGIBLE", "DOSE_NOT_ASSESSED"}
    assert used - {""} <= set(codes.reasons)
    assert codes.for_warning({"code": "CYP1A2_STRONG_INHIBITOR", "severity": "major"}) == {
        "reason_for_service": "DD", "clinical_significance": "1"}
    assert codes.for_warning({"code": "MISSING_LAB", "severity": "moderate"}) == {
        "reason_for_service": "TN", "clinical_significance": "2"}
    assert codes.for_warning({"code": "X", "severity": "info"})["clinical_significance"] == ""


def test_bad_ncpdp_row_stops_start_up_naming_file_and_row(tmp_path):
    (tmp_path / ncpdp.REASON_FILE).write_text("code,reason_for_service,meaning,source,note\nPPI,dd,x,src,\n",
                                              encoding="utf-8")
    (tmp_path / ncpdp.SIGNIFICANCE_FILE).write_text("severity,clinical_significance,meaning,source\n",
                                                    encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        ncpdp.load(tmp_path)
    assert "ncpdp_reason_for_service.csv: row 2" in str(err.value)


def test_rxnorm_rows_need_a_known_generic(kb, tmp_path):
    (tmp_path / extract.RXNORM_FILE).write_text("rxcui,generic,name,source\n1,zorbatrexine,x,src\n", encoding="utf-8")
    (tmp_path / extract.LOINC_FILE).write_text("loinc,lab,source\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="fhir_rxnorm.csv: row 2: unknown generic"):
        load_codes(tmp_path, kb)
