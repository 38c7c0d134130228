"""SQLite connection, migrations and the `flask db migrate` command."""

import importlib.util
import os
import sqlite3
import threading
from pathlib import Path

import click
from flask import current_app, g
from flask.cli import AppGroup
from sqlite_utils import Database


def connect(path: str) -> Database:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=FULL")
    return Database(conn)


def load_migrations(path: str):
    """Load the Migrations set from migrations/migrations.py (outside the package, by path)."""
    spec = importlib.util.spec_from_file_location("safetycheck_migrations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.migrations


def apply_migrations(db_path: str, migrations_path: str) -> list[str]:
    """Apply pending migrations; return their names."""
    db = connect(db_path)
    try:
        migrations = load_migrations(migrations_path)
        pending = [m.name for m in migrations.pending(db)]
        migrations.apply(db)
        return pending
    finally:
        db.conn.close()


def pending_migrations(db_path: str, migrations_path: str) -> list[str]:
    """Names of migrations not yet applied (read-only)."""
    db = connect(db_path)
    try:
        return [m.name for m in load_migrations(migrations_path).pending(db)]
    finally:
        db.conn.close()


_local = threading.local()


def get_db() -> Database:
    """This thread's connection to the app's database, opened once and kept.

    Opening and closing a connection per request cost more than the audit insert itself (the
    close checkpoints the WAL). A connection is never shared between threads or forked processes.
    """
    path = current_app.config["DATABASE"]
    key = (os.getpid(), path)
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    db = pool.get(key)
    if db is None:
        db = pool[key] = connect(path)
    g.db = db
    return db


def close_db(_exc=None) -> None:
    """End of request: make sure no transaction is left open on the kept connection."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.execute("ROLLBACK")


db_group = AppGroup("db", help="Audit database commands.")


@db_group.command("migrate")
def migrate_command():
    """Apply pending migrations to $SAFETYCHECK_DATABASE."""
    applied = apply_migrations(current_app.config["DATABASE"], current_app.config["MIGRATIONS_PATH"])
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(db_group)
