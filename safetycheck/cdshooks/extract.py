"""FHIR R4 resources -> the v1 check body: medications (RxNorm or text), labs by LOINC, weight, smoking status,
age, sex."""

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..codetables import sourced_rows
from ..errors import DataFileError
from ..labs import normalize_labs
from ..models import InputError
from ..parsing import parse_line
from .fhir import LOINC, RXNORM, Resources, as_list, codings, concept_text, resolve

RXNORM_FILE = "fhir_rxnorm.csv"
LOINC_FILE = "fhir_loinc.csv"
SMOKING_FILE = "fhir_smoking.csv"
WEIGHT_LOINC = "29463-7"
SMOKING_LOINC = "72166-2"  # Tobacco smoking status (US Core Smoking Status)
SNOMED = "http://snomed.info/sct"
SMOKING_SYSTEMS = {"snomed": SNOMED, "loinc": LOINC}
SMOKER_VALUES = {"true": True, "false": False, "unknown": None}
# UCUM mass units for body weight; [lb_av] is the avoirdupois pound, defined as 0.45359237 kg.
WEIGHT_UNITS = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237}
# Statuses that mean the medication is not being taken (or the record is void).
INACTIVE = {"cancelled", "entered-in-error", "stopped", "completed", "not-taken", "revoked", "ended"}
VOID_OBSERVATION = {"cancelled", "entered-in-error"}
PER_DAY_WORDS = {1: "daily", 2: "BID", 3: "TID", 4: "QID"}


@dataclass(frozen=True)
class Codes:
    """Sourced code tables: RxNorm CUI -> generic, extra LOINC codes -> lab key (plus labs.toml's own), and
    (system, code) of a smoking-status answer -> smoking now (True / False; None: unknown)."""

    rxnorm: dict
    loinc: dict
    smoking: dict = field(default_factory=dict)


def load_codes(data_dir: str | Path, kb) -> Codes:
    """Read data/fhir_rxnorm.csv, fhir_loinc.csv and fhir_smoking.csv; a bad row stops start-up naming file and
    row."""
    base, problems = Path(data_dir), []
    rxnorm, loinc, smoking = {}, {}, {}
    for key, spec in kb.labs.items():
        if spec.get("loinc"):
            loinc[spec["loinc"]] = key
    for where, row in sourced_rows(base / RXNORM_FILE, ["rxcui", "generic", "name", "source"], problems):
        if row["generic"] not in kb.generics:
            problems.append(f"{where}: unknown generic {row['generic']}")
        else:
            rxnorm[row["rxcui"]] = row["generic"]
    for where, row in sourced_rows(base / LOINC_FILE, ["loinc", "lab", "source"], problems):
        if row["lab"] not in kb.labs:
            problems.append(f"{where}: unknown lab {row['lab']} (fix: a key of labs.toml)")
        else:
            loinc[row["loinc"]] = row["lab"]
    # Each coded answer to LOINC 72166-2 and what it says about smoking now.
    for where, row in sourced_rows(base / SMOKING_FILE, ["system", "code", "smoker", "source"], problems):
        if row["system"] not in SMOKING_SYSTEMS:
            problems.append(f"{where}: system {row['system']!r} (fix: one of {', '.join(SMOKING_SYSTEMS)})")
        elif row["smoker"] not in SMOKER_VALUES:
            problems.append(f"{where}: smoker {row['smoker']!r} (fix: true, false or unknown)")
        elif not row["code"]:
            problems.append(f"{where}: no code")
        else:
            smoking[(SMOKING_SYSTEMS[row["system"]], row["code"])] = SMOKER_VALUES[row["smoker"]]
    if problems:
        raise DataFileError(problems)
    return Codes(rxnorm, loinc, smoking)


