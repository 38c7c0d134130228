"""The core (parse, match, rules, labs, pipeline, knowledge) imports neither Flask nor SQLite."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "safetycheck"
ADAPTERS = {"app.py", "__init__.py", "db.py", "audit.py", "auth.py", "cli.py", "__main__.py"}
# storage: the audit-store engines (database code by design); contract: the v1 HTTP schemas (read the request)
ADAPTER_DIRS = {"api", "web", "cdshooks", "storage", "contract"}
FORBIDDEN = {"flask", "flask_smorest", "sqlite3", "sqlite_utils", "werkzeug", "gunicorn"}


def core_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ADAPTER_DIRS or (len(relative.parts) == 1 and path.name in ADAPTERS):
            continue
        yield path


@pytest.mark.parametrize("path", list(core_files()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_no_web_or_database_code(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {imported & FORBIDDEN}"


def test_the_check_finds_core_modules():
    names = {p.name for p in core_files()}
    assert {"parsing.py", "matching.py", "pipeline.py", "loader.py"} <= names
