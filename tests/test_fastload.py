"""The compiled loader of a check body gives what marshmallow's own load gives, or leaves the body to it."""

import datetime
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from safetycheck.contract import fastload, schemas
from safetycheck.contract.fastload import FastLoad, GiveUp, NotCompilable, compile_schema
from safetycheck.contract.schemas import CheckRequestSchema

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))
REGIMENS = {"ipd": {"id": "ipd", "drugs": ["ixazomib", "pomalidomide", "dexamethasone"]}}
BENCH_BODY = {
    "regimen": "ipd", "protocol": "ipd-2l-3l", "mode": "dispensing", "date": "2026-11-22", "cycle": 2, "day": 1,
    "patient": {"id": "p-1", "age_years": 67, "sex": "female", "weight_kg": 70.5, "height_cm": 165,
                "on_dialysis": False, "smoker": False},
    "medications": [{"text": "Eliquis 5 mg PO BID"}, {"name": "apixaban", "dose": 5, "unit": "mg"}],
    "labs": {"anc": {"value": 1.8, "unit": "10*9/L"}, "bilirubin_total": {"value": 0.8, "unit": "mg/dL", "uln": 1.2}},
    "current_doses": {"ixazomib": 4, "pomalidomide": 4.0},
}


def ordered(value):
    """A value with each dict as its list of items: equal only when the key order is the same too."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return (type(value).__name__, value)


def outcome(load, body):
    try:
        return "ok", ordered(load(body))
    except ValidationError as err:
        return "error", err.messages


def schema_only(schema):
    """marshmallow's own load of this schema (the mixin skipped)."""
    return lambda body: Schema.load(schema, body)


# Values of every JSON kind, good and bad, including what the strict JSON reader lets through (NaN, huge ints).
JUNK = st.sampled_from([None, True, False, 0, 1, -1, 2, 2.0, 2.5, -0.0, 1e300, float("inf"), float("nan"), 10**20,
                        10**400, "", " ", "x", "1", "1.5", "true", "2026-11-22", "2026-13-01", "20261122",
                        "2026-W48-1", "1899-12-31", "2200-01-01", [], [1], {}, {"a": 1}])
NUMBER = (st.integers(min_value=-5, max_value=2000) | st.floats(min_value=-5, max_value=2000)
          | st.sampled_from([0, 0.0, 1, 30, 130, 130.0001, 260, 500, 500.5]))
DATE = st.dates(min_value=datetime.date(1890, 1, 1), max_value=datetime.date(2210, 1, 1)).map(str) | JUNK
TEXT = st.text(max_size=8) | st.sampled_from(["a" * 128, "a" * 129, "a" * 500, "a" * 501, "a" * 40, "a" * 41])


def of(strategy):
    return strategy | JUNK


def dict_of(fields_, extra=True):
    """Dicts of some of these keys (sometimes an unknown one): {key: strategy}."""
    keys = list(fields_) + (["unknown_key"] if extra else [])
    return st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: fields_.get(k, JUNK) for k in chosen})) | JUNK


LAB = dict_of({"value": of(NUMBER), "unit": of(TEXT), "uln": of(NUMBER), "lln": of(NUMBER), "date": DATE})
MEDICATION = dict_of({"text": of(TEXT), "name": of(TEXT), "dose": of(NUMBER), "unit": of(TEXT), "route": of(TEXT),
                      "frequency": of(TEXT), "last_dose_date": DATE, "rxcui": of(TEXT),
                      "investigational": of(st.booleans())})
