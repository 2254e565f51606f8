"""The Terraform rules judged a part of the tree at a time (policyscan/terraform_parts.py): the
same findings, evidence and problems, in the same order, as one project of every module, while
the documents of each part are let go before the next is parsed."""

from __future__ import annotations

import gc
import os
import posixpath
from pathlib import Path
from typing import Any

import pytest

from policyscan import scan as scan_module
from policyscan import terraform_parts
from policyscan.discover import discover
from policyscan.model import Artifact, Kind
from policyscan.policy import engine
from policyscan.policy.loader import Rule
from policyscan.policy.predicates import terraform as tf_predicates
from policyscan.project import PartialViewError, Project
from policyscan.scan import parse_artifact, parse_text
from tests.conftest import (
    FIXTURES,
    assert_same_result,
    project_of,
    record_returns,
    scan_options,
    scan_tree,
    write_tree,
)

# Modules in this order (sorted directories): every question a Terraform rule asks of the whole
# tree is answered by a module other than the one asking, some before it and some after.
TREE = {
    "a_app/main.tf": """\
resource "aws_s3_bucket" "assets" {
  bucket = "assets"
}

resource "aws_db_instance" "main" {
  engine                  = "postgres"
  backup_retention_period = 7
  storage_encrypted       = true
  password                = var.db_password
}
""",
    # Called by z_env: its default is only a fallback, so the bucket may not exist.
    "b_lib/main.tf": """\
variable "enabled" {
  default = 1
}

resource "aws_s3_bucket" "lib" {
  count  = var.enabled
  bucket = "lib"
}
""",
    "c_alarms/main.tf": 'resource "aws_cloudwatch_metric_alarm" "cpu" {\n  alarm_name = "cpu"\n}\n',
    "d_account/main.tf": """\
resource "aws_s3_account_public_access_block" "all" {
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
""",
    "e_db/main.tf": """\
resource "aws_db_instance_automated_backups_replication" "copy" {
  source_db_instance_arn = "arn:aws:rds:us-east-1:123456789012:db:main"
}
""",
    "f_comp/main.tf": """\
resource "aws_cloudwatch_composite_alarm" "any" {
  alarm_name = "any"
  alarm_rule = "ALARM(cpu)"
}
""",
    "z_env/main.tf": 'module "lib" {\n  source = "../b_lib"\n}\n',
    # tfvars subjects come in file order, which is not module order: a/c sorts between
    # a/x.tfvars and a/z.tfvars.
    "a/x.tfvars": 'db_password = "hunter2"\n',
    "a/c/y.tfvars": 'db_password = "changeme"\n',
    "a/z.tfvars": 'api_token = "password1"\n',
    "g_broken/main.tf": 'resource "aws_s3_bucket" "x" {\n  bucket = \n',
}


# A resource other families read (CROSS_FAMILY_RESOURCES): a TLS front for PSX002.
LISTENER_TF = 'resource "aws_lb_listener" "web" {\n  port     = 443\n  protocol = "HTTPS"\n}\n'


def _terraform_rules(rules: list[Rule]) -> list[int]:
    return [i for i, rule in enumerate(rules) if rule.scope.startswith("terraform.")]


def _parsed(artifact: Artifact, text: str) -> object | None:
    doc = parse_text(artifact, text)
    return None if isinstance(doc, scan_module._Failed) else doc


def _in_parts(
    rules: list[Rule],
    root: Path,
    part_bytes: int = 1,
    evidence: bool = True,
    parse: terraform_parts.Parse = _parsed,
    helpers: terraform_parts.Helpers | None = None,
) -> tuple[Any, terraform_parts.Judged]:
    """The Terraform rules judged in parts (each module alone, by default): merged, and what
    judge_in_parts returned."""
    found = discover([str(root)], str(root))
    texts = {
        a.path: parse_artifact(a, 1 << 20)[1] for a in found.artifacts if a.kind is Kind.TERRAFORM
    }
    judged = terraform_parts.judge_in_parts(
        rules,
        _terraform_rules(rules),
        found.artifacts,
        found.root,
        texts,
        parse,
        evidence,
        None,
        set(),
        frozenset(),
        part_bytes=part_bytes,
        helpers=helpers,
    )
    assert texts == {}  # each part let go of its texts
    return engine.merge([judged.tagged]), judged


