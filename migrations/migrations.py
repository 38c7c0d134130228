"""Audit-store schema: named sqlite-utils migrations, applied in order, never edited once applied."""

from sqlite_utils import Migrations

migrations = Migrations("safetycheck")


@migrations(name="0001_create_checks_and_reviews")
def create_checks_and_reviews(db):
    """Checks and reviews, STRICT; each row carries its hash chained to the previous row's."""
    db.execute(
        """
        CREATE TABLE checks (
            seq INTEGER PRIMARY KEY,
            check_id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            channel TEXT NOT NULL,
            api_client TEXT NOT NULL,
            ruleset_version TEXT NOT NULL,
            regimen TEXT NOT NULL,
            protocol TEXT,
            mode TEXT NOT NULL,
            verdict TEXT NOT NULL,
            codes TEXT NOT NULL,
            patient_id TEXT,
            idempotency_key TEXT,
            request_hash TEXT NOT NULL,
            request_json TEXT NOT NULL,
            response_json TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            row_hash TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX checks_created_at ON checks (created_at)")
    db.execute("CREATE INDEX checks_verdict ON checks (verdict)")
    db.execute(
        "CREATE UNIQUE INDEX checks_idempotency ON checks (api_client, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE reviews (
            seq INTEGER PRIMARY KEY,
            review_id TEXT NOT NULL UNIQUE,
            check_id TEXT NOT NULL REFERENCES checks (check_id),
            created_at TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('accepted', 'overridden', 'escalated')),
            note TEXT,
            prev_hash TEXT NOT NULL,
            row_hash TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX reviews_check_id ON reviews (check_id)")


@migrations(name="0002_append_only_triggers")
def append_only_triggers(db):
    """The database itself refuses UPDATE and DELETE on audit rows."""
    for table in ("checks", "reviews"):
        for event in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
            )


@migrations(name="0004_cds_hooks")
def cds_hooks(db):
    """CDS Hooks: which stored check sent which card, feedback already stored, JWT ids already seen."""
    db.execute(
        """
        CREATE TABLE cds_cards (
            card_uuid TEXT NOT NULL,
            check_id TEXT NOT NULL REFERENCES checks (check_id),
            created_at TEXT NOT NULL,
            PRIMARY KEY (card_uuid, check_id)
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE cds_feedback (
            feedback_key TEXT PRIMARY KEY,
            review_id TEXT NOT NULL REFERENCES reviews (review_id),
            card_uuid TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE TABLE cds_jti (issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL, "
               "PRIMARY KEY (issuer, jti)) STRICT")
    for table in ("cds_cards", "cds_feedback"):
        for event in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
            )
