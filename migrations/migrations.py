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


@migrations(name="0003_keyed_chain_and_database_id")
def keyed_chain_and_database_id(db):
    """Rows say which audit key hashed them (NULL: plain sha256, from before); the database gets a random id."""
    for table in ("checks", "reviews"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN key_id TEXT")
    db.execute("CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
    db.execute("INSERT INTO audit_meta (name, value) VALUES ('database_id', lower(hex(randomblob(16))))")
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_meta_no_{event.lower()} BEFORE {event} ON audit_meta "
            f"BEGIN SELECT RAISE(ABORT, 'audit_meta is append-only'); END"
        )


@migrations(name="0004_users")
def create_users(db):
    """People who sign in to the web pages (not part of the audit chain; checks and reviews name them)."""
    db.execute(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('clinician', 'pharmacist', 'auditor', 'admin')),
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            failed_signins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT
        ) STRICT
        """
    )
    db.execute("CREATE INDEX checks_channel_client ON checks (channel, api_client)")


@migrations(name="0005_cds_hooks")
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