def _whole(rules: list[Rule], root: Path, evidence: bool = True) -> Any:
    """The same rules on one project of every module, each finding given its snippet from
    the file (the parts make them while they hold the texts)."""
    project = project_of(root)
    tagged, deferred = engine.judge(rules, project, _terraform_rules(rules), evidence)
    assert not deferred
    findings, shown, problems = engine.merge([tagged])
    texts = {a.path: parse_artifact(a, 1 << 20)[1] for a in project.artifacts}
    findings = [scan_module._with_snippet(f, texts) for f in findings]
    assert all(f.snippet for f in findings)
    return (findings, shown, problems), project


@pytest.mark.parametrize("part_bytes", [1, 200, 1 << 20])
def test_parts_judge_as_one_project_of_every_module(
    tmp_path: Path, rules: list[Rule], part_bytes: int
) -> None:
    root = write_tree(tmp_path / "repo", TREE)
    whole, project = _whole(rules, root)
    merged, judged = _in_parts(rules, root, part_bytes)
    assert merged[0] == whole[0]
    assert merged[1] == whole[1]
    assert merged[2] == whole[2]
    assert judged.cross_family == project.cross_family_terraform()
    # What the tree was made to ask, answered from other modules.
    shown = {(e.rule_id, e.location.path, e.location.span.start_line, e.status) for e in whole[1]}
    assert {
        ("PST014", "a_app/main.tf", 1, "met"),  # the account's access block, in d_account
        ("PST006", "a_app/main.tf", 5, "met"),  # the replication, in e_db
        ("PST061", "a_app/main.tf", 5, "met"),  # the alarm, in c_alarms
        ("PST062", "c_alarms/main.tf", 1, "unknown"),  # the composite alarm, in f_comp
    } <= shown
    # Called from z_env, b_lib's bucket may not exist: nothing is reported on it.
    assert not [f for f in whole[0] if f.location.path == "b_lib/main.tf"]
    assert [(f.rule_id, f.location.path) for f in whole[0] if f.rule_id == "PST075"] == [
        ("PST075", "a/c/y.tfvars"),
        ("PST075", "a/x.tfvars"),
        ("PST075", "a/z.tfvars"),
    ]


def test_a_call_from_a_later_module_is_known_to_an_earlier_part(
    tmp_path: Path, rules: list[Rule]
) -> None:
    """Without z_env's call, b_lib's bucket exists and is reported: the parts know of the call
    although b_lib is judged alone, before z_env would be."""
    root = write_tree(tmp_path / "repo", TREE)
    merged, _ = _in_parts(rules, root)
    assert not [f for f in merged[0] if f.location.path == "b_lib/main.tf"]
    (root / "z_env" / "main.tf").unlink()
    merged, _ = _in_parts(rules, root)
    assert {f.rule_id for f in merged[0] if f.location.path == "b_lib/main.tf"} >= {"PST010"}
    assert merged == _whole(rules, root)[0]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("escaped", 'module "m" {\n  source = "\\u002e./b_lib"\n}\n'),
        ("heredoc", 'module "m" {\n  source = <<EOT\n../b_lib\nEOT\n}\n'),
        ("json", '{"module": {"m": {"source": "..\\/b_lib"}}}\n'),
    ],
)
def test_a_call_written_any_way_is_found(
    tmp_path: Path, rules: list[Rule], name: str, text: str
) -> None:
    name = "z_env/main.tf.json" if name == "json" else "z_env/main.tf"
    files = {k: v for k, v in TREE.items() if not k.startswith("z_env/")}
    root = write_tree(tmp_path / "repo", {**files, name: text})
    whole, _ = _whole(rules, root)
    merged, _ = _in_parts(rules, root)
    assert merged == whole
    # The call is read: b_lib's bucket is not reported. (A heredoc's value ends in a newline:
    # no directory of the tree, so it is no call, in parts or not.)
    on_lib = [f for f in whole[0] if f.location.path == "b_lib/main.tf"]
    assert bool(on_lib) is (name == "z_env/main.tf" and "<<" in text)


