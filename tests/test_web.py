"""The web pages through Flask's test client: sign-in, CSRF, the form, results, roles, review, CSV, users CLI."""

import csv
import io
import json
import re

import pytest

from safetycheck import create_app
from safetycheck.web import ConfigurationError, PageSessions, forms

from .conftest import BOTH_ENGINES, make_app, raw_sql

ENGINES = BOTH_ENGINES  # the web pages, review queue and users CLI on SQLite and on PostgreSQL

PASSWORD = "correct horse battery"
LIST = "1. Cipro 500 mg PO BID\n\n- ASA 81mg daily\n* metfromin 500 mg BID\nzorbatrexine 10 mg\n"


@pytest.fixture()
def web_app(kb, db_url):
    app = make_app(kb, db_url, WTF_CSRF_ENABLED=True)
    runner = app.test_cli_runner()
    for name, role in (("alice", "clinician"), ("audrey", "auditor"), ("bob", "clinician")):
        done = runner.invoke(args=["user", "create", name, "--role", role, "--password-stdin"], input=PASSWORD + "\n")
        assert done.exit_code == 0, done.output
    return app


def token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def signed_in(app, name):
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token(page)})
    assert response.status_code == 302
    return client


def form_data(client, **changes):
    page = client.get("/")
    data = {"csrf_token": token(page), "regimen": "ipd", "mode": "dispensing", "date": "2026-11-22",
            "cycle": "2", "day": "8", "patient_id": "p1", "age_years": "67", "sex": "female", "weight_kg": "70",
            "lab_anc_value": "2.5", "lab_anc_unit": "10*9/L", "lab_platelets_value": "180",
            "lab_platelets_unit": "10*9/L", "lab_creatinine_value": "0.9", "lab_creatinine_unit": "mg/dL",
            "lab_bilirubin_total_value": "0.6", "lab_bilirubin_total_unit": "mg/dL",
            "lab_bilirubin_total_uln": "1.2", "medication_text": LIST}
    data.update(changes)
    return data


def test_pages_need_sign_in_and_wrong_password_is_refused(web_app):
    client = web_app.test_client()
    assert client.get("/").status_code == 302
    page = client.get("/login")
    wrong = client.post("/login", data={"name": "alice", "password": "nope", "csrf_token": token(page)})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.get_data(as_text=True)


def test_the_api_and_probes_neither_read_nor_set_the_session_cookie(web_app):
    client = signed_in(web_app, "alice")  # holds a valid session cookie
    assert client.get("/").status_code == 200
    assert isinstance(web_app.session_interface, PageSessions)
    for path in ("/healthz", "/api/v1/regimens", "/api/openapi.json", "/cds-services"):
        response = client.get(path)
        assert "Set-Cookie" not in response.headers, path
    # a signed-in clinician is not an API client: the API still wants its key
    assert client.get("/api/v1/regimens").status_code == 401
    assert client.get("/").status_code == 200  # and the page session is untouched


def test_login_without_csrf_token_is_refused(web_app):
    client = web_app.test_client()
    client.get("/login")
    assert client.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 400


def test_repeated_failures_lock_the_account(web_app, monkeypatch):
    from safetycheck.web import views

    monkeypatch.setattr(views, "FAILED_SIGNIN_DELAY", 0)
    client = web_app.test_client()
    for _ in range(5):
        client.post("/login", data={"name": "bob", "password": "wrong", "csrf_token": token(client.get("/login"))})
    login = {"name": "bob", "password": PASSWORD, "csrf_token": token(client.get("/login"))}
    locked = client.post("/login", data=login)
    assert locked.status_code == 401 and "locked" in locked.get_data(as_text=True)


def test_a_web_check_is_stored_with_channel_and_user_and_shows_every_line(web_app):
    client = signed_in(web_app, "alice")
    response = client.post("/", data=form_data(client))
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "ciprofloxacin" in html and "metformin" in html and "zorbatrexine" in html
    assert "could not be identified" in html
    assert raw_sql(web_app, "SELECT channel, api_client FROM checks") == [{"channel": "web", "api_client": "alice"}]


