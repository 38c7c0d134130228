"""Property-based fuzzing of every operation in /api/openapi.json, in-process (WSGI), with schemathesis.

Each operation gets a bounded number of generated requests, valid ones (positive) and invalid ones (negative);
every answer must be no 5xx and must match the response schema the document declares for its status code.
Two steered variants reach past the first refusal: checks whose regimen, protocol and lab units are real (so
the pipeline and the audit write run), and the {check_id} operations on a check that is stored.

Not ``@schema.parametrize()``: on pytest >= 9.2 every item it makes gets the same node id (the operation is
dropped from it), and ``schemathesis.pytest.from_fixture`` fails outright (it writes ``request.node._nodeid``).
So the schema is loaded at import time from an app of its own (tests/conftest.py's make_app on a temporary
database) and each operation x mode is a plain pytest parameter driving a Hypothesis ``@given``.
"""

import json
import os
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from safetycheck.knowledge import load_knowledge_base  # noqa: E402

from .conftest import API_KEY, DATA_DIR, ROOT, make_app  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("SAFETYCHECK_FUZZ_EXAMPLES", "25"))  # per operation and mode; raise it to dig
HEADERS = {"X-API-Key": API_KEY}
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.data_too_large])

_TMP = tempfile.TemporaryDirectory(prefix="safetycheck-fuzz-")  # removed at module teardown (or at exit)
KB = load_knowledge_base(DATA_DIR)
APP = make_app(KB, Path(_TMP.name) / "audit.db")
SCHEMA = schemathesis.openapi.from_wsgi("/api/openapi.json", APP)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
BY_LABEL = {op.label: op for op in OPERATIONS}
PROTOCOLS_OF = {regimen: sorted(k for k, p in KB.protocols.items() if p["regimen"] == regimen)
                for regimen in KB.regimens}


@pytest.fixture(scope="module", autouse=True)
def _remove_tmp_db():
    yield
    _TMP.cleanup()


@pytest.fixture(scope="module")
def stored_check_id():
    """One real check in the fuzz app's audit store, for the {check_id} operations."""
    case = json.loads(next((ROOT / "tests" / "cases").glob("001-*.json")).read_text(encoding="utf-8"))
    response = APP.test_client().post("/api/v1/checks", json=case["request"], headers=HEADERS)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["check_id"]


def _fuzz(strategy, steer=None):
    @given(case=strategy, data=st.data())
    @FUZZ_SETTINGS
    def run(case, data):
        if steer is not None:
            steer(case, data)
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    run()


def test_the_document_lists_the_contract_operations():
    assert {"POST /api/v1/checks", "GET /api/v1/checks", "GET /api/v1/checks/{check_id}",
            "POST /api/v1/checks/{check_id}/reviews", "POST /api/v1/match"} <= set(BY_LABEL)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_every_operation_answers_within_its_schema(operation, mode):
    try:
        _fuzz(operation.as_strategy(generation_mode=mode))
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{operation.label} has no input that can be made invalid")


def _real_regimen_protocol_and_units(case, data):
    """Keep the generated body, but with a known regimen, a matching protocol (or none) and accepted lab units."""
    body = case.body
    body["regimen"] = regimen = data.draw(st.sampled_from(sorted(KB.regimens)), label="regimen")
    protocol = data.draw(st.sampled_from([None, *PROTOCOLS_OF[regimen]]), label="protocol")
    if protocol is None:
        body.pop("protocol", None)
    else:
        body["protocol"] = protocol
    for key, lab in (body.get("labs") or {}).items():
        spec = KB.labs[key]
        unit = data.draw(st.sampled_from(sorted(spec["units"])), label=f"{key} unit")
        low, high = spec["bounds"]
        lab["unit"] = unit
        lab["value"] = data.draw(st.floats(low / spec["units"][unit], high / spec["units"][unit]),
                                 label=f"{key} value")


def test_checks_with_a_real_regimen_reach_the_pipeline_and_answer_within_the_schema():
    _fuzz(BY_LABEL["POST /api/v1/checks"].as_strategy(), steer=_real_regimen_protocol_and_units)


