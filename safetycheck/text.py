"""Name normalisation shared by the knowledge loader and the matcher."""

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_NOT_NAME = re.compile(r"[^a-z0-9'+/#\-]+")
# The same class minus the separator of normalize_all: a run of other characters never spans two names.
_NOT_NAME_OR_NUL = re.compile(r"[^a-z0-9'+/#\-\x00]+")


def _ascii(name: str) -> str:
    name = name.translate(_APOSTROPHES)
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


def normalize(name: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: the key every name lookup uses."""
    if not name.isascii():
        name = _ascii(name)
    text = name.lower().replace(".", " ")
    if "  " not in text:
        # Letters and digits between single spaces (most names and lines) are left as they are by the
        # pattern: skip it.
        bare = text.replace(" ", "")
        if bare.isalnum() and bare.isascii():
            return text.strip(" -/+'")
    return _NOT_NAME.sub(" ", text).strip(" -/+'")


def normalize_all(names: list[str]) -> list[str]:
    """[normalize(n) for n in names], in one regex pass over all of them (start-up normalises ~107k)."""
    if not names:
        return []
    joined = "\0".join(names)
    if joined.count("\0") != len(names) - 1:
        return [normalize(name) for name in names]  # a NUL inside a name: the join cannot tell them apart
    if not joined.isascii():
        # What normalize does to a non-ASCII name first; NFKD never makes a NUL.
        joined = "\0".join([name if name.isascii() else _ascii(name) for name in names])
    text = _NOT_NAME_OR_NUL.sub(" ", joined.lower().replace(".", " "))
    return [name.strip(" -/+'") for name in text.split("\0")]