def test_the_first_alarm_is_the_first_in_module_order(tmp_path: Path, rules: list[Rule]) -> None:
    """Many modules name an alarm; the answer is the first that has one, and the modules after
    it are not read first."""
    files = {k: v for k, v in TREE.items() if not k.startswith("f_comp/")}
    files["c_alarms/main.tf"] = "# aws_cloudwatch_metric_alarm: none here\n"
    for n in range(5):
        files[f"h{n}/main.tf"] = (
            f'resource "aws_cloudwatch_metric_alarm" "m{n}" {{\n  alarm_name = "m{n}"\n}}\n'
        )
    root = write_tree(tmp_path / "repo", files)
    whole, _ = _whole(rules, root)
    merged, _ = _in_parts(rules, root)
    assert merged == whole
    notes = {e.note for e in whole[1] if e.rule_id == "PST061"}
    assert notes and all("aws_cloudwatch_metric_alarm.m0" in note for note in notes)
    early = _early(rules, root)
    # c_alarms, read before h0 and found without an alarm, adds nothing to the answer.
    assert "h0" in early and not {"c_alarms", "h1", "h2", "h3", "h4"} & early


def _early(rules: list[Rule], root: Path) -> set[str]:
    """The modules judged in the first part."""
    seen: list[list[str]] = []
    real = terraform_parts._Parts.judge

    def judge(self: Any, part: Project, paths: Any) -> None:
        seen.append(sorted(part.documents))
        real(self, part, paths)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(terraform_parts._Parts, "judge", judge)
        _in_parts(rules, root)
    return {path.split("/")[0] for path in seen[0]}


def test_each_part_is_let_go_before_the_next_is_parsed(tmp_path: Path, rules: list[Rule]) -> None:
    files = {f"m{n:02}/main.tf": f'resource "aws_s3_bucket" "b{n}" {{\n}}\n' for n in range(12)}
    root = write_tree(tmp_path / "repo", files)
    found = discover([str(root)], str(root))
    mine: set[int] = set()
    alive: list[int] = []
    kind = type(parse_artifact(found.artifacts[0], 1 << 20)[0])

    def parse(artifact: Artifact, text: str) -> object | None:
        # The documents (slotted, without weak references) this test made, still alive.
        gc.collect()
        alive.append(sum(id(o) in mine for o in gc.get_objects() if type(o) is kind))
        made = parse_text(artifact, text)
        mine.add(id(made))
        return made

    merged, judged = _in_parts(rules, root, parse=parse)
    assert len(alive) == 12  # every module parsed (a freed one's address may be taken again)
    assert max(alive) == 0  # each module alone: none of the earlier ones is left
    assert len({f.location.path for _, f in judged.tagged[0]}) == 12
    assert merged == _whole(rules, root)[0]


def test_a_part_refuses_a_project_wide_question_it_was_not_given(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", {"m/main.tf": TREE["a_app/main.tf"]})
    project = project_of(root)
    project.terraform_part = True
    with pytest.raises(PartialViewError, match="aws_backup_plan"):
        tf_predicates._project_resources(project, ("aws_backup_plan",))
    project.seed({("terraform_resources_of", frozenset({"aws_backup_plan"})): []})
    assert tf_predicates._project_resources(project, ("aws_backup_plan",)) == []


def test_a_question_no_part_was_given_leaves_the_scan_to_one_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new project-wide question, not in WIDE_QUESTIONS: the scan is done the ordinary way
    and finds the same, rather than answering from a part."""
    root = write_tree(tmp_path / "repo", TREE)
    parts = scan_tree(root, jobs=1, evidence=True)
    monkeypatch.setattr(tf_predicates, "wide_answers", lambda project: {})
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    ordinary = scan_tree(root, jobs=1, evidence=True)
    assert returned == [None]
    assert_same_result(parts, ordinary)


@pytest.mark.parametrize("fixture", ["insecure-shop", "hardened-shop"])
def test_one_process_in_parts_finds_what_one_project_finds(
    fixture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's own path (Terraform in parts, then the other kinds, nginx let go before
    the largest scopes) against every document in one project."""
    root = FIXTURES / fixture
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    parts = scan_tree(root, jobs=1, evidence=True, cache=False)
    assert returned and returned[0] is not None
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)
    ordinary = scan_tree(root, jobs=1, evidence=True, cache=False)
    assert parts.evidence and (parts.findings or fixture == "hardened-shop")
    assert_same_result(parts, ordinary)


def test_nginx_let_go_is_refused_after(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            "nginx/nginx.conf": "http {\n  server {\n    listen 80;\n  }\n}\n",
            "app/docker-compose.yml": "services:\n  web:\n    image: nginx:1.25\n",
        },
    )
    project = project_of(root)
    assert project.subjects("nginx.server")
    project.memo("nginx_index", dict)
    project.memo("compose_backup_anywhere", dict)
    project.let_go(Kind.NGINX)
    assert "nginx/nginx.conf" not in project.documents
    assert "nginx_index" not in project._memo and "compose_backup_anywhere" in project._memo
    with pytest.raises(PartialViewError):
        project.subjects("nginx.server")
    assert project.subjects("compose.service")


