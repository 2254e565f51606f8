"""``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)``, the same text, faster.

With an indent, the standard library encodes every value through a generic Python generator
(its C encoder serves only compact output): a SARIF log of 11,000 results took 0.5 s. Reports
are trees of dicts with string keys, lists, strings, numbers, booleans and None; this walks them
directly, and leaves strings and floats to the standard library's own functions, so the text is
the same (tests/test_jsontext.py compares it on reports and on generated values). Anything else
(a key that is not a string, an object json would reject) goes to json.dumps as it is.

``chunks`` gives the text in pieces, and a ``Stream`` in the tree is a list whose items are
made as they are written: a report of 11,000 findings held its results as dicts and its text as
a million small strings at once, 70 MB more than the scan itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring  # the C function where there is one
from typing import Any


class Stream:
    """A list in the tree whose items are made as ``chunks`` writes them, and let go then."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def dumps(value: Any) -> str:
    parts: list[str] = []
    _write(value, parts, "\n")
    return "".join(parts)


def chunks(value: Any) -> Iterator[str]:
    """The text of ``dumps`` in pieces, each given after a stream's item once enough text has
    gathered."""
    parts: list[str] = []
    yield from _pieces(value, parts, "\n")
    yield "".join(parts)


def _pieces(value: Any, out: list[str], newline: str) -> Iterator[str]:
    """_write, but through the containers down to the streams, whose items are written one at
    a time."""
    kind = type(value)
    if kind is Stream:
        inner = newline + "  "
        separator = "[" + inner
        for item in value.items:
            out.append(separator)
            _write(item, out, inner)
            separator = "," + inner
            if len(out) > _PIECE_PARTS:
                yield "".join(out)
                out.clear()
        out.append("[]" if separator[0] == "[" else newline + "]")
    elif kind is dict and _str_keys(value) and any(_streams(v) for v in value.values()):
        inner = newline + "  "
        separator = "{" + inner
        for key in sorted(value):
            out.append(separator)
            out.append(_key(key))
            yield from _pieces(value[key], out, inner)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list and value and any(_streams(v) for v in value):
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            yield from _pieces(item, out, inner)
            separator = "," + inner
        out.append(newline + "]")
    else:
        _write(value, out, newline)


def _streams(value: Any) -> bool:
    """Whether a Stream is in ``value`` (a report has one or two, near the top)."""
    kind = type(value)
    if kind is Stream:
        return True
    if kind is dict:
        return any(_streams(v) for v in value.values())
    if kind is list:
        return any(_streams(v) for v in value)
    return False


def _str_keys(value: dict[Any, Any]) -> bool:
    return bool(value) and all(type(k) is str for k in value)


# Small strings gathered before a piece is given: some 100 KB of a report's text.
_PIECE_PARTS = 8192


# A report repeats a few dozen keys hundreds of thousands of times: each is encoded once.
_KEYS: dict[str, str] = {}


def _key(key: str) -> str:
    encoded = _KEYS.get(key)
    if encoded is None:
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
        if not all(type(k) is str for k in value):  # json writes such keys its own way
            _as_json(value, out, newline)
            return
        inner = newline + "  "
        keys = sorted(value)
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
    elif kind is Stream:
        _write(list(value.items), out, newline)
    else:
        _as_json(value, out, newline)


def _as_json(value: Any, out: list[str], newline: str) -> None:
    """What json writes of ``value`` at this depth (its text has no newline but between
    lines, each then indented as here)."""
    out.append(
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).replace("\n", newline)
    )


def _float(value: float) -> str:
    # As json.encoder's floatstr with allow_nan (the default).
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)
