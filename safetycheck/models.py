"""Plain records shared by the pipeline stages: the validated request and the check's findings."""

import datetime as dt
from dataclasses import dataclass, field, fields

SEVERITY_ORDER = {"critical": 0, "major": 1, "moderate": 2, "minor": 3, "info": 4}


class InputError(Exception):
    """The request is well-formed but a value cannot be used (unknown unit, impossible value)."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__(str(errors))


@dataclass(frozen=True)
class LabValue:
    """A lab in the canonical unit of data/labs.toml, with what was sent."""

    key: str
    value: float
    unit: str
    uln: float | None = None
    lln: float | None = None
    sent: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MedicationInput:
    """One medication as sent: free text, or structured fields."""

    text: str | None = None
    name: str | None = None
    dose: float | None = None
    unit: str | None = None
    route: str | None = None
    frequency: str | None = None
    last_dose_date: dt.date | None = None
    rxcui: str | None = None
    investigational: bool | None = None


@dataclass(frozen=True)
class CheckRequest:
    """A validated check request (see the contract)."""

    regimen: str
    mode: str = "dispensing"
    protocol: str | None = None
    date: dt.date | None = None
    screening_date: dt.date | None = None
    registration_date: dt.date | None = None
    c1d1_date: dt.date | None = None
    cycle: int | None = None
    day: int | None = None
    patient: dict = field(default_factory=dict)
    medications: tuple[MedicationInput, ...] = ()
    labs: dict = field(default_factory=dict)  # key -> {value, unit, uln?, lln?, date?} as sent
    current_doses: dict = field(default_factory=dict)
    toxicities: dict = field(default_factory=dict)
    serology: dict = field(default_factory=dict)  # hbsag, anti_hbc, hbv_dna


@dataclass
class Warning:
    """One finding, with the rule that raised it and where that rule comes from."""

    rule_id: str
    code: str
    severity: str
    kind: str
    message: str
    source: dict
    action: str | None = None
    drug: str | None = None
    affects: str | None = None
    medication_index: int | None = None
    authority: str | None = None
    window_days: int | None = None
    eligible_on: str | None = None
    field: str | None = None
    ncpdp: dict | None = None  # NCPDP DUR reason_for_service (439-E4) and clinical_significance (528-FS)

    def as_dict(self) -> dict:
        """JSON form: fields that are set."""
        return {name: value for name in _WARNING_FIELDS if (value := getattr(self, name)) is not None}


@dataclass
class DoseRecommendation:
    """What to do with one regimen drug today."""

    drug: str
    action: str  # hold | reduce | discontinue
    current_mg: float | None
    recommended_mg: float | None
    reason: str
    source: dict
    rule_ids: list[str]
    resume: dict | None = None  # structured resume dose after a hold (only where the label gives one)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in _DOSE_FIELDS if name != "resume" or self.resume}


# Field names in declaration order, looked up once (dataclasses.fields() per call was a visible cost).
_WARNING_FIELDS = tuple(f.name for f in fields(Warning))
_DOSE_FIELDS = tuple(f.name for f in fields(DoseRecommendation))
