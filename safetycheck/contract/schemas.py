"""Request and response schemas of the v1 JSON contract (marshmallow 4; unknown fields are refused)."""

import datetime as dt
import math
import numbers
import sys

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from .fastload import FastLoad


def _flask():
    """Flask, only when an adapter already loaded it: the contract itself never imports it (CLI, service)."""
    return sys.modules.get("flask")


# Dates a check can be about: past enough for any history, short of where date arithmetic overflows.
DATE_RANGE = validate.Range(min=dt.date(1900, 1, 1), max=dt.date(2199, 12, 31))


class WholeNumber(fields.Integer):
    """An integer field that refuses fractions (2.5 is not cycle 2) and booleans instead of truncating them."""

    default_error_messages = {"invalid": "Not a whole number (a fraction is refused, never truncated)."}
    loads_as = fields.Integer  # for fastload: a JSON integer loads as itself in both

    def _validated(self, value):
        # An integer is whole as it is (float() of a 400-digit one would overflow: a 500, found by a property test).
        if isinstance(value, bool) or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
                                       and not float(value).is_integer()):
            raise self.make_error("invalid")
        return super()._validated(value)


def ClinicalDate(description: str = "ISO date", **kwargs):  # noqa: N802 - a field factory, named like a field
    """A date within DATE_RANGE."""
    return fields.Date(validate=DATE_RANGE, metadata={"description": f"{description}; 1900-01-01 .. 2199-12-31"},
                       **kwargs)


class MatchRequestSchema(Schema):
    """POST /api/v1/match body."""

    names = fields.List(
        fields.String(validate=validate.Length(min=1, max=500)),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Medication strings as written, one per entry."},
    )


class CandidateSchema(Schema):
    generic = fields.String()
    ingredients = fields.List(fields.String())
    matched_name = fields.String()
    score = fields.Float()


class MatchSchema(CandidateSchema):
    via = fields.String(metadata={"description": "exact | brand | synonym | fuzzy"})


class ClassMembershipSchema(Schema):
    drug = fields.String()
    class_ = fields.String(data_key="class", attribute="class")
    authority = fields.String(metadata={"description": "fda | label | protocol | literature"})
    scope = fields.String()
    source = fields.String()


class ParsedSchema(Schema):
    name = fields.String()
    dose = fields.Float()
    dose_text = fields.String()
    unit = fields.String()
    form = fields.String()
    route = fields.String()
    frequency = fields.String()
    prn = fields.Boolean()
    indication = fields.String()
    other_names = fields.List(fields.String())


class MedicationResultSchema(Schema):
    index = fields.Integer()
    input = fields.String()
    parsed = fields.Nested(ParsedSchema)
    status = fields.String(metadata={"description": "matched | ambiguous | unmatched"})
    match = fields.Nested(MatchSchema, allow_none=True)
    candidates = fields.List(fields.Nested(CandidateSchema))
    classes = fields.List(fields.String())
    class_memberships = fields.List(fields.Nested(ClassMembershipSchema))


class MatchResponseSchema(Schema):
    ruleset_version = fields.String()
    results = fields.List(fields.Nested(MedicationResultSchema))


UNIT_MAX = 40  # characters in a lab's unit


class LabSchema(Schema):
    value = fields.Float(required=True, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=UNIT_MAX))
    uln = fields.Float(validate=validate.Range(min=0, min_inclusive=False), allow_nan=False,
                       metadata={"description": "upper limit of normal; must be > 0", "exclusiveMinimum": True})
    lln = fields.Float(validate=validate.Range(min=0), allow_nan=False)
    date = ClinicalDate()


LAB_KEYS = ("anc", "platelets", "hemoglobin", "creatinine", "bilirubin_total", "ast", "alt", "calcium", "albumin",
            "urine_albumin_creatinine_ratio", "bone_marrow_plasma_cells_pct", "qtc_ms")