BODY = dict_of({
    "regimen": of(st.sampled_from(["ipd", "other"])), "protocol": of(TEXT),
    "mode": of(st.sampled_from(["dispensing", "screening", "Dispensing"])),
    "date": DATE, "screening_date": DATE, "registration_date": DATE, "c1d1_date": DATE,
    "cycle": of(st.integers(min_value=-1, max_value=1002)), "day": of(st.integers(min_value=-1, max_value=44)),
    "patient": dict_of({"id": of(TEXT), "age_years": of(NUMBER), "sex": of(st.sampled_from(["female", "male", "F"])),
                        "weight_kg": of(NUMBER), "height_cm": of(NUMBER), "on_dialysis": of(st.booleans()),
                        "smoker": of(st.booleans()), "child_pugh_class": of(st.sampled_from(["A", "B", "C", "D"])),
                        "contact_lens_use": of(st.booleans())}),
    "medications": of(st.lists(MEDICATION, max_size=4)),
    "medication_text": of(TEXT),
    "labs": dict_of({key: LAB for key in ("anc", "platelets", "creatinine", "bilirubin_total")}),
    "current_doses": of(st.dictionaries(st.sampled_from(["ixazomib", "pomalidomide", "warfarin"]), of(NUMBER),
                                        max_size=3)),
    "toxicities": dict_of({"peripheral_neuropathy_grade": of(st.integers(-1, 6)), "febrile_neutropenia": JUNK,
                           "ocular_grade": of(st.integers(-1, 5)), "eye_exam_date": DATE}),
    "serology": dict_of({"hbsag": of(st.sampled_from(["positive", "negative", "x"])),
                         "hbv_dna": of(st.sampled_from(["detectable", "undetectable"]))}),
})




def near(low, high):
    """Numbers inside [low, high] and just outside it, as ints and floats."""
    edges = [low, high, low - 1, high + 1, low + 0.5, high - 0.5, float(low), float(high)]
    return st.sampled_from(edges) | st.integers(int(low), int(high)) | st.floats(low, high)


def some_of(fields_, required=()):
    """Dicts of the required keys and some of the others, every value drawn from its (mostly valid) strategy."""
    optional = [k for k in fields_ if k not in required]
    return st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: fields_[k] for k in [*required, *chosen]}))


ISO = st.dates(min_value=datetime.date(1899, 12, 30), max_value=datetime.date(2200, 1, 2)).map(str)
SHORT = st.text(min_size=1, max_size=12)
GOOD_LAB = some_of({"value": near(-1, 200000), "unit": st.sampled_from(["mg/dL", "10*9/L", "", "u" * 41]),
                    "uln": near(0, 5), "lln": near(0, 5), "date": ISO}, required=("value", "unit"))
GOOD_BODY = some_of({
    "regimen": st.just("ipd"), "protocol": SHORT, "mode": st.sampled_from(["dispensing", "screening"]),
    "date": ISO, "screening_date": ISO, "registration_date": ISO, "c1d1_date": ISO,
    "cycle": near(1, 1000).filter(lambda v: type(v) is int), "day": st.integers(0, 43),
    "patient": some_of({"id": SHORT, "age_years": near(0, 130), "sex": st.sampled_from(["female", "male"]),
                        "weight_kg": near(1, 500), "height_cm": near(30, 260), "on_dialysis": st.booleans(),
                        "smoker": st.booleans(), "child_pugh_class": st.sampled_from(["A", "B", "C"]),
                        "contact_lens_use": st.booleans()}),
    "medications": st.lists(st.fixed_dictionaries({"text": st.text(min_size=1, max_size=30)})
                            | some_of({"name": SHORT, "dose": near(0, 100), "unit": st.just("mg"),
                                       "route": st.just("PO"), "last_dose_date": ISO, "investigational":
                                       st.booleans()}, required=("name",)), max_size=5),
    "medication_text": st.text(max_size=40),
    "labs": some_of({key: GOOD_LAB for key in ("anc", "platelets", "creatinine", "bilirubin_total", "qtc_ms")}),
    "current_doses": st.dictionaries(st.sampled_from(["ixazomib", "pomalidomide", "dexamethasone"]), near(0, 40)),
    "toxicities": some_of({"peripheral_neuropathy_grade": st.integers(0, 6), "febrile_neutropenia": st.booleans(),
                           "ocular_grade": st.integers(0, 5), "eye_exam_date": ISO}),
    "serology": some_of({"hbsag": st.sampled_from(["positive", "negative"]),
                         "hbv_dna": st.sampled_from(["detectable", "undetectable"])}),
}, required=("regimen",))


def paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*path, index))