@dataclass
class Extraction:
    """What was read from FHIR, how, and what could not be used (each a note, never a silent drop)."""

    patient: dict = field(default_factory=dict)
    medications: list = field(default_factory=list)  # v1 medication dicts
    provenance: list = field(default_factory=list)  # per medication: resource, identified_by, code/text
    current_doses: dict = field(default_factory=dict)
    labs: dict = field(default_factory=dict)
    lab_sources: dict = field(default_factory=dict)
    not_assessed: list = field(default_factory=list)
    lab_window_days: int | None = None


def _date(value) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def pseudonym(server: str | None, patient_id: str | None) -> str | None:
    """A stable opaque id for the audit store: the chart id itself is not stored (minimum necessary)."""
    if not patient_id:
        return None
    return "fhir-" + hashlib.sha256(f"{server or ''}|{patient_id}".encode()).hexdigest()[:20]


def read_patient(found: Resources, patient_id: str | None, today: dt.date, out: Extraction) -> None:
    """Age (whole years at `today`) and sex from Patient; unknown gender stays absent (-> missing)."""
    patients = found.of_type("Patient")
    patient = next((p for p in patients if patient_id and p.get("id") == patient_id), None)
    patient = patient or (patients[0] if patients else None)
    if patient is None:
        out.not_assessed.append("Patient resource not available: age and sex not known.")
        return
    birth = _date(patient.get("birthDate"))
    if birth:
        out.patient["age_years"] = _age(birth, today)
    gender = patient.get("gender")
    if gender in ("female", "male"):
        out.patient["sex"] = gender
    elif gender:
        out.not_assessed.append(f"Patient.gender '{gender}' is not used by sex-specific formulas.")


def _dosage(resource: dict) -> dict:
    dosage = as_list(resource.get("dosageInstruction")) or as_list(resource.get("dosage"))
    return dosage[0] if dosage and isinstance(dosage[0], dict) else {}


def _dose(dosage: dict) -> tuple[float | None, str | None]:
    # R4: dosage.doseAndRate[].doseQuantity (sometimes an object, not an array); STU3: dosage.doseQuantity.
    quantities = [d.get("doseQuantity") for d in as_list(dosage.get("doseAndRate")) if isinstance(d, dict)]
    quantities.append(dosage.get("doseQuantity"))
    for q in quantities:
        if isinstance(q, dict) and isinstance(q.get("value"), int | float):
            return float(q["value"]), q.get("unit") or q.get("code")
    return None, None


def _frequency(dosage: dict) -> str | None:
    timing = dosage.get("timing") or {}
    repeat = timing.get("repeat") or {}
    freq, period, unit = repeat.get("frequency", 1), repeat.get("period"), repeat.get("periodUnit")
    if period == 1 and unit == "d" and freq in PER_DAY_WORDS:
        return PER_DAY_WORDS[freq]
    if unit == "h" and period and freq == 1:
        return f"q{period:g}h"
    if period == 1 and unit == "wk" and freq == 1:
        return "weekly"
    return concept_text(timing.get("code"))


def _route(dosage: dict) -> str | None:
    text = concept_text(dosage.get("route"))
    if text and "oral" in text.lower():
        return "oral"
    return text.lower() if text else None


def _medication_concept(resource: dict, found: Resources) -> tuple[dict | None, str]:
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, resource.get("resourceType", "")
    ref = resource.get("medicationReference") or {}
    medication = resolve(ref.get("reference"), resource, found)
    if medication and isinstance(medication.get("code"), dict):
        return medication["code"], "Medication"
    if ref.get("display"):
        return {"text": ref["display"]}, "medicationReference.display"
    return None, "unresolved medicationReference" if ref else "no medication"


