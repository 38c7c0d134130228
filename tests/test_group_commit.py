"""Group commit: rows queued while another thread writes are committed together, each chained and checked."""

import fcntl
import os
import threading
import time

from safetycheck import audit
from safetycheck.db import open_audit

from .conftest import BOTH_ENGINES, raw_sql

ENGINES = BOTH_ENGINES


def _row(n: int, key: str | None = None, body: str = "same") -> dict:
    response = {"check_id": audit.new_id(), "created_at": audit.now(), "ruleset_version": "test",
                "regimen": "ipd", "mode": "dispensing", "verdict": "pass", "warnings": [], "n": n}
    return {"request": {"regimen": "ipd", "body": body}, "response": response, "idempotency_key": key}


def _record_into(app, outcomes: list, i: int, row: dict, ready=None) -> None:
    """Record one row on its own connection (as a request thread does); outcomes[i] is what it returned or raised."""
    db = open_audit(app.config["DATABASE"], app.extensions["safetycheck_seal"])
    if ready is not None:
        ready()
    try:
        outcomes[i] = audit.record_check(db, channel="api", api_client="tester", **row)
    except Exception as err:  # noqa: BLE001 - the test looks at what each thread got
        outcomes[i] = err
    finally:
        db.conn.close()


def _record_all(app, rows: list[dict], hold_turn: bool) -> list:
    """Each row from its own thread and connection; with hold_turn, all queue before any is written."""
    seal = app.extensions["safetycheck_seal"]
    queue = audit._queue_for(seal)
    outcomes = [None] * len(rows)
    queued = threading.Barrier(len(rows) + 1)

    threads = [threading.Thread(target=_record_into, args=(app, outcomes, i, row, queued.wait))
               for i, row in enumerate(rows)]
    if hold_turn:
        queue.turn.acquire()  # as if another thread were writing: everyone queues behind it
    for thread in threads:
        thread.start()
    queued.wait()
    if hold_turn:
        try:
            _wait_for(lambda: len(queue.items) >= len(rows))
        finally:
            queue.turn.release()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _anchor_generation(app) -> int:
    """How many times the anchor has moved (0 before the first row)."""
    anchor = app.extensions["safetycheck_seal"].read_anchor()
    return anchor["generation"] if anchor else 0


def test_rows_queued_behind_a_writer_are_one_commit_each_chained(app, runner_for):
    before = _anchor_generation(app)
    outcomes = _record_all(app, [_row(n) for n in range(8)], hold_turn=True)
    assert all(isinstance(o, str) for o in outcomes)
    assert raw_sql(app, "SELECT count(*) AS n FROM checks")[0]["n"] == 8
    assert _anchor_generation(app) - before == 1  # one batch: one commit, one anchor move
    result = runner_for(app).invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_an_idempotency_clash_in_a_batch_fails_alone(app):
    rows = [_row(0, key="k-1"), _row(1), _row(2, key="k-1", body="other"), _row(3)]
    outcomes = _record_all(app, rows, hold_turn=True)
    conflicts = [o for o in outcomes if isinstance(o, audit.IdempotencyConflict)]
    assert len(conflicts) == 1 and sum(isinstance(o, str) for o in outcomes) == 3
    assert raw_sql(app, "SELECT count(*) AS n FROM checks")[0]["n"] == 3


def test_concurrent_writers_without_help_store_every_row_once(app, runner_for):
    outcomes = _record_all(app, [_row(n) for n in range(16)], hold_turn=False)
    assert all(isinstance(o, str) for o in outcomes)
    seqs = [r["seq"] for r in raw_sql(app, "SELECT seq FROM checks ORDER BY seq")]
    assert seqs == list(range(1, 17))
    assert runner_for(app).invoke(args=["audit", "verify"]).exit_code == 0


def test_rows_that_arrive_while_the_writer_waits_for_another_process_join_its_commit(app, runner_for):
    """The batch is taken once the cross-process turn is held, not before: rows queued while another process
    (here, a lock on the anchor's lock file) holds the turn go into the same commit."""
    seal = app.extensions["safetycheck_seal"]
    queue = audit._queue_for(seal)
    before = _anchor_generation(app)
    other_process = os.open(seal._lock_path, os.O_RDWR | os.O_CREAT, 0o600)  # its own open file: flock conflicts
    fcntl.flock(other_process, fcntl.LOCK_EX)
    outcomes = [None] * 6

    threads = [threading.Thread(target=_record_into, args=(app, outcomes, i, _row(i))) for i in range(6)]
    try:
        threads[0].start()
        _wait_for(lambda: queue.turn.locked())  # the first writer holds this process's turn, waiting for the flock
        for thread in threads[1:]:
            thread.start()
        _wait_for(lambda: len(queue.items) == 6, seconds=10)  # all six queued: the first is not taken yet
    finally:
        fcntl.flock(other_process, fcntl.LOCK_UN)
        os.close(other_process)
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(o, str) for o in outcomes), outcomes
    assert raw_sql(app, "SELECT count(*) AS n FROM checks")[0]["n"] == 6
    assert _anchor_generation(app) - before == 1  # one commit for all six (it was two: the first row alone)
    assert runner_for(app).invoke(args=["audit", "verify"]).exit_code == 0


def test_a_refused_turn_fails_only_the_row_that_took_it(app, monkeypatch):
    """A writer refused before it took any row (the anchor's lock cannot be had) fails alone; the rows queued
    behind it are not reported failed and are stored by the next writer."""
    seal = app.extensions["safetycheck_seal"]
    queue = audit._queue_for(seal)
    real_turn = type(seal).writer_turn
    refused = threading.Event()

    def writer_turn(self):
        if not refused.is_set():
            refused.set()
            _wait_for(lambda: len(queue.items) >= 3)  # everyone queued while this writer waited
            raise OSError("no lock for you")
        return real_turn(self)

    monkeypatch.setattr(type(seal), "writer_turn", writer_turn)
    outcomes = [None] * 3

    threads = [threading.Thread(target=_record_into, args=(app, outcomes, i, _row(i))) for i in range(3)]
    threads[0].start()
    _wait_for(refused.is_set)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failed = [o for o in outcomes if isinstance(o, OSError)]
    assert len(failed) == 1 and sum(isinstance(o, str) for o in outcomes) == 2, outcomes
    assert raw_sql(app, "SELECT count(*) AS n FROM checks")[0]["n"] == 2
    assert not queue.items  # the refused row was withdrawn, never written later


def _wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)
