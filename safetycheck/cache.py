"""Files of data derived at start-up: keyed, checksummed, written atomically, never required.

A cache file is an optimisation only: a missing, stale or damaged file, or a directory we cannot
write, means the data is derived again. Payloads are plain bytes (JSON, or .npz read with
allow_pickle=False): a cache file is never unpickled, so it cannot run code.
"""

import hashlib
import logging
import os
import tempfile
from contextlib import suppress
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"safetycheck-cache 1"


def source_digest(*files) -> str:
    """sha256 over source files, so editing the code that derives the data invalidates its cache."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


def read(cache_dir, name: str, key: str) -> bytes | None:
    """The payload stored under key, or None when caching is off or the file is missing, stale or damaged."""
    if not cache_dir:
        return None
    try:
        blob = (Path(cache_dir) / name).read_bytes()
    except OSError:
        return None
    parts = blob.split(b"\n", 3)
    if len(parts) != 4 or parts[0] != MAGIC or parts[1] != _digest(key.encode()):
        return None
    payload = parts[3]
    # os.replace makes writes atomic, but a crash or a full disk can still leave a short file behind.
    if _digest(payload) != parts[2]:
        log.warning("cache file %s is damaged; rebuilding it", Path(cache_dir) / name)
        return None
    return payload


def write(cache_dir, name: str, key: str, payload: bytes) -> None:
    """Store payload under key: temp file then os.replace, so a concurrent reader sees old or new, never half."""
    if not cache_dir:
        return
    blob = b"\n".join((MAGIC, _digest(key.encode()), _digest(payload), payload))
    tmp = None
    try:
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes the file 0600; workers running as another user must still read it.
            os.fchmod(handle.fileno(), 0o644)
            handle.write(blob)
        os.replace(tmp, Path(cache_dir) / name)
    except OSError as err:
        log.warning("cache file %s not written (%s); start-up will derive it again", name, err)
        if tmp:
            with suppress(OSError):
                os.unlink(tmp)


def _digest(data: bytes) -> bytes:
    # Keys are stored hashed, so any string (newlines included) can be one.
    return hashlib.sha256(data).hexdigest().encode()
