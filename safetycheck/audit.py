"""Append-only audit store: every answered check and every review, in keyed hash chains anchored outside it."""

import csv
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime

from . import queue
from .jsonform import fast_canonical, fast_canonical_fields
from .seal import TABLES, SealError
from .storage import engine_of

GENESIS = "0" * 64
CHECK_FIELDS = ("check_id", "created_at", "channel", "api_client", "ruleset_version", "regimen", "protocol",
                "mode", "verdict", "codes", "patient_id", "idempotency_key", "request_hash", "request_json",
                "response_json", "prev_hash")
REVIEW_FIELDS = ("review_id", "check_id", "created_at", "reviewer", "decision", "note", "prev_hash")


def store_failure(err: BaseException) -> str:
    """What an audit-write failure is, in words an operator can act on (never request data or keys)."""
    text = str(err)
    if isinstance(err, SealError):
        return f"the audit chain refused the write: {text}"
    if "disk is full" in text or "disk I/O error" in text:
        return f"the disk holding the audit database is full or failing ({text})"
    if "readonly" in text or "read-only" in text:
        return f"the audit database is read-only ({text})"
    if "locked" in text or "busy" in text:
        return f"the audit database is locked by another process ({text}); retry"
    return f"{type(err).__name__}: {text}"


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


APPEND_ONLY_TRIGGERS = {f"{table}_no_{event}" for table in (*TABLES, "audit_meta") for event in ("update", "delete")}


def row_hash(row: dict, fields: tuple[str, ...], seal=None) -> str:
    """HMAC (the audit key) over the row's fields, prev_hash included; plain sha256 for rows from before the key."""
    payload = fast_canonical_fields([row.get(f) for f in fields]).encode()
    return seal.row_hash(payload) if seal is not None else hashlib.sha256(payload).hexdigest()


def _row_mac(row: dict, fields: tuple[str, ...], seal):
    """row_hash's HMAC fed with every field but prev_hash, the last: made before the writer's turn, so the turn
    only adds the previous row's hash (the request and response JSON are most of the bytes)."""
    if fields[-1] != "prev_hash":
        raise ValueError("prev_hash must be the last hashed field")
    head = fast_canonical_fields([row.get(f) for f in fields[:-1]])
    return seal.row_mac(head[:-1].encode() + b",")  # "[a,b,...]" without its "]": prev_hash and "]" follow


def _chained_hash(mac, prev_hash: str) -> str:
    """row_hash(row) from _row_mac(row): the same bytes, so verify recomputes it the plain way."""
    mac = mac.copy()
    mac.update(fast_canonical(prev_hash).encode() + b"]")
    return mac.hexdigest()


def database_id(db) -> str:
    """The random id migration 0003 gave this database (what the anchor names); cached on the connection."""
    cached = getattr(db, "audit_database_id", None)
    if cached is None:
        found = db.execute("SELECT value FROM audit_meta WHERE name = 'database_id'").fetchone()
        if found is None:
            raise SealError("the database has no id: run flask --app wsgi db migrate")
        cached = db.audit_database_id = found[0]
    return cached


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def find_idempotent(db, api_client: str, key: str, request_hash: str) -> str | None:
    """The stored answer (its exact bytes) for a retried request, or None; a different body under the key raises."""
    rows = list(db.query("SELECT request_hash, response_json FROM checks WHERE api_client = ? AND "
                         "idempotency_key = ?", [api_client, key]))
    if not rows:
        return None
    if rows[0]["request_hash"] != request_hash:
        raise IdempotencyConflict()  # the key is a client's value: it stays out of messages and logs
    return rows[0]["response_json"]


class _Pending:
    """One row waiting for its turn to be appended, and what became of it."""

    __slots__ = ("table", "row", "mac", "done", "error")

    def __init__(self, table: str, row: dict, mac):
        self.table, self.row, self.mac, self.done, self.error = table, row, mac, False, None


class _Queue:
    """The rows a process's threads are waiting to append to one audit database, and whose turn it is."""

    def __init__(self):
        self.items: list[_Pending] = []
        self.items_lock = threading.Lock()  # held only to add or take rows
        self.turn = threading.Lock()  # held by the thread writing a batch


_QUEUES: dict[int, _Queue] = {}
_QUEUES_LOCK = threading.Lock()


def _queue_for(seal) -> _Queue:
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(id(seal), _Queue())