def test_nginx_is_kept_for_the_ignore_comments_that_read_it(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", {"nginx.conf": "http {\n  server {\n  }\n}\n"})
    project = project_of(root)
    project.retained = frozenset({"nginx.server"})
    project.let_go(Kind.NGINX)
    assert project.subjects("nginx.server")


def test_progress_counts_every_file_once_in_parts(tmp_path: Path) -> None:
    """Parsed with its part, or not at all (too large to read): each file counted once."""
    import dataclasses

    from policyscan.scan import scan

    root = write_tree(tmp_path / "repo", {**TREE, "app/.env": "DEBUG=true\n"})
    seen: list[tuple[int, int]] = []
    rules, options = scan_options(root, jobs=1, cache=False)
    options = dataclasses.replace(
        options,
        progress=lambda done, total: seen.append((done, total)),
        discovery=dataclasses.replace(options.discovery, max_bytes=150),
    )
    result = scan(rules, options)
    assert {p.code for p in result.problems} >= {"too-large", "parse-error"}
    total = len(TREE) + 1
    assert [done for done, _ in seen] == list(range(1, total + 1))
    assert {t for _, t in seen} == {total}


def test_with_a_focus_only_the_parts_that_hold_it_are_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pre-commit run on one Terraform file: the other modules give only the resources other
    families read, and the run finds what the ordinary way finds."""
    root = write_tree(tmp_path / "repo", {**TREE, "m_lb/main.tf": LISTENER_TF})
    only = frozenset({"a_app/main.tf"})
    judged: list[list[str]] = []
    skipped: list[list[str]] = []
    real_judge, real_skip = terraform_parts._Parts.judge, terraform_parts._Parts.skip

    def judge(self: Any, part: Project, paths: Any) -> None:
        judged.append(sorted(paths))
        real_judge(self, part, paths)

    def skip(self: Any, part: Project, paths: Any) -> None:
        skipped.append(sorted(paths))
        real_skip(self, part, paths)

    monkeypatch.setattr(terraform_parts._Parts, "judge", judge)
    monkeypatch.setattr(terraform_parts._Parts, "skip", skip)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)  # each module alone
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    parts = scan_tree(root, jobs=1, cache=False, evidence=True, only=only)
    assert returned[0] is not None
    assert ["a_app/main.tf"] in judged and ["m_lb/main.tf"] in skipped
    assert parts.findings and {f.location.path for f in parts.findings} == set(only)
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)
    assert_same_result(parts, scan_tree(root, jobs=1, cache=False, evidence=True, only=only))


def test_a_focus_on_compose_still_reads_the_terraform_resources_of_skipped_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Terraform part holds the file in focus, so none is judged; the compose database is
    still backed up by the plan in one of them (PSC001 met), as the ordinary way finds."""
    compose = (
        "services:\n  db:\n    image: postgres:16\n    volumes: [data:/var/lib/postgresql/data]\n"
    )
    compose += "volumes:\n  data: {}\n"
    backup = 'resource "aws_backup_plan" "nightly" {\n  name = "nightly"\n}\n'
    root = write_tree(
        tmp_path / "repo",
        {**TREE, "app/docker-compose.yml": compose, "m_backup/main.tf": backup},
    )
    only = frozenset({"app/docker-compose.yml"})
    judged: list[object] = []
    real_judge = terraform_parts._Parts.judge

    def judge(self: Any, part: Project, paths: Any) -> None:
        judged.append(paths)
        real_judge(self, part, paths)

    monkeypatch.setattr(terraform_parts._Parts, "judge", judge)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    parts = scan_tree(root, jobs=1, cache=False, evidence=True, only=only)
    assert len(judged) == 1  # the first part only (the modules the questions read first)
    assert ("PSC001", "met") in {(e.rule_id, e.status) for e in parts.evidence}
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)
    assert_same_result(parts, scan_tree(root, jobs=1, cache=False, evidence=True, only=only))


