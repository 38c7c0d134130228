"""fast_canonical writes exactly canonical's text (the stored and hashed bytes), only faster."""

import datetime
import hashlib
import json
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safetycheck import audit, jsonform
from safetycheck.contract import v1
from safetycheck.jsonform import canonical, fast_canonical
from safetycheck.pipeline import run_check
from safetycheck.seal import Seal

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))
TEXT = st.text(st.characters(exclude_categories=["Cs"]))  # a lone surrogate is refused at the door
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**80, max_value=2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT | st.dates() | st.decimals(allow_nan=False))
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4)
                       | st.tuples(inner, inner), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(JSONISH)
def test_any_json_like_value_gets_the_same_text(value):
    assert fast_canonical(value) == canonical(value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.none() | TEXT | st.integers() | st.integers(min_value=-2**80, max_value=2**80)
                | st.text(st.characters(codec="utf-16", categories=["Cs", "Ll"])) | st.booleans() | st.floats(),
                max_size=8))
def test_a_rows_fields_get_the_same_text(values):
    """The row hash's payload (strings, None, integers; anything else handed on) is json's text."""
    try:
        expected = canonical(values)
    except ValueError:
        return
    assert jsonform.fast_canonical_fields(values) == expected or any(
        isinstance(v, float) and not math.isfinite(v) for v in values)  # NaN, infinity: the documented difference


def test_every_code_point_is_escaped_the_same_way():
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        chunk = points[start:start + 4096]
        assert fast_canonical(chunk) == canonical(chunk)
        assert fast_canonical("".join(chunk)) == canonical("".join(chunk))


@pytest.mark.parametrize("number", [1e-5, -5e-05, 2.5e-07, 1.2345e-9, 9.99e-5, 1e-4, 1e-10, 1e16, 1.5e300, 5e-324,
                                    0.1 + 0.2, -0.0, 2**64, -2**63 - 1, 2**100])
def test_numbers_orjson_words_differently_fall_back_to_json(number):
    value = {"v": number, "list": [number, str(number)]}
    assert fast_canonical(value) == canonical(value)
    assert fast_canonical(number) == canonical(number)  # a number alone, with nothing before it


def test_what_json_writes_by_str_is_written_by_str():
    class Tagged(str):
        pass

    class Measure(float):
        pass

    value = {"date": datetime.date(2026, 12, 3), "at": datetime.datetime(2026, 12, 3, 8, 0), "dec": Decimal("1.50"),
             "set": frozenset({1}), "tagged": Tagged("x"), Tagged("key"): Measure(2.5), "tiny": Measure(1e-5),
             "ints": {10: 1, 2: 1}}
    assert fast_canonical(value) == canonical(value)
    for write in (canonical, fast_canonical):  # keys json cannot sort: refused by both
        with pytest.raises(TypeError):
            write({1: "a", "b": "c"})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False) | TEXT | st.integers(), max_size=6))
def test_the_quick_look_for_differing_numbers_agrees_with_the_full_pattern(values):
    text = fast_canonical(values)
    assert jsonform._may_differ(text) == bool(jsonform._NUMBER_MAY_DIFFER.search(text))


def test_nan_is_the_one_documented_difference():
    assert canonical(float("nan")) == "NaN"  # not JSON at all
    assert fast_canonical(float("nan")) == "null"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_every_golden_response_is_stored_with_the_same_bytes(checker, path):
    case = json.loads(path.read_text(encoding="utf-8"))
    body = v1.load_body(case["request"], checker.kb)
    response = v1.response_body(run_check(checker, v1.to_request(body)), checker.kb, "0" * 32,
                                "2026-12-03T00:00:00.000001+00:00")
    assert fast_canonical(response) == canonical(response)
    assert not jsonform._may_differ(fast_canonical(response))  # the fast path, not json's
    assert fast_canonical(body) == canonical(body)
    # The stored request and its Idempotency-Key hash are what earlier versions (json's text) gave.
    assert audit.canonical_request(body) == (canonical(body), hashlib.sha256(canonical(body).encode()).hexdigest())


@pytest.mark.parametrize("prev", [audit.GENESIS, "ab" * 32])
def test_the_row_hash_made_ahead_of_the_turn_is_the_plain_row_hash(prev):
    seal = Seal(b"k" * 40, "/nonexistent/anchor")
    row = {f: f"{f} \u2028 \"quoted\" \\ é \x00" for f in audit.CHECK_FIELDS if f != "prev_hash"}
    row["protocol"] = None
    row["response_json"] = canonical({"x": [1.5, 1e-5, "ü"]})
    mac = audit._row_mac(row, audit.CHECK_FIELDS, seal)
    row["prev_hash"] = prev
    assert audit._chained_hash(mac, prev) == audit.row_hash(row, audit.CHECK_FIELDS, seal)
    # and the plain form is what it always was: json's text of the field list
    payload = json.dumps([row[f] for f in audit.CHECK_FIELDS], sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode()
    assert audit.row_hash(row, audit.CHECK_FIELDS, seal) == seal.row_hash(payload)
