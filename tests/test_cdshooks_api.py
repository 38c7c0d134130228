"""CDS Hooks 2.0 over HTTP: discovery, order-sign / order-select cards, fetch path, 400/412, audit, feedback."""

import copy
import json
import sqlite3

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from . import cds_fixtures as f
from . import cds_helpers as h
from .conftest import API_KEY, BOTH_ENGINES, make_app, raw_sql
from .fhir_stub import StubFhir
from .test_web import PASSWORD, signed_in

BASE = "http://localhost"
SIGN = "/cds-services/safetycheck-order-sign"
SELECT = "/cds-services/safetycheck-order-select"
ENGINES = BOTH_ENGINES  # hook calls, feedback and the card index on SQLite and on PostgreSQL


@pytest.fixture(scope="module")
def key():
    return h.new_key()


def cds_app(kb, db_url, key, **client):
    registration = {"jwks": h.jwks_for(key), **client}
    return make_app(kb, db_url, CDS_CLIENTS={h.ISSUER: registration}, CDS_BASE_URL=BASE)


@pytest.fixture()
def app(kb, db_url, key):
    return cds_app(kb, db_url, key)


def post(client, key, path, body, **token_args):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {h.token(key, BASE + path, **token_args)}"}
    return client.post(path, data=raw, headers=auth, content_type="application/json")


def by_rule(cards):
    return {c["source"]["topic"]["display"].split()[0]: c for c in cards}


def test_discovery_lists_order_select_order_sign_and_patient_view(app):
    body = app.test_client().get("/cds-services").json
    hooks = {s["hook"]: s for s in body["services"]}
    assert set(hooks) == {"order-select", "order-sign", "patient-view"}
    prefetch = hooks["order-sign"]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "status=active" in prefetch["medicationRequests"] and "MedicationStatement?" in prefetch[
        "medicationStatements"]
    assert "http://loinc.org|751-8" in prefetch["labs"] and "http://loinc.org|14631-6" in prefetch["labs"]
    assert "code=http://loinc.org|72166-2" in prefetch["smoking"]


def test_order_sign_cards_from_a_lenient_request(app, key):
    """Ciprofloxacin (RxNorm) with IPD (pomalidomide by text, ixazomib via a contained Medication): the
    catalogue's pom-cyp1a2-strong (major -> warning, reduce pomalidomide to 2 mg) and dex-cyp3a-moderate-inhibitor
    (minor -> info); on_dialysis is not in FHIR here, so the renal rules say they were not assessed."""
    response = post(app.test_client(), key, SIGN, f.order_sign())
    assert response.status_code == 200, response.data
    cards = response.json["cards"]
    for card in cards:
        h.assert_card_shape(card)
    rules = by_rule(cards)
    pom = rules["pom-cyp1a2-strong"]
    assert pom["indicator"] == "warning" and pom["selectionBehavior"] == "any"
    assert "NCPDP DUR:** reason for service (439-E4) DD, clinical significance (528-FS) 1" in pom["detail"]
    assert "MedicationRequest/cipro-1 (RxNorm 309309)" in pom["detail"]
    assert "Labs used (newest within 14 days):** anc (Observation/anc, LOINC 751-8" in pom["detail"]
    [suggestion] = pom["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == "pom-1"
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2
    MedicationRequest.model_validate(action["resource"])  # what we emit is strict R4(B)
    assert rules["dex-cyp3a-moderate-inhibitor"]["indicator"] == "info"
    assert pom["overrideReasons"][0]["system"] == "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
    assert pom["links"][0]["url"].startswith(f"{BASE}/review/")
    assert pom["source"]["url"] == f"{BASE}/cds-services/rules#pom-cyp1a2-strong"
    assert "pom-cyp1a2-moderate" not in rules  # strong by the label, not repeated as moderate
    assert any("on_dialysis" in c["summary"] for c in cards)


def test_each_call_is_stored_as_a_cds_hooks_check_before_cards_go_out(app, key):
    client = app.test_client()
    response = post(client, key, SIGN, f.order_sign())
    check_id = response.json["cards"][0]["links"][0]["url"].rsplit("/", 1)[1]
    [row] = raw_sql(app, "SELECT channel, request_json FROM checks WHERE check_id = ?", [check_id])
    channel, request_json = row["channel"], row["request_json"]
    assert channel == "cds-hooks"
    stored = json.loads(request_json)
    assert stored["regimen"] == "ipd" and stored["patient"]["id"].startswith("fhir-")
    assert "pat-1" not in request_json  # the chart id is pseudonymised
    assert stored["patient"]["weight_kg"] == 70 and stored["labs"]["bilirubin_total"]["uln"] == 21


def test_the_card_link_opens_the_stored_check_as_a_page_behind_the_login(app, key):
    link = post(app.test_client(), key, SIGN, f.order_sign()).json["cards"][0]["links"][0]
    assert link["type"] == "absolute" and link["url"].startswith(f"{BASE}/review/")
    path, check_id = link["url"][len(BASE):], link["url"].rsplit("/", 1)[1]
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["user", "create", "audrey", "--role", "auditor", "--password-stdin"],
                         input=PASSWORD + "\n").exit_code == 0
    page = signed_in(app, "audrey").get(path)
    assert page.status_code == 200 and page.mimetype == "text/html" and check_id in page.get_data(as_text=True)


