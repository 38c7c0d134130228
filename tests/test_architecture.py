"""The core (parse, match, rules, labs, pipeline, knowledge) imports neither Flask nor SQLite."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "safetycheck"
ADAPTERS = {"app.py", "__init__.py", "db.py", "audit.py", "auth.py", "cli.py", "__main__.py", "error_pages.py",
            "users.py"}
# storage: the audit-store engines (database code by design)
ADAPTER_DIRS = {"api", "web", "review", "cdshooks", "storage"}
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


RUNTIME_PROBE = """
import sys
import safetycheck, safetycheck.pipeline, safetycheck.contract.v1, safetycheck.__main__
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r} or m.startswith('safetycheck.api'))
import safetycheck.service  # records in the audit store (SQLite), but never loads Flask
loaded += sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'flask_smorest'))
print(' '.join(loaded))
"""


def test_importing_the_core_service_contract_and_cli_loads_no_flask_sqlite_or_http_blueprint():
    """Checked at run time, in a fresh interpreter: lazy package __init__, CLI without the blueprint."""
    import subprocess
    import sys

    probe = RUNTIME_PROBE.format(forbidden=FORBIDDEN)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.stdout.strip() == ""


def test_create_app_is_still_importable_from_the_package():
    import safetycheck

    assert callable(safetycheck.create_app)