# ------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("count", [1, 2])
def test_helpers_judge_the_later_parts_as_one_project_would(
    tmp_path: Path, rules: list[Rule], count: int
) -> None:
    """Forked processes judge the later parts and send what they made: merged with this
    process's parts, it is what one project of every module gives."""
    # Resources other families read, in a module of this process's and in a helper's.
    tree = {**TREE, "a_app/lb.tf": LISTENER_TF, "y_web/main.tf": LISTENER_TF}
    root = write_tree(tmp_path / "repo", tree)
    whole, project = _whole(rules, root)
    parsed_by: dict[str, int] = {}

    def parse(artifact: Artifact, text: str) -> object | None:
        parsed_by[artifact.path] = os.getpid()
        return _parsed(artifact, text)

    reports: list[Any] = []
    meanwhile: list[int] = []
    helpers = terraform_parts.Helpers(
        count,
        0,
        lambda: meanwhile.append(os.getpid()),
        lambda paths: {p: parsed_by[p] for p in paths if p in parsed_by},
        reports.append,
    )
    merged, judged = _in_parts(rules, root, 1, parse=parse, helpers=helpers)
    assert merged[0] == whole[0]
    assert merged[1] == whole[1]
    assert merged[2] == whole[2]
    assert judged.cross_family == project.cross_family_terraform()
    assert list(judged.cross_family) == list(project.cross_family_terraform())  # in order
    assert len(judged.cross_family) == 2
    assert judged.view_problems == project.problems
    assert meanwhile == [os.getpid()]  # here, once
    # Each helper parsed its own files, in a process of its own.
    assert len(reports) == count
    pids = [set(report.values()) for report in reports]
    assert all(len(p) == 1 for p in pids)
    assert len(set.union(*pids)) == count and os.getpid() not in set.union(*pids)


def test_parts_are_shared_out_by_cost_this_process_first() -> None:
    groups = [[f"m{i}"] for i in range(10)]
    sizes = [10] * 10
    assert terraform_parts._share_out(groups, sizes, 1, 0) == [groups[:5], groups[5:]]
    # This process has other work worth 40 bytes of Terraform: it takes fewer parts.
    assert terraform_parts._share_out(groups, sizes, 1, 40) == [groups[:3], groups[3:]]
    assert terraform_parts._share_out(groups, sizes, 2, 0) == [
        groups[:3],
        groups[3:7],
        groups[7:],
    ]
    # More other work than Terraform: every part to the helpers.
    assert terraform_parts._share_out(groups, sizes, 1, 1000) == [[], groups]


# A Terraform-only tree of TREE's modules, with a file too large to read.
ONLY_TERRAFORM = {**TREE, "big/main.tf": "# " + "x" * 400 + "\n"}