def _plain_number(value) -> bool:
    """A JSON number that fields.Float takes as it is (no bool, no string, finite, far from overflow)."""
    return (type(value) is float and math.isfinite(value)) or (type(value) is int and abs(value) < 10**15)


class LabField(fields.Nested):
    """One lab, a LabSchema. The common lab, {"value": n, "unit": "..."} with an optional "uln", takes a fast
    path applying that schema's rules itself; any other goes through the schema (same document, same errors)."""

    loads_as = fields.Nested  # for fastload

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if (type(value) is dict and value.keys() <= {"value", "unit", "uln"} and _plain_number(value.get("value"))
                and type(value.get("unit")) is str and 0 < len(value["unit"]) <= UNIT_MAX
                and ("uln" not in value or (_plain_number(value["uln"]) and value["uln"] > 0))):
            lab = {"value": float(value["value"]), "unit": value["unit"]}
            if "uln" in value:
                lab["uln"] = float(value["uln"])
            return lab
        return super()._deserialize(value, attr, data, partial=partial, **kwargs)


class LabsSchema(Schema):
    locals().update({key: LabField(LabSchema) for key in LAB_KEYS})


class PatientSchema(Schema):
    id = fields.String(validate=validate.Length(max=128))
    age_years = fields.Float(validate=validate.Range(min=0, max=130, min_inclusive=False),
                             metadata={"description": "years, > 0 and <= 130", "exclusiveMinimum": True})
    sex = fields.String(validate=validate.OneOf(("female", "male")))
    weight_kg = fields.Float(validate=validate.Range(min=1, max=500))
    height_cm = fields.Float(validate=validate.Range(min=30, max=260))
    on_dialysis = fields.Boolean()
    smoker = fields.Boolean()
    child_pugh_class = fields.String(validate=validate.OneOf(("A", "B", "C")))
    contact_lens_use = fields.Boolean(metadata={"description": "Wears contact lenses (SEED-004 exclusion)"})


TEXT_MAX = 500  # characters in one medication line


class MedicationInputSchema(Schema):
    text = fields.String(validate=validate.Length(min=1, max=TEXT_MAX))
    name = fields.String(validate=validate.Length(min=1, max=200))
    dose = fields.Float(validate=validate.Range(min=0))
    unit = fields.String(validate=validate.Length(max=20))
    route = fields.String(validate=validate.Length(max=40))
    frequency = fields.String(validate=validate.Length(max=80))
    last_dose_date = ClinicalDate()
    rxcui = fields.String(validate=validate.Length(max=20))
    investigational = fields.Boolean(metadata={"description": "An investigational (unapproved) agent"})

    @validates_schema
    def _text_or_name(self, data, **_):
        if ("text" in data) == ("name" in data):
            raise ValidationError("give exactly one of text (free text) or name (structured)", "text")


class MedicationList(fields.List):
    """`medications[]`, each entry a MedicationInputSchema. The common entry, {"text": "..."} alone, takes a
    fast path that applies that schema's rules itself (a string of 1 to 500 characters, no other key); any
    other entry goes through the schema, so the documented shape and its errors are the same."""

    loads_as = fields.List  # for fastload

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and all(type(item) is dict and len(item) == 1 and type(item.get("text")) is str
                                           and 0 < len(item["text"]) <= TEXT_MAX for item in value):
            return [{"text": item["text"]} for item in value]
        return super()._deserialize(value, attr, data, **kwargs)


class ToxicitiesSchema(Schema):
    peripheral_neuropathy_grade = WholeNumber(validate=validate.Range(0, 5))
    febrile_neutropenia = fields.Boolean()
    ocular_grade = WholeNumber(validate=validate.Range(0, 4), metadata={"description": "KVA scale"})
    peripheral_neuropathy_with_pain = fields.Boolean(metadata={
        "description": "Neuropathy with pain on clinical exam (SEED-001 grade 2 with pain)"})
    eye_exam_date = ClinicalDate(description="Date of the last ophthalmic exam (belantamab)")


