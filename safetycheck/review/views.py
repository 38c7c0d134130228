"""`/review`: the queue (auditors and admins only), one check, a review form, CSV export, chain status."""

import csv
import io
from datetime import date

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import audit, queue
from ..db import get_db
from ..web import csrf
from . import charts

bp = Blueprint("review", __name__, url_prefix="/review")
DECISIONS = ("accepted", "overridden", "escalated")
CSV_COLUMNS = ("check_id", "created_at", "channel", "api_client", "regimen", "protocol", "mode", "verdict",
               "codes", "patient_id", "ruleset_version", "reviews", "decision")


@bp.before_request
@login_required
def _reviewers_only():
    """Only auditors and admins see the review pages; every post carries its CSRF token."""
    if not current_user.can_review:
        abort(403, description="The review pages are for auditors and admins. Your own checks are under My checks.")
    if request.method == "POST":
        csrf.protect()


def _filters() -> dict:
    f = {k: request.args.get(k, "").strip() for k in queue.FILTERS}
    for key in ("since", "until"):
        if f[key]:
            try:
                date.fromisoformat(f[key])
            except ValueError:
                f[key] = ""
    return f


@bp.get("")
def queue_page():
    """Filters, counts per verdict, charts, and one page of checks, newest first."""
    db = get_db()
    filters = _filters()
    number = max(1, request.args.get("page", 1, type=int))
    result = queue.page(db, filters, number, 25)
    chain, _notes = audit.verify(db, current_app.extensions["safetycheck_seal"])
    return render_template(
        "review_queue.html", queue=result, filters=filters, counts=queue.verdict_counts(db, filters),
        per_day_svg=charts.flagged_per_day(queue.flagged_per_day(db, filters)),
        codes_svg=charts.top_codes(queue.top_codes(db, filters)), chain_problems=chain,
        regimens=queue.distinct(db, "regimen"), channels=queue.distinct(db, "channel"),
        people=queue.distinct(db, "api_client"), decisions=DECISIONS,
        args={k: v for k, v in filters.items() if v})


@bp.get("/export.csv")
def export():
    """The filtered queue as CSV: the same rows as the page (every page of them), same filters."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in queue.rows(get_db(), _filters()):
        writer.writerow([" ".join(row[c]) if c == "codes" else row[c] for c in CSV_COLUMNS])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=safetycheck-queue.csv"})


@bp.route("/<check_id>", methods=["GET", "POST"])
def check(check_id):
    """One stored check as the clinician saw it, its history, and a form that appends a review."""
    db = get_db()
    stored = audit.get_check(db, check_id)
    if stored is None:
        abort(404, description=f"No check {check_id}.")
    errors, values = {}, {}
    if request.method == "POST":
        decision = request.form.get("decision", "")
        note = request.form.get("note", "").strip()
        values = {"decision": decision, "note": note}
        if decision not in DECISIONS:
            errors["decision"] = ["Choose accept, override or escalate."]
        elif decision == "overridden" and not note:
            errors["note"] = ["An override needs a reason: say why the warning does not apply."]
        if not errors:
            audit.add_review(db, check_id, current_user.name, decision, note or None)
            return redirect(url_for("review.check", check_id=check_id) + "#history")
    status = 422 if errors else 200
    return render_template("review_check.html", stored=stored, kb=current_app.extensions["safetycheck"].kb,
                           errors=errors, values=values, decisions=DECISIONS, printing=False), status
