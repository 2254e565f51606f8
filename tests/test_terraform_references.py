"""The parser's ``Block.references`` flag, on which the project view skips resolving a body.

The flag may say True of a body with nothing to resolve (the walk then finds nothing), never
False of one with something: for every block the parser marks False, resolving its body in a
module where every ``var.`` and ``local.`` name has a known value must change nothing. The
blocks come from the fixtures, the built-in rules' examples, samples written to hit the edges
(nested and dynamic blocks, objects, lists, whitespace, broken syntax) and generated text.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyscan.model import Artifact, Kind, Span, Value
from policyscan.parsers import terraform as tf
from policyscan.project import TerraformModule
from tests.conftest import terraform_example_files, terraform_fixture_files


class _Everything(dict[str, Value]):
    """A variables or locals table that knows every name."""

    def get(self, key: str, default: Any = None) -> Value:  # type: ignore[override]
        return Value(f"known {key}", "vars.tf", Span(1))


def _module() -> TerraformModule:
    return TerraformModule("", variables=_Everything(), locals=_Everything())


def _blocks(text: str) -> list[tf.Block]:
    doc = tf.parse(Artifact("main.tf", "/x/main.tf", Kind.TERRAFORM), text)
    return doc.blocks


def _check(text: str) -> None:
    module = _module()
    for block in _blocks(text):
        resolved = module.resolve_tree(block.body)
        if not block.references:
            assert resolved is block.body, block.address
        assert module.resolved_body(block) == resolved


@pytest.mark.parametrize("text", [*terraform_fixture_files(), *terraform_example_files()])
def test_a_body_marked_without_references_resolves_to_itself(text: str) -> None:
    _check(text)


SAMPLES = {
    "plain": 'resource "a" "b" {\n  x = "literal"\n  n = 3\n}\n',
    "var": 'resource "a" "b" {\n  x = var.name\n}\n',
    "local with dash": 'resource "a" "b" {\n  x = local.my-name\n}\n',
    "in a nested block": 'resource "a" "b" {\n  inner {\n    deeper {\n      x = var.y\n    }\n  }\n}\n',
    "in an object": 'resource "a" "b" {\n  tags = { Name = local.name }\n}\n',
    "in a list": 'resource "a" "b" {\n  ids = ["x", var.id]\n}\n',
    "dynamic": (
        'resource "a" "b" {\n  dynamic "rule" {\n    for_each = var.rules\n'
        "    content {\n      port = var.port\n    }\n  }\n}\n"
    ),
    "parenthesised": 'resource "a" "b" {\n  x = (var.name)\n}\n',
    "broken": 'resource "a" "b" {\n  x = var.name\n  y = 1e3 e3\n',
    "second block only": (
        'resource "a" "one" {\n  x = "literal"\n}\n'
        'resource "a" "two" {\n  x = var.name\n}\n'
        'resource "a" "three" {\n  x = "literal"\n}\n'
    ),
}


@pytest.mark.parametrize("text", list(SAMPLES.values()), ids=list(SAMPLES))
def test_samples(text: str) -> None:
    _check(text)


def test_the_flag_is_per_block() -> None:
    blocks = _blocks(SAMPLES["second block only"])
    assert [b.references for b in blocks] == [False, True, False]
    changed = _module().resolved_body(blocks[1]).get("x")
    assert changed is not None and changed.data == "known name"


def test_a_reference_in_a_nested_block_marks_the_outer_one() -> None:
    (block,) = _blocks(SAMPLES["in a nested block"])
    assert block.references


_EXPRESSIONS = st.sampled_from(
    [
        '"s"',
        "1",
        "true",
        "null",
        "var.a",
        " var.b",
        "local.c",
        "local.d-e",
        "var.a.b",
        "var.list[0]",
        '"${var.a}"',
        "upper(var.a)",
        "module.m.out",
        "data.x.y.id",
        "aws_s3_bucket.b.id",
        "-1",
        "[var.a, 1]",
        "{ k = local.c }",
        "var.a == 1 ? 2 : 3",
    ]
)


@st.composite
def _bodies(draw: st.DrawFn, depth: int = 0) -> str:
    lines = []
    for i in range(draw(st.integers(0, 4))):
        if depth < 2 and draw(st.booleans()):
            lines.append(f"inner{i} {{\n{draw(_bodies(depth + 1))}}}")
        else:
            lines.append(f"a{i} = {draw(_EXPRESSIONS)}")
    return "".join(line + "\n" for line in lines)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(_bodies(), min_size=1, max_size=3))
def test_generated_blocks(bodies: list[str]) -> None:
    _check("".join(f'resource "t" "r{i}" {{\n{body}}}\n' for i, body in enumerate(bodies)))
