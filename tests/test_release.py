"""Subjects released once judged (Project.release): the rules find the same, in the same order,
and an ordinary scan builds no scope twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from policyscan.plan import Settings, make_plan
from policyscan.policy import engine
from policyscan.project import Project
from tests.conftest import FIXTURES, generate_monorepo, scan_tree, write_tree
from tests.conftest import project_of as _project


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_monorepo(tmp_path_factory.mktemp("mono"), 12, seed=5, insecure_rate=0.5)


@pytest.mark.parametrize("tree", ["insecure-shop", "hardened-shop", "generated"])
def test_rules_judged_one_at_a_time_find_what_all_together_find(tree: str, generated: Path) -> None:
    """One judge() call per rule, in rule order, every scope released after each, so that
    each rule builds its scope again: the same items as judging every rule at once (scopes
    grouped, each released once), which are in rule order."""
    root = generated if tree == "generated" else FIXTURES / tree
    rules = make_plan(Settings(paths=(str(root),))).rules
    together = engine.evaluate(rules, _project(root))
    alone = _project(root)
    parts = []
    for index in range(len(rules)):
        parts.append(engine.judge(rules, alone, [index], with_evidence=True)[0])
        for scope in list(alone._cache):
            alone.release(scope)
    assert engine.merge(parts) == together
    findings, evidence, _ = together
    assert len(evidence) > 10
    assert tree == "hardened-shop" or len(findings) > 10


def test_judged_scopes_are_released_but_those_ignores_read(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            "docker-compose.yml": "services:\n  web:\n    image: nginx:1.25\n",
            ".env": "DEBUG=true\nSECRET_KEY=changeme\n",
        },
    )
    plain = scan_tree(root, jobs=1, cache=False)
    assert plain.project is not None
    # Left: the scopes judged last, nothing being built after them (the project's, and the
    # nginx servers its rules read).
    assert plain.project._cache.keys() <= {"project", "nginx.server"}
    (root / ".env").write_text("DEBUG=true  # policyscan: ignore[PSE002]\nSECRET_KEY=changeme\n")
    marked = scan_tree(root, jobs=1, cache=False)
    assert marked.project is not None
    assert "compose.service" in marked.project._cache
    assert "variable" not in marked.project._cache  # not a block an ignore can name


def test_no_scope_is_built_twice(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope read by the predicates of another scope's rules (engine._READ_ACROSS) is kept
    until those are judged too: released before, it would be built again."""
    built: Counter[str] = Counter()
    real = Project.subjects

    def counted(self: Project, scope: str) -> Any:
        if scope not in self._cache:
            built[scope] += 1
        return real(self, scope)

    # The rules that read those scopes from others': PSE013 reads every variable (for error
    # trackers) from an env file's rule; PSX002 every nginx server from the project's.
    crafted = write_tree(
        tmp_path / "crafted",
        {
            "docker-compose.yml": "services:\n  web:\n    image: example/web:1.0\n"
            "    ports:\n      - '80:8000'\n",
            ".env": "DEBUG=false\nSECRET_KEY=x\nDATABASE_URL=postgres://db/app\n"
            "LOG_LEVEL=info\nALLOWED_HOSTS=example.com\nAPP_ENV=production\n",
            "nginx/nginx.conf": "http {\n  server {\n    listen 80;\n  }\n}\n",
        },
    )
    monkeypatch.setattr(Project, "subjects", counted)
    rules = make_plan(Settings(paths=(str(generated),))).rules
    for root in (generated, FIXTURES / "insecure-shop", crafted):
        built.clear()
        engine.evaluate(rules, _project(root))
        assert {"variable", "compose.service", "nginx.server"} <= set(built)
        assert max(built.values()) == 1, built


def test_a_scope_read_by_other_scopes_rules_is_released_after_them() -> None:
    scopes = ["variable", "env.file", "nginx.server", "project", "compose.service", "variable"]
    rules: Any = [SimpleNamespace(scope=scope) for scope in scopes]
    order, done = engine._in_scope_order(rules, range(len(rules)))
    assert order == [0, 5, 1, 2, 3, 4]  # each scope's rules together, in first-come order
    released = {scope: order[position] for position, names in done.items() for scope in names}
    # Those judged last are not released: nothing is built after them.
    assert released == {"env.file": 1, "nginx.server": 3, "project": 3}
    scopes.append("dockerfile.stage")
    rules = [SimpleNamespace(scope=scope) for scope in scopes]
    order, done = engine._in_scope_order(rules, range(len(rules)))
    released = {scope: order[position] for position, names in done.items() for scope in names}
    assert released["variable"] == 4  # compose.service reads it
    assert released["compose.service"] == 4
