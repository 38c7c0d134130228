"""PostgreSQL audit store (psycopg 3): connections shaped like the SQLite ones, its migrations.

Appends from every server and worker take turns on a transaction-scoped advisory lock per chain, so the
chain has one head: each row's seq is the previous head's + 1 and its prev_hash the head's hash (no forks,
no gaps; the seq primary key refuses a fork even if the lock were bypassed).
"""

import importlib.util
import re
import zlib
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

MIGRATION_SET = "safetycheck-postgresql"
LOCK_TIMEOUT = "10s"  # the SQLite busy timeout's counterpart: a stuck writer gives a 503, not a hang


def _lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key per chain (and one for migrations)."""
    return zlib.crc32(f"safetycheck:{name}".encode())


def _sql(text: str) -> str:
    """The audit code's SQLite-style `?` placeholders as psycopg's `%s` (literal % doubled)."""
    return text.replace("%", "%%").replace("?", "%s")


class Connection:
    """The subset of sqlite3.Connection the audit code uses: execute, in_transaction, close."""

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw

    def execute(self, sql: str, params=()):
        return self.raw.execute(_sql(sql), list(params))

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.raw.closed or self.raw.broken

    def close(self) -> None:
        self.raw.close()


class Database:
    """The subset of sqlite_utils.Database the audit code uses: conn, execute, query (rows as dicts)."""

    def __init__(self, raw: psycopg.Connection):
        self.conn = Connection(raw)
        self.engine = POSTGRES

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql, params)

    def query(self, sql: str, params=()):
        with self.conn.raw.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_sql(sql), list(params))
            yield from cursor


class PostgresEngine:
    """Many servers, one chain: appends serialise on pg_advisory_xact_lock (released at COMMIT/ROLLBACK)."""

    name = "postgresql"
    position_function = "strpos"  # (haystack, needle) -> 1-based position, 0 when absent
    extra_triggers = frozenset({"checks_no_truncate", "reviews_no_truncate", "audit_meta_no_truncate"})
    store_errors = (psycopg.Error,)  # what a refused readiness probe raises

    def begin_append(self, conn, table: str) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key(table)])

    def trigger_names(self, db) -> set[str]:
        """Enabled, user-defined triggers on the audit tables (a disabled trigger counts as dropped)."""
        return {r[0] for r in db.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND c.relname IN ('checks', 'reviews', 'audit_meta') "
            "AND pg_table_is_visible(c.oid)").fetchall()}

    def is_unique_violation(self, err: BaseException, table: str) -> bool:
        """A UNIQUE / PRIMARY KEY clash on `table`."""
        diag = getattr(err, "diag", None)
        return isinstance(err, psycopg.errors.UniqueViolation) and diag is not None and diag.table_name == table

    def is_idempotency_clash(self, err: BaseException) -> bool:
        diag = getattr(err, "diag", None)
        return isinstance(err, psycopg.errors.UniqueViolation) and diag is not None and \
            diag.constraint_name == "checks_idempotency"

    def storage_problem(self, path: str, min_free_bytes: int) -> str | None:
        """The disk is the database server's to watch (a full disk shows as a refused probe write)."""
        return None

    @contextmanager
    def probe(self, conn):
        """A write transaction that waits at most 1 s for a lock and is always rolled back."""
        conn.execute("BEGIN")
        try:
            conn.execute("SET LOCAL lock_timeout = '1s'")
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


POSTGRES = PostgresEngine()


def connect(url: str) -> Database:
    """An autocommit connection (transactions are explicit, as on SQLite) with a lock timeout."""
    raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
    try:
        raw.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        raw.execute("SET synchronous_commit = on")  # an answered check is flushed (no async commit)
    except psycopg.Error:
        raw.close()
        raise
    return Database(raw)


def anchor_default(instance_path: str, url: str) -> str:
    """Where this server keeps its anchor for a PostgreSQL database (named after host, port and database)."""
    parts = urlsplit(url)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{parts.hostname or 'local'}_{parts.port or 5432}"
                   f"{parts.path or '_'}")
    return str(Path(instance_path) / f"audit-pg-{label}.anchor")


def migrations_path(sqlite_migrations: str) -> str:
    """The PostgreSQL set lives next to the SQLite one: migrations/postgresql.py."""
    return str(Path(sqlite_migrations).with_name("postgresql.py"))


def _load(path: str):
    spec = importlib.util.spec_from_file_location("safetycheck_pg_migrations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MIGRATIONS


def _applied(db) -> set[str]:
    found = db.execute("SELECT to_regclass('safetycheck_migrations')").fetchone()[0]
    if found is None:
        return set()
    return {r[0] for r in db.execute("SELECT name FROM safetycheck_migrations WHERE migration_set = ?",
                                     [MIGRATION_SET]).fetchall()}


def pending(url: str, sqlite_migrations: str) -> list[str]:
    db = connect(url)
    try:
        done = _applied(db)
        return [name for name, _ in _load(migrations_path(sqlite_migrations)) if name not in done]
    finally:
        db.conn.close()


def apply(url: str, sqlite_migrations: str) -> list[str]:
    """Apply pending migrations, each in its own transaction, one server at a time (advisory lock)."""
    db = connect(url)
    applied = []
    try:
        db.execute("CREATE TABLE IF NOT EXISTS safetycheck_migrations (migration_set TEXT NOT NULL, "
                   "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                   "PRIMARY KEY (migration_set, name))")
        for name, migrate in _load(migrations_path(sqlite_migrations)):
            db.execute("BEGIN")
            try:
                db.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key("migrations")])
                if name not in _applied(db):
                    migrate(db)
                    db.execute("INSERT INTO safetycheck_migrations (migration_set, name) VALUES (?, ?)",
                               [MIGRATION_SET, name])
                    applied.append(name)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return applied
    finally:
        db.conn.close()
