"""``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)``, the same text, faster.

With an indent, the standard library encodes every value through a generic Python generator
(its C encoder serves only compact output): a SARIF log of 11,000 results took 0.5 s. Reports
are trees of dicts with string keys, lists, strings, numbers, booleans and None; this walks them
directly, and leaves strings and floats to the standard library's own functions, so the text is
the same (tests/test_jsontext.py compares it on reports and on generated values). Anything else
(a key that is not a string, an object json would reject) goes to json.dumps as it is.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # the C function where there is one
from typing import Any


class _Other(Exception):
    """A value outside the shapes written here."""


def dumps(value: Any) -> str:
    parts: list[str] = []
    try:
        _write(value, parts, "\n")
    except _Other:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return "".join(parts)


# A report repeats a few dozen keys hundreds of thousands of times: each is encoded once.
_KEYS: dict[str, str] = {}


def _key(key: str) -> str:
    encoded = _KEYS.get(key)
    if encoded is None:
        if not isinstance(key, str):  # json writes such keys its own way
            raise _Other
        encoded = encode_basestring(key) + ": "
        if len(_KEYS) < 4096:
            _KEYS[key] = encoded
    return encoded


def _leaf(value: dict[str, Any], keys: list[str]) -> list[str] | None:
    """Each ``"key": value`` of a mapping whose values are all strings, ints, booleans or
    None; None for any other mapping."""
    entries = []
    for key in keys:
        item = value[key]
        kind = type(item)
        if kind is str:
            entries.append(_key(key) + encode_basestring(item))
        elif kind is int:
            entries.append(_key(key) + int.__repr__(item))
        elif item is None or kind is bool:
            entries.append(_key(key) + ("null" if item is None else "true" if item else "false"))
        else:
            return None
    return entries


def _write(value: Any, out: list[str], newline: str) -> None:
    kind = type(value)
    if kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        try:
            keys = sorted(value)
        except TypeError:  # keys of several types: json's own way
            raise _Other from None
        leaf = _leaf(value, keys)
        if leaf is not None:  # most of a report's mappings: written in one piece
            out.append("{" + inner + ("," + inner).join(leaf) + newline + "}")
            return
        separator = "{" + inner
        for key in keys:
            item = value[key]
            out.append(separator)
            out.append(_key(key))
            # A string, most of a report's values, without a call of its own.
            if type(item) is str:
                out.append(encode_basestring(item))
            else:
                _write(item, out, inner)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            if type(item) is str:
                out.append(encode_basestring(item))
            else:
                _write(item, out, inner)
            separator = "," + inner
        out.append(newline + "]")
    elif isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, dict):  # a subclass: written as json writes it, a dict
        _write(dict(value), out, newline)
    elif isinstance(value, list | tuple):
        _write(list(value), out, newline)
    else:
        raise _Other


def _float(value: float) -> str:
    # As json.encoder's floatstr with allow_nan (the default).
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)