def _append(db, table: str, row: dict, fields: tuple[str, ...]) -> None:
    """Insert one keyed row chained to the last one, committed (synchronous FULL) before this returns.

    Group commit: threads that arrive while another writes queue their rows; the next thread to get the turn
    writes every queued row of its table in one transaction, one fsync for all, each row still chained, checked
    and (under a savepoint) refused on its own. Nobody returns before the commit that holds their row.
    """
    seal = getattr(db, "seal", None)
    if seal is None:
        raise SealError("no audit key: the connection was not opened by the app (db.get_db / db.open_audit)")
    pending = _queue_for(seal)  # not `queue`: that name is the auditor's-queue module
    mine = _Pending(table, row, _row_mac(row, fields, seal))
    with pending.items_lock:
        pending.items.append(mine)
    # One writer at a time: threads of a process on the queue's turn, processes of a server on the anchor's
    # flock, both woken at once when it is free; SQLite's busy handler sleeps 1, 2, 5, 10... ms between
    # tries, which gave threaded workers a long tail and halved the rate of two processes.
    with pending.turn:
        if not mine.done:
            taken: list[_Pending] = []

            def take() -> list[_Pending]:
                """The rows queued by now: called once every lock is held, so the rows that arrived while this
                writer waited for another process's turn (or another server's) join its commit."""
                with pending.items_lock:
                    taken.extend(item for item in pending.items if item.table == table)
                    pending.items = [item for item in pending.items if item.table != table]
                return taken

            try:
                with seal.writer_turn() as turn:
                    _append_batch(engine_of(db), db.conn, seal, turn, database_id(db),
                                  getattr(db, "check_file", None), table, take)
            except BaseException as err:
                if not taken:  # refused before any row was taken: only this one fails, the rest wait their turn
                    with pending.items_lock:
                        pending.items = [item for item in pending.items if item is not mine]
                for item in taken or [mine]:
                    if not item.done:
                        item.error, item.done = err, True
            for item in taken:
                item.done = True
    if mine.error is not None:
        raise mine.error


def _append_batch(engine, conn, seal, turn, db_id, check_file, table: str, take) -> None:
    """Take the queued rows once the chain is held, insert them keyed in one transaction, check the file is still
    ours, commit, move the anchor; a row the database refuses (an idempotency clash) fails alone."""
    engine.begin_append(conn, table)  # SQLite: BEGIN IMMEDIATE; PostgreSQL: the chain's advisory lock
    try:
        batch = take()
        last = conn.execute(f"SELECT seq, row_hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
        turn.check_head(db_id, table, last[0] if last else None, last[1] if last else None)
        seq, prev = (last[0], last[1]) if last else (0, GENESIS)
        for item in batch:
            row = item.row
            row["prev_hash"] = prev
            row["row_hash"] = _chained_hash(item.mac, prev)
            row["key_id"] = seal.key_id
            columns = ", ".join(["seq", *row])
            # seq is given, not generated: a PostgreSQL sequence leaves gaps on rollback
            insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * (len(row) + 1))})"
            if len(batch) == 1:  # alone: a refused row fails the whole transaction, which is only its own
                conn.execute(insert, [seq + 1, *row.values()])
            else:
                conn.execute("SAVEPOINT audit_row")
                try:
                    conn.execute(insert, [seq + 1, *row.values()])
                except Exception as err:  # noqa: BLE001 - this row alone is refused; the others go on
                    if not conn.in_transaction:
                        raise  # the database dropped the whole transaction (disk full): every row fails with it
                    conn.execute("ROLLBACK TO SAVEPOINT audit_row")
                    conn.execute("RELEASE SAVEPOINT audit_row")
                    item.error, item.done = err, True
                    continue
                conn.execute("RELEASE SAVEPOINT audit_row")
            seq, prev = seq + 1, row["row_hash"]
        if check_file is not None:
            check_file()  # the file deleted or replaced under us: the rows would vanish, so nothing is answered
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite already rolled back on some errors (SQLITE_FULL): keep the real one
            conn.execute("ROLLBACK")
        raise
    if seq > (last[0] if last else 0):  # at least one row of the batch was stored
        turn.advance(db_id, table, seq, prev)


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
        "request_json": request_json, "response_json": fast_canonical(response),
    }
    try:
        _append(db, "checks", row, CHECK_FIELDS)
    except Exception as err:
        # A concurrent request with the same key was stored first: answer as it did, or refuse another body.
        if idempotency_key and engine_of(db).is_idempotency_clash(err):
            stored = find_idempotent(db, api_client, idempotency_key, request_hash)
            if stored is not None:
                return stored
        raise
    return row["response_json"]