def read_medication(resource: dict, found: Resources, codes: Codes, origin: str) -> tuple[dict, dict]:
    """One MedicationRequest/Statement -> a v1 medication and how it was identified."""
    concept, where = _medication_concept(resource, found)
    ref = f"{resource.get('resourceType')}/{resource.get('id')}" if resource.get("id") else resource.get(
        "resourceType")
    rx = [c for c in codings(concept) if c.get("system") == RXNORM and c.get("code")]
    known = next((c for c in rx if str(c["code"]) in codes.rxnorm), None)
    dosage = _dosage(resource)
    dose, unit = _dose(dosage)
    med: dict = {}
    if known:
        med["name"] = codes.rxnorm[str(known["code"])]
        med["rxcui"] = str(known["code"])[:20]
        how = {"identified_by": "rxnorm", "code": str(known["code"])}
    else:
        text = concept_text(concept)
        if text:
            med["name"] = parse_line(text).name or text
            how = {"identified_by": "text", "text": text}
        else:
            # Fail closed: a medication we cannot name still goes in, and comes out UNMATCHED.
            med["name"] = f"unidentified medication ({ref})"
            how = {"identified_by": "none", "text": where}
        if rx:
            med["rxcui"] = str(rx[0]["code"])[:20]
            how["unmapped_rxnorm"] = str(rx[0]["code"])
    for key, value in (("dose", dose), ("unit", unit), ("route", _route(dosage)),
                       ("frequency", _frequency(dosage))):
        if value is not None:
            med[key] = value
    period = resource.get("effectivePeriod") or {}
    last = _date(period.get("end")) if resource.get("resourceType") == "MedicationStatement" else None
    if last:
        med["last_dose_date"] = last.isoformat()
    return med, {"resource": ref, "origin": origin, **how}


def read_medications(groups: list[tuple[str, list[dict]]], found: Resources, codes: Codes,
                     out: Extraction) -> None:
    """Draft orders first, then the active list; one entry per resource, repeats of a drug kept once."""
    seen: set = set()
    for origin, resources in groups:
        for resource in resources:
            if resource.get("resourceType") not in ("MedicationRequest", "MedicationStatement",
                                                    "MedicationOrder"):
                continue
            if resource.get("status") in INACTIVE:
                continue
            med, how = read_medication(resource, found, codes, origin)
            key = (med.get("rxcui") or med["name"].lower(), med.get("dose"), med.get("frequency"))
            if key in seen:
                continue
            seen.add(key)
            out.medications.append(med)
            out.provenance.append(how)


def _observation_date(obs: dict) -> dt.date | None:
    return (_date(obs.get("effectiveDateTime")) or _date((obs.get("effectivePeriod") or {}).get("end"))
            or _date(obs.get("effectiveInstant")) or _date(obs.get("issued")))


def _loinc_codes(obs: dict) -> list[str]:
    return [str(c["code"]) for c in codings(obs.get("code")) if c.get("system") == LOINC and c.get("code")]


def read_labs(found: Resources, codes: Codes, kb, today: dt.date, window_days: int, out: Extraction) -> None:
    """The newest usable value per lab within the window; an unconvertible value is not assessed."""
    newest: dict = {}
    out.lab_window_days = window_days
    for obs in found.of_type("Observation"):
        if obs.get("status") in VOID_OBSERVATION:
            continue
        keys = [codes.loinc[c] for c in _loinc_codes(obs) if c in codes.loinc]
        if not keys:
            continue
        when = _observation_date(obs)
        if when is None or when > today:
            out.not_assessed.append(f"{keys[0]}: an Observation without a usable date was ignored.")
            continue
        if (today - when).days > window_days:
            continue
        if keys[0] not in newest or when > newest[keys[0]][0]:
            newest[keys[0]] = (when, obs)
    for key, (when, obs) in sorted(newest.items()):
        quantity = obs.get("valueQuantity") or {}
        value = quantity.get("value")
        unit = quantity.get("code") or quantity.get("unit")
        ref = f"Observation/{obs.get('id')}"
        if quantity.get("comparator"):
            out.not_assessed.append(f"{key}: {ref} is '{quantity['comparator']} {value}', not a value; "
                                    "not assessed.")
            continue
        if not isinstance(value, int | float) or not unit:
            out.not_assessed.append(f"{key}: {ref} has no numeric value with a unit; not assessed.")
            continue
        sent = {"value": value, "unit": unit, "date": when.isoformat()}
        for limit, name in (("high", "uln"), ("low", "lln")):
            # The lab's own reference limit, used only when it is in the value's unit.
            bound = next((r.get(limit) for r in as_list(obs.get("referenceRange")) if isinstance(r, dict)
                          and isinstance(r.get(limit), dict)), None)
            if bound and isinstance(bound.get("value"), int | float) and (
                    bound.get("code") or bound.get("unit")) == unit:
                sent[name] = bound["value"]
        try:
            normalize_labs({key: sent}, kb)
        except InputError as err:
            out.not_assessed.append(f"{key}: {ref} {value} {unit} cannot be used ({err.errors}); not assessed.")
            continue
        out.labs[key] = sent
        out.lab_sources[key] = {"observation": ref, "loinc": _loinc_codes(obs)[0], "date": when.isoformat()}
    if not newest and not out.labs:
        out.not_assessed.append(f"No laboratory Observation by a known LOINC code within {window_days} days.")


