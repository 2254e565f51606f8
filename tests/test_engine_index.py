"""The engine's subject index (conditions.selector) narrows which subjects a rule is judged on,
never what it finds: a rule with its selector and the same rule without one give the same
findings and evidence, in the same order."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from policyscan.model import Span, Value
from policyscan.plan import Settings, make_plan
from policyscan.policy.conditions import (
    compile_condition,
    selector,
    selector_key,
    selector_text,
)
from policyscan.policy.predicates import PREDICATES
from policyscan.project import Project
from policyscan.scan import scan
from tests.conftest import generate_monorepo

REPO = Path(__file__).resolve().parents[1]


def eq(attr: str, value: Any) -> dict[str, Any]:
    return {"attr": attr, "op": "equals", "value": value}


def one_of(attr: str, *values: str) -> tuple[str, str, frozenset[str]]:
    return (attr, "in", frozenset(values))


def matching(attr: str, pattern: str) -> tuple[str, str, str]:
    return (attr, "matches", pattern)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (eq("_type", "aws_lb"), (one_of("_type", "aws_lb"),)),
        (eq("_type", "AWS_LB"), (one_of("_type", "aws_lb"),)),
        (
            {"attr": "_type", "op": "in", "value": ["aws_lb", "aws_alb"]},
            (one_of("_type", "aws_lb", "aws_alb"),),
        ),
        (
            {"all": [{"predicate": "tf_instantiated"}, eq("_type", "aws_lb")]},
            (one_of("_type", "aws_lb"),),
        ),
        (
            {"any": [{"all": [eq("_type", "a"), eq("engine", "redis")]}, eq("_type", "b")]},
            (one_of("_type", "a", "b"),),
        ),
        # The branches of an `any` may demand different attributes: a subject meets one.
        (
            {"any": [eq("_type", "a"), eq("engine", "redis")]},
            (one_of("_type", "a"), one_of("engine", "redis")),
        ),
        ({"attr": "name", "op": "matches", "value": "DEBUG$"}, (matching("name", "DEBUG$"),)),
        (
            {
                "all": [
                    {"attr": "literal", "op": "truthy"},
                    {
                        "any": [
                            {"attr": "name", "op": "matches", "value": "STRIPE"},
                            {"attr": "value", "op": "matches", "value": "sk_test_"},
                        ]
                    },
                ]
            },
            (matching("name", "STRIPE"), matching("value", "sk_test_")),
        ),
        # Every branch of an `any` must narrow, or none does.
        ({"any": [eq("_type", "a"), {"predicate": "tf_instantiated"}]}, None),
        ({"any": [eq("_type", "a"), {"attr": "name", "op": "truthy"}]}, None),
        # Numbers and booleans compare by other means than text: not indexed.
        (eq("port", 80), None),
        (eq("enabled", True), None),
        ({"attr": "_type", "op": "in", "value": ["a", 1]}, None),
        # Operators that can hold for values outside what the source names.
        ({"attr": "_type", "op": "not_matches", "value": "aws_"}, None),
        ({"not": eq("_type", "aws_lb")}, None),
        ({"attr": "_type", "op": "not_in", "value": ["a"]}, None),
    ],
)
def test_selector_reads_what_a_where_demands(where: Any, expected: Any) -> None:
    assert selector(where) == expected


SPAN = Span.line(1)


VALUES = [
    Value("aws_lb", "x", SPAN),
    Value("AWS_LB", "x", SPAN),
    Value("", "x", SPAN),
    Value(None, "x", SPAN),
    Value(None, "x", SPAN, text="null"),
    Value({"a": Value("b", "x", SPAN)}, "x", SPAN),
    Value([Value("aws_lb", "x", SPAN)], "x", SPAN),
    Value(3, "x", SPAN, text="3"),
    Value(True, "x", SPAN, text="yes"),
    Value("var.x", "x", SPAN, known=False),
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("arg", ["aws_lb", "", "3", "null"])
def test_the_index_keeps_every_value_equals_would_accept(value: Value, arg: str) -> None:
    """The index key is a subject's entry: a subject left out of the entry for ``arg`` must be
    one that ``equals arg`` does not select."""
    condition = compile_condition(eq("attr", arg), "where", PREDICATES)
    facts = Value({"attr": value}, "x", SPAN)
    selected = condition(facts, None, None).result is True  # type: ignore[arg-type]
    if selected:
        assert selector_key(value) == arg.lower()


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("pattern", ["aws", "^AWS_LB$", "^$", "3", "null", "yes", "x", ""])
def test_the_text_index_keeps_every_value_matches_would_accept(value: Value, pattern: str) -> None:
    """The same for ``matches``: a subject it selects is in the text index, under a text the
    pattern is found in."""
    where = {"attr": "attr", "op": "matches", "value": pattern}
    condition = compile_condition(where, "where", PREDICATES)
    facts = Value({"attr": value}, "x", SPAN)
    if condition(facts, None, None).result is True:  # type: ignore[arg-type]
        text = selector_text(value)
        assert text is not None
        assert re.search(pattern, text, re.IGNORECASE)


def _without_selectors(rules: list[Any]) -> list[Any]:
    return [dataclasses.replace(rule, selects=None) for rule in rules]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_monorepo(tmp_path_factory.mktemp("gen") / "tree", 12, 3, 0.5)


@pytest.mark.parametrize("tree", ["insecure-shop", "hardened-shop", "generated"])
def test_indexed_and_unindexed_rules_find_the_same(
    tree: str, generated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = generated if tree == "generated" else REPO / "fixtures" / tree
    plan = make_plan(Settings(paths=(str(root),)))
    assert any(rule.selects for rule in plan.rules)
    options = dataclasses.replace(plan.scan_options(None), jobs=1)
    indexed = scan(plan.rules, options)
    plain = scan(_without_selectors(plan.rules), options)
    assert indexed.findings == plain.findings
    assert indexed.evidence == plain.evidence
    assert indexed.problems == plain.problems
    assert indexed.evidence or indexed.findings  # a tree with nothing judged proves nothing


def test_project_memo_builds_once() -> None:
    project = Project("/nowhere", [], {})
    calls: list[int] = []

    def build() -> int:
        calls.append(1)
        return 42

    assert project.memo("answer", build) == 42
    assert project.memo("answer", build) == 42
    assert project.memo(("answer", 2), build) == 42
    assert calls == [1, 1]
