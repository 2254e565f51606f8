"""policyscan.report.jsontext writes what json.dumps(indent=2, sort_keys=True,
ensure_ascii=False) writes, character for character."""

from __future__ import annotations

import enum
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyscan.plan import Settings, make_plan
from policyscan.report import Report, jsontext, render
from policyscan.scan import scan
from tests.conftest import FIXTURES


def _standard(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates and controls included
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_generated_values(value: Any) -> None:
    assert jsontext.dumps(value) == _standard(value)


def test_what_it_does_not_write_goes_to_json() -> None:
    odd = {"a": {2: "int keys", 1: "sorted as ints"}, "b": [True, None], "c": {2.5: "x"}}
    assert jsontext.dumps(odd) == _standard(odd)


class _Level(str, enum.Enum):
    HIGH = "high"


class _List(list[Any]):
    pass


class _Dict(dict[str, Any]):
    pass


def test_subclasses_are_written_as_json_writes_them() -> None:
    """A str enum (the report's severities), list and dict subclasses: the same text, not the
    enum's name or a refusal."""
    value = {
        _Level.HIGH: [_Level.HIGH, _List([1, 2.5, True, None]), _Dict(x="y"), (1, "é\n")],
        "b": {},
        "c": [],
    }
    assert jsontext.dumps(value) == _standard(value)


def test_reports_of_both_fixtures() -> None:
    for name in ("insecure-shop", "hardened-shop"):
        plan = make_plan(Settings(paths=(str(FIXTURES / name),)))
        result = scan(plan.rules, plan.scan_options(None))
        assert result.findings or name == "hardened-shop"  # which has nothing to find
        report = Report(result, {r.id: r for r in plan.rules}, color=False, quiet=False)
        for fmt in ("sarif", "json"):
            text = render(fmt, report)
            assert text == _standard(json.loads(text)) + "\n"


def _streamed(value: Any, pick: list[bool]) -> Any:
    """``value`` with some of its lists (as ``pick`` says, in turn) made streams of generators."""
    if isinstance(value, dict):
        return {k: _streamed(v, pick) for k, v in value.items()}
    if isinstance(value, list):
        items = [_streamed(v, pick) for v in value]
        if pick and pick.pop():
            return jsontext.Stream(item for item in items)
        return items
    return value


@settings(max_examples=300, deadline=None)
@given(_values, st.lists(st.booleans(), max_size=12))
def test_chunks_are_the_same_text_with_streams(value: Any, pick: list[bool]) -> None:
    assert "".join(jsontext.chunks(_streamed(value, pick))) == _standard(value)


def test_a_stream_is_written_as_its_items_come() -> None:
    made = 0

    def items():  # type: ignore[no-untyped-def]
        nonlocal made
        for n in range(20_000):
            made += 1
            yield {"n": n, "text": "x" * 20}

    value = {"a": 1, "results": jsontext.Stream(items()), "z": [jsontext.Stream(iter(()))]}
    pieces = jsontext.chunks(value)
    first = next(pieces)
    assert 0 < made < 20_000  # a piece came before the last item was made
    rest = "".join(pieces)
    assert made == 20_000
    expected = {"a": 1, "results": [{"n": n, "text": "x" * 20} for n in range(20_000)], "z": [[]]}
    assert first + rest == _standard(expected)
