"""docs/rules/ is generated from the policies: a rule without its page, or a page that no longer
matches its YAML, fails here (regenerate with `python -m policyscan.policy.docs docs/rules`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyscan.policy import docs
from policyscan.policy.loader import load_policies

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules"
RULES = load_policies()


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_page_is_generated_and_complete(rule) -> None:  # type: ignore[no-untyped-def]
    page = DOCS / f"{rule.id}.md"
    assert page.is_file(), f"{page} is missing: run python -m policyscan.policy.docs docs/rules"
    text = page.read_text("utf-8")
    assert text == docs.markdown(rule), f"{page} is stale: regenerate it"
    for section in (
        "## What it does",
        "## Why is this bad",
        "## How to fix",
        "## Example",
        "## Use instead",
    ):
        assert section in text


def test_index_lists_every_rule_and_nothing_else() -> None:
    assert (DOCS / "README.md").read_text("utf-8") == docs.index(RULES)
    pages = {p.stem for p in DOCS.glob("*.md")} - {"README"}
    assert pages == {r.id for r in RULES}