def _newest(found: Resources, loinc: str, today: dt.date) -> tuple[tuple | None, list[dict]]:
    """The newest (date, Observation) of this LOINC code dated no later than today, not void; and those
    without a usable date."""
    best, undated = None, []
    for obs in found.of_type("Observation"):
        if loinc not in _loinc_codes(obs) or obs.get("status") in VOID_OBSERVATION:
            continue
        when = _observation_date(obs)
        if when is None or when > today:
            undated.append(obs)
        elif best is None or when > best[0]:
            best = (when, obs)
    return best, undated


def read_weight(found: Resources, today: dt.date, window_days: int, out: Extraction) -> None:
    """Body weight (LOINC 29463-7) in kg from the newest vital-signs Observation within the window."""
    best, _ = _newest(found, WEIGHT_LOINC, today)
    if best is None or (today - best[0]).days > window_days:
        return
    quantity = best[1].get("valueQuantity") or {}
    factor = WEIGHT_UNITS.get(quantity.get("code") or quantity.get("unit") or "")
    if factor is None or not isinstance(quantity.get("value"), int | float):
        out.not_assessed.append(f"Body weight {quantity.get('value')} {quantity.get('unit')} cannot be "
                                "converted to kg; not assessed.")
        return
    out.patient["weight_kg"] = round(quantity["value"] * factor, 2)


def read_smoking(found: Resources, codes: Codes, today: dt.date, window_days: int, out: Extraction) -> None:
    """Smoking now, from the newest tobacco smoking status Observation (LOINC 72166-2) within the window.

    Only an answer data/fhir_smoking.csv lists is used; anything else (no answer, an unknown or "unknown if ever
    smoked" code, two answers that disagree, an old status) leaves patient.smoker unset, and the CYP1A2 rule then
    says it could not check (MISSING_PATIENT_DATA), with a note of why.
    """
    best, undated = _newest(found, SMOKING_LOINC, today)
    for obs in undated:
        out.not_assessed.append(f"Smoking status: Observation/{obs.get('id')} has no usable date; ignored.")
    if best is None:
        return
    when, obs = best
    ref = f"Observation/{obs.get('id')}"
    if (today - when).days > window_days:
        out.not_assessed.append(f"Smoking status: {ref} is from {when.isoformat()}, more than {window_days} days "
                                "ago; not used.")
        return
    answers = {codes.smoking[key] for key in ((c.get("system"), str(c.get("code")))
                                              for c in codings(obs.get("valueCodeableConcept")))
               if key in codes.smoking}
    if len(answers) != 1 or None in answers:
        said = concept_text(obs.get("valueCodeableConcept")) or "no coded answer"
        out.not_assessed.append(f"Smoking status: {ref} ('{said}') does not say whether the patient smokes now; "
                                "not assessed.")
        return
    out.patient["smoker"] = answers.pop()