def test_order_select_only_cards_for_the_selection_with_the_same_uuid_and_topic(app, key):
    client = app.test_client()
    sign = by_rule(post(client, key, SIGN, f.order_sign()).json["cards"])
    select = by_rule(post(client, key, SELECT, f.order_select()).json["cards"])
    assert set(select) == {"pom-cyp1a2-strong", "dex-cyp3a-moderate-inhibitor"}  # about ciprofloxacin
    for rule, card in select.items():
        assert card["uuid"] == sign[rule]["uuid"]
        assert card["source"]["topic"] == sign[rule]["source"]["topic"]
        assert card["suggestions"][0]["uuid"] == sign[rule]["suggestions"][0]["uuid"] if "suggestions" in card else 1
    aspirin_only = post(client, key, SELECT, f.order_select(selections=["MedicationRequest/none"])).json
    assert aspirin_only == {"cards": []}


def test_no_myeloma_regimen_drug_means_no_cards(app, key):
    body = f.order_sign()
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    body["prefetch"]["medicationRequests"] = f.searchset(
        {"resourceType": "MedicationRequest", "id": "d", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "dexamethasone 4 MG Oral Tablet"}})
    assert post(app.test_client(), key, SIGN, body).json == {"cards": []}


def test_an_unrecognised_regimen_is_a_warning_not_silence(app, key):
    body = f.order_sign()
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][:1]  # pomalidomide only
    [card] = post(app.test_client(), key, SIGN, body).json["cards"]
    assert card["indicator"] == "warning" and "not recognised" in card["summary"]
    h.assert_card_shape(card)


def test_a_client_can_pin_the_regimen(kb, db_url, key):
    app = cds_app(kb, db_url, key, regimen="ipd")
    body = f.order_sign()
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][:1]
    cards = post(app.test_client(), key, SIGN, body).json["cards"]
    assert cards and not any("not recognised" in c["summary"] for c in cards)


@pytest.mark.parametrize("raw", [b"{\"hook\": ", b"\xff\xfe{}"])
def test_malformed_json_or_not_utf8_is_400(app, key, raw):
    response = post(app.test_client(), key, SIGN, raw)
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"


def test_a_byte_order_mark_and_top_level_extension_are_accepted(app, key):
    raw = b"\xef\xbb\xbf" + json.dumps(f.order_sign()).encode()
    assert post(app.test_client(), key, SIGN, raw).status_code == 200


@pytest.mark.parametrize("change", [
    lambda b: b.pop("hookInstance"), lambda b: b.update(hook="patient-view"), lambda b: b.pop("context"),
    lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}),
])
def test_a_request_that_breaks_the_spec_is_400(app, key, change):
    body = f.order_sign()
    change(body)
    assert post(app.test_client(), key, SIGN, body).status_code == 400


def test_missing_required_prefetch_without_a_server_is_412(app, key):
    body = f.order_sign()
    del body["prefetch"]["medicationRequests"]
    response = post(app.test_client(), key, SIGN, body)
    assert response.status_code == 412
    assert "medicationRequests" in response.json["issue"][0]["diagnostics"]


def test_an_operation_outcome_in_prefetch_counts_as_not_prefetched(app, key):
    body = f.order_sign()
    body["prefetch"]["medicationRequests"] = {"resourceType": "OperationOutcome", "issue": []}
    assert post(app.test_client(), key, SIGN, body).status_code == 412


def _stub_routes():
    return {
        "/fhir/Patient/pat-1": f.patient(),
        "/fhir/MedicationRequest": f.active_meds(),
        "/fhir/MedicationStatement": {"resourceType": "Bundle", "type": "searchset", "total": 0},
        "/fhir/Observation": {"resourceType": "Bundle", "type": "searchset",
                              "entry": f.ipd_labs()["entry"] + f.weight()["entry"]},
    }


