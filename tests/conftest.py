"""Shared fixtures: the real knowledge base (loaded once), the app, its client."""

from pathlib import Path

import pytest

from safetycheck import create_app
from safetycheck.knowledge import load_knowledge_base
from safetycheck.pipeline import Checker

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
TINY_DATA_DIR = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def kb():
    return load_knowledge_base(DATA_DIR)


@pytest.fixture(scope="session")
def checker(kb):
    return Checker(kb)


@pytest.fixture()
def app(kb, tmp_path):
    return create_app({"TESTING": True, "KNOWLEDGE_BASE": kb, "DATABASE": str(tmp_path / "t.db")})


@pytest.fixture()
def client(app):
    return app.test_client()
