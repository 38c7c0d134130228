"""The `medications[]` fast path accepts and refuses exactly what MedicationInputSchema does."""

import itertools

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from safetycheck.contract.schemas import MedicationInputSchema, MedicationList


class FastPath(Schema):
    medications = MedicationList(fields.Nested(MedicationInputSchema), validate=validate.Length(max=200))


class SchemaOnly(Schema):
    medications = fields.List(fields.Nested(MedicationInputSchema), validate=validate.Length(max=200))


ENTRIES = [
    {"text": "Eliquis 5 mg PO BID"}, {"text": ""}, {"text": " "}, {"text": "a" * 500}, {"text": "a" * 501},
    {"text": "\u00e9" * 500}, {"text": 5}, {"text": None}, {"text": True}, {"text": ["x"]},
    {"text": "x", "name": "y"}, {"name": "apixaban", "dose": 5}, {}, {"text": "x", "route": "PO"},
    {"text": "x", "unknown": 1}, "aspirin", None, 3, ["aspirin"],
]


def outcome(schema: Schema, medications):
    try:
        return "ok", schema.load({"medications": medications})
    except ValidationError as err:
        return "error", err.messages


@pytest.mark.parametrize("medications", [
    *([entry] for entry in ENTRIES),
    *(list(pair) for pair in itertools.product(ENTRIES[:6], ENTRIES)),
    [{"text": "x"}] * 200, [{"text": "x"}] * 201, [], "not a list", {"text": "x"}, None,
])
def test_fast_path_and_schema_agree(medications):
    assert outcome(FastPath(), medications) == outcome(SchemaOnly(), medications)


def test_the_common_shape_is_taken_by_the_fast_path(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the nested schema was used")

    monkeypatch.setattr(MedicationInputSchema, "load", refuse)
    assert FastPath().load({"medications": [{"text": "x"}] * 3}) == {"medications": [{"text": "x"}] * 3}