def _forced_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes for a tree far too small for them."""
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)


def _scan_limited(root: Path, jobs: int, cache: bool = False, **changes: Any) -> Any:
    import dataclasses

    from policyscan.scan import scan

    rules, options = scan_options(root, jobs=jobs, cache=cache, evidence=True, **changes)
    options = dataclasses.replace(
        options, discovery=dataclasses.replace(options.discovery, max_bytes=300)
    )
    return scan(rules, options)


@pytest.mark.parametrize("jobs", [2, 3])
def test_processes_judge_a_terraform_tree_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """A tree of Terraform alone (no other kind to split it by): each process judges some of
    its parts, and the scan finds what one process finds, problems and progress included."""
    root = write_tree(tmp_path / "repo", ONLY_TERRAFORM)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)  # a part per module
    plain = _scan_limited(root, 1)
    _forced_jobs(monkeypatch)
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    marks = tmp_path / "judged-by"
    marks.mkdir()
    real = terraform_parts._Parts.judge

    def judge(self: Any, part: Project, paths: Any) -> None:
        (marks / str(os.getpid())).touch()  # seen from every process
        real(self, part, paths)

    monkeypatch.setattr(terraform_parts._Parts, "judge", judge)
    seen: list[int] = []
    shared = _scan_limited(root, jobs, progress=lambda done, total: seen.append(done))
    assert returned and returned[0] is not None
    assert {p.code for p in shared.problems} >= {"too-large", "parse-error"}
    assert plain.findings and plain.evidence
    assert_same_result(shared, plain)
    assert seen == list(range(1, len(ONLY_TERRAFORM) + 1))
    judged_by = {int(mark.name) for mark in marks.iterdir()}
    assert os.getpid() in judged_by and len(judged_by) == jobs


def _fails_in_a_helper(parent: int) -> Any:
    real = terraform_parts._Parts.judge

    def judge(self: Any, part: Project, paths: Any) -> None:
        if os.getpid() != parent:
            raise ValueError("a bug in a helper")
        real(self, part, paths)

    return judge


def _dies_in_a_helper(parent: int) -> Any:
    real = terraform_parts._Parts.judge

    def judge(self: Any, part: Project, paths: Any) -> None:
        if os.getpid() != parent:
            os._exit(3)
        real(self, part, paths)

    return judge


@pytest.mark.parametrize("how", [_fails_in_a_helper, _dies_in_a_helper])
def test_a_lost_helper_leaves_the_scan_to_the_ordinary_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: Any
) -> None:
    root = write_tree(tmp_path / "repo", ONLY_TERRAFORM)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    plain = _scan_limited(root, 1)
    _forced_jobs(monkeypatch)
    monkeypatch.delenv("POLICYSCAN_DEBUG", raising=False)
    monkeypatch.setattr(terraform_parts._Parts, "judge", how(os.getpid()))
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    after = _scan_limited(root, 2)
    assert returned == [None]  # given up: scanned the ordinary way
    assert_same_result(after, plain)


@pytest.mark.parametrize("cache", [False, True])
def test_a_tree_mostly_of_terraform_is_judged_in_parts_not_split_by_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    """With the other kinds too few to keep this process busy, it would parse most of the
    Terraform for the worker: both judge parts instead, and find what one process finds."""
    from policyscan import split as split_module

    tree = {
        **TREE,
        "app/docker-compose.yml": "services:\n  web:\n    image: nginx\n",
        "app/.env": "DEBUG=true\n",
    }
    root = write_tree(tmp_path / "repo", tree)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    plain = _scan_limited(root, 1)
    _forced_jobs(monkeypatch)
    monkeypatch.setattr(split_module, "_SHARE_MEGABYTES", 0.0)  # a small tree's share counts
    by_kind = record_returns(monkeypatch, split_module, "scan_by_kind")
    in_parts = record_returns(monkeypatch, scan_module, "_in_parts")
    shared = _scan_limited(root, 2, cache=cache)
    assert by_kind == [None] and in_parts and in_parts[0] is not None
    assert plain.findings and {f.location.path for f in plain.findings} >= {"app/.env"}
    assert_same_result(shared, plain)
    # With enough other work, the split by kind stays.
    monkeypatch.setattr(split_module, "_SHARE_MOST", 1.0)
    by_kind.clear()
    (root / "app/.env").write_text("DEBUG=true\n\n", encoding="utf-8")  # not all from the cache
    assert_same_result(_scan_limited(root, 2, cache=cache), _scan_limited(root, 1))
    assert by_kind and by_kind[0] is not None


def _stored_documents(root: Path) -> dict[str, tuple[str, bytes]]:
    from policyscan.cache import ScanCache

    store = ScanCache.open(str(root), None)
    assert store is not None
    return store.load_documents()


@pytest.mark.parametrize("jobs", [1, 2])
def test_with_the_cache_the_parts_take_and_give_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """With the cache, Terraform is judged in parts too: cold, then with one file changed (the
    others' documents from the cache), the scan finds what it finds without the cache, stores
    the entries the ordinary way stores, and parses only what changed."""
    import shutil

    from policyscan import cache

    tree = {**TREE, "y_web/main.tf": LISTENER_TF}
    root = write_tree(tmp_path / "repo", tree)
    ordinary_root = write_tree(tmp_path / "ordinary", tree)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    _forced_jobs(monkeypatch)
    plain = _scan_limited(root, 1)
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    cold = _scan_limited(root, jobs, cache=True)
    assert returned and returned[0] is not None  # in parts, with the cache
    assert_same_result(cold, plain)
    # The entries one project's way stores (the ordinary way, on a copy of the tree).
    with monkeypatch.context() as ordinary:
        ordinary.setattr(scan_module, "_in_parts", lambda *args: None)
        _scan_limited(ordinary_root, jobs, cache=True)
    stored, expected = _stored_documents(root), _stored_documents(ordinary_root)
    # Judged in parts, the shelf also keeps the modules' summaries (scan.ModuleSummaries):
    # the ordinary way makes none.
    summaries = {p for p in stored if p.startswith(scan_module._SUMMARY)}
    assert summaries and {p.removeprefix(scan_module._SUMMARY) for p in summaries} <= {
        posixpath.dirname(p) for p in tree
    }
    assert not any(p.startswith(scan_module._SUMMARY) for p in expected)
    stored = {p: e for p, e in stored.items() if p not in summaries}
    assert {p: k for p, (k, _) in stored.items()} == {p: k for p, (k, _) in expected.items()}
    assert set(stored) == set(tree)
    # One file changed: only it is parsed (here or in a helper), the rest loaded.
    (root / "y_web/main.tf").write_text(LISTENER_TF.replace("443", "8443"), encoding="utf-8")
    shutil.rmtree(root / cache.CACHE_DIRNAME / "results.bin", ignore_errors=True)
    parsed = tmp_path / "parsed"
    parsed.mkdir()
    real = scan_module.parse_text

    def parse_text(artifact: Artifact, text: str) -> Any:
        (parsed / artifact.path.replace("/", "_")).touch()  # seen from every process
        return real(artifact, text)

    monkeypatch.setattr(scan_module, "parse_text", parse_text)
    returned.clear()
    warm = _scan_limited(root, jobs, cache=True)
    assert returned and returned[0] is not None
    assert {p.name for p in parsed.iterdir()} == {"y_web_main.tf"}
    monkeypatch.setattr(scan_module, "parse_text", real)
    assert_same_result(warm, _scan_limited(root, 1))


def test_with_the_cache_a_question_no_part_was_given_reads_the_tree_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts let go of the texts the cache read: a scan that must be done the ordinary way
    after all reads them again, and finds the same."""
    root = write_tree(tmp_path / "repo", TREE)
    plain = _scan_limited(root, 1)
    monkeypatch.setattr(tf_predicates, "wide_answers", lambda project: {})
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    cached = _scan_limited(root, 1, cache=True)
    assert returned == [None]
    assert_same_result(cached, plain)


def test_with_the_cache_a_tree_without_terraform_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(tmp_path / "repo", {"app/.env": "DEBUG=true\n"})
    calls = record_returns(monkeypatch, scan_module, "_scan_cached")
    tried = record_returns(monkeypatch, scan_module, "_in_parts")
    assert _scan_limited(root, 1, cache=True).findings
    assert len(calls) == 1 and tried == []


@pytest.mark.parametrize("cache", [False, True])
def test_helpers_with_a_focus_find_what_the_ordinary_way_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    """A pre-commit run with two processes: files in focus in this process's parts and in a
    helper's, the other parts giving only the resources other families read."""
    root = write_tree(tmp_path / "repo", {**TREE, "m_lb/main.tf": LISTENER_TF})
    only = frozenset({"a_app/main.tf", "z_env/main.tf", "a/z.tfvars"})
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    _forced_jobs(monkeypatch)
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    shared = _scan_limited(root, 2, cache=cache, only=only)
    assert returned and returned[0] is not None
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)
    ordinary = _scan_limited(root, 1, only=only)
    assert {f.location.path for f in shared.findings} == {"a_app/main.tf", "a/z.tfvars"}
    assert_same_result(shared, ordinary)


