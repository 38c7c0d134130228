"""Request and response schemas of the JSON API (marshmallow 4; unknown fields are refused)."""

from marshmallow import Schema, fields, validate


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
