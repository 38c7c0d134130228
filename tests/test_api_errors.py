"""One JSON error shape for every refusal; API keys; readiness; the command-line check."""

import json
import os
import stat
import subprocess
import sys

import pytest

from safetycheck import create_app
from safetycheck.seal import SealError

from .conftest import API_KEY, BOTH_ENGINES, MIGRATIONS, ROOT, keyed_client, make_app, raw_sql
from .test_api_checks import BASE

ENGINES = BOTH_ENGINES  # every test with an audit store runs on SQLite and on PostgreSQL
FIRST_MIGRATION = {"sqlite": "0001_create_checks_and_reviews", "postgresql": "0001_create_audit_tables"}


def assert_error(response, code):
    assert response.status_code == code
    assert response.is_json, response.data[:200]
    assert response.json["code"] == code and response.json["status"]
    return response.json


def test_malformed_json_is_400(client):
    body = assert_error(client.post("/api/v1/checks", data="{not json", content_type="application/json"), 400)
    assert "JSON" in json.dumps(body)


def test_not_json_is_415(client):
    assert_error(client.post("/api/v1/checks", data="regimen=ipd", content_type="text/plain"), 415)


def test_unknown_path_is_404_and_wrong_method_405(client):
    assert_error(client.get("/api/v1/nothing-here"), 404)
    assert_error(client.delete("/api/v1/checks"), 405)


def test_body_over_the_limit_is_413(client):
    huge = json.dumps({**BASE, "medication_text": "x" * (1024 * 1024 + 10)})
    assert_error(client.post("/api/v1/checks", data=huge, content_type="application/json"), 413)


def test_validation_error_is_422_per_field(client):
    body = assert_error(client.post("/api/v1/checks", json={"mode": "dispensing"}), 422)
    assert body["errors"]["json"]["regimen"] == ["Missing data for required field."]


def test_unexpected_error_is_a_json_500(kb, db_url):
    app = make_app(kb, db_url)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/api/v1/boom-test")
    def boom():
        raise RuntimeError("boom")

    app.config["TESTING"] = False
    assert_error(keyed_client(app).get("/api/v1/boom-test"), 500)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "nope"}, {"Authorization": "Bearer nope"},
                                     {"Authorization": f"Basic {API_KEY}"}])
def test_missing_or_bad_key_is_401(app, headers):
    response = app.test_client().post("/api/v1/checks", json=BASE, headers=headers)
    assert_error(response, 401)


def test_bearer_key_is_accepted(app):
    response = app.test_client().post("/api/v1/match", json={"names": ["aspirin"]},
                                      headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200


def test_health_and_docs_need_no_key(app):
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json["status"] == "ready"
    assert client.get("/api/openapi.json").json["openapi"].startswith("3.")
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"/api/openapi.json" in docs.data and b"cdn" not in docs.data.lower()


def test_without_configured_keys_a_key_is_generated_owner_only(kb, tmp_path, capsys):
    config = {"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "a.db"),
              "INSTANCE_PATH": str(tmp_path / "instance")}
    app = create_app(config)
    key_file = tmp_path / "instance" / "api_key"
    key = key_file.read_text(encoding="utf-8").strip()
    assert f"created API key {key}" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert app.test_client().get("/api/v1/regimens").status_code == 401
    assert app.test_client().get("/api/v1/regimens", headers={"X-API-Key": key}).status_code == 200
    again = create_app(config)
    assert again.extensions["safetycheck_keys"] == {key: "instance-key"}
    assert "created API key" not in capsys.readouterr().out


def test_dev_mode_opens_the_api(kb, tmp_path):
    app = make_app(kb, tmp_path / "a.db", API_KEYS="", DEV="1")
    assert app.test_client().get("/api/v1/regimens").status_code == 200


def test_readyz_is_503_until_migrated(kb, db_url, tmp_path):
    app = create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": db_url, "API_KEYS": "t:k",
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and "migrate" in response.json["reason"]


def test_migrate_command_applies_then_reports_up_to_date(kb, engine, db_url, tmp_path):
    app = create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": db_url, "API_KEYS": "t:k",
                      "MIGRATIONS_PATH": MIGRATIONS, "INSTANCE_PATH": str(tmp_path / "instance")})
    first = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert FIRST_MIGRATION[engine] in first.output
    assert "up to date" in app.test_cli_runner().invoke(args=["db", "migrate"]).output