def canonical_request(request: dict) -> tuple[str, str]:
    """The request as stored, and its sha256 (what an Idempotency-Key is compared on).

    fast_canonical writes canonical's bytes for anything a validated body holds (it has no NaN), so the hash of
    a retried request is the one an earlier version stored."""
    request_json = fast_canonical(request)
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
    """The audit queue, newest first, filtered and paged: the filters are the auditor's page's (queue.where), so
    both read `until` alike (a date is that whole day)."""
    clause, params = queue.where({"verdict": verdict, "code": code, "reviewed": reviewed, "since": since,
                                  "until": until}, engine=engine_of(db))
    total = db.execute(f"SELECT count(*) FROM checks {clause}", params).fetchone()[0]
    rows = db.query(
        f"SELECT check_id, created_at, channel, api_client, regimen, protocol, mode, verdict, codes, patient_id, "
        f"(SELECT count(*) FROM reviews r WHERE r.check_id = checks.check_id) AS reviews "
        f"FROM checks {clause} ORDER BY seq DESC LIMIT ? OFFSET ?", params + [per_page, (page - 1) * per_page])
    items = [{**r, "codes": r["codes"].split() if r["codes"] else []} for r in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def verify(db, seal, exported_anchor: str | None = None) -> tuple[list[str], list[str]]:
    """Check triggers, database id, both keyed chains and their ends against the anchor(s): (problems, notes)."""
    problems, notes = [], []
    present = engine_of(db).trigger_names(db)
    for name in sorted((APPEND_ONLY_TRIGGERS | engine_of(db).extra_triggers) - present):
        problems.append(f"append-only trigger {name} was dropped")
    try:
        db_id = database_id(db)
    except (SealError, Exception) as err:  # noqa: BLE001 - a missing table is the same finding
        problems.append(f"database id: {err}")
        db_id = None
    anchors = []
    for label, path in (("anchor", None), ("exported anchor", exported_anchor)):
        if label == "exported anchor" and not path:
            continue
        try:
            anchor, slot_problems = seal.read_anchor_slots(path) if path else seal.locked_read()
            problems.extend(slot_problems)
        except SealError as err:
            problems.append(str(err))
            continue
        if anchor is None:
            if label == "exported anchor":
                problems.append(f"exported anchor {path} does not exist")
            continue
        if db_id is not None and anchor["database_id"] != db_id:
            problems.append(f"{label}: the database is not the one anchored (swapped database: anchored id "
                            f"{anchor['database_id']}, this database {db_id})")
        anchors.append((label, anchor))
    for table, fields, key in (("checks", CHECK_FIELDS, "check_id"), ("reviews", REVIEW_FIELDS, "review_id")):
        previous, expected_seq, keyed_seen, hashes = GENESIS, 1, False, {}
        for row in db.query(f"SELECT * FROM {table} ORDER BY seq"):
            where = f"row {row['seq']} ({key} {row[key]})"
            if row["seq"] != expected_seq:
                problems.append(f"{table}: rows {expected_seq}..{row['seq'] - 1} are missing (before {key} "
                                f"{row[key]})")
            if row["prev_hash"] != previous:
                problems.append(f"{table}: {where} does not follow the previous row")
            if row.get("key_id") is None:
                if keyed_seen:
                    problems.append(f"{table}: {where} has no keyed hash after keyed rows (forged)")
                elif row_hash(row, fields) != row["row_hash"]:
                    problems.append(f"{table}: {where} was altered")
            elif row["key_id"] != seal.key_id:
                keyed_seen = True
                problems.append(f"{table}: {where} was written with another audit key (key id {row['key_id']}, "
                                f"configured {seal.key_id})")
            else:
                keyed_seen = True
                if row_hash(row, fields, seal) != row["row_hash"]:
                    problems.append(f"{table}: {where} was altered or forged (its keyed hash does not match)")
            hashes[row["seq"]] = row["row_hash"]
            previous, expected_seq = row["row_hash"], row["seq"] + 1
        last_seq = expected_seq - 1
        for label, anchor in anchors:
            head = anchor[table]
            if head["seq"] > last_seq:
                problems.append(f"{table}: {label} ends at row {head['seq']} but the database ends at row "
                                f"{last_seq} (truncated: rows {last_seq + 1}..{head['seq']} are gone)")
            elif head["seq"] and hashes.get(head["seq"]) != head["row_hash"]:
                problems.append(f"{table}: row {head['seq']} does not match the {label} (rewritten)")
        live = next((a for label, a in anchors if label == "anchor"), None)
        if live is None and last_seq and db_id is not None:
            problems.append(f"{table}: no anchor at {seal.anchor_path}: the end of the chain cannot be proved")
        elif live is not None and last_seq > live[table]["seq"]:
            notes.append(f"{table}: rows {live[table]['seq'] + 1}..{last_seq} are after the anchor (written "
                         "as the server stopped); keyed and chained, but their end is not anchored")
    exported = next((a for label, a in anchors if label == "exported anchor"), None)
    live = next((a for label, a in anchors if label == "anchor"), None)
    if exported is not None and live is not None:
        for table in TABLES:
            if exported[table]["seq"] > live[table]["seq"]:
                problems.append(f"{table}: the anchor is behind the exported anchor (rolled back)")
    return problems, notes


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

