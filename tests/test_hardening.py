"""Issue 9: the audit store's file faults, readiness, and the database's permissions (in-process, real SQLite)."""

import os
import sqlite3
import stat
from pathlib import Path

from safetycheck.db import get_db

from .conftest import keyed_client, make_app
from .test_api_checks import BASE


def stored_ids(path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT check_id FROM checks")]


def remove_database(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def test_a_deleted_database_refuses_checks_and_nothing_recreates_it(app, client, runner_for):
    assert client.post("/api/v1/checks", json=BASE).status_code == 200
    path = app.config["DATABASE"]
    remove_database(path)
    refused = client.post("/api/v1/checks", json=BASE)
    assert refused.status_code == 503, refused.json
    assert "deleted or replaced" in refused.json["message"] and "verdict" not in refused.json
    ready = client.get("/readyz")
    assert ready.status_code == 503
    verify = runner_for(app).invoke(args=["audit", "verify"])
    assert verify.exit_code == 2 and "does not exist" in verify.output
    assert not os.path.exists(path)  # neither /readyz nor audit verify created an empty database


def test_a_replaced_database_refuses_checks_and_is_never_adopted(app, client, kb, tmp_path):
    first = client.post("/api/v1/checks", json=BASE).json["check_id"]
    other = tmp_path / "other.db"
    make_app(kb, other)  # migrated, empty: what an operator's mistake or an attacker would put there
    path = app.config["DATABASE"]
    remove_database(path)
    os.replace(other, path)
    for _ in range(2):  # the second request opens a new connection: the swapped file is still refused
        refused = client.post("/api/v1/checks", json=BASE)
        assert refused.status_code == 503 and "deleted or replaced" in refused.json["message"]
    assert client.get("/readyz").status_code == 503
    assert stored_ids(path) == [] and first  # nothing went into the replacement


def test_readyz_is_503_when_the_database_cannot_be_written(app, client):
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        get_db().conn.execute("PRAGMA query_only = ON")  # SQLite's own read-only refusal, as on a read-only file
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "cannot be written" in ready.json["reason"]
    refused = client.post("/api/v1/checks", json=BASE)
    assert refused.status_code == 503 and "read-only" in refused.json["message"]
    assert stored_ids(app.config["DATABASE"]) == []


def test_readyz_is_503_when_the_disk_is_nearly_full(kb, tmp_path):
    app = make_app(kb, tmp_path / "a.db", READY_MIN_FREE_BYTES=2**62)  # more than any disk has free
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and "disk" in ready.json["reason"] and "full" in ready.json["reason"]


def test_a_full_disk_is_a_503_logged_as_a_full_disk(app, client, caplog):
    with app.app_context():
        conn = get_db().conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite then answers SQLITE_FULL, as on a full disk
    refused = client.post("/api/v1/checks", json={**BASE, "medication_text": "aspirin 81 mg\n" * 400})
    assert refused.status_code == 503 and "full" in refused.json["message"]
    assert any("disk holding the audit database is full" in r.getMessage() for r in caplog.records)
    assert stored_ids(app.config["DATABASE"]) == []


def test_the_database_and_its_wal_and_shm_are_owner_only(app, client):
    assert client.post("/api/v1/checks", json=BASE).status_code == 200
    path = app.config["DATABASE"]
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}.anchor"):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name


def test_phi_responses_are_not_cached_or_sniffed(client):
    for response in (client.post("/api/v1/checks", json=BASE), client.get("/api/v1/checks"),
                     client.post("/api/v1/checks", json={"regimen": "nope"})):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_new_connection_sees_the_database_it_first_opened(app, client):
    """The identity check costs one stat per request: a fresh app on the same file works as before."""
    assert client.post("/api/v1/checks", json=BASE).status_code == 200
    assert keyed_client(app).post("/api/v1/checks", json=BASE).status_code == 200
