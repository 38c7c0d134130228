"""Flask CLI commands for operators and auditors: audit verify / export, api-key."""

import json
import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from . import audit
from .db import open_existing
from .errors import StoreUnavailable
from .seal import SealError

audit_group = AppGroup("audit", help="Audit-store commands.")


def _open_existing():
    """The configured database, never created: a missing file is a clear error (exit 2)."""
    try:
        return open_existing(current_app.config["DATABASE"])
    except StoreUnavailable as err:
        click.echo(f"FAIL {err}", err=True)
        sys.exit(2)


@audit_group.command("verify")
@click.option("--anchor", "exported", type=click.Path(exists=True, dir_okay=False),
              help="also check against an anchor exported earlier with `audit anchor`")
def verify_command(exported):
    """Check the keyed chains, the append-only triggers and the end against the anchor; exit 1 naming each
    truncated, forged, rewritten or missing row, a swapped database or a dropped trigger."""
    seal = current_app.extensions["safetycheck_seal"]
    db = _open_existing()
    try:
        problems, notes = audit.verify(db, seal, exported)
        count = db.execute("SELECT count(*) FROM checks").fetchone()[0]
    finally:
        db.conn.close()
    for note in notes:
        click.echo(f"NOTE {note}", err=True)
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK: {count} checks, chains intact and anchored ({seal.anchor_path})")


@audit_group.command("anchor")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="write the anchor here (default: stdout)")
def anchor_command(out_path):
    """Export the chain head (the anchor, MACed with the audit key) to keep apart, e.g. in a ticket or WORM store;
    `audit verify --anchor FILE` later proves the database still holds it."""
    seal = current_app.extensions["safetycheck_seal"]
    try:
        anchor = seal.locked_read()[0]
    except SealError as err:
        click.echo(f"FAIL {err}", err=True)
        sys.exit(1)
    if anchor is None:
        click.echo(f"FAIL no anchor at {seal.anchor_path} yet (it is written with the first stored check)", err=True)
        sys.exit(1)
    text = json.dumps(anchor, sort_keys=True, indent=1) + "\n"
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"wrote the anchor (checks up to row {anchor['checks']['seq']}, reviews up to row "
                   f"{anchor['reviews']['seq']}) to {out_path}")
    else:
        click.echo(text, nl=False)


@audit_group.command("export")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False), help="file to write")
def export_command(csv_path):
    """Export every stored check to CSV for auditors."""
    db = _open_existing()
    try:
        count = audit.export_csv(db, csv_path)
    finally:
        db.conn.close()
    click.echo(f"wrote {count} checks to {csv_path}")


@click.command("api-key")
@with_appcontext
@click.option("--url", default="", help="base URL to print")
@click.option("--access-log", default="", help="where the access log goes, to print")
def api_key_command(url, access_log):
    """Print how to call the API: the URL and the key (or key labels when configured by env)."""
    keys = current_app.extensions["safetycheck_keys"]
    if url:
        click.echo(f"safetycheck: serving on {url}")
    if access_log and access_log != "-":
        click.echo(f"safetycheck: access log in {access_log} (kept apart from this terminal)")
    if keys is None:
        click.echo("safetycheck: SAFETYCHECK_DEV=1: the API is OPEN (local trials only)")
    elif list(keys.values()) == ["instance-key"]:
        click.echo(f"safetycheck: API key (X-API-Key or Authorization: Bearer): {next(iter(keys))}")
    else:
        click.echo(f"safetycheck: API keys from SAFETYCHECK_API_KEYS: {', '.join(sorted(keys.values()))}")


def init_app(app) -> None:
    app.cli.add_command(audit_group)
    app.cli.add_command(api_key_command)