def test_missing_prefetch_is_fetched_from_the_fhir_server_with_the_token(kb, db_url, key):
    with StubFhir(_stub_routes()) as stub:
        app = cds_app(kb, db_url, key, fhir_servers=[stub.base])
        body = f.order_sign(fhirServer=stub.base, fhirAuthorization={
            "access_token": "opaque-access-token", "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.read", "subject": "cds-service", "patient": "pat-1"})
        del body["prefetch"]
        response = post(app.test_client(), key, SIGN, body)
        assert response.status_code == 200, response.data
        assert "pom-cyp1a2-strong" in by_rule(response.json["cards"])
        assert {r["authorization"] for r in stub.requests} == {"Bearer opaque-access-token"}
        assert any(r["path"].startswith("/fhir/Observation?patient=pat-1&category=laboratory") for r in stub.requests)
        assert "opaque-access-token" not in raw_sql(app, "SELECT request_json FROM checks")[0]["request_json"]


def test_fhir_server_errors_for_required_data_are_412(kb, db_url, key):
    with StubFhir(_stub_routes(), status=500) as stub:
        app = cds_app(kb, db_url, key, fhir_servers=[stub.base])
        body = f.order_sign(fhirServer=stub.base)
        del body["prefetch"]
        assert post(app.test_client(), key, SIGN, body).status_code == 412


def test_an_unregistered_fhir_server_is_never_fetched(kb, db_url, key):
    with StubFhir(_stub_routes()) as stub:
        app = cds_app(kb, db_url, key)  # no fhir_servers registered
        body = f.order_sign(fhirServer=stub.base)
        del body["prefetch"]
        assert post(app.test_client(), key, SIGN, body).status_code == 412
        assert stub.requests == []


def test_null_prefetch_means_no_data_and_missing_labs_are_said(app, key):
    body = f.order_sign()
    body["prefetch"]["labs"] = None
    cards = post(app.test_client(), key, SIGN, body).json["cards"]
    summaries = " ".join(c["summary"] for c in cards)
    assert "labs." in summaries  # MISSING_LAB cards: not assessed, never a silent pass


def test_audit_store_failure_answers_one_unavailable_card(app, key, monkeypatch):
    from safetycheck import audit

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit, "record_check", broken)
    [card] = post(app.test_client(), key, SIGN, f.order_sign()).json["cards"]
    assert card["summary"] == "Safety check unavailable, review manually." and card["indicator"] == "warning"


def test_a_retried_hook_instance_is_answered_from_the_store(app, key):
    client = app.test_client()
    body = f.order_sign()
    first = post(client, key, SIGN, body).json
    second = post(client, key, SIGN, copy.deepcopy(body)).json
    assert first == second
    assert raw_sql(app, "SELECT count(*) AS n FROM checks") == [{"n": 1}]


