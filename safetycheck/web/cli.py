"""`flask --app wsgi user create NAME --role ROLE` (password prompted or from stdin), `user list`, `user disable`."""

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from .. import users
from ..db import open_existing, pending_migrations
from ..errors import StoreUnavailable

user_group = AppGroup("user", help="People who sign in to the web pages.")


def _db():
    """The app's database, SQLite file or PostgreSQL (never created here: run `flask db migrate` first)."""
    path = current_app.config["DATABASE"]
    try:
        pending = pending_migrations(path, current_app.config["MIGRATIONS_PATH"])
        if pending:
            raise click.ClickException(f"run flask --app wsgi db migrate first (pending: {', '.join(pending)})")
        return open_existing(path)
    except StoreUnavailable as err:
        raise click.ClickException(str(err)) from err


@user_group.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(users.ROLES), help="what the person may do")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def create_command(name, role, password_stdin):
    """Create a user; the password is prompted twice (or read from stdin)."""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = _db()
    try:
        users.create(db, name, role, password)
    except users.UserError as err:
        raise click.ClickException(str(err)) from err
    finally:
        db.conn.close()
    click.echo(f"created {role} {name}")


@user_group.command("list")
def list_command():
    """List users with their role and state."""
    db = _db()
    try:
        rows = users.list_users(db)
        if not rows:
            click.echo("safetycheck: no users yet. Create the first one (the password is asked twice):\n"
                       "  .venv/bin/flask --app wsgi user create NAME --role admin")
        for row in rows:
            state = "disabled" if row["disabled"] else ("locked" if row["locked_until"] else "active")
            click.echo(f"{row['name']}\t{row['role']}\t{state}\t{row['created_at']}")
    finally:
        db.conn.close()


@user_group.command("disable")
@click.argument("name")
def disable_command(name):
    """Disable a user: they can no longer sign in (their checks and reviews stay in the audit trail)."""
    db = _db()
    try:
        users.disable(db, name)
    except users.UserError as err:
        raise click.ClickException(str(err)) from err
    finally:
        db.conn.close()
    click.echo(f"disabled {name}")
