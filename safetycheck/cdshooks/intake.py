"""POST /api/v1/checks with a FHIR R4 Bundle (application/fhir+json) -> the same v1 check body."""

import datetime as dt

from .extract import Extraction, pseudonym, read_labs, read_medications, read_patient, read_smoking, read_weight
from .fhir import collect
from .hooks import MED_TYPES, _generics
from .regimen import recognise


class IntakeError(Exception):
    """The bundle or parameters cannot make a check (422 naming the field)."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__(str(errors))


def bundle_to_body(payload, params: dict, checker, codes, lab_window_days: int = 14,
                   weight_window_days: int = 90, smoking_window_days: int = 365) -> tuple[dict, Extraction]:
    """A Bundle (any type, Synthea transaction bundles included) or a bare resource -> v1 body."""
    if not isinstance(payload, dict) or not payload.get("resourceType"):
        raise IntakeError({"body": ["A FHIR resource (a Bundle with Patient, medications, Observations)."]})
    try:
        day = dt.date.fromisoformat(params["date"]) if params.get("date") else dt.date.today()
    except ValueError as err:
        raise IntakeError({"date": ["An ISO date, YYYY-MM-DD."]}) from err
    mode = params.get("mode") or "dispensing"
    if mode not in ("dispensing", "screening"):
        raise IntakeError({"mode": ["dispensing or screening."]})
    found = collect(payload)
    ext = Extraction()
    patients = found.of_type("Patient")
    patient_id = patients[0].get("id") if patients else None
    read_patient(found, patient_id, day, ext)
    read_medications([("bundle", found.of_type(*MED_TYPES))], found, codes, ext)
    read_labs(found, codes, checker.kb, day, lab_window_days, ext)
    read_weight(found, day, weight_window_days, ext)
    read_smoking(found, codes, day, smoking_window_days, ext)
    regimen = params.get("regimen")
    if not regimen:
        generics = {g for gs in _generics(checker, ext.medications) for g in gs}
        regimen = recognise(checker.kb, generics).regimen
        if regimen is None:
            raise IntakeError({"regimen": ["Give the regimen as a query parameter (?regimen=ipd); it could not "
                                           "be recognised from the bundle's medications."]})
    body = {"regimen": regimen, "mode": mode, "date": day.isoformat(),
            "patient": {**({"id": pseudonym(None, patient_id)} if patient_id else {}), **ext.patient},
            "medications": ext.medications, "labs": ext.labs}
    if params.get("protocol"):
        body["protocol"] = params["protocol"]
    return body, ext
