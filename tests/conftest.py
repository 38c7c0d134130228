"""Shared fixtures: the real knowledge base (loaded once), the app with a migrated database, clients."""

from pathlib import Path

import pytest

from safetycheck import create_app
from safetycheck.db import apply_migrations
from safetycheck.knowledge import load_knowledge_base
from safetycheck.pipeline import Checker

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
MIGRATIONS = str(ROOT / "migrations" / "migrations.py")
API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def kb():
    return load_knowledge_base(DATA_DIR)


@pytest.fixture(scope="session")
def checker(kb):
    return Checker(kb)


def make_app(kb, db_path, **config):
    apply_migrations(str(db_path), MIGRATIONS)
    return create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(db_path),
                       "API_KEYS": f"tester:{API_KEY}", **config})


def keyed_client(app):
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = API_KEY
    return client


@pytest.fixture()
def app(kb, tmp_path):
    return make_app(kb, tmp_path / "audit.db")


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