# ------------------------------------------------------------------------------- summaries

_PUBLIC_HTTP = 'services:\n  web:\n    image: example/web:1.2\n    ports: ["80:80"]\n'
_LISTENER_FROM_VARIABLE = """\
variable "protocol" {
  default = "HTTP"
}

resource "aws_lb_listener" "web" {
  port     = 443
  protocol = var.protocol
}
"""
_CALLER = 'module "lb" {\n  source = "../m_lb"\n}\n'


def _psx002(result: Any) -> list[str]:
    return [f.location.path for f in result.findings if f.rule_id == "PSX002"]


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize(
    "change",
    ["none", "a module's file not in focus", "a module now called", "a summary damaged"],
)
def test_a_focused_run_answers_unread_modules_from_their_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, jobs: int
) -> None:
    """After a scan with the cache, a pre-commit run on a compose file neither parses nor
    loads a module it does not judge: what the compose rules read of it (the listener before
    the port published in plain HTTP, PSX002) comes from its summary. A summary is kept under
    its module's files and whether another module calls it: a file of that module changed,
    or a new caller (its variables then unknown), and the module is read again; a summary
    that does not read back is read again too. Each time the run finds what the ordinary way
    finds, and a stale summary would not: the finding goes with either change. With two
    processes, in the split's worker."""
    from policyscan.cache import ScanCache, Shelf

    root = write_tree(
        tmp_path / "repo",
        {
            **TREE,
            "app/docker-compose.yml": _PUBLIC_HTTP,
            "m_lb/main.tf": _LISTENER_FROM_VARIABLE,
        },
    )
    only = frozenset({"app/docker-compose.yml"})
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)  # a part per module
    _forced_jobs(monkeypatch)
    before = _scan_limited(root, jobs, cache=True)  # a full scan: the summaries written
    assert _psx002(before) == ["app/docker-compose.yml"]  # an HTTP listener: no TLS anywhere
    if change == "a module's file not in focus":
        (root / "m_lb/main.tf").write_text(
            _LISTENER_FROM_VARIABLE.replace('"HTTP"', '"HTTPS"'), encoding="utf-8"
        )
    elif change == "a module now called":
        write_tree(root, {"n_caller/main.tf": _CALLER})
    elif change == "a summary damaged":
        store = ScanCache.open(str(root), None)
        assert store is not None
        name = scan_module._SUMMARY + "m_lb"
        old = store.open_shelf(terraform=True)
        writer = store.shelf_writer(True, Shelf())
        for path, key in old.keys().items():
            blob = old.unchanged(path, key)
            assert blob is not None
            writer.put(path, key, b"not a pickle" if path == name else blob)
        writer.close()
        old.close()
    from policyscan import cache

    (root / cache.CACHE_DIRNAME / cache._RESULTS).unlink()  # judged, not answered whole
    log = tmp_path / "read"  # seen from every process
    real_parse, real_unchanged = scan_module.parse_text, Shelf.unchanged

    def note(path: str) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(path + "\n")

    def parse_text(artifact: Artifact, text: str) -> Any:
        note(artifact.path)
        return real_parse(artifact, text)

    def unchanged(self: Shelf, path: str, key: str | None) -> bytes | None:
        found = real_unchanged(self, path, key)
        if found is not None and not path.startswith(scan_module._SUMMARY):
            note(path)
        return found

    monkeypatch.setattr(scan_module, "parse_text", parse_text)
    monkeypatch.setattr(Shelf, "unchanged", unchanged)
    focused = _scan_limited(root, jobs, cache=True, only=only)
    read = log.read_text(encoding="utf-8").split() if log.exists() else []
    monkeypatch.setattr(scan_module, "parse_text", real_parse)
    monkeypatch.setattr(Shelf, "unchanged", real_unchanged)
    # The other modules of the tree are read first (they call modules, or name what a
    # project-wide question asks about): m_lb is the one a focused run can leave unread.
    assert ("m_lb/main.tf" in read) is (change != "none")
    assert read  # judged (the results were not the tree's)
    ordinary = _scan_limited(root, 1, only=only)
    assert_same_result(focused, ordinary)
    # An HTTPS listener terminates TLS; one whose protocol is unknown (its module called)
    # leaves it undecided: no finding either way.
    changed = change in ("a module's file not in focus", "a module now called")
    assert _psx002(focused) == ([] if changed else ["app/docker-compose.yml"])


