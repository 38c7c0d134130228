"""Shared fixtures: the real knowledge base (loaded once), the app with a migrated database, clients."""

import itertools
import sys
import tempfile
from pathlib import Path

import psycopg
import psycopg.rows
import pytest

from safetycheck import create_app
from safetycheck.db import apply_migrations
from safetycheck.knowledge import load_knowledge_base
from safetycheck.pipeline import Checker

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
MIGRATIONS = str(ROOT / "migrations" / "migrations.py")
API_KEY = "test-key-0123456789"
BOTH_ENGINES = ("sqlite", "postgresql")  # a test module sets ENGINES = BOTH_ENGINES to run on both
sys.path.insert(0, str(ROOT / "scripts"))
import pg_cluster  # noqa: E402 - the throwaway-cluster script, importable as a module

_db_numbers = itertools.count(1)


def pytest_generate_tests(metafunc):
    """`engine` is each audit-store engine the module asks for (SQLite only for @pytest.mark.sqlite_only)."""
    if "engine" in metafunc.fixturenames:
        engines = getattr(metafunc.module, "ENGINES", ("sqlite",))
        if metafunc.definition.get_closest_marker("sqlite_only"):
            engines = ("sqlite",)
        # ENGINE_SCOPE = "module" lets a module-scoped fixture (one server per engine) take the engine.
        metafunc.parametrize("engine", engines, scope=getattr(metafunc.module, "ENGINE_SCOPE", "function"))


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster for the session (installed from Debian's packages if missing); never
    skipped: no PostgreSQL is a failed run."""
    root = tempfile.mkdtemp(prefix="safetycheck-pg-")
    try:
        yield pg_cluster.start(root, fsync=False)  # throwaway data: the durability under test is the app's
    finally:
        pg_cluster.stop(root)


def new_pg_database(server_url: str) -> str:
    """A fresh, empty database on the cluster; its URL."""
    name = f"t{next(_db_numbers)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture()
def db_url(engine, request, tmp_path):
    """The audit database of one test: a SQLite file, or a fresh PostgreSQL database."""
    if engine == "sqlite":
        yield str(tmp_path / "audit.db")
        return
    url = new_pg_database(request.getfixturevalue("pg_server"))
    yield url
    from safetycheck import db as store

    pool = getattr(store._local, "pool", {})
    for key in [k for k in pool if k[1] == url]:
        pool.pop(key).conn.close()


@pytest.fixture(scope="session")
def kb():
    return load_knowledge_base(DATA_DIR)


@pytest.fixture(scope="session")
def checker(kb):
    return Checker(kb)


def make_app(kb, db_path, **config):
    apply_migrations(str(db_path), MIGRATIONS)
    if str(db_path).startswith("postgresql://") and "AUDIT_ANCHOR" not in config:
        config["AUDIT_ANCHOR"] = tempfile.mkdtemp(prefix="safetycheck-anchor-") + "/audit.anchor"
    return create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(db_path),
                       "API_KEYS": f"tester:{API_KEY}", **config})


def keyed_client(app):
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = API_KEY
    return client


@pytest.fixture()
def app(kb, db_url):
    return make_app(kb, db_url)


@pytest.fixture()
def client(app):
    return keyed_client(app)


@pytest.fixture(scope="session")
def shared_client(kb, tmp_path_factory):
    """One app for the read-mostly golden cases (building an app per case is slow)."""
    return keyed_client(make_app(kb, tmp_path_factory.mktemp("shared") / "audit.db"))


@pytest.fixture()
def runner_for():
    """A CLI runner for a given app (flask --app wsgi ... in-process)."""
    return lambda app: app.test_cli_runner()


def raw_sql(app, sql: str, params=(), tamper: bool = False) -> list[dict]:
    """Run SQL on the app's audit database behind its back (`?` placeholders on both engines); tamper=True
    first switches the append-only triggers off (SQLite: drops them; PostgreSQL: replica mode, superuser)."""
    url = app.config["DATABASE"]
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            if tamper:
                conn.execute("SET session_replication_role = replica")
            cursor = conn.execute(sql.replace("?", "%s"), list(params))
            return cursor.fetchall() if cursor.description else []
    import sqlite3

    with sqlite3.connect(url) as conn:
        conn.row_factory = sqlite3.Row
        if tamper:
            for trigger in ("checks_no_update", "checks_no_delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        cursor = conn.execute(sql, params)
        return [dict(r) for r in cursor.fetchall()]
