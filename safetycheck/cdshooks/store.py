"""CDS Hooks rows next to the audit store: card -> stored check, feedback keys, seen JWT ids (either engine)."""

import hashlib
import time

from .. import audit
from ..jsonform import canonical
from ..storage import engine_of, transaction


def remember_cards(db, check_id: str, card_ids: list[str]) -> None:
    """Which stored check sent which card uuid (feedback names only the card)."""
    created = audit.now()
    with transaction(db) as conn:
        for cid in dict.fromkeys(card_ids):
            conn.execute("INSERT INTO cds_cards (card_uuid, check_id, created_at) VALUES (?, ?, ?) "
                         "ON CONFLICT DO NOTHING", [cid, check_id, created])


def check_for_card(db, card_id: str) -> str | None:
    """The newest stored check that sent this card (newest in the audit chain's own order)."""
    row = db.execute("SELECT c.check_id FROM cds_cards c JOIN checks k ON k.check_id = c.check_id "
                     "WHERE c.card_uuid = ? ORDER BY k.seq DESC LIMIT 1", [card_id]).fetchone()
    return row[0] if row else None


def feedback_key(item: dict) -> str:
    """The same feedback sent twice (batched, retried) has the same key."""
    return hashlib.sha256(canonical(item).encode()).hexdigest()


def feedback_seen(db, key: str) -> bool:
    return db.execute("SELECT 1 FROM cds_feedback WHERE feedback_key = ?", [key]).fetchone() is not None


def store_feedback(db, key: str, card_id: str, check_id: str, reviewer: str, decision: str, note: str) -> bool:
    """Append the review and its feedback key; False when it was already stored."""
    if feedback_seen(db, key):
        return False
    review = audit.add_review(db, check_id, reviewer, decision, note)
    try:
        with transaction(db) as conn:
            conn.execute("INSERT INTO cds_feedback (feedback_key, review_id, card_uuid, created_at) "
                         "VALUES (?, ?, ?, ?)", [key, review["review_id"], card_id, audit.now()])
    except Exception as err:
        if engine_of(db).is_unique_violation(err, "cds_feedback"):
            return False  # a concurrent copy of the same feedback won the race
        raise
    return True


def remember_jti(db, issuer: str, jti: str, expires_at: int) -> bool:
    """True the first time (issuer, jti) is seen; False on a replay (the database is shared by workers)."""
    try:
        with transaction(db) as conn:
            conn.execute("DELETE FROM cds_jti WHERE expires_at < ?", [int(time.time()) - 3600])
            conn.execute("INSERT INTO cds_jti (issuer, jti, expires_at) VALUES (?, ?, ?)", [issuer, jti, expires_at])
    except Exception as err:
        if engine_of(db).is_unique_violation(err, "cds_jti"):
            return False
        raise
    return True
