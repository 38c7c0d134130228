"""Flask CLI commands for operators and auditors: audit verify / export, api-key."""

import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from . import audit
from .db import connect

audit_group = AppGroup("audit", help="Audit-store commands.")


@audit_group.command("verify")
def verify_command():
    """Recompute the hash chains; exit 1 naming the first altered or missing row."""
    db = connect(current_app.config["DATABASE"])
    try:
        problems = audit.verify(db)
        count = db.execute("SELECT count(*) FROM checks").fetchone()[0]
    finally:
        db.conn.close()
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK: {count} checks, chains intact")


@audit_group.command("export")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False), help="file to write")
def export_command(csv_path):
    """Export every stored check to CSV for auditors."""
    db = connect(current_app.config["DATABASE"])
    try:
        count = audit.export_csv(db, csv_path)
    finally:
        db.conn.close()
    click.echo(f"wrote {count} checks to {csv_path}")


@click.command("api-key")
@with_appcontext
@click.option("--url", default="", help="base URL to print")
def api_key_command(url):
    """Print how to call the API: the URL and the key (or key labels when configured by env)."""
    keys = current_app.extensions["safetycheck_keys"]
    if url:
        click.echo(f"safetycheck: serving on {url}")
    if keys is None:
        click.echo("safetycheck: SAFETYCHECK_DEV=1: the API is OPEN (local trials only)")
    elif list(keys.values()) == ["instance-key"]:
        click.echo(f"safetycheck: API key (X-API-Key or Authorization: Bearer): {next(iter(keys))}")
    else:
        click.echo(f"safetycheck: API keys from SAFETYCHECK_API_KEYS: {', '.join(sorted(keys.values()))}")


def init_app(app) -> None:
    app.cli.add_command(audit_group)
    app.cli.add_command(api_key_command)
