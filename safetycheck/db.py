"""SQLite connection, migrations and the `flask db migrate` command."""

import importlib.util
import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

import click
from flask import current_app, g
from flask.cli import AppGroup
from sqlite_utils import Database

from .audit import database_id
from .errors import StoreUnavailable
from .seal import Seal, SealError, load_key
from .storage import engine_for, is_postgres

OWNER_ONLY = 0o600


def _owner_only(path: str) -> None:
    """The database and its -wal/-shm hold PHI: owner-only (SQLite gives -wal/-shm the main file's mode)."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, OWNER_ONLY)
        except (FileNotFoundError, PermissionError):
            pass


def connect(path: str, create: bool = True) -> Database:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout.

    create=False never makes a file: a missing database is an error (readiness, verify, serving).
    """
    if create:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY))
        except FileExistsError:
            pass
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    else:
        if not os.path.isfile(path):
            raise StoreUnavailable(f"the audit database {path} does not exist (run flask --app wsgi db migrate)")
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=rw", uri=True, timeout=10,
                               isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        conn.close()
        raise
    _owner_only(path)
    return Database(conn)


def file_identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def seal_for(app) -> Seal:
    """The audit key (never in the database) and the anchor path, from the settings."""
    folder = Path(app.config.get("INSTANCE_PATH") or app.instance_path)
    key_file = Path(app.config.get("AUDIT_KEY_FILE") or folder / "audit_key")
    key = load_key(app.config.get("AUDIT_KEY") or None, key_file)
    if is_postgres(app.config["DATABASE"]):
        from .storage.postgres import anchor_default

        default_anchor = anchor_default(str(folder), app.config["DATABASE"])  # one anchor per server
    else:
        default_anchor = f"{app.config['DATABASE']}.anchor"
    return Seal(key, app.config.get("AUDIT_ANCHOR") or default_anchor)


def open_existing(path: str):
    """A read connection to an existing audit database of either engine (never created)."""
    if is_postgres(path):
        from .storage import postgres

        try:
            return postgres.connect(path)
        except Exception as err:  # noqa: BLE001 - psycopg.Error, a bad URL: the store is not there
            raise StoreUnavailable(f"the PostgreSQL audit database cannot be opened: {err}") from err
    return connect(path, create=False)


def open_audit(path: str, seal: Seal, create: bool = False, identity: tuple[int, int] | None = None) -> Database:
    """A connection that can append to the audit chains: keyed, anchored, and watching its file's identity.

    `identity` is the (device, inode) the process first saw: a file swapped in since is refused, not adopted.
    """
    if is_postgres(path):
        Path(seal.anchor_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # this server's anchor
        db = open_existing(path)
        db.seal, db.identity, db.check_file = seal, None, (lambda: None)
        return db
    try:
        db = connect(path, create=create)
        identity = identity or file_identity(path)
    except (sqlite3.Error, OSError) as err:
        raise StoreUnavailable(f"the audit database {path} cannot be opened: {err}") from err

    def check_file() -> None:
        try:
            same = file_identity(path) == identity
        except FileNotFoundError:
            same = False
        if not same:
            raise StoreUnavailable(f"the audit database {path} was deleted or replaced while open; restart the "
                                   "service after restoring it (checks are refused until then)")

    db.seal = seal
    db.identity = identity
    db.check_file = check_file
    return db


def load_migrations(path: str):
    """Load the Migrations set from migrations/migrations.py (outside the package, by path)."""
    spec = importlib.util.spec_from_file_location("safetycheck_migrations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.migrations


def apply_migrations(db_path: str, migrations_path: str) -> list[str]:
    """Apply pending migrations; return their names."""
    if is_postgres(db_path):
        from .storage import postgres

        return postgres.apply(db_path, migrations_path)
    db = connect(db_path)
    try:
        migrations = load_migrations(migrations_path)
        pending = [m.name for m in migrations.pending(db)]
        migrations.apply(db)
        return pending
    finally:
        db.conn.close()


def pending_migrations(db_path: str, migrations_path: str) -> list[str]:
    """Names of migrations not yet applied (read-only; a missing database is an error, never created)."""
    if is_postgres(db_path):
        from .storage import postgres

        return postgres.pending(db_path, migrations_path)
    db = connect(db_path, create=False)
    try:
        return [m.name for m in load_migrations(migrations_path).pending(db)]
    finally:
        db.conn.close()


_local = threading.local()
_identities: dict[tuple[int, str], tuple[int, int]] = {}  # (pid, path) -> the file first opened there


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
    if db is not None and getattr(db.conn, "broken", False):  # PostgreSQL restarted or the link dropped
        pool.pop(key, None).conn.close()
        db = None
    if db is None:
        db = open_audit(path, current_app.extensions["safetycheck_seal"], identity=_identities.get(key))
        _identities.setdefault(key, db.identity)
        pool[key] = db
    try:
        db.check_file()
    except StoreUnavailable:
        pool.pop(key, None)  # reopened next time, and refused again while the file is not the one first seen
        db.conn.close()
        raise
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


def readiness(path: str, migrations_path: str, min_free_bytes: int) -> str | None:
    """Why this process cannot take checks now (None: ready). Never creates the database; never waits long."""
    pending = pending_migrations(path, migrations_path)
    if pending:
        return f"run flask --app wsgi db migrate (pending: {', '.join(pending)})"
    engine = engine_for(path)
    problem = engine.storage_problem(path, min_free_bytes)
    if problem:
        return problem
    db = get_db()  # the connection checks use: replaced file, read-only, lock and anchor show here
    conn = db.conn
    try:
        with engine.probe(conn):
            conn.execute("INSERT INTO audit_meta (name, value) VALUES ('readiness-probe', 'x')")  # rolled back
            for table in ("checks", "reviews"):
                last = conn.execute(f"SELECT seq, row_hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
                db.seal.check_head(database_id(db), table, last[0] if last else None,
                                   last[1] if last else None)
    except engine.store_errors as err:
        return f"the audit database cannot be written: {err}"
    except SealError as err:
        return f"audit chain: {err} (run flask --app wsgi audit verify)"
    return None
