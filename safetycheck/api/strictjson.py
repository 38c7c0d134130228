"""Request JSON read strictly: a duplicate key, a lone surrogate or absurd nesting is a 400 naming it, never a guess."""

import json
import re

from flask_smorest import abort
from marshmallow import RAISE
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _DuplicateKey(Exception):
    def __init__(self, key):
        self.key = key


def _no_duplicates(pairs):
    data = dict(pairs)
    if len(data) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def lone_surrogate_path(value, path="") -> str | None:
    """The path of the first key or string holding a lone UTF-16 surrogate (which no UTF-8 store can hold)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(body)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate_path(key, f"{path}.{key!r}" if path else repr(key)) if isinstance(key, str) \
                else None
            if found:
                return found
            found = lone_surrogate_path(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_path(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def loads_strict(raw: bytes):
    """Parse a request body; abort(400) naming what is wrong. Returns webargs' `missing` for an empty body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        abort(400, message=f"The body is not valid UTF-8 (byte {err.start}).", errors={"json": ["not UTF-8"]})
    if not text.strip():
        return core.missing
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        abort(400, message=f"Duplicate JSON key {dup.key!r}: each key may be given once.",
              errors={"json": {str(dup.key): ["given more than once in one object"]}})
    except RecursionError:
        abort(400, message="The JSON is nested too deeply.", errors={"json": ["nested too deeply"]})
    except json.JSONDecodeError as err:
        abort(400, message=f"Invalid JSON body: {err.msg} at line {err.lineno} column {err.colno}.",
              errors={"json": ["Invalid JSON body."]})
    if _SURROGATE_ESCAPE.search(text):
        where = lone_surrogate_path(data)
        if where:
            abort(400, message=f"{where} holds a lone UTF-16 surrogate escape, which is not text.",
                  errors={"json": {where: ["lone UTF-16 surrogate"]}})
    return data


class StrictJSONParser(FlaskParser):
    """webargs' Flask parser with loads_strict for JSON bodies; unknown query parameters are refused too."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        limit = req.max_content_length
        if req.content_length is None and limit is not None and len(raw) >= limit:
            # A chunked body is cut at the limit without a word (werkzeug): look for one byte more.
            if req.environ["wsgi.input"].read(1):
                abort(413, message=f"The body is larger than {limit} bytes.")
        return loads_strict(raw)
