"""Audit store: stored before answered, append-only, hash-chained, idempotent, reviewable, exportable."""

import csv
import json
import os
import sqlite3
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest

from safetycheck import audit
from safetycheck.db import connect
from safetycheck.seal import SLOT_BYTES, SealError

from .conftest import BOTH_ENGINES, keyed_client, make_app, raw_sql
from .test_api_checks import BASE

ENGINES = BOTH_ENGINES  # every test here runs on SQLite and on PostgreSQL unless marked sqlite_only


def post_check(client, body=None, **headers):
    return client.post("/api/v1/checks", json=body or BASE, headers=headers)


def rows(app, table="checks"):
    return raw_sql(app, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def anchor_file(app) -> Path:
    return Path(app.extensions["safetycheck_seal"].anchor_path)


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


@pytest.mark.sqlite_only
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
    with pytest.raises(Exception, match="append-only"):  # sqlite3.IntegrityError / psycopg RaiseException
        raw_sql(app, statement)


def test_postgresql_refuses_truncate(app, client, engine):
    if engine != "postgresql":
        return  # SQLite has no TRUNCATE: its DELETE trigger covers it
    post_check(client)
    for table in ("checks", "reviews", "audit_meta"):
        with pytest.raises(Exception, match="append-only"):
            raw_sql(app, f"TRUNCATE {table} CASCADE")
    assert rows(app) == 1


@pytest.mark.sqlite_only
def test_tables_are_strict_and_wal(app):
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'checks'").fetchone()[0]
    assert ddl.rstrip().endswith("STRICT")


def _tamper(app, sql, params=()):
    raw_sql(app, sql, params, tamper=True)


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


def test_until_a_date_takes_in_that_whole_day_as_the_auditors_page_does(client):
    check = client.get(f"/api/v1/checks/{post_check(client).json['check_id']}").json
    day, moment = check["created_at"][:10], check["created_at"]
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    assert client.get(f"/api/v1/checks?until={day}").json["total"] == 1  # was 0: created_at < "YYYY-MM-DD"
    assert client.get(f"/api/v1/checks?until={before}").json["total"] == 0
    assert client.get(f"/api/v1/checks?since={day}&until={day}").json["total"] == 1
    # A date-time stays exclusive, to the microsecond.
    assert client.get("/api/v1/checks", query_string={"until": moment}).json["total"] == 0
    assert client.get("/api/v1/checks", query_string={"since": moment}).json["total"] == 1


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
    first, second = raw_sql(app, "SELECT prev_hash, row_hash FROM checks ORDER BY seq")
    assert first["prev_hash"] == audit.GENESIS and second["prev_hash"] == first["row_hash"]


# Keyed chain + anchor (issue 9 item 3): every attack below verified as OK before the anchor and the key.

def _verify(app, runner_for, *args):
    result = runner_for(app).invoke(args=["audit", "verify", *args])
    return result.exit_code, result.output


def _sha256_rechain(app):
    """What an attacker without the key can do: recompute every row's hash (plain sha256) and relink the chain."""
    previous = audit.GENESIS
    stored = raw_sql(app, "SELECT * FROM checks ORDER BY seq")
    raw_sql(app, "UPDATE checks SET prev_hash = 'x' || seq", tamper=True)  # PostgreSQL: prev_hash is UNIQUE
    for row in stored:
        row["prev_hash"] = previous
        row["row_hash"] = audit.row_hash(row, audit.CHECK_FIELDS)
        raw_sql(app, "UPDATE checks SET prev_hash = ?, row_hash = ?, key_id = NULL WHERE seq = ?",
                [row["prev_hash"], row["row_hash"], row["seq"]], tamper=True)
        previous = row["row_hash"]


def test_deleting_the_last_row_is_truncation(app, client, runner_for):
    ids = [post_check(client).json["check_id"] for _ in range(3)]
    _tamper(app, "DELETE FROM checks WHERE check_id = ?", (ids[2],))
    code, output = _verify(app, runner_for)
    assert code == 1 and "truncated: rows 3..3 are gone" in output


def test_deleting_every_row_is_truncation(app, client, runner_for):
    for _ in range(2):
        post_check(client)
    _tamper(app, "DELETE FROM checks")
    code, output = _verify(app, runner_for)
    assert code == 1 and "truncated: rows 1..2 are gone" in output


def test_an_appended_forged_row_is_found(app, client, runner_for):
    post_check(client)
    row = raw_sql(app, "SELECT * FROM checks")[0]
    row.update(seq=2, check_id="forged", prev_hash=row["row_hash"], verdict="pass", key_id=None)
    row["row_hash"] = audit.row_hash(row, audit.CHECK_FIELDS)
    raw_sql(app, f"INSERT INTO checks ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    code, output = _verify(app, runner_for)
    assert code == 1 and "row 2 (check_id forged) has no keyed hash after keyed rows (forged)" in output


def test_a_row_rewritten_with_its_hashes_recomputed_is_found(app, client, runner_for):
    ids = [post_check(client).json["check_id"] for _ in range(2)]
    _tamper(app, "UPDATE checks SET verdict = 'block' WHERE check_id = ?", (ids[0],))
    _sha256_rechain(app)
    code, output = _verify(app, runner_for)
    assert code == 1
    assert "row 2 does not match the anchor (rewritten)" in output


@pytest.mark.sqlite_only
def test_a_swapped_database_is_found(app, client, runner_for, kb, tmp_path):
    post_check(client)
    other = make_app(kb, tmp_path / "other.db")  # a different, valid audit database with a check of its own
    keyed_client(other).post("/api/v1/checks", json=BASE)
    with sqlite3.connect(tmp_path / "other.db") as source, sqlite3.connect(tmp_path / "copy.db") as target:
        source.backup(target)  # a consistent single file, WAL folded in
    for suffix in ("-wal", "-shm"):
        Path(app.config["DATABASE"] + suffix).unlink(missing_ok=True)
    os.replace(tmp_path / "copy.db", app.config["DATABASE"])
    code, output = _verify(app, runner_for)
    assert code == 1 and "swapped database" in output


def test_a_dropped_append_only_trigger_is_found(app, client, runner_for, engine):
    post_check(client)
    raw_sql(app, "DROP TRIGGER reviews_no_delete" + (" ON reviews" if engine == "postgresql" else ""))
    code, output = _verify(app, runner_for)
    assert code == 1 and "append-only trigger reviews_no_delete was dropped" in output


def test_a_rolled_back_anchor_is_found_with_an_exported_one(app, client, runner_for, tmp_path, engine):
    for _ in range(2):
        post_check(client)
    anchor_path = anchor_file(app)
    old_anchor = anchor_path.read_bytes()  # an attacker's copy of the anchor at row 2
    post_check(client)
    exported = tmp_path / "exported-anchor.json"
    out = runner_for(app).invoke(args=["audit", "anchor", "--out", str(exported)])
    assert out.exit_code == 0 and "checks up to row 3" in out.output
    assert _verify(app, runner_for, "--anchor", str(exported))[0] == 0
    _tamper(app, "DELETE FROM checks WHERE seq = 3")
    for event in ("UPDATE", "DELETE") if engine == "sqlite" else ():  # a careful attacker puts them back
        raw_sql(app, f"CREATE TRIGGER checks_no_{event.lower()} BEFORE {event} ON checks "
                "BEGIN SELECT RAISE(ABORT, 'checks are append-only'); END")
    anchor_path.write_bytes(old_anchor)  # both rolled back: the live anchor alone cannot tell
    assert _verify(app, runner_for)[0] == 0
    code, output = _verify(app, runner_for, "--anchor", str(exported))
    assert code == 1 and "exported anchor ends at row 3" in output and "rolled back" in output


def anchor_slots(path: Path) -> list[dict | None]:
    """The live anchor's two fixed-size slots, parsed (None for one not written yet)."""
    data = path.read_bytes()
    assert len(data) == 2 * SLOT_BYTES
    return [json.loads(chunk) if chunk.strip() else None for chunk in (data[:SLOT_BYTES], data[SLOT_BYTES:])]


def write_slots(path: Path, slots: list[dict | None]) -> None:
    path.write_bytes(b"".join((json.dumps(s).encode() if s else b"").ljust(SLOT_BYTES - 1) + b"\n" for s in slots))


def test_a_forged_anchor_is_refused(app, client, runner_for):
    for _ in range(3):
        post_check(client)
    anchor_path = anchor_file(app)
    slots = anchor_slots(anchor_path)
    for slot in slots:
        slot["checks"]["seq"] = 0
    write_slots(anchor_path, slots)
    code, output = _verify(app, runner_for)
    assert code == 1 and "MAC does not match" in output


def test_the_anchor_is_overwritten_in_place_one_slot_per_check(app, client):
    post_check(client)
    anchor_path = anchor_file(app)
    inode = anchor_path.stat().st_ino
    first = anchor_slots(anchor_path)
    assert first[0] is None and first[1]["generation"] == 1 and first[1]["checks"]["seq"] == 1
    post_check(client)
    second = anchor_slots(anchor_path)
    assert second[1] == first[1]  # the older slot was the one overwritten
    assert second[0]["generation"] == 2 and second[0]["checks"]["seq"] == 2
    post_check(client)
    third = anchor_slots(anchor_path)
    assert third[0] == second[0] and third[1]["checks"]["seq"] == 3
    assert anchor_path.stat().st_ino == inode  # no rename per check: the cost the hardening had added


def test_a_writers_turn_opens_and_reads_the_anchor_once(app, client, monkeypatch):
    """The turn checks the chain against the anchor and advances it through one descriptor and one read."""
    post_check(client)
    anchor_path = str(anchor_file(app))
    before = anchor_slots(anchor_file(app))
    opened, reads = [], []
    real_open, real_pread, real_read_bytes = os.open, os.pread, Path.read_bytes
    monkeypatch.setattr(os, "open", lambda path, *a, **k: (opened.append(str(path)), real_open(path, *a, **k))[1])
    monkeypatch.setattr(os, "pread", lambda fd, *a: (reads.append(fd), real_pread(fd, *a))[1])
    monkeypatch.setattr(Path, "read_bytes", lambda self: (reads.append(str(self)), real_read_bytes(self))[1])
    post_check(client)
    assert opened.count(anchor_path) == 1 and len(reads) == 1
    after = anchor_slots(anchor_file(app))
    assert max(s["generation"] for s in after if s) == max(s["generation"] for s in before if s) + 1


def test_a_torn_slot_leaves_the_other_vouching_and_verify_reports_it(app, client, runner_for):
    for _ in range(3):
        post_check(client)
    anchor_path = anchor_file(app)
    data = bytearray(anchor_path.read_bytes())
    data[SLOT_BYTES + 20:SLOT_BYTES + 60] = b"\0" * 40  # row 3's slot, half written when the power went
    anchor_path.write_bytes(bytes(data))
    code, output = _verify(app, runner_for)
    assert code == 1 and "slot 2 is damaged" in output and "up to row 2" in output
    assert post_check(client).status_code == 200  # the write path goes on from the slot that is whole
    assert _verify(app, runner_for)[0] == 0  # and that write repaired the torn slot


def test_an_anchor_from_before_slots_is_read_then_rewritten_as_slots(app, client, runner_for):
    post_check(client)
    anchor_path = anchor_file(app)
    record = next(slot for slot in anchor_slots(anchor_path) if slot)
    record.pop("generation")
    seal = app.extensions["safetycheck_seal"]
    body = {k: v for k, v in record.items() if k != "mac"}
    record["mac"] = seal._mac(body)
    anchor_path.write_text(json.dumps(record, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    assert _verify(app, runner_for)[0] == 0
    post_check(client)
    slots = anchor_slots(anchor_path)
    assert slots[1]["generation"] == 1 and slots[1]["checks"]["seq"] == 2
    assert _verify(app, runner_for)[0] == 0


def test_the_service_refuses_to_extend_a_truncated_chain(app, client):
    ids = [post_check(client).json["check_id"] for _ in range(2)]
    _tamper(app, "DELETE FROM checks WHERE check_id = ?", (ids[1],))
    refused = post_check(client)
    assert refused.status_code == 503 and "truncated" in refused.json["message"]
    assert rows(app) == 1
    assert client.get("/readyz").status_code == 503


@pytest.mark.sqlite_only
def test_the_audit_key_is_not_in_the_database_and_the_hashes_depend_on_it(app, client):
    post_check(client)
    seal = app.extensions["safetycheck_seal"]
    db = connect(app.config["DATABASE"])
    row = next(db.query("SELECT * FROM checks"))
    db.conn.close()
    assert row["row_hash"] == audit.row_hash(row, audit.CHECK_FIELDS, seal)
    assert row["row_hash"] != audit.row_hash(row, audit.CHECK_FIELDS)  # not the plain sha256
    raw = b"".join(Path(app.config["DATABASE"] + s).read_bytes() for s in ("", "-wal")
                   if Path(app.config["DATABASE"] + s).exists())
    assert seal._key not in raw


def test_a_configured_audit_key_is_used_and_a_short_one_refused(kb, tmp_path):
    key = "k" * 40
    app = make_app(kb, tmp_path / "a.db", AUDIT_KEY=key)
    assert app.extensions["safetycheck_seal"]._key == key.encode()
    with pytest.raises(SealError, match="at least 32"):
        make_app(kb, tmp_path / "b.db", AUDIT_KEY="short")


def test_the_generated_audit_key_file_is_owner_only_and_a_readable_one_refused(kb, tmp_path):
    app = make_app(kb, tmp_path / "a.db", INSTANCE_PATH=str(tmp_path / "inst"))
    key_file = tmp_path / "inst" / "audit_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert app.extensions["safetycheck_seal"]._key == key_file.read_text(encoding="utf-8").strip().encode()
    os.chmod(key_file, 0o644)
    with pytest.raises(SealError, match="chmod 600"):
        make_app(kb, tmp_path / "a.db", INSTANCE_PATH=str(tmp_path / "inst"))


def test_an_idempotent_replay_is_the_first_answer_byte_for_byte(client):
    first = post_check(client, **{"Idempotency-Key": "bytes-1"})
    again = post_check(client, **{"Idempotency-Key": "bytes-1"})
    assert first.status_code == again.status_code == 200
    assert again.data == first.data


def test_a_twin_stored_between_lookup_and_write_gives_its_answer_or_a_422(app, monkeypatch):
    """The race, made deterministic: the lookup saw no row, then a concurrent request with the key was stored."""
    client = keyed_client(app)
    twin = post_check(client, **{"Idempotency-Key": "race-1"})
    real_find = audit.find_idempotent
    calls = []

    def first_lookup_misses(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(audit, "find_idempotent", first_lookup_misses)
    same = post_check(client, **{"Idempotency-Key": "race-1"})
    assert same.status_code == 200 and same.data == twin.data
    calls.clear()
    other = post_check(client, {**BASE, "day": 9}, **{"Idempotency-Key": "race-1"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]["headers"]
    assert rows(app) == 1


def test_an_idempotency_conflict_logs_no_key(client, caplog):
    post_check(client, **{"Idempotency-Key": "secret-idem-value"})
    assert post_check(client, {**BASE, "day": 9}, **{"Idempotency-Key": "secret-idem-value"}).status_code == 422
    assert "secret-idem-value" not in caplog.text
