"""Request and response schemas of the v1 JSON contract (marshmallow 4; unknown fields are refused)."""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema


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


class LabSchema(Schema):
    value = fields.Float(required=True, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=40))
    uln = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    lln = fields.Float(validate=validate.Range(min=0))
    date = fields.Date()


LAB_KEYS = ("anc", "platelets", "hemoglobin", "creatinine", "bilirubin_total", "ast", "alt", "calcium", "albumin",
            "urine_albumin_creatinine_ratio", "bone_marrow_plasma_cells_pct", "qtc_ms")


class LabsSchema(Schema):
    locals().update({key: fields.Nested(LabSchema) for key in LAB_KEYS})


class PatientSchema(Schema):
    id = fields.String(validate=validate.Length(max=128))
    age_years = fields.Float(validate=validate.Range(min=0, max=130))
    sex = fields.String(validate=validate.OneOf(("female", "male")))
    weight_kg = fields.Float(validate=validate.Range(min=1, max=500))
    height_cm = fields.Float(validate=validate.Range(min=30, max=260))
    on_dialysis = fields.Boolean()
    smoker = fields.Boolean()
    child_pugh_class = fields.String(validate=validate.OneOf(("A", "B", "C")))


class MedicationInputSchema(Schema):
    text = fields.String(validate=validate.Length(min=1, max=500))
    name = fields.String(validate=validate.Length(min=1, max=200))
    dose = fields.Float(validate=validate.Range(min=0))
    unit = fields.String(validate=validate.Length(max=20))
    route = fields.String(validate=validate.Length(max=40))
    frequency = fields.String(validate=validate.Length(max=80))
    last_dose_date = fields.Date()
    rxcui = fields.String(validate=validate.Length(max=20))

    @validates_schema
    def _text_or_name(self, data, **_):
        if ("text" in data) == ("name" in data):
            raise ValidationError("give exactly one of text (free text) or name (structured)", "text")


class ToxicitiesSchema(Schema):
    peripheral_neuropathy_grade = fields.Integer(validate=validate.Range(0, 5))
    febrile_neutropenia = fields.Boolean()
    ocular_grade = fields.Integer(validate=validate.Range(0, 4), metadata={"description": "KVA scale"})


class CheckRequestSchema(Schema):
    """POST /api/v1/checks body (contract)."""

    regimen = fields.String(required=True)
    protocol = fields.String()
    mode = fields.String(load_default="dispensing", validate=validate.OneOf(("dispensing", "screening")))
    date = fields.Date()
    cycle = fields.Integer(validate=validate.Range(min=1))
    day = fields.Integer(validate=validate.Range(min=1, max=42))
    patient = fields.Nested(PatientSchema, load_default=dict)
    medications = fields.List(fields.Nested(MedicationInputSchema), load_default=list,
                              validate=validate.Length(max=200))
    medication_text = fields.String(validate=validate.Length(max=20000))
    labs = fields.Nested(LabsSchema, load_default=dict)
    current_doses = fields.Dict(keys=fields.String(), values=fields.Float(validate=validate.Range(min=0)),
                                load_default=dict)
    toxicities = fields.Nested(ToxicitiesSchema, load_default=dict)


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


class DoseRecommendationSchema(Schema):
    drug = fields.String()
    action = fields.String()
    current_mg = fields.Float(allow_none=True)
    recommended_mg = fields.Float(allow_none=True)
    reason = fields.String()
    source = fields.Dict()
    rule_ids = fields.List(fields.String())


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


class CheckQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    verdict = fields.String(validate=validate.OneOf(("block", "review", "pass")))
    code = fields.String(validate=validate.Regexp(r"^[A-Z0-9_]{2,60}$"))
    reviewed = fields.Boolean()
    since = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}"), metadata={"description": "ISO date/time"})
    until = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}"), metadata={"description": "ISO date/time"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


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
    note = fields.String(validate=validate.Length(max=4000))

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
