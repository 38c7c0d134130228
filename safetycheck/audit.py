"""Append-only audit store: every answered check and every review, hash-chained for tamper evidence."""

import csv
import hashlib
import json
import uuid
from datetime import UTC, datetime

GENESIS = "0" * 64
CHECK_FIELDS = ("check_id", "created_at", "channel", "api_client", "ruleset_version", "regimen", "protocol",
                "mode", "verdict", "codes", "patient_id", "idempotency_key", "request_hash", "request_json",
                "response_json", "prev_hash")
REVIEW_FIELDS = ("review_id", "check_id", "created_at", "reviewer", "decision", "note", "prev_hash")


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


def canonical(data) -> str:
    """The one JSON form that is hashed and stored."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(row: dict, fields: tuple[str, ...]) -> str:
    """sha256 over the row's fields (prev_hash included), in a fixed order."""
    return hashlib.sha256(canonical([row.get(f) for f in fields]).encode()).hexdigest()


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def find_idempotent(db, api_client: str, key: str, request_hash: str) -> dict | None:
    """The stored answer for a retried request, or None; a different body under the same key raises."""
    rows = list(db.query("SELECT request_hash, response_json FROM checks WHERE api_client = ? AND "
                         "idempotency_key = ?", [api_client, key]))
    if not rows:
        return None
    if rows[0]["request_hash"] != request_hash:
        raise IdempotencyConflict(key)
    return json.loads(rows[0]["response_json"])


def _append(db, table: str, row: dict, fields: tuple[str, ...]) -> None:
    """Insert one row chained to the last one, inside an IMMEDIATE transaction (one writer at a time)."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute(f"SELECT row_hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
        row["prev_hash"] = last[0] if last else GENESIS
        row["row_hash"] = row_hash(row, fields)
        columns = ", ".join(row)
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def record_check(db, *, channel: str, api_client: str, request: dict, response: dict,
                 idempotency_key: str | None = None, canonical_form: tuple[str, str] | None = None) -> str:
    """Store one answered check before it is sent; return the stored response JSON; raise if not stored.

    `canonical_form` is `canonical_request(request)` when the caller already computed it (hash once).
    """
    request_json, request_hash = canonical_form or canonical_request(request)
    row = {
        "check_id": response["check_id"], "created_at": response["created_at"], "channel": channel,
        "api_client": api_client, "ruleset_version": response["ruleset_version"],
        "regimen": response["regimen"], "protocol": response.get("protocol"), "mode": response["mode"],
        "verdict": response["verdict"],
        "codes": " ".join(sorted({w["code"] for w in response["warnings"]})),
        "patient_id": (request.get("patient") or {}).get("id"), "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "request_json": request_json, "response_json": canonical(response),
    }
    _append(db, "checks", row, CHECK_FIELDS)
    return row["response_json"]


def canonical_request(request: dict) -> tuple[str, str]:
    """The request as stored, and its sha256 (what an Idempotency-Key is compared on)."""
    request_json = canonical(request)
    return request_json, hashlib.sha256(request_json.encode()).hexdigest()


def check_exists(db, check_id: str) -> bool:
    return db.execute("SELECT 1 FROM checks WHERE check_id = ?", [check_id]).fetchone() is not None


def add_review(db, check_id: str, reviewer: str, decision: str, note: str | None) -> dict:
    """Append a review of a stored check."""
    row = {"review_id": new_id(), "check_id": check_id, "created_at": now(), "reviewer": reviewer,
           "decision": decision, "note": note}
    _append(db, "reviews", row, REVIEW_FIELDS)
    return {k: row[k] for k in ("review_id", "check_id", "created_at", "reviewer", "decision", "note")}


def get_check(db, check_id: str) -> dict | None:
    """One stored check with its request, response and reviews."""
    rows = list(db.query("SELECT * FROM checks WHERE check_id = ?", [check_id]))
    if not rows:
        return None
    row = rows[0]
    reviews = list(db.query("SELECT review_id, created_at, reviewer, decision, note FROM reviews "
                            "WHERE check_id = ? ORDER BY seq", [check_id]))
    return {"check_id": row["check_id"], "created_at": row["created_at"], "channel": row["channel"],
            "api_client": row["api_client"], "ruleset_version": row["ruleset_version"],
            "request": json.loads(row["request_json"]), "response": json.loads(row["response_json"]),
            "row_hash": row["row_hash"], "reviews": reviews}


def list_checks(db, *, verdict=None, code=None, reviewed=None, since=None, until=None, page=1, per_page=50):
    """The audit queue, newest first, filtered and paged."""
    where, params = [], []
    if verdict:
        where.append("verdict = ?")
        params.append(verdict)
    if code:
        where.append("(' ' || codes || ' ') LIKE ?")
        params.append(f"% {code} %")
    if reviewed is not None:
        where.append(("" if reviewed else "NOT ")
                     + "EXISTS (SELECT 1 FROM reviews r WHERE r.check_id = checks.check_id)")
    if since:
        where.append("created_at >= ?")
        params.append(since)
    if until:
        where.append("created_at < ?")
        params.append(until)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = db.execute(f"SELECT count(*) FROM checks {clause}", params).fetchone()[0]
    rows = db.query(
        f"SELECT check_id, created_at, channel, api_client, regimen, protocol, mode, verdict, codes, patient_id, "
        f"(SELECT count(*) FROM reviews r WHERE r.check_id = checks.check_id) AS reviews "
        f"FROM checks {clause} ORDER BY seq DESC LIMIT ? OFFSET ?", params + [per_page, (page - 1) * per_page])
    items = [{**r, "codes": r["codes"].split() if r["codes"] else []} for r in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def verify(db) -> list[str]:
    """Recompute both chains; return a description of every broken or missing link (empty = intact)."""
    problems = []
    for table, fields, key in (("checks", CHECK_FIELDS, "check_id"), ("reviews", REVIEW_FIELDS, "review_id")):
        previous, expected_seq = GENESIS, None
        for row in db.query(f"SELECT * FROM {table} ORDER BY seq"):
            if expected_seq is not None and row["seq"] != expected_seq:
                problems.append(f"{table}: rows {expected_seq}..{row['seq'] - 1} are missing (before {key} "
                                f"{row[key]})")
            if row["prev_hash"] != previous:
                problems.append(f"{table}: row {row['seq']} ({key} {row[key]}) does not follow the previous row")
            if row_hash(row, fields) != row["row_hash"]:
                problems.append(f"{table}: row {row['seq']} ({key} {row[key]}) was altered")
            previous, expected_seq = row["row_hash"], row["seq"] + 1
    return problems


def export_csv(db, path: str) -> int:
    """Write every check (summary columns, request and response JSON) to a CSV; return the row count."""
    columns = ["seq", *CHECK_FIELDS, "row_hash"]
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in db.query(f"SELECT {', '.join(columns)} FROM checks ORDER BY seq"):
            writer.writerow([row[c] for c in columns])
            count += 1
    return count

