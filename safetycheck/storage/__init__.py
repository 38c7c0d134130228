"""Audit-store engines: SQLite (embedded default) and PostgreSQL (several app servers); one audit logic over both.

Every connection the audit code gets carries an ``engine`` with the few things that differ: how an append
takes its turn, which triggers exist, what a clash on the idempotency index looks like.
"""

import sqlite3


def is_postgres(url: str) -> bool:
    """SAFETYCHECK_DB=postgresql://... (or postgres://) selects PostgreSQL; anything else is a SQLite path."""
    return str(url).startswith(("postgresql://", "postgres://"))


class SQLiteEngine:
    """One database file; BEGIN IMMEDIATE makes appends take turns across processes."""

    name = "sqlite"
    position_function = "instr"  # (haystack, needle) -> 1-based position, 0 when absent
    extra_triggers: frozenset[str] = frozenset()

    def begin_append(self, conn, table: str) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def trigger_names(self, db) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}

    def is_idempotency_clash(self, err: BaseException) -> bool:
        return isinstance(err, sqlite3.IntegrityError) and "idempotency_key" in str(err)


SQLITE = SQLiteEngine()


def engine_of(db):
    """The engine a connection belongs to (connections from sqlite-utils carry none: SQLite)."""
    return getattr(db, "engine", SQLITE)
