"""The bundled example repositories against the whole catalogue.

fixtures/insecure-shop/PLANTED.yaml is an answer key written by hand: every planted problem
(checklist id, file, line) must be found by a rule that enforces that checklist id, and none of
its look-alikes may be flagged. fixtures/hardened-shop must be silent.
"""

from __future__ import annotations

import pytest
import yaml

from policyscan.policy.loader import Rule
from policyscan.scan import ScanOptions, scan
from tests.conftest import FIXTURES

KEY = yaml.safe_load((FIXTURES / "insecure-shop" / "PLANTED.yaml").read_text("utf-8"))


@pytest.fixture(scope="module")
def insecure(rules: list[Rule]):  # type: ignore[no-untyped-def]
    return scan(rules, ScanOptions(paths=(str(FIXTURES / "insecure-shop"),)))


def test_hardened_repository_is_silent(rules: list[Rule]) -> None:
    result = scan(rules, ScanOptions(paths=(str(FIXTURES / "hardened-shop"),)))
    assert [
        (f.rule_id, f.location.path, f.location.span.start_line, f.message) for f in result.findings
    ] == []
    assert [p for p in result.problems if p.level != "note"] == []


@pytest.mark.parametrize(
    "entry",
    KEY["planted"],
    ids=[f"{e['file']}:{e['line']}:{e['checklist']}" for e in KEY["planted"]],
)
def test_planted_problem_is_found(insecure, entry: dict) -> None:  # type: ignore[no-untyped-def]
    at_line = [
        f
        for f in insecure.findings
        if f.location.path == entry["file"] and f.location.span.start_line == entry["line"]
    ]
    assert any(entry["checklist"] in f.checklist for f in at_line), (
        f"not found: {entry['what']} (findings on that line: {[(f.rule_id, f.checklist) for f in at_line]})"
    )


def test_lookalikes_are_not_flagged(insecure) -> None:  # type: ignore[no-untyped-def]
    flagged = {(f.location.path, f.location.span.start_line): f.rule_id for f in insecure.findings}
    wrong = [
        (e["file"], e["line"], flagged[(e["file"], e["line"])], e["what"])
        for e in KEY.get("lookalikes", [])
        if (e["file"], e["line"]) in flagged
    ]
    assert wrong == []


def test_insecure_repository_is_fully_parsed(insecure) -> None:  # type: ignore[no-untyped-def]
    assert [p for p in insecure.problems if p.level == "error"] == []
    assert len(insecure.artifacts) >= 10


def test_every_planted_file_exists() -> None:
    for entry in KEY["planted"]:
        path = FIXTURES / "insecure-shop" / entry["file"]
        lines = path.read_text("utf-8").splitlines()
        assert 1 <= entry["line"] <= len(lines), entry
