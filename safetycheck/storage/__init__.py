"""Audit-store engines: SQLite (embedded default) and PostgreSQL (several app servers); one audit logic over both.

Every connection the audit code gets carries an ``engine`` with the few things that differ: how an append
takes its turn, which triggers exist, what a clash on a unique index looks like, how readiness probes a write.
"""

import os
import sqlite3
from contextlib import contextmanager


def is_postgres(url: str) -> bool:
    """SAFETYCHECK_DB=postgresql://... (or postgres://) selects PostgreSQL; anything else is a SQLite path."""
    return str(url).startswith(("postgresql://", "postgres://"))


@contextmanager
def transaction(db):
    """BEGIN ... COMMIT on an autocommit connection of either engine; ROLLBACK (and re-raise) on any error."""
    conn = db.conn
    conn.execute("BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteEngine:
    """One database file; BEGIN IMMEDIATE makes appends take turns across processes."""

    name = "sqlite"
    position_function = "instr"  # (haystack, needle) -> 1-based position, 0 when absent
    extra_triggers: frozenset[str] = frozenset()
    store_errors = (sqlite3.OperationalError,)  # what a refused readiness probe raises

    def begin_append(self, conn, table: str) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def trigger_names(self, db) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}

    def is_unique_violation(self, err: BaseException, table: str) -> bool:
        """A UNIQUE / PRIMARY KEY clash on `table` (SQLite says "UNIQUE constraint failed: table.column")."""
        return isinstance(err, sqlite3.IntegrityError) and f"UNIQUE constraint failed: {table}." in str(err)

    def is_idempotency_clash(self, err: BaseException) -> bool:
        return isinstance(err, sqlite3.IntegrityError) and "idempotency_key" in str(err)

    def storage_problem(self, path: str, min_free_bytes: int) -> str | None:
        """The file system under the database: read-only or (nearly) full is a reason not to take checks."""
        folder = os.path.dirname(os.path.abspath(path))
        fs = os.statvfs(folder)
        if fs.f_flag & os.ST_RDONLY:
            return f"the file system holding {path} is read-only"
        if fs.f_bavail * fs.f_frsize < min_free_bytes:
            return f"the disk holding {path} is full ({fs.f_bavail * fs.f_frsize} bytes free)"
        return None

    @contextmanager
    def probe(self, conn):
        """A write transaction that waits at most 1 s for the lock and is always rolled back."""
        conn.execute("PRAGMA busy_timeout=1000")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            conn.execute("PRAGMA busy_timeout=10000")


SQLITE = SQLiteEngine()


def engine_for(url: str):
    """The engine a SAFETYCHECK_DB value selects (psycopg is imported only for PostgreSQL)."""
    if is_postgres(url):
        from .postgres import POSTGRES

        return POSTGRES
    return SQLITE


def engine_of(db):
    """The engine a connection belongs to (connections from sqlite-utils carry none: SQLite)."""
    return getattr(db, "engine", SQLITE)
