"""The condition language, compiled once into closures.

    {all: [...]} {any: [...]} {not: cond}
    {attr: PATH, op: OPERATOR, value: ARG}
    {some|every|none: PATH, where: cond}     quantifiers over a list or mapping; inside, paths
                                             are relative to the element ("." is the element)
    {predicate: NAME, args: {...}}           named checks implemented once in Python

Three-valued: True, False, or None when a value cannot be known statically. An outcome carries
the Value to blame, so a finding points at the offending node rather than the whole subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policyscan.errors import PolicyError
from policyscan.model import Related, Value
from policyscan.policy.operators import (
    LIST_OPERATORS,
    OPERATORS,
    REGEX_OPERATORS,
    Test,
    scalar_text,
)

if TYPE_CHECKING:
    from policyscan.project import Project, Subject


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and an outcome is
# made for every condition on every subject. Never changed once made (TRUE and UNKNOWN are
# shared).
@dataclass(slots=True)
class Outcome:
    result: bool | None
    blame: Value | None = None
    attr: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    related: tuple[Related, ...] = ()


TRUE = Outcome(True)
UNKNOWN = Outcome(None)

Condition = Callable[[Value, "Subject", "Project"], Outcome]
Predicate = Callable[[Value, "Subject", "Project", Mapping[str, Any]], Outcome]


def compile_condition(node: Any, where: str, predicates: Mapping[str, Predicate]) -> Condition:
    if not isinstance(node, dict) or not node:
        raise PolicyError(f"{where}: a condition is a non-empty mapping")
    if "all" in node or "any" in node:
        op = "all" if "all" in node else "any"
        parts = [
            compile_condition(c, f"{where} -> {op}[{i}]", predicates)
            for i, c in enumerate(node[op])
        ]
        return _all(parts) if op == "all" else _any(parts)
    if "not" in node:
        return _not(compile_condition(node["not"], f"{where} -> not", predicates))
    for quantifier in ("some", "every", "none"):
        if quantifier in node:
            inner = node.get("where")
            cond = (
                compile_condition(inner, f"{where} -> where", predicates)
                if inner is not None
                else None
            )
            return _quantify(quantifier, str(node[quantifier]), cond)
    if "predicate" in node:
        name = node["predicate"]
        if name not in predicates:
            known = ", ".join(sorted(predicates))
            raise PolicyError(f"{where} -> predicate: unknown predicate {name!r} (known: {known})")
        args = node.get("args") or {}
        return _predicate(predicates[name], args)
    if "attr" in node:
        op_name = node.get("op")
        if op_name not in OPERATORS:
            raise PolicyError(
                f"{where} -> op: unknown operator {op_name!r} "
                f"(known: {', '.join(sorted(OPERATORS))})"
            )
        arg = node.get("value")
        if op_name in REGEX_OPERATORS:
            try:
                re.compile(str(arg))
            except re.error as exc:
                raise PolicyError(f"{where} -> value: invalid regular expression: {exc}") from None
        if op_name in LIST_OPERATORS and not isinstance(arg, list):
            raise PolicyError(f"{where} -> value: operator {op_name!r} takes a list")
        return _attr(str(node["attr"]), OPERATORS[op_name](arg))
    raise PolicyError(f"{where}: expected one of all, any, not, attr, some, every, none, predicate")


# What a ``where`` demands, as clauses of which a subject it can select meets at least one:
# (attr, "in", the strings its text, lowered, must be one of) or (attr, "matches", a pattern
# its text must contain, as the ``matches`` operator searches).
Clause = tuple[str, str, frozenset[str] | str]
Selector = tuple[Clause, ...]


def selector(node: Any) -> Selector | None:
    """What a ``where`` demands, read off the condition's source: an ``equals``/``in`` test
    against strings or a ``matches`` test, alone, as a part of an ``all`` (the first part that
    has one), or in every branch of an ``any`` (the union of the branches' clauses). The
    engine then looks the subjects up in an index of the scope by that attribute instead of
    judging every subject of the scope: a Terraform rule about one resource type would
    otherwise run on every resource of the project, and a rule about variables named
    ``*DEBUG*`` on every variable, where a tree repeats a few hundred names thousands of
    times. It only narrows: the whole condition is still judged on what it finds, so it must
    keep every subject the condition could select: ``equals`` and ``in`` with string
    arguments are True only for a known value whose text, lowered, is one of them, and
    ``matches`` only for a known value with a text the pattern is found in."""
    if not isinstance(node, dict):
        return None
    if "attr" in node:
        op, arg = node.get("op"), node.get("value")
        if op in ("equals", "in"):
            values = arg if op == "in" else [arg]
            if isinstance(values, list) and all(isinstance(v, str) for v in values):
                return ((str(node["attr"]), "in", frozenset(v.lower() for v in values)),)
        if op == "matches":
            return ((str(node["attr"]), "matches", str(arg)),)
        return None
    for part in node.get("all") or ():
        found = selector(part)
        if found is not None:
            return found
    branches = [selector(part) for part in node.get("any") or ()]
    if not branches or any(b is None for b in branches):
        return None
    clauses: dict[tuple[str, str], set[str]] = {}
    for branch in branches:
        for attr, op, arg in branch or ():
            merged = clauses.setdefault((attr, op), set())
            if isinstance(arg, frozenset):
                merged.update(arg)
            else:
                merged.add(arg)
    return tuple(
        clause
        for (attr, op), args in clauses.items()
        for clause in (
            [(attr, op, frozenset(args))] if op == "in" else [(attr, op, a) for a in sorted(args)]
        )
    )


def selector_key(value: Value | None) -> str | None:
    """A subject's entry in a selector's index: the text ``equals`` would compare."""
    if value is None or not value.known:
        return None
    return (scalar_text(value) or "").lower()


def selector_text(value: Value | None) -> str | None:
    """A subject's entry in the index a ``matches`` clause reads: the text the operator
    searches, None where it is False or unknown whatever the pattern."""
    if value is None or not value.known:
        return None
    return scalar_text(value)


def _all(parts: list[Condition]) -> Condition:
    def cond(value: Value, subject: Subject, project: Project) -> Outcome:
        unknown = None
        last = TRUE
        for part in parts:
            out = part(value, subject, project)
            if out.result is False:
                return out
            if out.result is None and unknown is None:
                unknown = out
            last = out
        # When all hold, keep the last part's blame: under `not` or `none` it is what to point at.
        return unknown or last

    return cond


def _any(parts: list[Condition]) -> Condition:
    def cond(value: Value, subject: Subject, project: Project) -> Outcome:
        first_false = None
        unknown = None
        for part in parts:
            out = part(value, subject, project)
            if out.result is True:
                return out
            if out.result is None:
                unknown = unknown or out
            elif first_false is None:
                first_false = out
        return unknown or first_false or Outcome(False)

    return cond


def _not(inner: Condition) -> Condition:
    def cond(value: Value, subject: Subject, project: Project) -> Outcome:
        out = inner(value, subject, project)
        if out.result is None:
            return out
        return Outcome(not out.result, out.blame, out.attr, out.details, out.related)

    return cond


def _attr(path: str, test: Test) -> Condition:
    if path in (".", "") or "." in path:

        def cond(value: Value, subject: Subject, project: Project) -> Outcome:
            target = value.lookup(path)
            return Outcome(test(target), target, path)

        return cond

    def one_key(value: Value, subject: Subject, project: Project) -> Outcome:
        # Value.lookup's answer for a path of one key, without the call: nearly every path is
        # one, and this runs for every condition on every subject. A subject's facts
        # (project.Facts) give the one key asked for, rather than a mapping of all.
        if type(value) is Value:
            data = value.data
            target = data.get(path) if isinstance(data, dict) else value.get(path)
        else:
            target = value.get(path)
        return Outcome(test(target), target, path)

    return one_key


def _elements(value: Value | None) -> list[Value]:
    if value is None:
        return []
    if isinstance(value.data, list):
        return value.data
    if isinstance(value.data, dict):
        return list(value.data.values())
    return [value]


def _quantify(kind: str, path: str, inner: Condition | None) -> Condition:
    def cond(value: Value, subject: Subject, project: Project) -> Outcome:
        container = value.lookup(path)
        if (
            container is not None
            and not container.known
            and not isinstance(container.data, list | dict)
        ):
            return Outcome(None, container, path)
        unknown = None
        for element in _elements(container):
            out = inner(element, subject, project) if inner is not None else Outcome(True, element)
            if out.result is None:
                unknown = unknown or out
                continue
            # The element is what to point at, whatever the inner condition looked at.
            blame = out.blame or element
            attr = out.attr or path
            if kind == "some" and out.result:
                return Outcome(True, blame, attr, out.details, out.related)
            if kind == "every" and not out.result:
                return Outcome(False, blame, attr, out.details, out.related)
            if kind == "none" and out.result:
                return Outcome(False, blame, attr, out.details, out.related)
        if unknown is not None:
            return Outcome(None, unknown.blame, unknown.attr)
        if kind == "some":
            return Outcome(False, container, path)
        return Outcome(True, container, path)

    return cond


def _predicate(fn: Predicate, args: Mapping[str, Any]) -> Condition:
    def cond(value: Value, subject: Subject, project: Project) -> Outcome:
        return fn(value, subject, project, args)

    return cond
