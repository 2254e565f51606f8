"""Every rule's own examples: failing ones produce exactly the expected (rule, file, line) list,
passing ones produce nothing for that rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyscan.policy.loader import load_policies
from policyscan.scan import ScanOptions, scan
from tests.conftest import write_tree

RULES = load_policies()
CASES = [
    pytest.param(rule, kind, index, id=f"{rule.id}-{kind}-{index}")
    for rule in RULES
    for kind in ("fail", "pass")
    for index in range(
        len(rule.model.examples.fail if kind == "fail" else rule.model.examples.pass_)
    )
]


@pytest.mark.parametrize(("rule", "kind", "index"), CASES)
def test_rule_example(rule, kind: str, index: int, tmp_path: Path) -> None:
    example = (rule.model.examples.fail if kind == "fail" else rule.model.examples.pass_)[index]
    write_tree(tmp_path, dict(example.files))
    result = scan([rule], ScanOptions(paths=(str(tmp_path),)))
    got = sorted((f.rule_id, f.location.path, f.location.span.start_line) for f in result.findings)
    expected = sorted((rule.id, e.file, e.line) for e in example.expect) if kind == "fail" else []
    assert got == expected, [f.message for f in result.findings]
    parse_errors = [p for p in result.problems if p.level == "error"]
    assert not parse_errors, f"the example itself does not parse: {parse_errors}"


def test_every_rule_has_examples_and_docs() -> None:
    assert RULES, "no built-in rules were loaded"
    for rule in RULES:
        docs = rule.model.docs
        assert docs.what.strip() and docs.why.strip() and docs.fix.strip(), rule.id
        assert rule.model.examples.fail and rule.model.examples.pass_, rule.id
