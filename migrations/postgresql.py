"""PostgreSQL audit-store schema: the named migration set "safetycheck-postgresql", applied in order by
`flask db migrate`, never edited once applied. Same tables, columns and append-only guarantees as the
SQLite set (migrations.py); TEXT columns so every hashed value is the same string on both engines."""


def create_audit_tables(db):
    """Checks and reviews (seq given by the appender: the previous head + 1), and the database's random id."""
    db.execute(
        """
        CREATE TABLE checks (
            seq BIGINT PRIMARY KEY CHECK (seq > 0),
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
            prev_hash TEXT NOT NULL UNIQUE,
            row_hash TEXT NOT NULL,
            key_id TEXT
        )
        """
    )
    db.execute("CREATE INDEX checks_created_at ON checks (created_at)")
    db.execute("CREATE INDEX checks_verdict ON checks (verdict)")
    db.execute("CREATE UNIQUE INDEX checks_idempotency ON checks (api_client, idempotency_key) "
               "WHERE idempotency_key IS NOT NULL")
    db.execute(
        """
        CREATE TABLE reviews (
            seq BIGINT PRIMARY KEY CHECK (seq > 0),
            review_id TEXT NOT NULL UNIQUE,
            check_id TEXT NOT NULL REFERENCES checks (check_id),
            created_at TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('accepted', 'overridden', 'escalated')),
            note TEXT,
            prev_hash TEXT NOT NULL UNIQUE,
            row_hash TEXT NOT NULL,
            key_id TEXT
        )
        """
    )
    db.execute("CREATE INDEX reviews_check_id ON reviews (check_id)")
    db.execute("CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO audit_meta (name, value) VALUES ('database_id', md5(random()::text || "
               "clock_timestamp()::text || pg_backend_pid()::text))")


def append_only_triggers(db):
    """The database itself refuses UPDATE, DELETE and TRUNCATE on audit rows."""
    db.execute(
        """
        CREATE FUNCTION safetycheck_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% are append-only', TG_TABLE_NAME;
        END
        $$
        """
    )
    for table in ("checks", "reviews", "audit_meta"):
        for event in ("UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION safetycheck_append_only()")
        db.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION safetycheck_append_only()")


def create_users(db):
    """People who sign in to the web pages (SQLite 0004_users; not part of the audit chain, so not append-only).

    The name compares and sorts byte by byte (COLLATE "C"), as SQLite's BINARY does, whatever the database's
    locale; `disabled` stays an integer 0/1 as on SQLite."""
    db.execute(
        """
        CREATE TABLE users (
            name TEXT COLLATE "C" PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('clinician', 'pharmacist', 'auditor', 'admin')),
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            failed_signins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT
        )
        """
    )
    db.execute("CREATE INDEX checks_channel_client ON checks (channel, api_client)")


def cds_hooks(db):
    """CDS Hooks (SQLite 0005_cds_hooks): which stored check sent which card, feedback already stored, JWT ids
    already seen. Cards and feedback are append-only (UPDATE, DELETE and TRUNCATE refused); seen JWT ids are
    pruned once expired, so that table is not. expires_at is BIGINT: SQLite's INTEGER is 64-bit."""
    db.execute(
        """
        CREATE TABLE cds_cards (
            card_uuid TEXT NOT NULL,
            check_id TEXT NOT NULL REFERENCES checks (check_id),
            created_at TEXT NOT NULL,
            PRIMARY KEY (card_uuid, check_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE cds_feedback (
            feedback_key TEXT PRIMARY KEY,
            review_id TEXT NOT NULL REFERENCES reviews (review_id),
            card_uuid TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE TABLE cds_jti (issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at BIGINT NOT NULL, "
               "PRIMARY KEY (issuer, jti))")
    for table in ("cds_cards", "cds_feedback"):
        for event in ("UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION safetycheck_append_only()")
        db.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION safetycheck_append_only()")


MIGRATIONS = [
    ("0001_create_audit_tables", create_audit_tables),
    ("0002_append_only_triggers", append_only_triggers),
    ("0003_users", create_users),  # SQLite's 0003 (keyed chain, database id) is in 0001 here
    ("0004_cds_hooks", cds_hooks),
]