class SerologySchema(Schema):
    """Hepatitis B serology for the screening exclusions (SEED-001, SEED-003, SEED-004)."""

    hbsag = fields.String(validate=validate.OneOf(("positive", "negative")),
                          metadata={"description": "Hepatitis B surface antigen"})
    anti_hbc = fields.String(validate=validate.OneOf(("positive", "negative")),
                             metadata={"description": "Hepatitis B core antibody (total)"})
    hbv_dna = fields.String(validate=validate.OneOf(("detectable", "undetectable")),
                            metadata={"description": "HBV DNA; needed when HBsAg is negative and anti-HBc positive"})


class CheckRequestSchema(FastLoad, Schema):
    """POST /api/v1/checks body (contract); the common body is loaded by code compiled from it (fastload)."""

    regimen = fields.String(required=True)
    protocol = fields.String()
    mode = fields.String(load_default="dispensing", validate=validate.OneOf(("dispensing", "screening")))
    date = ClinicalDate()
    screening_date = ClinicalDate(description="Anchor of 'of screening' windows (else date)")
    registration_date = ClinicalDate(description="Anchor of 'before registration' windows (else date)")
    c1d1_date = ClinicalDate(description="Anchor of 'before C1D1 / start of treatment' windows")
    cycle = WholeNumber(validate=validate.Range(min=1, max=1000))
    day = WholeNumber(validate=validate.Range(min=1, max=42))
    patient = fields.Nested(PatientSchema, load_default=dict)
    medications = MedicationList(fields.Nested(MedicationInputSchema), load_default=list,
                              validate=validate.Length(max=200))
    medication_text = fields.String(validate=validate.Length(max=20000))
    labs = fields.Nested(LabsSchema, load_default=dict)
    current_doses = fields.Dict(keys=fields.String(), values=fields.Float(validate=validate.Range(min=0)),
                                load_default=dict,
                                metadata={"description": "mg per dose, keyed by a drug of the regimen (others: 422)"})
    toxicities = fields.Nested(ToxicitiesSchema, load_default=dict)
    serology = fields.Nested(SerologySchema, load_default=dict)

    def __init__(self, *args, regimens: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.regimens = regimens  # the knowledge base's regimens; inside a request, the app's

    @validates_schema
    def _doses_are_for_regimen_drugs(self, data, **_):
        """A dose for a drug the regimen does not have would be silently ignored: refuse it."""
        regimens = self.regimens
        flask = _flask()
        if regimens is None and flask is not None and flask.has_app_context():
            regimens = flask.current_app.extensions["safetycheck"].kb.regimens
        regimen = (regimens or {}).get(data.get("regimen"))
        if regimen is None:
            return  # the pipeline refuses the regimen itself
        unknown = sorted(set(data.get("current_doses") or {}) - set(regimen["drugs"]))
        if unknown:
            raise ValidationError({key: [f"not a drug of regimen {regimen['id']} "
                                         f"({', '.join(regimen['drugs'])})"] for key in unknown}, "current_doses")


class WarningSchema(Schema):
    rule_id = fields.String()
    code = fields.String()
    severity = fields.String()
    kind = fields.String()
    drug = fields.String()
    affects = fields.String()
    medication_index = fields.Integer()
    authority = fields.String()
    message = fields.String()
    action = fields.String()
    source = fields.Dict()
    window_days = fields.Integer()
    eligible_on = fields.String()
    field = fields.String()
    ncpdp = fields.Dict(metadata={"description": "NCPDP DUR: reason_for_service (439-E4), "
                                                 "clinical_significance (528-FS; blank = not specified)"})


class DoseRecommendationSchema(Schema):
    drug = fields.String()
    action = fields.String()
    current_mg = fields.Float(allow_none=True)
    recommended_mg = fields.Float(allow_none=True)
    reason = fields.String()
    source = fields.Dict()
    rule_ids = fields.List(fields.String())
    resume = fields.Dict(metadata={"description": "After a hold, where the label gives it: {mg, action} "
                                                  "(resume | discontinue), or the rule when current_mg is unknown"})


class CheckResponseSchema(Schema):
    check_id = fields.String()
    created_at = fields.String()
    ruleset_version = fields.String()
    regimen = fields.String()
    protocol = fields.String(allow_none=True)
    mode = fields.String()
    verdict = fields.String(metadata={"description": "block | review | pass"})
    medications = fields.List(fields.Nested(MedicationResultSchema))
    warnings = fields.List(fields.Nested(WarningSchema))
    dose_recommendations = fields.List(fields.Nested(DoseRecommendationSchema))
    derived = fields.Dict()
    missing = fields.List(fields.String())
    protocol_flags = fields.List(fields.Dict())


def _iso_date_or_time(value: str) -> None:
    """A whole ISO date or date-time (nothing after it); compared as text with the stored UTC timestamps."""
    if not (10 <= len(value) <= 35) or not value[:4].isdigit():
        raise ValidationError("not an ISO date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]][+HH:MM])")
    try:
        dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise ValidationError("not an ISO date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]]"
                              "[+HH:MM])") from err


class CheckQuerySchema(Schema):
    """GET /api/v1/checks query: unknown or repeated parameters are refused, not ignored."""

    verdict = fields.String(validate=validate.OneOf(("block", "review", "pass")))
    code = fields.String(validate=validate.Regexp(r"^[A-Z0-9_]{2,60}$"),
                         metadata={"description": "a warning code, matched literally"})
    reviewed = fields.Boolean()
    since = fields.String(validate=_iso_date_or_time, metadata={"description": "ISO date/time"})
    until = fields.String(validate=_iso_date_or_time,
                          metadata={"description": "ISO date/time, exclusive; a date alone includes that whole day"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))

    @post_load
    def _utc_text(self, data, **_):
        """Date-times become the stored form (UTC, microseconds) so the text comparison is a time comparison."""
        for name in ("since", "until"):
            value = data.get(name)
            if value and len(value) > 10:
                moment = dt.datetime.fromisoformat(value)
                moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
                data[name] = moment.isoformat(timespec="microseconds")
        return data

    @pre_load
    def _each_parameter_once(self, data, **_):
        flask = _flask()
        if flask is None or not flask.has_request_context():
            return data
        args = flask.request.args
        repeated = sorted(k for k in args if len(args.getlist(k)) > 1)
        if repeated:
            raise ValidationError({k: ["given more than once"] for k in repeated})
        return data


class CheckSummarySchema(Schema):
    check_id = fields.String()
    created_at = fields.String()
    channel = fields.String()
    api_client = fields.String()
    regimen = fields.String()
    protocol = fields.String(allow_none=True)
    mode = fields.String()
    verdict = fields.String()
    codes = fields.List(fields.String())
    patient_id = fields.String(allow_none=True)
    reviews = fields.Integer()


class CheckListSchema(Schema):
    items = fields.List(fields.Nested(CheckSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class ReviewRequestSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("accepted", "overridden", "escalated")))
    note = fields.String(validate=validate.Length(max=4000),
                         metadata={"description": "required (non-blank) when decision is overridden"})

    @validates_schema
    def _override_needs_note(self, data, **_):
        if data.get("decision") == "overridden" and not (data.get("note") or "").strip():
            raise ValidationError("an overridden decision needs a note", "note")


class ReviewSchema(Schema):
    review_id = fields.String()
    check_id = fields.String()
    created_at = fields.String()
    reviewer = fields.String()
    decision = fields.String()
    note = fields.String(allow_none=True)


class StoredCheckSchema(Schema):
    check_id = fields.String()
    created_at = fields.String()
    channel = fields.String()
    api_client = fields.String()
    ruleset_version = fields.String()
    request = fields.Dict()
    response = fields.Nested(CheckResponseSchema)
    row_hash = fields.String()
    reviews = fields.List(fields.Nested(ReviewSchema))
