"""The two audit-store engines hold the same schema, and the users CLI, CDS Hooks rows and the review queue
behave the same on a SQLite file and on PostgreSQL."""

import sqlite3
import subprocess

import psycopg
import pytest

from safetycheck import queue, users
from safetycheck.cdshooks import store
from safetycheck.db import apply_migrations, get_db

from .conftest import BOTH_ENGINES, MIGRATIONS, new_pg_database, raw_sql
from .test_api_checks import BASE
from .test_server import BIN, CLI_TIMEOUT, ROOT, flask_cli, server_env

ENGINES = BOTH_ENGINES
PASSWORD = "a long enough password"


def _sqlite_schema(path) -> tuple[dict, set]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                                             "LIKE 'sqlite%' AND name <> '_sqlite_migrations'")]
        columns = {t: {r[1]: bool(r[3] or r[5]) for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        conn.close()
    return columns, triggers


def _pg_schema(url) -> tuple[dict, set]:
    with psycopg.connect(url) as conn:
        columns: dict[str, dict[str, bool]] = {}
        for table, column, nullable in conn.execute(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name <> 'safetycheck_migrations' ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, {})[column] = nullable == "NO"
        triggers = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    return columns, triggers


@pytest.mark.sqlite_only  # compares both engines in one test
def test_both_migration_sets_make_the_same_tables_columns_and_append_only_triggers(engine, tmp_path, pg_server):
    apply_migrations(str(tmp_path / "a.db"), MIGRATIONS)
    url = new_pg_database(pg_server)
    apply_migrations(url, MIGRATIONS)
    sqlite_columns, sqlite_triggers = _sqlite_schema(tmp_path / "a.db")
    pg_columns, pg_triggers = _pg_schema(url)
    assert {"users", "cds_cards", "cds_feedback", "cds_jti"} <= set(sqlite_columns)
    assert pg_columns == sqlite_columns  # same tables, same columns, same NOT NULL (primary keys included)
    assert sqlite_triggers <= pg_triggers  # PostgreSQL adds the TRUNCATE ones
    assert {"cds_cards_no_truncate", "cds_feedback_no_truncate"} <= pg_triggers


def _stored_check_and_review(client) -> tuple[str, str]:
    check_id = client.post("/api/v1/checks", json={**BASE, "medications": [{"text": "Cipro 500 mg"}]}).json["check_id"]
    review = client.post(f"/api/v1/checks/{check_id}/reviews", json={"decision": "accepted"}).json
    return check_id, review["review_id"]


def test_cds_cards_and_feedback_are_append_only(app, client, engine):
    check_id, review_id = _stored_check_and_review(client)
    raw_sql(app, "INSERT INTO cds_cards (card_uuid, check_id, created_at) VALUES ('c1', ?, 'now')", [check_id])
    raw_sql(app, "INSERT INTO cds_feedback (feedback_key, review_id, card_uuid, created_at) VALUES ('k', ?, 'c1', "
            "'now')", [review_id])
    statements = ["UPDATE cds_cards SET created_at = 'x'", "DELETE FROM cds_cards",
                  "UPDATE cds_feedback SET card_uuid = 'x'", "DELETE FROM cds_feedback"]
    if engine == "postgresql":
        statements += ["TRUNCATE cds_cards", "TRUNCATE cds_feedback"]
    for statement in statements:
        with pytest.raises(Exception, match="append-only"):  # sqlite3.IntegrityError / psycopg RaiseException
            raw_sql(app, statement)
    assert raw_sql(app, "SELECT count(*) AS n FROM cds_cards") == [{"n": 1}]
    with app.app_context(), pytest.raises(Exception, match="(?i)foreign key"):
        store.remember_cards(get_db(), "no-such-check", ["c2"])  # a card names a stored check or nothing
    with app.app_context():
        store.remember_cards(get_db(), check_id, ["c1", "c3", "c3"])  # one row per card, a repeat is no error
        assert store.check_for_card(get_db(), "c3") == check_id
    newer, _ = _stored_check_and_review(client)
    with app.app_context():
        store.remember_cards(get_db(), newer, ["c1"])  # the same finding sent again by a later check
        assert store.check_for_card(get_db(), "c1") == newer


def test_the_review_queue_code_filter_is_a_whole_code_literal_and_ignores_case(app, client):
    _stored_check_and_review(client)
    with app.app_context():
        db = get_db()
        count = {code: queue.page(db, {"code": code})["total"] for code in (
            "CYP1A2_STRONG_INHIBITOR", "cyp1a2_strong_inhibitor", "CYP1A2XSTRONG_INHIBITOR",
            "CYP1A2_STRONG_INHIBITO_", "%", "STRONG")}
        assert count == {"CYP1A2_STRONG_INHIBITOR": 1, "cyp1a2_strong_inhibitor": 1, "CYP1A2XSTRONG_INHIBITOR": 0,
                         "CYP1A2_STRONG_INHIBITO_": 0, "%": 0, "STRONG": 0}
        [day] = queue.flagged_per_day(db, {})
        assert (day["block"] + day["review"], type(day["block"])) == (1, int)
        assert queue.verdict_counts(db, {"decision": "accepted"})["pass"] == 0


def test_user_names_are_case_sensitive_and_sorted_byte_by_byte(app):
    with app.app_context():
        db = get_db()
        for name in ("alice", "Zed", "Alice"):
            users.create(db, name, "clinician", PASSWORD)
        with pytest.raises(users.UserError, match="exists"):
            users.create(db, "alice", "admin", PASSWORD)
        assert users.get(db, "ALICE") is None
        assert [u["name"] for u in users.list_users(db)] == ["Alice", "Zed", "alice"]
        assert users.authenticate(db, "Alice", PASSWORD)[0].name == "Alice"
        assert users.authenticate(db, "alice ", PASSWORD)[0] is None


def test_user_create_list_disable_with_safetycheck_db(db_url, tmp_path):
    env = server_env(db_url)
    env["SAFETYCHECK_INSTANCE_PATH"] = str(tmp_path / "instance")
    before = flask_cli(env, "user", "list")
    assert before.returncode != 0 and "db migrate" in before.stderr  # never a table made behind migrate's back
    assert flask_cli(env, "db", "migrate").returncode == 0
    assert "no users yet" in flask_cli(env, "user", "list").stdout
    created = _cli_input(env, PASSWORD, "user", "create", "ada", "--role", "admin", "--password-stdin")
    assert created.returncode == 0 and "created admin ada" in created.stdout, created.stderr
    again = _cli_input(env, PASSWORD, "user", "create", "ada", "--role", "auditor", "--password-stdin")
    assert again.returncode != 0 and "exists" in again.stderr
    assert _cli_input(env, PASSWORD, "user", "create", "bo", "--role", "clinician").returncode == 0
    assert flask_cli(env, "user", "disable", "bo").returncode == 0
    missing = flask_cli(env, "user", "disable", "nobody")
    assert missing.returncode != 0 and "no user nobody" in missing.stderr
    listing = flask_cli(env, "user", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listing] == [["ada", "admin", "active"], ["bo", "clinician", "disabled"]]


def _cli_input(env, text, *args):
    """flask --app wsgi ... with `text` on standard input (the password)."""
    return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, input=text + "\n",
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
