"""The audit key and the chain-head anchor: both kept outside the database, so the database cannot vouch for itself.

The key (``SAFETYCHECK_AUDIT_KEY``, or a generated owner-only file ``instance/audit_key``) makes every row hash
an HMAC: whoever can write the database file but not read the key cannot forge or rewrite a row. The anchor
(``SAFETYCHECK_AUDIT_ANCHOR``, default ``<database>.anchor``) holds the last row of each chain and the database's
id, MACed with the key: deleting the last rows, every row, or swapping the database file shows against it.
"""

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

ANCHOR_FORMAT = "safetycheck-audit-anchor/1"
MIN_KEY_LENGTH = 32
TABLES = ("checks", "reviews")


class SealError(Exception):
    """The audit key or anchor cannot be used; nothing may be written or vouched for."""


def _canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def create_secret_file(path: Path, secret: str) -> bool:
    """Write `secret` to `path` (owner-only) unless it exists; atomic (a link), so racing processes agree."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if another process got there first: theirs is the key
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def read_secret_file(path: Path, what: str, forbid=stat.S_IWGRP | stat.S_IWOTH) -> str:
    """A secret file's content; refused when others could change (or, for the audit key, read) it."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & forbid:
        raise SealError(f"{path}: the {what} file is mode {mode:o}; run chmod 600 {path} (only the owner may "
                        "access it)")
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SealError(f"{path}: the {what} file is empty; delete it to have a new one generated")
    return value


def load_key(configured: str | None, key_file: Path) -> bytes:
    """The audit key: $SAFETYCHECK_AUDIT_KEY, else the key file (generated on first use)."""
    if configured:
        if len(configured) < MIN_KEY_LENGTH:
            raise SealError(f"SAFETYCHECK_AUDIT_KEY must be at least {MIN_KEY_LENGTH} characters")
        return configured.encode()
    if not key_file.exists():
        create_secret_file(key_file, secrets.token_urlsafe(48))
    return read_secret_file(key_file, "audit key", forbid=0o077).encode()


class Seal:
    """Keyed row hashes and the anchor file of one audit database."""

    def __init__(self, key: bytes, anchor_path: str | os.PathLike):
        self._key = key
        self.key_id = hmac.new(key, b"safetycheck audit key id", hashlib.sha256).hexdigest()[:16]
        self.anchor_path = Path(anchor_path)
        self._lock_path = self.anchor_path.with_name(self.anchor_path.name + ".lock")
        self._lock, self._lock_owner = -1, None

    def row_hash(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def _mac(self, body: dict) -> str:
        return hmac.new(self._key, _canonical(body), hashlib.sha256).hexdigest()

    def read_anchor(self, path: str | os.PathLike | None = None) -> dict | None:
        """The anchor (None when there is none yet); SealError when it is unreadable or its MAC is wrong."""
        path = Path(path) if path else self.anchor_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            anchor = json.loads(text)
            body = {k: v for k, v in anchor.items() if k != "mac"}
            valid = anchor.get("format") == ANCHOR_FORMAT and hmac.compare_digest(
                str(anchor.get("mac", "")), self._mac(body))
        except (ValueError, AttributeError) as err:
            raise SealError(f"anchor {path} is unreadable ({err})") from err
        if not valid:
            raise SealError(f"anchor {path} was altered or written with another audit key (its MAC does not match)")
        return anchor

    def check_head(self, database_id: str, table: str, last_seq: int | None, last_hash: str | None) -> None:
        """Before a write: refuse to extend a chain the anchor shows was truncated, rewritten or swapped."""
        anchor = self.read_anchor()
        if anchor is None:
            return
        if anchor["database_id"] != database_id:
            raise SealError(f"the database is not the one anchored in {self.anchor_path} (swapped database)")
        head = anchor[table]
        if head["seq"] == 0:
            return
        if last_seq is None or last_seq < head["seq"]:
            raise SealError(f"{table}: rows up to {head['seq']} are anchored but the database ends at "
                            f"{last_seq or 0} (truncated)")
        if last_seq == head["seq"] and last_hash != head["row_hash"]:
            raise SealError(f"{table}: row {last_seq} does not match the anchor (rewritten)")

    def advance(self, database_id: str, table: str, seq: int, row_hash: str) -> None:
        """After a commit: move the anchor forward to this row (never back; processes take turns by flock)."""
        fd = self._lock_fd()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            anchor = self.read_anchor() or {
                "format": ANCHOR_FORMAT, "database_id": database_id, "key_id": self.key_id,
                **{t: {"seq": 0, "row_hash": None} for t in TABLES}}
            if anchor["database_id"] != database_id or anchor[table]["seq"] >= seq:
                return  # a later row was anchored first (or check_head refuses this database anyway)
            body = {k: v for k, v in anchor.items() if k != "mac"}
            body[table] = {"seq": seq, "row_hash": row_hash}
            tmp = self.anchor_path.with_name(f".{self.anchor_path.name}.{os.getpid()}.tmp")
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(out, "w", encoding="utf-8") as handle:
                handle.write(json.dumps({**body, "mac": self._mac(body)}, sort_keys=True, indent=1) + "\n")
            os.replace(tmp, self.anchor_path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int:
        """This process's descriptor of the lock file, opened once (a fork opens its own: flock is per open)."""
        pid = os.getpid()
        if self._lock_owner != pid:
            self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_owner = pid
        return self._lock
