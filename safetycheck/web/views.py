"""The clinician's pages: sign-in, the check form with a live reading of the list, result, permalink, print."""

import time
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from marshmallow import ValidationError

from .. import audit, queue, users
from ..contract import v1
from ..db import get_db
from ..parsing import split_lines
from ..service import CheckRefused, NotRecorded
from . import csrf, forms

bp = Blueprint("web", __name__)
FAILED_SIGNIN_DELAY = 1.0  # seconds added to every failed sign-in (slows guessing; the lock stops it)


@bp.before_request
def _csrf():
    """Every form post carries the session's CSRF token (400 otherwise)."""
    if request.method == "POST":
        csrf.protect()


def _kb():
    return current_app.extensions["safetycheck"].kb


def _service():
    return current_app.extensions["safetycheck_service"]


def _safe_next(target: str | None) -> str:
    if target and urlparse(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with name and password; failures are slowed, then the account is locked for a while."""
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        user, error = users.authenticate(get_db(), name, request.form.get("password", ""))
        if user:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        time.sleep(FAILED_SIGNIN_DELAY)
    return render_template("login.html", error=error, name=request.form.get("name", "")), 401 if error else 200


@bp.post("/logout")
def logout():
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("web.login"))


def _form_context(values: dict, errors: dict | None = None):
    kb = _kb()
    return {"kb": kb, "values": values, "errors": errors or {}, "drugs": forms.regimen_drugs(kb),
            "uln_labs": forms.ULN_LABS, "serology": forms.SEROLOGY}


def _default_values() -> dict:
    values = {"mode": "dispensing", "regimen": next(iter(_kb().regimens))}
    for key, lab in _kb().labs.items():
        values[f"lab_{key}_unit"] = lab["unit"]
    return values


@bp.get("/")
@login_required
def index():
    """The check form (empty, or refilled from a stored check with ?from=CHECK_ID)."""
    values = _default_values()
    source = request.args.get("from")
    if source:
        stored = _visible_check(source)
        values.update(forms.to_form(stored["request"]))
    return render_template("check_form.html", **_form_context(values))


@bp.post("/")
@login_required
def submit():
    """Check the form: bad input goes back next to its field, kept; a good one is stored and shown."""
    kb = _kb()
    body, errors = forms.to_body(request.form, kb)
    loaded = None
    if not errors:
        try:
            loaded = v1.load_body(body, kb)
        except ValidationError as err:
            errors = forms.field_errors(err.messages)
    if not errors:
        try:
            answer = _service().check(get_db(), v1.to_request(loaded), loaded, channel="web",
                                      client=current_user.name)
        except CheckRefused as err:
            errors = forms.field_errors(err.errors)
        except NotRecorded as err:
            errors = {"_form": [err.message]}
        else:
            return redirect(url_for("web.check", check_id=answer.check_id))
    values = {**_default_values(), **request.form.to_dict()}
    return render_template("check_form.html", **_form_context(values, errors)), 422


@bp.post("/preview")
@login_required
def preview():
    """How each pasted line is read (the /match result), before the check; called by the form's script."""
    checker = current_app.extensions["safetycheck"]
    lines = split_lines(request.form.get("medication_text", ""))[:200]
    return jsonify(v1.match_body(checker.match_texts(lines), checker.kb))


def _visible_check(check_id: str) -> dict:
    """The stored check if this user may see it: their own web checks, or any for auditors and admins."""
    stored = audit.get_check(get_db(), check_id)
    if stored is None:
        abort(404, description=f"No check {check_id}.")
    own = stored["channel"] == "web" and stored["api_client"] == current_user.name
    if not (own or current_user.can_review):
        abort(403, description="This check was made by someone else.")
    return stored


@bp.get("/checks/<check_id>")
@login_required
def check(check_id):
    """The permanent page of one stored check, rendered from what was stored."""
    return render_template("check_result.html", stored=_visible_check(check_id), kb=_kb(), printing=False)


@bp.get("/checks/<check_id>/print")
@login_required
def check_print(check_id):
    """The same result laid out for paper."""
    return render_template("check_result.html", stored=_visible_check(check_id), kb=_kb(), printing=True)


@bp.get("/checks")
@login_required
def my_checks():
    """The signed-in person's own checks, newest first."""
    page = max(1, request.args.get("page", 1, type=int))
    result = queue.page(get_db(), {"channel": "web", "user": current_user.name}, page, 25)
    return render_template("my_checks.html", queue=result)
