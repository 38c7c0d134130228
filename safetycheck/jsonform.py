"""The one JSON text that is hashed and stored: sorted keys, no spaces, UTF-8 as is, anything else as str().

`canonical` is the definition (the standard library's encoder). `fast_canonical` gives the same text five
times faster through orjson, and hands the data to `canonical` wherever orjson would word it differently:
numbers that json writes with a padded exponent (5e-05, 1.2e-07; orjson writes 0.00005, 1.2e-7), integers
beyond 64 bits, and anything orjson refuses. The only difference left is NaN and infinity, which are not
JSON: json writes the bare words NaN/Infinity, orjson writes null. Validated input holds neither.
"""

import json
import re

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# A number (first, or after ":", "," or "[") that orjson may word differently from json: 1e-9 <= |x| < 1e-4. Text in a
# string that looks like one only costs json's slower answer, never a wrong one.
_NUMBER_MAY_DIFFER = re.compile(r"(?:^|[:,\[])-?(?:0\.0000|\d(?:\.\d+)?e-\d(?!\d))")
# Its two tell-tales, each found fast (a literal first): the full pattern then runs on a few characters only.
_TELL_TALES = (re.compile(r"0\.0000"), re.compile(r"e-\d(?!\d)"))
_LONGEST_NUMBER = 32


def canonical(data) -> str:
    """The canonical JSON text of data (the definition)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fast_canonical(data) -> str:
    """canonical(data), computed by orjson where that gives the same text."""
    try:
        text = orjson.dumps(data, option=_OPTIONS, default=_as_json_would).decode()
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate, an int beyond 64 bits, mixed key types
        return canonical(data)
    if _may_differ(text):
        return canonical(data)
    return text


def fast_canonical_fields(values: list) -> str:
    """canonical(values) for a list of strings, None and integers (an audit row's fields), with no scan for
    numbers: none in it can be worded differently (text that looks like one is inside a string, escaped alike)."""
    if all(value is None or type(value) is str or type(value) is int for value in values):
        try:
            return orjson.dumps(values).decode()
        except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 64 bits
            return canonical(values)
    return fast_canonical(values)


def _may_differ(text: str) -> bool:
    """Whether text holds a number that json would word differently (see _NUMBER_MAY_DIFFER)."""
    for tell_tale in _TELL_TALES:
        for hit in tell_tale.finditer(text):
            if _NUMBER_MAY_DIFFER.search(text, max(0, hit.start() - _LONGEST_NUMBER), hit.end()):
                return True
    return False


def _as_json_would(value):
    # json writes a float subclass (numpy.float64) as the number; orjson hands it here. Everything else json
    # does not know it writes as str(value), as canonical's default=str does.
    return float(value) if isinstance(value, float) else str(value)