def test_command_line_check_prints_the_api_json(tmp_path):
    request = tmp_path / "req.json"
    request.write_text(json.dumps(BASE), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "safetycheck", "check", str(request)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verdict"] == "pass"
    text = subprocess.run([sys.executable, "-m", "safetycheck", "check", "-", "--regimen", "ipd"], cwd=ROOT,
                          input="Cipro 500 mg BID\nzorbatrexine\n", capture_output=True, text=True, check=False)
    codes = {w["code"] for w in json.loads(text.stdout)["warnings"]}
    assert {"CYP1A2_STRONG_INHIBITOR", "UNMATCHED_MEDICATION"} <= codes
    bad = subprocess.run([sys.executable, "-m", "safetycheck", "check", "-", "--regimen", "nope"], cwd=ROOT,
                         input="aspirin\n", capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "regimen" in bad.stderr


# Issue 9 items 6-8 and 11-12: clinical input is never silently changed; HTTP details.

def post_raw(client, text, **headers):
    return client.post("/api/v1/checks", data=text, content_type="application/json", headers=headers)


def stored_count(app):
    return raw_sql(app, "SELECT count(*) AS n FROM checks")[0]["n"]


def test_a_duplicate_json_key_is_400_naming_it(app, client):
    body = json.dumps(BASE)[:-1] + ', "labs": {"anc": {"value": 0.3, "unit": "10*9/L"}, ' \
                                   '"anc": {"value": 5.0, "unit": "10*9/L"}}}'
    error = assert_error(post_raw(client, body), 400)
    assert "'anc'" in error["message"] and "anc" in error["errors"]["json"]
    assert stored_count(app) == 0


@pytest.mark.parametrize(("changes", "where"), [
    ({"toxicities": {"peripheral_neuropathy_grade": 1.7}}, ("toxicities", "peripheral_neuropathy_grade")),
    ({"toxicities": {"ocular_grade": 2.5}}, ("toxicities", "ocular_grade")),
    ({"cycle": 2.5}, ("cycle",)),
    ({"day": 8.5}, ("day",)),
    ({"cycle": True}, ("cycle",)),
    ({"current_doses": {"aspirin": 81}}, ("current_doses", "aspirin")),
    ({"current_doses": {"isatuximab": 10}}, ("current_doses", "isatuximab")),  # not a drug of IPD
    ({"toxicities": {"fatigue_grade": 2}}, ("toxicities", "fatigue_grade")),
    ({"patient": {**BASE["patient"], "age_years": 0}}, ("patient", "age_years")),
    ({"date": "9999-12-31"}, ("date",)),
    ({"labs": {**BASE["labs"], "anc": {"value": 2.5, "unit": "10*9/L", "date": "9999-12-30"}}},
     ("labs", "anc", "date")),
    ({"medications": [{"text": "aspirin 81 mg", "last_dose_date": "9999-12-31"}]}, ("medications", 0)),
])
def test_values_that_would_be_changed_or_crash_are_422_naming_the_field(app, client, changes, where):
    error = assert_error(client.post("/api/v1/checks", json={**BASE, **changes}), 422)
    node = error["errors"]["json"]
    for step in where:
        node = node[str(step) if isinstance(node, dict) and str(step) in node else step]
    assert node
    assert stored_count(app) == 0


def test_whole_numbers_written_with_a_point_zero_are_accepted(client):
    assert client.post("/api/v1/checks", json={**BASE, "cycle": 2.0, "day": 8.0}).status_code == 200


def test_json_nested_50000_deep_is_400(app, client):
    for text in ("[" * 50000 + "]" * 50000, '{"regimen": "ipd", "patient": ' + '{"a": ' * 50000 + "1" + "}" * 50001):
        error = assert_error(post_raw(client, text), 400)
        assert "nested too deeply" in error["message"]
    assert stored_count(app) == 0


@pytest.mark.parametrize("key", [None, "surrogate-key-1"])
def test_a_lone_surrogate_is_400_naming_the_field(app, client, key):
    headers = {"Idempotency-Key": key} if key else {}
    body = json.dumps({**BASE, "patient": {**BASE["patient"], "id": "p\ud800x"}})  # json.dumps escapes it
    error = assert_error(post_raw(client, body, **headers), 400)
    assert "patient.id" in error["message"]
    medications = json.dumps({**BASE, "medications": [{"text": "aspirin"}, {"text": "\udc00"}]})
    assert "medications.1.text" in assert_error(post_raw(client, medications, **headers), 400)["message"]
    assert stored_count(app) == 0


def test_a_surrogate_pair_is_text_and_accepted(client):
    body = json.dumps({**BASE, "patient": {**BASE["patient"], "id": "p-\U0001f600"}})
    assert post_raw(client, body).status_code == 200


def test_405_says_allow_and_401_says_www_authenticate(app, client):
    response = client.delete("/api/v1/checks")
    assert_error(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    unauthorised = app.test_client().get("/api/v1/regimens")
    assert_error(unauthorised, 401)
    assert "Bearer" in unauthorised.headers["WWW-Authenticate"]


def test_an_overlong_url_is_a_json_414(client):
    assert_error(client.get("/api/v1/checks?code=" + "A" * 5000), 414)


def test_the_openapi_document_declares_the_key_and_what_the_code_enforces(client):
    doc = client.get("/api/openapi.json").json
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer"
    assert {"ApiKey": []} in doc["security"]
    schemas = doc["components"]["schemas"]
    uln = schemas["Lab"]["properties"]["uln"]
    assert uln["minimum"] == 0 and uln["exclusiveMinimum"] is True
    assert "overridden" in schemas["ReviewRequest"]["properties"]["note"]["description"]


@pytest.mark.parametrize("query", ["since=2026-01-01junk", "until=2026-13-01", "since=2026-01-01T25:00",
                                   "verdict=pass&verdict=block", "page=1&page=2", "colour=red", "code=A%25"])
def test_bad_queue_filters_are_422(client, query):
    assert_error(client.get(f"/api/v1/checks?{query}"), 422)


def test_queue_dates_and_times_that_are_whole_are_accepted(client):
    for query in ("since=2026-01-01", "since=2026-01-01T10:00", "until=2026-01-01T10:00:00.123456%2B02:00"):
        assert client.get(f"/api/v1/checks?{query}").status_code == 200, query


def test_an_underscore_in_a_code_filter_matches_literally(client):
    flagged = client.post("/api/v1/checks", json={**BASE, "medications": [{"text": "Cipro 500 mg"}]}).json
    assert "CYP1A2_STRONG_INHIBITOR" in {w["code"] for w in flagged["warnings"]}
    assert client.get("/api/v1/checks?code=CYP1A2_STRONG_INHIBITOR").json["total"] == 1
    assert client.get("/api/v1/checks?code=CYP1A2XSTRONG_INHIBITOR").json["total"] == 0
    assert client.get("/api/v1/checks?code=CYP1A2_STRONG_INHIBITO_").json["total"] == 0


# Issue 9 item 10: keys.

def test_a_key_that_looks_like_a_number_stays_text(kb, tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYCHECK_API_KEYS", "1e3")
    app = create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "a.db")})
    assert app.extensions["safetycheck_keys"] == {"1e3": "key-1"}
    assert app.test_client().get("/api/v1/regimens", headers={"X-API-Key": "1e3"}).status_code == 200
    assert app.test_client().get("/api/v1/regimens", headers={"X-API-Key": "1000.0"}).status_code == 401


def test_processes_starting_at_once_agree_on_the_generated_key(tmp_path):
    folder = tmp_path / "instance"
    code = f"from safetycheck.auth import instance_key; print(instance_key({str(folder)!r})[0])"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    keys = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert keys == {(folder / "api_key").read_text(encoding="utf-8").strip()} and "" not in keys
    assert [p.name for p in folder.iterdir()] == ["api_key"]  # no temporary file left behind


def test_a_key_file_others_can_write_is_refused(kb, tmp_path):
    config = {"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "a.db"),
              "INSTANCE_PATH": str(tmp_path / "instance")}
    create_app(config)
    os.chmod(tmp_path / "instance" / "api_key", 0o666)
    with pytest.raises(SealError, match="chmod 600"):
        create_app(config)


def test_dev_mode_warns_loudly_at_start(kb, tmp_path, capsys, caplog):
    make_app(kb, tmp_path / "a.db", API_KEYS="", DEV="1")
    assert "API is OPEN" in capsys.readouterr().err
    assert any("API is OPEN" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
