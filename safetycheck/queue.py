"""The auditor's queue over the audit store: filters, counts, per-day and per-code figures (no Flask)."""

from .storage import SQLITE, engine_of

FILTERS = ("verdict", "code", "reviewed", "decision", "since", "until", "regimen", "channel", "user")
LAST_DECISION = ("(SELECT r.decision FROM reviews r WHERE r.check_id = checks.check_id "
                 "ORDER BY r.seq DESC LIMIT 1)")


def where(filters: dict, skip: tuple[str, ...] = (), engine=SQLITE) -> tuple[str, list]:
    """SQL WHERE clause and parameters for the set filters (empty values are ignored)."""
    clauses, params = [], []
    f = {k: v for k, v in filters.items() if v not in (None, "") and k not in skip}
    for column in ("verdict", "regimen", "channel"):
        if column in f:
            clauses.append(f"{column} = ?")
            params.append(f[column])
    if "user" in f:
        clauses.append("api_client = ?")
        params.append(f["user"])
    if "code" in f:
        # A literal, whole-code match, case-insensitive on both engines (LIKE would read % and _ as wildcards).
        clauses.append(f"{engine.position_function}(upper(' ' || codes || ' '), upper(?)) > 0")
        params.append(f" {f['code']} ")
    if "reviewed" in f:
        exists = "EXISTS (SELECT 1 FROM reviews r WHERE r.check_id = checks.check_id)"
        clauses.append(exists if f["reviewed"] in (True, "yes", "true", "1") else f"NOT {exists}")
    if "decision" in f:
        clauses.append(f"{LAST_DECISION} = ?")
        params.append(f["decision"])
    if "since" in f:
        clauses.append("created_at >= ?")
        params.append(str(f["since"]))
    if "until" in f:
        # A date means the whole day: until 2026-12-02 includes that day.
        until = str(f["until"])
        clauses.append("created_at < ?")
        params.append(until + "T24" if len(until) == 10 else until)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def page(db, filters: dict, number: int = 1, per_page: int = 25) -> dict:
    """One page of the queue, newest first, with the total."""
    clause, params = where(filters, engine=engine_of(db))
    total = db.execute(f"SELECT count(*) FROM checks {clause}", params).fetchone()[0]
    items = rows(db, filters, limit=per_page, offset=(number - 1) * per_page)
    return {"items": items, "page": number, "per_page": per_page, "total": total,
            "pages": max(1, -(-total // per_page))}


def rows(db, filters: dict, limit: int | None = None, offset: int = 0) -> list[dict]:
    """Summary rows (what the page and the CSV show), newest first."""
    clause, params = where(filters, engine=engine_of(db))
    sql = (f"SELECT check_id, created_at, channel, api_client, regimen, protocol, mode, verdict, codes, "
           f"patient_id, ruleset_version, (SELECT count(*) FROM reviews r WHERE r.check_id = checks.check_id) "
           f"AS reviews, {LAST_DECISION} AS decision FROM checks {clause} ORDER BY seq DESC")
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = params + [limit, offset]
    return [{**r, "codes": r["codes"].split() if r["codes"] else []} for r in db.query(sql, params)]


def verdict_counts(db, filters: dict) -> dict:
    """Checks per verdict under every filter but the verdict itself."""
    clause, params = where(filters, skip=("verdict",), engine=engine_of(db))
    counts = {"block": 0, "review": 0, "pass": 0}
    for row in db.query(f"SELECT verdict, count(*) AS n FROM checks {clause} GROUP BY verdict", params):
        counts[row["verdict"]] = row["n"]
    return counts


def flagged_per_day(db, filters: dict) -> list[dict]:
    """Per day: how many checks were block and review (flagged), oldest first."""
    clause, params = where(filters, engine=engine_of(db))
    return list(db.query(
        f"SELECT substr(created_at, 1, 10) AS day, sum(CASE WHEN verdict = 'block' THEN 1 ELSE 0 END) AS block, "
        f"sum(CASE WHEN verdict = 'review' THEN 1 ELSE 0 END) AS review FROM checks {clause} "
        f"GROUP BY day ORDER BY day", params))


def top_codes(db, filters: dict, limit: int = 10) -> list[tuple[str, int]]:
    """The most frequent warning codes among the filtered checks."""
    counts: dict[str, int] = {}
    clause, params = where(filters, engine=engine_of(db))
    for row in db.query(f"SELECT codes FROM checks {clause}", params):
        for code in (row["codes"] or "").split():
            counts[code] = counts.get(code, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def distinct(db, column: str) -> list[str]:
    """Values seen in a column (for the filter pickers)."""
    assert column in ("regimen", "channel", "api_client")
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM checks ORDER BY 1").fetchall()]