def test_helpers_keep_the_documents_and_summaries_they_leave_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree of Terraform alone with two processes, focused on one module after a full scan:
    the helper answers the modules it does not judge from their summaries and hands what it
    kept to this process, which writes the shelf: every document and summary is still there
    after, and the run finds what the ordinary way finds."""
    tree = {**TREE, "m_lb/main.tf": _LISTENER_FROM_VARIABLE}
    root = write_tree(tmp_path / "repo", tree)
    monkeypatch.setattr(terraform_parts, "PART_BYTES", 1)
    _forced_jobs(monkeypatch)
    _scan_limited(root, 2, cache=True)
    stored = _stored_documents(root)
    # Every file, and a summary of every module judged after the first part: what one
    # process stores, whichever process judged it.
    alone = write_tree(tmp_path / "alone", tree)
    _scan_limited(alone, 1, cache=True)
    assert set(stored) == set(_stored_documents(alone))
    assert set(tree) < set(stored)
    (root / "z_env/main.tf").write_text(
        (root / "z_env/main.tf").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8"
    )
    only = frozenset({"z_env/main.tf"})
    returned = record_returns(monkeypatch, scan_module, "_in_parts")
    focused = _scan_limited(root, 2, cache=True, only=only)
    assert returned and returned[0] is not None  # in parts, with a helper
    after = _stored_documents(root)
    assert set(after) == set(stored)
    edited = {"z_env/main.tf", scan_module._SUMMARY + "z_env"}  # made again, under new keys
    assert {p: e for p, e in after.items() if p not in edited} == {
        p: e for p, e in stored.items() if p not in edited
    }
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)
    assert_same_result(focused, _scan_limited(root, 1, only=only))
