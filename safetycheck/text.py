"""Name normalisation shared by the knowledge loader and the matcher."""

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_NOT_NAME = re.compile(r"[^a-z0-9'+/#\-]+")


def normalize(name: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: the key every name lookup uses."""
    if not name.isascii():
        name = name.translate(_APOSTROPHES)
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = name.lower().replace(".", " ")
    if "  " not in text:
        # Letters and digits between single spaces (most names and lines) are left as they are by the
        # pattern: skip it.
        bare = text.replace(" ", "")
        if bare.isalnum() and bare.isascii():
            return text.strip(" -/+'")
    return _NOT_NAME.sub(" ", text).strip(" -/+'")
