"""Audit store: stored before answered, append-only, hash-chained, idempotent, reviewable, exportable."""

import csv
import json
import sqlite3

import pytest

from safetycheck import audit
from safetycheck.db import connect

from .test_api_checks import BASE


def post_check(client, body=None, **headers):
    return client.post("/api/v1/checks", json=body or BASE, headers=headers)


def rows(app, table="checks"):
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_answered_check_is_stored_with_request_response_and_ruleset(app, client, kb):
    answer = post_check(client).json
    stored = client.get(f"/api/v1/checks/{answer['check_id']}").json
    assert stored["response"] == answer
    assert stored["request"]["regimen"] == "ipd"
    assert stored["ruleset_version"] == kb.version
    assert stored["api_client"] == "tester"
    assert stored["reviews"] == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({**BASE, "regimen": "xyz"}, {}, 422),
        ({**BASE, "labs": {"anc": {"value": 1, "unit": "furlongs"}}}, {}, 422),
        (BASE, {"X-API-Key": "wrong"}, 401),
    ],
)
def test_refused_request_writes_nothing(app, client, body, headers, status):
    assert post_check(client, body, **headers).status_code == status
    assert rows(app) == 0


def test_audit_write_failure_gives_no_advice(app, client):
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON checks BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    response = post_check(client)
    assert response.status_code == 503
    assert "no advice" in response.json["message"]
    assert "warnings" not in response.json and "verdict" not in response.json


@pytest.mark.parametrize("statement", ["UPDATE checks SET verdict = 'pass'", "DELETE FROM checks",
                                       "UPDATE reviews SET note = 'x'", "DELETE FROM reviews"])
def test_database_refuses_updates_and_deletes(app, client, statement):
    check_id = post_check(client).json["check_id"]
    client.post(f"/api/v1/checks/{check_id}/reviews", json={"decision": "accepted"})
    with sqlite3.connect(app.config["DATABASE"]) as conn, pytest.raises(sqlite3.IntegrityError,
                                                                        match="append-only"):
        conn.execute(statement)


def test_tables_are_strict_and_wal(app):
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'checks'").fetchone()[0]
    assert ddl.rstrip().endswith("STRICT")


def _tamper(app, sql, params=()):
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        conn.execute("DROP TRIGGER checks_no_update")
        conn.execute("DROP TRIGGER checks_no_delete")
        conn.execute(sql, params)


def test_verify_passes_then_names_an_altered_row(app, client, runner_for):
    ids = [post_check(client).json["check_id"] for _ in range(3)]
    ok = runner_for(app).invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "3 checks" in ok.output
    _tamper(app, "UPDATE checks SET verdict = 'block' WHERE check_id = ?", (ids[1],))
    bad = runner_for(app).invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert f"row 2 (check_id {ids[1]}) was altered" in bad.output


def test_verify_names_a_missing_row(app, client, runner_for):
    ids = [post_check(client).json["check_id"] for _ in range(3)]
    _tamper(app, "DELETE FROM checks WHERE check_id = ?", (ids[1],))
    bad = runner_for(app).invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert "rows 2..2 are missing" in bad.output and ids[2] in bad.output


def test_export_csv(app, client, runner_for, tmp_path):
    check_id = post_check(client).json["check_id"]
    target = tmp_path / "audit.csv"
    result = runner_for(app).invoke(args=["audit", "export", "--csv", str(target)])
    assert result.exit_code == 0
    with target.open(newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["check_id"] for r in exported] == [check_id]
    assert json.loads(exported[0]["response_json"])["check_id"] == check_id


def test_idempotent_retry_returns_the_first_answer_and_stores_nothing_new(app, client):
    first = post_check(client, **{"Idempotency-Key": "retry-1"}).json
    again = post_check(client, **{"Idempotency-Key": "retry-1"}).json
    assert again == first
    assert rows(app) == 1
    other = post_check(client, {**BASE, "day": 9}, **{"Idempotency-Key": "retry-1"})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json["errors"]["headers"]
    assert rows(app) == 1


def test_queue_filters_and_paging(client):
    passed = post_check(client).json["check_id"]
    flagged = post_check(client, {**BASE, "medications": [{"text": "aspirin 81 mg"}, {"text": "Cipro 500 mg"}]}).json
    assert flagged["verdict"] == "review"
    queue = client.get("/api/v1/checks").json
    assert [c["check_id"] for c in queue["items"]] == [flagged["check_id"], passed]
    assert queue["total"] == 2
    by_verdict = client.get("/api/v1/checks?verdict=pass").json["items"]
    assert [c["check_id"] for c in by_verdict] == [passed]
    by_code = client.get("/api/v1/checks?code=CYP1A2_STRONG_INHIBITOR").json["items"]
    assert [c["check_id"] for c in by_code] == [flagged["check_id"]]
    client.post(f"/api/v1/checks/{passed}/reviews", json={"decision": "accepted"})
    assert [c["check_id"] for c in client.get("/api/v1/checks?reviewed=true").json["items"]] == [passed]
    assert [c["check_id"] for c in client.get("/api/v1/checks?reviewed=false").json["items"]] == [flagged["check_id"]]
    page = client.get("/api/v1/checks?per_page=1&page=2").json
    assert [c["check_id"] for c in page["items"]] == [passed]
    assert client.get("/api/v1/checks?since=2999-01-01").json["total"] == 0


def test_reviews(client):
    check_id = post_check(client).json["check_id"]
    missing_note = client.post(f"/api/v1/checks/{check_id}/reviews", json={"decision": "overridden"})
    assert missing_note.status_code == 422
    assert "note" in missing_note.json["errors"]["json"]
    review = client.post(f"/api/v1/checks/{check_id}/reviews",
                         json={"decision": "overridden", "note": "benefit outweighs risk"})
    assert review.status_code == 201 and review.json["reviewer"] == "tester"
    assert client.get(f"/api/v1/checks/{check_id}").json["reviews"][0]["decision"] == "overridden"
    assert client.post("/api/v1/checks/nope/reviews", json={"decision": "accepted"}).status_code == 404


def test_unknown_check_is_404(client):
    response = client.get("/api/v1/checks/does-not-exist")
    assert response.status_code == 404 and response.json["code"] == 404


def test_chain_links_rows(app, client):
    for _ in range(2):
        post_check(client)
    db = connect(app.config["DATABASE"])
    first, second = list(db.query("SELECT prev_hash, row_hash FROM checks ORDER BY seq"))
    assert first["prev_hash"] == audit.GENESIS and second["prev_hash"] == first["row_hash"]
    db.conn.close()