def test_a_bad_unit_is_shown_next_to_its_field_and_the_input_is_kept(web_app):
    client = signed_in(web_app, "alice")
    response = client.post("/", data=form_data(client, lab_anc_unit="furlongs"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="lab_anc_unit-error"' in html and "furlongs" in html
    assert "zorbatrexine" in html  # the pasted list is kept
    assert raw_sql(web_app, "SELECT count(*) AS n FROM checks") == [{"n": 0}]


def test_clinicians_see_their_own_checks_only_and_not_review(web_app):
    alice = signed_in(web_app, "alice")
    location = alice.post("/", data=form_data(alice)).headers["Location"]
    bob = signed_in(web_app, "bob")
    assert bob.get(location).status_code == 403
    assert bob.get("/review").status_code == 403
    assert signed_in(web_app, "audrey").get(location).status_code == 200


def test_edit_and_check_again_refills_the_form(web_app):
    client = signed_in(web_app, "alice")
    check_id = client.post("/", data=form_data(client)).headers["Location"].rsplit("/", 1)[1]
    html = client.get(f"/?from={check_id}").get_data(as_text=True)
    assert "zorbatrexine" in html and 'value="70.0"' in html


def test_review_override_needs_a_reason_and_csv_has_the_rows(web_app):
    alice = signed_in(web_app, "alice")
    check_id = alice.post("/", data=form_data(alice)).headers["Location"].rsplit("/", 1)[1]
    audrey = signed_in(web_app, "audrey")
    page = audrey.get(f"/review/{check_id}")
    refused = audrey.post(f"/review/{check_id}", data={"decision": "overridden", "note": "", "csrf_token": token(page)})
    assert refused.status_code == 422 and "needs a reason" in refused.get_data(as_text=True)
    done = audrey.post(f"/review/{check_id}", data={"decision": "overridden", "note": "checked with the team",
                                                     "csrf_token": token(page)})
    assert done.status_code == 302
    html = audrey.get(f"/review/{check_id}").get_data(as_text=True)
    assert "checked with the team" in html and "audrey" in html
    queue = audrey.get("/review?verdict=review&decision=overridden").get_data(as_text=True)
    assert check_id in queue and "intact" in queue and "<svg" in queue
    exported = audrey.get("/review/export.csv?decision=overridden").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["check_id"], r["api_client"], r["decision"]) for r in rows] == [(check_id, "alice", "overridden")]
    assert audrey.get("/review/export.csv?decision=accepted").get_data(as_text=True).count("\n") == 1


def test_preview_reads_each_line(web_app):
    client = signed_in(web_app, "alice")
    page = client.get("/")
    response = client.post("/preview", data={"medication_text": LIST}, headers={"X-CSRFToken": token(page)})
    assert [r["status"] for r in response.json["results"]] == ["matched", "matched", "matched", "unmatched"]


