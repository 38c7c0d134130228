"""The check service without Flask: hash once, idempotency, run, record before answering, fail closed."""

import json
import sqlite3

import pytest

from safetycheck import audit
from safetycheck.contract import v1
from safetycheck.db import apply_migrations, connect
from safetycheck.service import CheckRefused, CheckService, IdempotencyConflict, NotRecorded

from .conftest import MIGRATIONS
from .test_api_checks import BASE


@pytest.fixture()
def store(tmp_path):
    path = str(tmp_path / "audit.db")
    apply_migrations(path, MIGRATIONS)
    db = connect(path)
    yield db
    db.conn.close()


@pytest.fixture()
def service(checker):
    return CheckService(checker)


def submit(service, db, body=BASE, **kwargs):
    loaded = v1.load_body(body)
    return service.check(db, v1.to_request(loaded), loaded, **{"channel": "web", "client": "alice", **kwargs})


def test_a_check_is_stored_before_it_is_returned_with_channel_and_user(service, store):
    answer = submit(service, store)
    row = next(store.query("SELECT channel, api_client, response_json FROM checks"))
    assert (row["channel"], row["api_client"]) == ("web", "alice")
    assert row["response_json"] == answer.response_json
    assert json.loads(answer.response_json)["check_id"] == answer.check_id
    assert answer.result.verdict == answer.response["verdict"]


def test_the_request_is_hashed_once_even_with_an_idempotency_key(service, store, monkeypatch):
    calls = []
    real = audit.canonical_request
    monkeypatch.setattr(audit, "canonical_request", lambda body: calls.append(1) or real(body))
    submit(service, store, idempotency_key="k1")
    assert len(calls) == 1


def test_a_retry_replays_the_stored_bytes_and_another_body_is_refused(service, store):
    first = submit(service, store, idempotency_key="k1")
    again = submit(service, store, idempotency_key="k1")
    assert again.replayed and again.response_json == first.response_json
    with pytest.raises(IdempotencyConflict):
        submit(service, store, {**BASE, "day": 9}, idempotency_key="k1")
    assert store.execute("SELECT count(*) FROM checks").fetchone()[0] == 1


def test_an_unknown_unit_is_refused_and_nothing_is_stored(service, store):
    with pytest.raises(CheckRefused) as refused:
        submit(service, store, {**BASE, "labs": {"anc": {"value": 1, "unit": "furlongs"}}})
    assert "furlongs" in refused.value.errors["labs"]["anc"]["unit"][0]
    assert store.execute("SELECT count(*) FROM checks").fetchone()[0] == 0


def test_no_row_no_advice(service, store, tmp_path):
    with sqlite3.connect(store.conn.execute("PRAGMA database_list").fetchone()[2]) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON checks BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(NotRecorded):
        submit(service, store)


def test_web_pages_get_html_errors_and_the_api_keeps_json(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/api/v1/no-such-endpoint")
    assert api.status_code == 404 and api.json["code"] == 404
    cds = client.get("/cds-services/nothing-here")
    assert cds.status_code == 404 and cds.mimetype == "application/json"
