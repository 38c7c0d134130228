"""The fast paths (`medications[]` entries, labs) accept and refuse exactly what their schemas do."""

import itertools

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from safetycheck.contract.schemas import LabField, LabSchema, MedicationInputSchema, MedicationList


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
    return outcome_of(schema, {"medications": medications})


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


class LabFastPath(Schema):
    anc = LabField(LabSchema)


class LabSchemaOnly(Schema):
    anc = fields.Nested(LabSchema)


LABS = [
    {"value": 1.8, "unit": "10*9/L"}, {"value": 150000, "unit": "/uL"}, {"value": 0, "unit": "g/dL"},
    {"value": -1, "unit": "x"}, {"value": 1.1, "unit": "mg/dL", "uln": 1.2}, {"value": 1, "unit": "U/L", "uln": 0},
    {"value": 1, "unit": "U/L", "uln": -3}, {"value": 1, "unit": "U/L", "uln": "2"}, {"value": "1.5", "unit": "g/L"},
    {"value": True, "unit": "g/L"}, {"value": None, "unit": "g/L"}, {"value": 10**20, "unit": "g/L"},
    {"value": 10**400, "unit": "g/L"}, {"value": float("nan"), "unit": "g/L"}, {"value": float("inf"), "unit": "g/L"},
    {"value": 1, "unit": ""}, {"value": 1, "unit": "u" * 40}, {"value": 1, "unit": "u" * 41}, {"value": 1, "unit": 5},
    {"value": 1}, {"unit": "g/L"}, {}, {"value": 1, "unit": "g/L", "lln": 0.5},
    {"value": 1, "unit": "g/L", "date": "2026-11-01"}, {"value": 1, "unit": "g/L", "other": 1}, [], "1.5", 2, None,
]


@pytest.mark.parametrize("lab", LABS)
def test_lab_fast_path_and_schema_agree(lab):
    assert outcome_of(LabFastPath(), {"anc": lab}) == outcome_of(LabSchemaOnly(), {"anc": lab})


def test_the_common_lab_is_taken_by_the_fast_path(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the nested schema was used")

    monkeypatch.setattr(LabSchema, "load", refuse)
    assert LabFastPath().load({"anc": {"value": 2, "unit": "10*9/L", "uln": 7}}) == {
        "anc": {"value": 2.0, "unit": "10*9/L", "uln": 7.0}}


def outcome_of(schema: Schema, data):
    try:
        return "ok", schema.load(data)
    except ValidationError as err:
        return "error", err.messages