def test_the_secret_key_is_required_outside_dev_mode(kb, tmp_path, monkeypatch):
    monkeypatch.delenv("SAFETYCHECK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SAFETYCHECK_SECRET_KEY"):
        create_app({"KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "a.db"), "API_KEYS": "t:k"})


def test_user_list_and_disable(web_app):
    runner = web_app.test_cli_runner()
    assert runner.invoke(args=["user", "disable", "bob"]).exit_code == 0
    listing = runner.invoke(args=["user", "list"]).output
    assert "bob\tclinician\tdisabled" in listing and "audrey\tauditor\tactive" in listing
    client = web_app.test_client()
    login = {"name": "bob", "password": PASSWORD, "csrf_token": token(client.get("/login"))}
    refused = client.post("/login", data=login)
    assert refused.status_code == 401


# -- the inputs the API took that the form lacked: window anchors, HBV serology, three-way answers ------------
def last_check(app) -> tuple[dict, dict]:
    """The newest stored check's (request, response), read back from the audit database."""
    [row] = raw_sql(app, "SELECT request_json, response_json FROM checks ORDER BY seq DESC LIMIT 1")
    return tuple(v if isinstance(v, dict) else json.loads(v) for v in (row["request_json"], row["response_json"]))


def isa_screening(client, **changes):
    """A screening check for the isatuximab-belantamab protocol (contact lenses, HBV DNA, eye exam)."""
    return form_data(client, regimen="isa-bela-pom-dex", protocol="nct05922501", mode="screening",
                     medication_text="aspirin 81 mg daily\n", **changes)


def test_window_anchor_dates_reach_the_request_and_the_window_counts_from_them(web_app):
    client = signed_in(web_app, "alice")
    pix = {"protocol": "pix-emd-pcl", "mode": "screening", "medication_text": "rifampin 600 mg daily\n"}
    assert client.post("/", data=form_data(client, **pix)).status_code == 302
    request, response = last_check(web_app)
    assert "registration_date" not in request
    [inducer] = [w for w in response["warnings"] if w["kind"] == "protocol_exclusion"]
    assert "registration_date not given: counted from date 2026-11-22" in inducer["message"]

    dates = {"registration_date": "2026-11-25", "screening_date": "2026-11-10", "c1d1_date": "2026-12-01"}
    assert client.post("/", data=form_data(client, **pix, **dates)).status_code == 302
    request, response = last_check(web_app)
    assert {k: request[k] for k in dates} == dates
    [inducer] = [w for w in response["warnings"] if w["kind"] == "protocol_exclusion"]
    assert "counted from registration_date 2026-11-25" in inducer["message"]


def test_hbsag_positive_and_contact_lenses_yes_make_the_patient_ineligible(web_app):
    client = signed_in(web_app, "alice")
    data = isa_screening(client, serology_hbsag="positive", serology_anti_hbc="negative", contact_lens_use="yes",
                         tox_ocular_grade="0", tox_eye_exam_date="2026-11-01")
    assert client.post("/", data=data).status_code == 302
    request, response = last_check(web_app)
    assert request["serology"] == {"hbsag": "positive", "anti_hbc": "negative"}
    assert request["patient"]["contact_lens_use"] is True
    assert request["toxicities"] == {"ocular_grade": 0, "eye_exam_date": "2026-11-01"}
    fired = {w["rule_id"] for w in response["warnings"]}
    assert {"isa-hbsag", "isa-contact-lenses"} <= fired and response["verdict"] == "block"


def test_a_question_not_answered_is_sent_as_absent_and_is_reported_not_assessed(web_app):
    client = signed_in(web_app, "alice")
    data = isa_screening(client, contact_lens_use="", smoker="", on_dialysis="", serology_hbsag="negative")
    assert client.post("/", data=data).status_code == 302
    request, response = last_check(web_app)
    assert not {"contact_lens_use", "smoker", "on_dialysis"} & set(request["patient"])
    assert "patient.contact_lens_use" in response["missing"]
    assert any(w["code"] == "MISSING_PATIENT_DATA" and w["field"] == "patient.contact_lens_use"
               for w in response["warnings"])

    data = isa_screening(client, contact_lens_use="no", smoker="no", on_dialysis="no", serology_hbsag="negative")
    assert client.post("/", data=data).status_code == 302
    request, response = last_check(web_app)
    assert {k: request["patient"][k] for k in ("contact_lens_use", "smoker", "on_dialysis")} == {
        "contact_lens_use": False, "smoker": False, "on_dialysis": False}
    assert "patient.contact_lens_use" not in response["missing"]
    assert "isa-contact-lenses" not in {w["rule_id"] for w in response["warnings"]}


def test_neuropathy_with_pain_is_three_way(web_app):
    client = signed_in(web_app, "alice")
    pix = {"protocol": "pix-emd-pcl", "mode": "screening", "tox_peripheral_neuropathy_grade": "2"}
    assert client.post("/", data=form_data(client, **pix)).status_code == 302
    request, response = last_check(web_app)
    assert "peripheral_neuropathy_with_pain" not in request["toxicities"]
    assert "toxicities.peripheral_neuropathy_with_pain" in response["missing"]
    assert client.post("/", data=form_data(client, **pix, tox_peripheral_neuropathy_with_pain="yes")).status_code == 302
    request, response = last_check(web_app)
    assert request["toxicities"]["peripheral_neuropathy_with_pain"] is True
    assert "pix-neuropathy-g2-pain" in {w["rule_id"] for w in response["warnings"]}


@pytest.mark.parametrize(("field", "value"), [("registration_date", "2026-02-30"), ("c1d1_date", "1800-01-01"),
                                              ("tox_eye_exam_date", "yesterday"), ("serology_hbsag", "maybe"),
                                              ("child_pugh_class", "D"), ("smoker", "sometimes")])
def test_a_bad_new_field_is_shown_next_to_it_and_everything_is_kept(web_app, field, value):
    client = signed_in(web_app, "alice")
    data = isa_screening(client, contact_lens_use="yes", serology_anti_hbc="positive", screening_date="2026-11-10")
    data[field] = value
    response = client.post("/", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(rf'id="{field}-error">[^<]+</span>', html)
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', html)
    if field in ("registration_date", "c1d1_date", "tox_eye_exam_date"):  # a choice not offered cannot be kept
        assert f'value="{value}"' in html  # what was entered is kept, wrong as it is
    assert re.search(r'id="contact_lens_use-yes" name="contact_lens_use" value="yes" checked', html)
    assert re.search(r'<option value="positive" selected>positive</option>', html)  # anti-HBc kept
    assert 'value="2026-11-10"' in html
    assert raw_sql(web_app, "SELECT count(*) AS n FROM checks") == [{"n": 0}]


def test_edit_and_check_again_refills_the_new_fields_and_the_result_shows_them(web_app):
    client = signed_in(web_app, "alice")
    data = isa_screening(client, registration_date="2026-11-20", c1d1_date="2026-12-01", contact_lens_use="no",
                         smoker="yes", serology_hbsag="negative", serology_anti_hbc="positive",
                         serology_hbv_dna="undetectable", tox_peripheral_neuropathy_with_pain="no",
                         tox_eye_exam_date="2026-11-02")
    location = client.post("/", data=data).headers["Location"]
    result = client.get(location).get_data(as_text=True)
    assert re.search(r'id="entered-registration_date">2026-11-20<', result)
    assert re.search(r'id="entered-contact_lens_use">no<', result)
    assert re.search(r'id="entered-on_dialysis"><span class="not-given">not given', result)
    assert re.search(r'id="entered-serology_hbv_dna">undetectable<', result)
    html = client.get(f"/?from={location.rsplit('/', 1)[1]}").get_data(as_text=True)
    for name, value in (("registration_date", "2026-11-20"), ("c1d1_date", "2026-12-01"),
                        ("tox_eye_exam_date", "2026-11-02")):
        assert re.search(rf'id="{name}" name="{name}" type="date" value="{value}"', html)
    for name, value in (("contact_lens_use", "no"), ("smoker", "yes"), ("on_dialysis", ""),
                        ("tox_peripheral_neuropathy_with_pain", "no")):
        assert re.search(rf'name="{name}" value="{value}" checked', html), name
    assert re.search(r'name="serology_hbv_dna">(?:(?!</select>).)*<option value="undetectable" selected>', html, re.S)


def test_form_and_request_body_round_trip(kb):
    body = {"regimen": "ipd", "mode": "screening", "date": "2026-11-22", "registration_date": "2026-11-25",
            "screening_date": "2026-11-10", "c1d1_date": "2026-12-01",
            "patient": {"smoker": False, "contact_lens_use": True, "child_pugh_class": "B"},
            "labs": {}, "current_doses": {}, "serology": {"hbsag": "negative", "hbv_dna": "detectable"},
            "toxicities": {"peripheral_neuropathy_grade": 2, "peripheral_neuropathy_with_pain": False,
                           "eye_exam_date": "2026-11-01"}}
    posted = {key: str(value) for key, value in forms.to_form(body).items()}  # what the refilled page posts
    again, errors = forms.to_body(posted, kb)
    assert errors == {} and again == body
