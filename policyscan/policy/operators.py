"""The comparison operators a condition can name, as a literal dict of small functions.

Each takes the rule's argument, once, and gives the test: it takes the attribute's Value (None
when absent) and answers True, False, or None when the value cannot be known statically.
Unknown is never a violation.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from policyscan.model import Value

# What a condition asks of an attribute's Value (None when absent).
Test = Callable[[Value | None], bool | None]
# An operator takes the rule's argument once, when the policy is compiled, and gives the test.
Operator = Callable[[Any], Test]

TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t", "enable", "enabled"})
FALSY = frozenset({"0", "false", "no", "off", "n", "f", "disable", "disabled", ""})


def scalar_text(value: Value) -> str | None:
    """The scalar as written: YAML's ``yes`` stays ``yes``, a number keeps its spelling."""
    data = value.data
    if isinstance(data, str):
        return data
    if data is None or isinstance(data, dict | list):
        return None
    return value.text if value.text is not None else value.as_str()


def _number(value: Value) -> float | None:
    data = value.data
    if isinstance(data, bool):
        return None
    if isinstance(data, int | float):
        return float(data)
    if isinstance(data, str):
        try:
            return float(data.strip())
        except ValueError:
            return None
    return None


def _known(fn: Callable[[Value, Any], bool | None]) -> Operator:
    """Absent is False; unknown is None; otherwise ask ``fn``."""

    def bind(arg: Any) -> Test:
        def test(value: Value | None) -> bool | None:
            if value is None:
                return False
            if not value.known:
                return None
            return fn(value, arg)

        return test

    return bind


def _without_arg(test: Test) -> Operator:
    def bind(_arg: Any) -> Test:
        return test

    return bind


def _exists(value: Value | None) -> bool | None:
    return value is not None and not (
        value.known and value.data is None and value.text in (None, "", "~", "null")
    )


def _absent(value: Value | None) -> bool | None:
    return not _exists(value)


def _equals(value: Value, arg: Any) -> bool:
    if isinstance(arg, bool):
        return value.data is arg or (scalar_text(value) or "").lower() == str(arg).lower()
    if isinstance(arg, int | float):
        return _number(value) == float(arg)
    return (scalar_text(value) or "").lower() == str(arg).lower()


def _in(value: Value, arg: Any) -> bool:
    return any(_equals(value, item) for item in arg)


def _equals_any(listed: bool, negate: bool) -> Operator:
    """``in`` (``equals``: a list of one), and their negations. Against strings only, the
    lowered text is looked up in a set made once: these are the tests most rules start with,
    run on every subject of their scope."""

    def bind(arg: Any) -> Test:
        items = arg if listed else [arg]
        if not all(isinstance(item, str) for item in items):
            return _known(lambda v, a: _in(v, a) is not negate)(items)
        wanted = frozenset(item.lower() for item in items)

        def test(value: Value | None) -> bool | None:
            if value is None:
                return False
            if not value.known:
                return None
            return ((scalar_text(value) or "").lower() in wanted) is not negate

        return test

    return bind


def pattern_search(arg: Any) -> Callable[[str], re.Match[str] | None]:
    """How ``matches`` looks for its argument in a text (the engine's index of texts too)."""
    return re.compile(str(arg), re.IGNORECASE).search


def _matches(negate: bool) -> Operator:
    def bind(arg: Any) -> Test:
        search = pattern_search(arg)

        def test(value: Value | None) -> bool | None:
            if value is None:
                return False
            if not value.known:
                return None
            text = scalar_text(value)
            return (text is not None and search(text) is not None) is not negate

        return test

    return bind


def _compare(cmp: Callable[[float, float], bool]) -> Operator:
    def fn(value: Value, arg: Any) -> bool | None:
        number = _number(value)
        return None if number is None else cmp(number, float(arg))

    return _known(fn)


def _truthy(value: Value, _arg: Any) -> bool:
    if isinstance(value.data, bool):
        return value.data
    text = scalar_text(value)
    return text is not None and text.strip().lower() in TRUTHY


def _falsy(value: Value, _arg: Any) -> bool:
    if isinstance(value.data, bool):
        return not value.data
    text = scalar_text(value)
    return text is None or text.strip().lower() in FALSY


def _contains(value: Value, arg: Any) -> bool:
    if isinstance(value.data, list):
        return any(_equals(item, arg) for item in value.data)
    if isinstance(value.data, dict):
        return str(arg) in value.data
    text = scalar_text(value)
    return text is not None and str(arg).lower() in text.lower()


def _length_gte(value: Value, arg: Any) -> bool:
    if isinstance(value.data, list | dict):
        return len(value.data) >= int(arg)
    return len(scalar_text(value) or "") >= int(arg)


def _is_world_cidr(value: Value, _arg: Any) -> bool:
    items = value.data if isinstance(value.data, list) else [value]
    for item in items:
        text = item.as_str() if isinstance(item, Value) else None
        if text in ("0.0.0.0/0", "::/0", "*", "0.0.0.0"):
            return True
    return False


def _is_public_ip(value: Value, _arg: Any) -> bool | None:
    text = scalar_text(value)
    if not text:
        return False
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    return network.prefixlen == 0 or network.is_global


OPERATORS: dict[str, Operator] = {
    "exists": _without_arg(_exists),
    "absent": _without_arg(_absent),
    "equals": _equals_any(listed=False, negate=False),
    "not_equals": _equals_any(listed=False, negate=True),
    "in": _equals_any(listed=True, negate=False),
    "not_in": _equals_any(listed=True, negate=True),
    "matches": _matches(negate=False),
    "not_matches": _matches(negate=True),
    "gte": _compare(lambda x, y: x >= y),
    "gt": _compare(lambda x, y: x > y),
    "lte": _compare(lambda x, y: x <= y),
    "lt": _compare(lambda x, y: x < y),
    "truthy": _known(_truthy),
    "falsy": _known(_falsy),
    "contains": _known(_contains),
    "length_gte": _known(_length_gte),
    "is_world_cidr": _known(_is_world_cidr),
    "is_public_ip": _known(_is_public_ip),
}

# Operators whose argument must be a regular expression: compiled when the policy loads.
REGEX_OPERATORS = frozenset({"matches", "not_matches"})
LIST_OPERATORS = frozenset({"in", "not_in"})
