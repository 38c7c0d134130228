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
from contextlib import contextmanager
from pathlib import Path

from .jsonform import fast_canonical

ANCHOR_FORMAT = "safetycheck-audit-anchor/1"
MIN_KEY_LENGTH = 32
TABLES = ("checks", "reviews")
SLOT_BYTES = 1024  # one anchor record, padded; the file is two of them


class SealError(Exception):
    """The audit key or anchor cannot be used; nothing may be written or vouched for."""


def _canonical(data) -> bytes:
    return fast_canonical(data).encode()


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
        self._last = (b"", (None, []))  # the bytes last parsed and what they said: most reads find them again

    def row_hash(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def row_mac(self, head: bytes):
        """The keyed HMAC of row_hash, fed with the payload's first bytes (the rest is added by the caller)."""
        return hmac.new(self._key, head, hashlib.sha256)

    def _mac(self, body: dict) -> str:
        return hmac.new(self._key, _canonical(body), hashlib.sha256).hexdigest()

    def read_anchor(self, path: str | os.PathLike | None = None) -> dict | None:
        """The newest valid anchor record (None when there is none yet); SealError when none can be trusted."""
        return self.read_anchor_slots(path)[0]

    def read_anchor_slots(self, path: str | os.PathLike | None = None) -> tuple[dict | None, list[str]]:
        """(newest valid record or None, problems with the other slot): what verify reports besides the head."""
        path = Path(path) if path else self.anchor_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, []
        return self._parse(path, data)

    def _parse(self, path: Path, data: bytes) -> tuple[dict | None, list[str]]:
        if data == self._last[0] and path == self.anchor_path:
            return self._last[1]
        found = self._parse_slots(path, data)
        if path == self.anchor_path:
            self._last = (data, found)
        return found

    def _parse_slots(self, path: Path, data: bytes) -> tuple[dict | None, list[str]]:
        if len(data) == 2 * SLOT_BYTES and data[SLOT_BYTES - 1:SLOT_BYTES] == b"\n":
            chunks = [data[:SLOT_BYTES], data[SLOT_BYTES:]]
        else:  # one JSON document: an exported anchor, or a live one from before slots
            chunks = [data]
        records, damaged = [], []
        for number, chunk in enumerate(chunks, 1):
            if not chunk.strip():
                continue  # a slot not written yet
            record = self._record(chunk)
            if record is None:
                damaged.append(number)
            else:
                records.append(record)
        if not records:
            if damaged:
                raise SealError(f"anchor {path} was altered or written with another audit key (its MAC does "
                                "not match)")
            return None, []
        newest = max(records, key=lambda r: r.get("generation", 0))
        problems = [f"anchor {path}: slot {n} is damaged (a torn write at a crash, or tampering); the other slot "
                    f"vouches for checks up to row {newest['checks']['seq']}" for n in damaged]
        if len(chunks) == 2 and not damaged and len(records) == 2 and abs(
                records[0].get("generation", 0) - records[1].get("generation", 0)) != 1:
            problems.append(f"anchor {path}: its two slots are not consecutive writes (tampering)")
        return newest, problems

    def _record(self, chunk: bytes) -> dict | None:
        """One anchor record if it parses and its MAC is ours, else None."""
        try:
            record = json.loads(chunk)
            body = {k: v for k, v in record.items() if k != "mac"}
            if record.get("format") == ANCHOR_FORMAT and hmac.compare_digest(str(record.get("mac", "")),
                                                                             self._mac(body)):
                return record
        except (ValueError, AttributeError, TypeError):
            pass
        return None

    def check_head(self, database_id: str, table: str, last_seq: int | None, last_hash: str | None) -> None:
        """Before a write: refuse to extend a chain the anchor shows was truncated, rewritten or swapped."""
        self._check_head(self.read_anchor(), database_id, table, last_seq, last_hash)

    def _check_head(self, anchor: dict | None, database_id: str, table: str, last_seq: int | None,
                    last_hash: str | None) -> None:
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

    @contextmanager
    def writer_turn(self):
        """Hold the anchor's lock: this server's writers take turns in the kernel's queue (woken at once when it
        is free), not in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries. Yields the turn's
        AnchorTurn, through which the anchor is checked and then advanced."""
        fd = self._lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        turn = AnchorTurn(self)
        try:
            yield turn
        finally:
            try:
                turn.close()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _replace(self, data: bytes) -> None:
        """Write the whole anchor file atomically (a reader sees the old file or the new one, never a part)."""
        tmp = self.anchor_path.with_name(f".{self.anchor_path.name}.{os.getpid()}.tmp")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(out, data)
        finally:
            os.close(out)
        os.replace(tmp, self.anchor_path)

    def locked_read(self) -> tuple[dict | None, list[str]]:
        """The anchor read while no advance is half-way through (for verify and export)."""
        try:
            fd = self._lock_fd()
        except OSError:  # a read-only auditor's copy: no writer to wait for
            return self.read_anchor_slots()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return self.read_anchor_slots()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int:
        """This process's descriptor of the lock file, opened once (a fork opens its own: flock is per open)."""
        pid = os.getpid()
        if self._lock_owner != pid:
            self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_owner = pid
        return self._lock


class AnchorTurn:
    """The anchor during one writer's turn: read once, checked before the write, advanced after its commit.

    Nobody else writes the anchor while the turn's lock is held, so one descriptor and one read serve both:
    every system call inside the turn gives up the GIL and waits to get it back while the other writers queue
    (the file was opened and read twice per turn before: check_head, then advance).
    """

    def __init__(self, seal: Seal):
        self.seal = seal
        self._fd: int | None = None
        self._data: bytes | None = None

    def _read(self) -> bytes:
        if self._data is None:
            try:
                self._fd = os.open(self.seal.anchor_path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                self._data = b""
            else:
                self._data = os.pread(self._fd, 4 * SLOT_BYTES, 0)
        return self._data

    def check_head(self, database_id: str, table: str, last_seq: int | None, last_hash: str | None) -> None:
        """Seal.check_head against the anchor as this turn read it."""
        seal = self.seal
        seal._check_head(seal._parse(seal.anchor_path, self._read())[0], database_id, table, last_seq, last_hash)

    def advance(self, database_id: str, table: str, seq: int, row_hash: str) -> None:
        """Move the anchor forward to this row (never back).

        The file holds two fixed-size slots and each advance overwrites the older one in place: one pwrite, no
        rename, and a write torn by a crash spoils only that slot, while the other still vouches for the chain.
        """
        seal, data = self.seal, self._read()
        anchor, _ = seal._parse(seal.anchor_path, data) if data else (None, [])
        anchor = anchor or {
            "format": ANCHOR_FORMAT, "database_id": database_id, "key_id": seal.key_id,
            **{t: {"seq": 0, "row_hash": None} for t in TABLES}}
        if anchor["database_id"] != database_id or anchor[table]["seq"] >= seq:
            return  # a later row was anchored first (or check_head refuses this database anyway)
        body = {k: v for k, v in anchor.items() if k != "mac"}
        body[table] = {"seq": seq, "row_hash": row_hash}
        body["generation"] = body.get("generation", 0) + 1
        record = {**body, "mac": seal._mac(body)}
        slot = _canonical(record)
        if len(slot) >= SLOT_BYTES:
            raise SealError(f"anchor record is {len(slot)} bytes, more than a slot holds")
        slot = slot.ljust(SLOT_BYTES - 1) + b"\n"
        offset = (body["generation"] % 2) * SLOT_BYTES  # generation g goes where g - 2 was
        if len(data) != 2 * SLOT_BYTES or self._fd is None:  # new, or one document from before slots: replaced
            blank = b" " * (SLOT_BYTES - 1) + b"\n"
            data = (slot + blank) if offset == 0 else (blank + slot)
            seal._replace(data)
            self.close()  # the descriptor is of the file replaced
        else:
            os.pwrite(self._fd, slot, offset)
            data = data[:offset] + slot + data[offset + SLOT_BYTES:]
        self._data = data
        seal._last = (data, (record, []))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
