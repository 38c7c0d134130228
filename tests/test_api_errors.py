"""One JSON error shape for every refusal; API keys; readiness; the command-line check."""

import json
import os
import stat
import subprocess
import sys

import pytest

from safetycheck import create_app

from .conftest import API_KEY, MIGRATIONS, ROOT, keyed_client, make_app
from .test_api_checks import BASE


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


def test_unexpected_error_is_a_json_500(kb, tmp_path):
    app = make_app(kb, tmp_path / "a.db")
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


def test_readyz_is_503_until_migrated(kb, tmp_path):
    app = create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "new.db"),
                      "API_KEYS": "t:k"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and "migrate" in response.json["reason"]


def test_migrate_command_applies_then_reports_up_to_date(kb, tmp_path):
    app = create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "m.db"),
                      "API_KEYS": "t:k", "MIGRATIONS_PATH": MIGRATIONS})
    first = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert "0001_create_checks_and_reviews" in first.output
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