@st.composite
def one_bad_value(draw):
    """A mostly valid body with one value anywhere in it replaced by a value of another kind."""
    body = draw(GOOD_BODY)
    path = draw(st.sampled_from(list(paths(body))[1:]))
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = draw(JUNK)
    return body


@settings(max_examples=1000, deadline=None)
@given(BODY)
def test_any_body_loads_or_is_refused_exactly_as_the_schema_does(body):
    schema = CheckRequestSchema(regimens=REGIMENS)
    assert outcome(schema.load, body) == outcome(schema_only(schema), body)


@settings(max_examples=1500, deadline=None)
@given(GOOD_BODY | one_bad_value())
def test_near_valid_bodies_load_or_are_refused_exactly_as_the_schema_does(body):
    schema = CheckRequestSchema(regimens=REGIMENS)
    assert outcome(schema.load, body) == outcome(schema_only(schema), body)


@pytest.mark.parametrize("body", [BENCH_BODY, *(json.loads(path.read_text())["request"] for path in CASES)],
                         ids=["bench", *(path.stem for path in CASES)])
def test_golden_and_bench_bodies_load_the_same(body):
    schema = CheckRequestSchema(regimens=REGIMENS)
    assert outcome(schema.load, body) == outcome(schema_only(schema), body)


def test_the_common_body_is_loaded_by_the_compiled_code(monkeypatch):
    """A test that can fail: the fast path is really taken for the shape most checks have."""
    schema = CheckRequestSchema(regimens=REGIMENS)
    expected = schema_only(schema)(BENCH_BODY)

    def refuse(*_args, **_kwargs):
        raise AssertionError("marshmallow's load was used")

    monkeypatch.setattr(Schema, "load", refuse)
    assert ordered(schema.load(BENCH_BODY)) == ordered(expected)


def test_most_golden_bodies_take_the_compiled_code():
    schema = CheckRequestSchema(regimens=REGIMENS)
    fast = compile_schema(schema)
    taken = 0
    for path in CASES:
        try:
            fast(json.loads(path.read_text())["request"])
            taken += 1
        except GiveUp:
            pass
    assert taken >= 0.9 * len(CASES)


def test_a_schema_level_refusal_is_the_schemas_own_error():
    body = {**BENCH_BODY, "current_doses": {"warfarin": 5}}
    with pytest.raises(GiveUp):
        compile_schema(CheckRequestSchema(regimens=REGIMENS))(body)
    with pytest.raises(ValidationError) as err:
        CheckRequestSchema(regimens=REGIMENS).load(body)
    assert "warfarin" in err.value.messages["current_doses"]


class Unusual(FastLoad, Schema):
    plain = fields.String()
    pattern = fields.String(validate=validate.Regexp(r"^a+$"))
    email = fields.Email()


def test_a_field_it_does_not_know_goes_to_the_schema():
    """Unknown validators and field types are not guessed at: bodies giving them are loaded by marshmallow."""
    fast = compile_schema(Unusual())
    assert fast({"plain": "x"}) == {"plain": "x"}
    for body in ({"pattern": "aaa"}, {"email": "a@b.org"}):
        with pytest.raises(GiveUp):
            fast(body)
        assert Unusual().load(body) == body
    with pytest.raises(ValidationError):
        Unusual().load({"pattern": "b"})


class Hooked(FastLoad, Schema):
    value = fields.Integer()

    @validates_schema(pass_original=True)
    def _look_at_the_original(self, data, original, **_):
        if original.get("value") == 3:
            raise ValidationError("no threes")


def test_a_schema_with_hooks_it_cannot_run_is_not_compiled():
    with pytest.raises(NotCompilable):
        compile_schema(Hooked())
    assert Hooked().load({"value": 2}) == {"value": 2}
    with pytest.raises(ValidationError):
        Hooked().load({"value": 3})


def test_subclasses_are_compiled_only_when_they_say_what_they_load_as():
    assert schemas.LabField.loads_as is fields.Nested
    assert schemas.MedicationList.loads_as is fields.List

    class Custom(fields.String):
        def _deserialize(self, value, attr, data, **kwargs):
            return value.upper()

    with pytest.raises(NotCompilable):
        fastload._field(Custom())