def test_feedback_spec_and_ehr_shapes_batched_and_repeated_are_stored_once(app, key):
    client = app.test_client()
    cards = by_rule(post(client, key, SIGN, f.order_sign()).json["cards"])
    pom, dex = cards["pom-cyp1a2-strong"], cards["dex-cyp3a-moderate-inhibitor"]
    check_id = pom["links"][0]["url"].rsplit("/", 1)[1]
    feedback = {"feedback": [
        {"card": pom["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": pom["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2026-12-02T10:00:00Z"},
        {"card": dex["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T10:01:00Z",
         "overrideReason": {"reason": pom["overrideReasons"][5], "userComment": "short course, monitoring"}},
    ]}
    path = SIGN + "/feedback"
    first = post(client, key, path, feedback)
    assert first.status_code == 200 and first.json["stored"] == 2
    again = post(client, key, path, feedback).json
    assert again == {"stored": 0, "already_stored": 2, "unknown_cards": []}
    ehr = {"feedback": [{"card": dex["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T11:00:00Z",
                         "overrideReasons": [{"reason": {"code": "risk-benefit-ratio", "system":
                                                         pom["overrideReasons"][5]["system"],
                                                         "display": "Recipient assessment of risk/benefit ratio"}}]},
                        {"card": "00000000-0000-0000-0000-000000000000", "outcome": "accepted",
                         "outcomeTimestamp": "2026-12-02T11:00:00Z"}]}
    result = post(client, key, path, ehr).json
    assert result["stored"] == 1 and result["unknown_cards"] == ["00000000-0000-0000-0000-000000000000"]
    reviews = [(r["decision"], r["note"], r["reviewer"]) for r in raw_sql(
        app, "SELECT decision, note, reviewer FROM reviews WHERE check_id = ? ORDER BY seq", [check_id])]
    assert [r[0] for r in reviews] == ["accepted", "overridden", "overridden"]
    assert "risk-benefit-ratio" in reviews[1][1] and "short course" in reviews[1][1]
    assert reviews[0][2] == f"cds-hooks:{h.ISSUER}"
    stored = client.get(f"/api/v1/checks/{check_id}", headers={"X-API-Key": API_KEY}).json
    assert [r["decision"] for r in stored["reviews"]] == ["accepted", "overridden", "overridden"]


def test_feedback_without_card_or_outcome_is_400(app, key):
    response = post(app.test_client(), key, SIGN + "/feedback", {"feedback": [{"outcome": "ignored"}]})
    assert response.status_code == 400


def test_patient_view_checks_the_active_list(app, key):
    body = f.order_sign(hook="patient-view")
    body["context"] = {"userId": "Practitioner/dr-1", "patientId": "pat-1"}
    body["prefetch"]["medicationRequests"] = f.searchset(*[e["resource"] for e in f.draft_orders()["entry"]
                                                           if e["resource"].get("id")])
    response = post(app.test_client(), key, "/cds-services/safetycheck-patient-view", body)
    assert response.status_code == 200
    rules = by_rule(response.json["cards"])
    assert "pom-cyp1a2-strong" in rules and "suggestions" not in rules["pom-cyp1a2-strong"]  # no draft to change


def test_the_smoking_status_observation_decides_the_cyp1a2_smoking_warning(app, key):
    """Pomalidomide is a CYP1A2 substrate: a current smoker gets pom-cyp1a2-inducer; a never smoker gets no such
    card and no 'not assessed' for patient.smoker; without the Observation it says it could not check."""
    client = app.test_client()
    smoker = f.order_sign()
    smoker["prefetch"]["smoking"] = f.searchset(f.smoking_status("449868002"))
    cards = post(client, key, SIGN, smoker).json["cards"]
    assert "pom-cyp1a2-inducer" in by_rule(cards)
    assert "tobacco smoke" in by_rule(cards)["pom-cyp1a2-inducer"]["detail"]
    never = f.order_sign()
    never["prefetch"]["smoking"] = f.searchset(f.smoking_status("266919005"))
    cards = post(client, key, SIGN, never).json["cards"]
    assert "pom-cyp1a2-inducer" not in by_rule(cards)
    assert not any("patient.smoker" in c["summary"] + c.get("detail", "") for c in cards)
    unknown = f.order_sign()
    del unknown["prefetch"]["smoking"]  # not sent, and no FHIR server to fetch it from
    cards = post(client, key, SIGN, unknown).json["cards"]
    assert any("patient.smoker" in c["summary"] + c.get("detail", "") for c in cards)
    assert any("smoking: not prefetched" in c.get("detail", "") for c in cards)


def test_summary_is_cut_at_a_word_to_140_characters():
    from safetycheck.cdshooks.cards import summary

    text = "pomalidomide " * 20 + "end."
    cut = summary(text)
    assert len(cut) <= 140 and cut.endswith("…") and "pomalidomid…" not in cut


def test_an_unknown_service_is_404(app, key):
    assert post(app.test_client(), key, "/cds-services/nope", f.order_sign()).status_code == 404


def test_the_invariant_checker_itself_catches_broken_cards():
    broken = {"uuid": "x", "summary": "s", "indicator": "info", "source": {"label": "l"},
              "suggestions": [{"label": "a", "actions": [{"type": "delete", "resource": {"resourceType": "X"}}]}],
              "overrideReasons": [{"code": "c"}], "links": [{"label": "l", "url": "u", "type": "absolute",
                                                             "appContext": "x"}]}
    assert set(h.invariant_failures(broken)) == {
        "cds-resp-4 at card", "cds-resp-6 at card", "cds-resp-5 at suggestions[0]",
        "cds-resp-2 at suggestions[0].actions[0]", "cds-resp-3 at links[0]"}


def test_error_bodies_are_valid_operation_outcomes(app, key):
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    body = f.order_sign()
    del body["prefetch"]["medicationRequests"]
    OperationOutcome.model_validate(post(app.test_client(), key, SIGN, body).json)