@pytest.mark.parametrize("label", ["GET /api/v1/checks/{check_id}", "POST /api/v1/checks/{check_id}/reviews"])
def test_operations_on_a_stored_check_answer_within_the_schema(label, stored_check_id):
    _fuzz(BY_LABEL[label].as_strategy(path_parameters={"check_id": stored_check_id}))


# Shapes schemathesis does not generate, which gave 5xx before issue 9: deep nesting, zero age, dates at the end of
# the calendar, lone UTF-16 surrogates in any string, duplicate keys, fractions in integer fields; integers too
# long for a float in any number field (a 500 in the whole-number fields until issue 12's property test).

def _base_check():
    return json.loads(next((ROOT / "tests" / "cases").glob("001-*.json")).read_text(encoding="utf-8"))["request"]


def _string_paths(value, path=()):
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_paths(item, (*path, index))


def _set(body, path, value):
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def hostile_bodies(draw):
    """(raw JSON text, headers) for a real check body with one hostile change."""
    body = _base_check()
    shape = draw(st.sampled_from(["deep", "age", "date", "surrogate", "duplicate", "fraction", "huge"]), label="shape")
    if shape == "deep":
        depth = draw(st.integers(2000, 60000), label="depth")
        key = draw(st.sampled_from(["patient", "labs", "current_doses", "medications", "toxicities"]))
        text = json.dumps({**body, key: None}).replace('null', "[" * depth + "]" * depth, 1)
    else:
        if shape == "age":
            body.setdefault("patient", {})["age_years"] = draw(st.sampled_from([0, 0.0, -0.0, -1]))
        elif shape == "date":
            day = draw(st.dates(min_value=__import__("datetime").date(9990, 1, 1)))
            where = draw(st.sampled_from(["date", "lab", "medication"]))
            if where == "date":
                body["date"] = day.isoformat()
            elif where == "lab":
                next(iter(body["labs"].values()))["date"] = day.isoformat()
            else:
                body["medications"] = [{"text": "aspirin 81 mg", "last_dose_date": day.isoformat()}]
        elif shape == "surrogate":
            path = draw(st.sampled_from(sorted(_string_paths(body), key=repr)), label="string field")
            lone = chr(draw(st.integers(0xD800, 0xDFFF)))
            _set(body, path, draw(st.sampled_from(["", "x"])) + lone)
        elif shape == "fraction":
            field = draw(st.sampled_from(["cycle", "day", "peripheral_neuropathy_grade", "ocular_grade"]))
            value = draw(st.floats(0.01, 4.99).filter(lambda v: not v.is_integer()))
            (body.setdefault("toxicities", {}) if field.endswith("grade") else body)[field] = value
        elif shape == "huge":
            field = draw(st.sampled_from(["cycle", "day", "peripheral_neuropathy_grade", "ocular_grade", "age_years",
                                          "weight_kg", "lab", "current_dose"]))
            value = draw(st.sampled_from([1, -1])) * 10 ** draw(st.integers(309, 4000))
            if field.endswith("grade"):
                body.setdefault("toxicities", {})[field] = value
            elif field in ("age_years", "weight_kg"):
                body.setdefault("patient", {})[field] = value
            elif field == "lab":
                next(iter(body["labs"].values()))["value"] = value
            elif field == "current_dose":
                body["current_doses"] = {"pomalidomide": value}
            else:
                body[field] = value
        text = json.dumps(body)
        if shape == "duplicate":
            key = draw(st.sampled_from(sorted(body)), label="duplicated key")
            text = text[:-1] + f", {json.dumps(key)}: {json.dumps(body[key])}}}"
    headers = dict(HEADERS)
    if draw(st.booleans(), label="idempotency key"):
        headers["Idempotency-Key"] = f"fuzz-{draw(st.integers(0, 10**9))}"
    return text, headers


@given(case=hostile_bodies())
@FUZZ_SETTINGS
def test_hostile_check_bodies_get_a_4xx_never_a_5xx(case):
    text, headers = case
    response = APP.test_client().post("/api/v1/checks", data=text, content_type="application/json", headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.get_json()["code"] == response.status_code
