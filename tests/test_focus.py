"""A run that reports on some files (pre-commit, --changed-since) judges only the subjects whose
part of the tree holds one of them (``Project.focus``, ``Project.part_of``). What it reports must
be exactly what judging every subject reports for those files: checked file by file on both
fixtures and on a generated tree, in one process and split by kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policyscan import scan as scan_module
from policyscan.discover import classify
from policyscan.model import Kind
from policyscan.policy import engine
from policyscan.policy.loader import load_policies
from policyscan.project import Project
from tests.conftest import FIXTURES, generate_monorepo, project_of, write_tree
from tests.conftest import assert_same_result as _assert_same
from tests.conftest import scan_tree as _scan


def _everything(self: Project, *asked: Any) -> bool:
    return True


def _each_file_alone(
    root: Path, monkeypatch: pytest.MonkeyPatch, step: int = 1, **changes: Any
) -> int:
    """Scan ``root`` reporting on each file alone (every ``step``-th), narrowed and not; the
    results must be the same. Returns how many of the narrowed runs found something."""
    paths = [a.path for a in _scan(root, **changes).artifacts]
    assert paths
    found = 0
    for path in paths[::step]:
        narrowed = _scan(root, only=frozenset({path}), **changes)
        with monkeypatch.context() as patched:
            patched.setattr(Project, "in_focus", _everything)
            patched.setattr(Project, "may_focus", _everything)
            whole = _scan(root, only=frozenset({path}), **changes)
        _assert_same(whole, narrowed)
        found += bool(narrowed.findings)
    return found


@pytest.mark.parametrize("fixture", ["insecure-shop", "hardened-shop"])
def test_each_fixture_file_alone_as_if_every_subject_were_judged(
    fixture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _each_file_alone(FIXTURES / fixture, monkeypatch, jobs=1)
    if fixture == "insecure-shop":
        assert found >= 10  # the comparison is about files with findings


def test_split_by_kind_narrows_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)
    assert _each_file_alone(FIXTURES / "insecure-shop", monkeypatch, jobs=2) >= 10


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_monorepo(tmp_path_factory.mktemp("focus") / "monorepo", 5, 3, 0.5)


def test_a_generated_tree_file_by_file(generated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _each_file_alone(generated, monkeypatch, step=2, jobs=1) >= 10


def test_a_focused_run_judges_fewer_subjects(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[str] = []
    real = engine._evaluate_one

    def counted(rule: Any, subject: Any, *args: Any) -> None:
        judged.append(subject.path)
        real(rule, subject, *args)

    monkeypatch.setattr(engine, "_evaluate_one", counted)
    _scan(generated, jobs=1)
    everything = len(judged)
    paths = sorted(set(judged))
    one = next(p for p in paths if p.endswith(".tf"))
    judged.clear()
    _scan(generated, jobs=1, only=frozenset({one}))
    assert 0 < len(judged) < everything / 3
    # Judged: the subjects of the file's own module. Not the project's own (path ""): its
    # rules (PSX001, PSX002) blame compose files alone (predicates.BLAMES).
    module = one.rsplit("/", 1)[0]
    assert {p.rsplit("/", 1)[0] for p in judged} == {module}
    compose = next(p for p in paths if p.endswith("docker-compose.yml"))
    judged.clear()
    _scan(generated, jobs=1, only=frozenset({compose}))
    assert "" in judged  # a compose file in focus: they are judged


def _kind_of(path: str) -> Kind | None:
    found = classify(path)
    return None if found is None else found[0]


def test_rules_that_blame_some_kinds_blame_only_those() -> None:
    # A rule judged only when a file of those kinds is in focus must never blame another.
    rules = [r for r in load_policies() if r.blames is not None]
    assert {r.id for r in rules} == {"PSX001", "PSX002"}
    for rule in rules:
        for example in rule.model.examples.fail:
            assert example.expect, rule.id
            for expected in example.expect:
                assert _kind_of(expected.file) in rule.blames, (rule.id, expected.file)
    for tree in (FIXTURES / "insecure-shop", FIXTURES / "hardened-shop"):
        result = _scan(tree, jobs=1)
        for finding in result.findings:
            rule = next((r for r in rules if r.id == finding.rule_id), None)
            if rule is not None:
                assert _kind_of(finding.location.path) in rule.blames, finding


def test_the_parts_of_each_kind(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "app/docker-compose.yml": "services:\n  web:\n    image: nginx\n",
            "app/docker-compose.prod.yml": "services:\n  web:\n    environment:\n      A: b\n",
            "app/.env": "A=1\n",
            "app/Dockerfile": "FROM python:3.12\nENV B=2\n",
            "other/.env": "C=3\n",
            "infra/main.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = var.name\n}\n',
            "infra/variables.tf": 'variable "name" {\n  default = "x"\n}\n',
            "infra/sub/main.tf": 'resource "aws_s3_bucket" "c" {\n}\n',
            "nginx/one.conf": "http {\n  include snippets/common.conf;\n  server {\n  }\n}\n",
            "nginx/two.conf": "http {\n  include snippets/common.conf;\n}\n",
            "nginx/snippets/common.conf": "server {\n  listen 80;\n}\n",
        },
    )
    project = project_of(root)

    def parts(scope: str) -> dict[str, frozenset[str] | None]:
        return {s.path: project.part_of(s) for s in project.subjects(scope)}

    compose_and_env = frozenset(
        {"app/docker-compose.yml", "app/docker-compose.prod.yml", "app/.env"}
    )
    assert set(parts("compose.service").values()) == {compose_and_env}
    assert parts("env.file") == {
        "app/.env": compose_and_env,
        "other/.env": frozenset({"other/.env"}),
    }
    assert parts("dockerfile.stage") == {"app/Dockerfile": frozenset({"app/Dockerfile"})}
    module = frozenset({"infra/main.tf", "infra/variables.tf"})
    assert parts("terraform.resource") == {
        "infra/main.tf": module,
        "infra/sub/main.tf": frozenset({"infra/sub/main.tf"}),
    }
    every_config = frozenset({"nginx/one.conf", "nginx/two.conf", "nginx/snippets/common.conf"})
    assert set(parts("nginx.server").items()) == {
        ("nginx/one.conf", frozenset({"nginx/one.conf", "nginx/snippets/common.conf"})),
        ("nginx/snippets/common.conf", every_config),
    }
    assert parts("project") == {"": None}


@pytest.mark.parametrize("fixture", ["insecure-shop", "hardened-shop"])
def test_each_scope_holds_the_kinds_it_is_skipped_by(fixture: str) -> None:
    """A focused run does not build a scope none of whose subjects' parts can hold a file in
    focus (Project.may_focus, from _SCOPE_KINDS): every subject of every scope must be of a
    kind the table gives, and its part must hold only files of the kinds _PART_KINDS gives."""
    from policyscan.project import _PART_KINDS, _SCOPE_KINDS, SCOPES

    project = project_of(FIXTURES / fixture)
    kinds = {a.path: a.kind for a in project.artifacts}
    assert set(_SCOPE_KINDS) == set(SCOPES) - {"project"}
    for scope in _SCOPE_KINDS:
        for subject in project.subjects(scope):
            assert subject.kind in _SCOPE_KINDS[scope], (scope, subject.path)
            part = project.part_of(subject)
            assert part is not None and subject.path in part
            assert {kinds[p] for p in part} <= _PART_KINDS[subject.kind], (scope, part)


def test_a_focused_run_leaves_the_cache_to_the_whole_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's results answer a whole tree: a focused run, which judged only part of it,
    must not leave its results there for the next run of the unchanged tree, and a focused
    run may take the whole tree's results from it."""
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "insecure-shop", root)
    whole = _scan(root)
    one = next(f.location.path for f in whole.findings if not f.location.path.endswith(".tf"))
    focused = _scan(root, only=frozenset({one}))
    assert focused.findings and len(focused.findings) < len(whole.findings)

    assert _scan(root, only=frozenset({one}), cache=True) == focused
    _assert_same(whole, _scan(root, cache=True))  # not the focused run's results
    # From the whole tree's cached results now:
    hits: list[object] = []
    from policyscan import cache

    real = cache.ScanCache.load_results

    def recorded(self: Any, key: str) -> Any:
        hits.append(real(self, key))
        return hits[-1]

    monkeypatch.setattr(cache.ScanCache, "load_results", recorded)
    _assert_same(focused, _scan(root, only=frozenset({one}), cache=True))
    assert hits and hits[-1] is not None
