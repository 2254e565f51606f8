"""`policyscan checklist`: the seed's checklist filled in from the files.

Built against whatever rules exist when the tests run: the fixtures' answer keys decide what must
be found, not the rules of the day. The hardened fixture must show every applicable `static: full`
item met with evidence; every planted problem of the insecure fixture must show under its item at
its file and line.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
import yaml

from policyscan.checklist import items, load
from policyscan.cli import main
from policyscan.model import Artifact, Environment, Evidence, Location, Problem, ScanResult, Span
from policyscan.policy.loader import Rule
from policyscan.readiness import (
    Readiness,
    RenderOptions,
    Status,
    Tally,
    aggregate,
    evaluate,
    evaluate_item,
    render,
)
from policyscan.scan import ScanOptions, scan
from tests.conftest import FIXTURES, ROOT, write_tree

HARDENED = FIXTURES / "hardened-shop"
INSECURE = FIXTURES / "insecure-shop"
KEY = yaml.safe_load((INSECURE / "PLANTED.yaml").read_text("utf-8"))
SEED = Path(__file__).parent / "checklist" / "production-deployment-checklist.md"
FULL_ITEMS = sorted(i.id for i in items().values() if i.static == "full")

# Literal secrets written in the insecure fixture; no report may contain one.
SECRETS = [
    "changethis",
    "8CsjBMv7Ed71JAMZyOUMmBLQ43AJA3AnXf55UrJ0xP3I",
    "shopcache1",
    "AKIAQ7FAKESHOPENV2X4",
    "sHoPfAkEeNvSeCrEt/7d3Kq9Lm2Np5Rt8Vw1Xz4B",
    "sk_test_FakeShopFixtureKey0123456789",
    "supersecretkey123",
    "Shop2023!",
    "AKIAZ3FAKESHOPTF5EXM",
    "tFfAkEsHoP/9sEcReTkEy2Lq8Mn4Pr7Ts1Vx3Zb6",
    "whsec_3kTz9QmV2wX8yB5nR1cL7pD4fG6hJ0sA",
]


def fill(path: Path, rules: list[Rule], section: str | None = None) -> Readiness:
    return evaluate(scan(rules, ScanOptions(paths=(str(path),))), rules, section=section)


@pytest.fixture(scope="module")
def hardened(rules: list[Rule]) -> Readiness:
    return fill(HARDENED, rules)


@pytest.fixture(scope="module")
def insecure(rules: list[Rule]) -> Readiness:
    return fill(INSECURE, rules)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------ the checklist data


def parse_seed(text: str) -> dict[str, Any]:
    """The seed's sections (## part / ### title), its `- [ ]` lines with their sub-bullets and
    commands, the Rollback lists, the Sign-Off roles and the closing notes."""
    sections: list[dict[str, Any]] = []
    roles: list[str] = []
    notes: list[str] = []
    part: str | None = None
    current: dict[str, Any] | None = None
    last: dict[str, Any] | None = None  # the entry or step a code block belongs to
    code: list[str] | None = None
    in_notes = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if code is None:
                code = []
            else:
                assert last is not None
                last["command"] = "\n".join(code)
                code = None
            continue
        if code is not None:
            code.append(stripped)
            continue
        if line.startswith("## "):
            part, current = line[3:].strip(), None
            continue
        if line.startswith("### "):
            current = {
                "part": part,
                "title": line[4:].strip(),
                "entries": [],
                "notes": [],
                "steps": [],
            }
            sections.append(current)
            continue
        if stripped == "**Notes**:":
            in_notes = True
            continue
        role = re.match(r"^\*\*(.+?)\*\*: _+", line)
        if role:
            roles.append(role.group(1))
            continue
        box = re.match(r"^- \[ \] (.+)$", line)
        if box:
            if current is None:
                current = {"part": None, "title": part, "entries": [], "notes": [], "steps": []}
                sections.append(current)
            last = {"text": box.group(1), "details": [], "command": None}
            current["entries"].append(last)
            continue
        sub = re.match(r"^  - (.+)$", line)
        if sub:
            assert last is not None
            last["details"].append(sub.group(1))
            continue
        bullet = re.match(r"^- (.+)$", line)
        if bullet:
            (notes if in_notes else current["notes"]).append(bullet.group(1))  # type: ignore[index]
            continue
        step = re.match(r"^\d+\. (.+)$", line)
        if step:
            assert current is not None
            last = {"text": step.group(1), "command": None}
            current["steps"].append(last)
    return {"sections": sections, "roles": roles, "notes": notes}


def test_checklist_yaml_follows_the_seed_order_and_wording() -> None:
    seed = parse_seed(SEED.read_text("utf-8"))
    checklist = load()
    ours = [
        {
            "part": s.part,
            "title": s.title,
            "entries": [
                {
                    "text": e.text,
                    "details": [d.text for d in e.details if not d.extra],
                    "command": e.command,
                }
                for e in s.entries
                if not e.extra
            ],
            "notes": list(s.notes),
            "steps": [{"text": st.text, "command": st.command} for st in s.steps],
        }
        for s in checklist.sections
    ]
    assert [(s["part"], s["title"]) for s in ours] == [
        (s["part"], s["title"]) for s in seed["sections"]
    ]
    for mine, theirs in zip(ours, seed["sections"], strict=True):
        assert mine == theirs, mine["title"]
    assert (
        list(checklist.sign_off)
        == seed["roles"]
        == ["Deployment Lead", "Security Review", "QA Sign-Off", "Product Owner"]
    )
    assert list(checklist.notes) == seed["notes"]


def test_every_item_is_placed_and_every_placed_id_exists() -> None:
    checklist = load()
    placed = {i for s in checklist.sections for i in s.item_ids()}
    assert placed == set(checklist.items)
    for item in checklist.items.values():
        assert item.static in ("full", "partial", "none"), item.id
        assert item.text and item.section, item.id
    # Every seed line that has a checkbox is decided by at least one id (a manual one at least).
    for section in checklist.sections:
        for entry in section.entries:
            assert entry.item_ids(), (section.title, entry.text)


def test_shared_checklist_ids_are_kept() -> None:
    """The package copy extends /shared/checklist.yaml: no id or field may go missing."""
    shared = ROOT.parent / "shared" / "checklist.yaml"
    original = yaml.safe_load(shared.read_text("utf-8")) if shared.exists() else None
    ours = yaml.safe_load((ROOT / "policyscan" / "data" / "checklist.yaml").read_text("utf-8"))
    by_id = {i["id"]: i for i in ours["items"]}
    if original is not None:
        for item in original["items"]:
            assert by_id[item["id"]] == item
    # Every id a rule names must exist (the loader enforces it; this keeps the data honest).
    assert len(by_id) == len(ours["items"])


# ------------------------------------------------------------------------ evaluation semantics


def test_status_aggregation_for_seed_lines() -> None:
    assert aggregate([]) is None
    assert aggregate([Status.MET, Status.MET]) is Status.MET
    assert aggregate([Status.MET, Status.UNMET, Status.MANUAL]) is Status.UNMET
    assert aggregate([Status.MET, Status.NOT_DETERMINABLE]) is Status.NOT_DETERMINABLE
    assert aggregate([Status.MET, Status.MANUAL]) is Status.MANUAL


def test_fail_under_uses_exact_arithmetic() -> None:
    two_of_three = Tally(met=2, unmet=1, applicable=3)
    assert two_of_three.below(66.67)
    assert not two_of_three.below(66.66)
    assert not two_of_three.below(0)
    assert Tally().below(1) and not Tally().below(0)


def _dockerfile(build_tools: bool) -> str:
    run = (
        "RUN apt-get update && apt-get install -y gcc\n"
        if build_tools
        else "RUN pip install uvicorn\n"
    )
    return "FROM python:3.12-slim\n" + run + "USER app\n"


def test_three_dockerfiles_are_met_only_when_all_three_are(
    tmp_path: Path, rules: list[Rule]
) -> None:
    files: dict[str, str | bytes] = {f"svc{i}/Dockerfile": _dockerfile(False) for i in range(3)}
    good = fill(write_tree(tmp_path / "good", files), rules).items["perf.docker.multi-stage"]
    assert good.status is Status.MET, good.reason
    assert {e.location.path for e in good.evidence} == {f"svc{i}/Dockerfile" for i in range(3)}

    one_bad = {**files, "svc1/Dockerfile": _dockerfile(True)}
    bad = fill(write_tree(tmp_path / "bad", one_bad), rules).items["perf.docker.multi-stage"]
    assert bad.status is Status.UNMET
    assert [f.location.path for f in bad.findings] == ["svc1/Dockerfile"]

    unreadable = {**files, "svc2/Dockerfile": b"FROM python:3.12-slim\nRUN echo \xff\n"}
    broken = fill(write_tree(tmp_path / "broken", unreadable), rules)
    item = broken.items["perf.docker.multi-stage"]
    assert item.status is Status.NOT_DETERMINABLE and item.applicable
    assert item.unreadable == ("svc2/Dockerfile",)


def test_no_file_that_could_show_it_is_not_determinable(tmp_path: Path, rules: list[Rule]) -> None:
    repo = write_tree(tmp_path, {".env": "DEBUG=false\n"})
    filled = fill(repo, rules)
    docker = filled.items["perf.docker.multi-stage"]
    assert docker.status is Status.NOT_DETERMINABLE and not docker.applicable
    assert "no file" in docker.reason
    assert filled.items["app.env.debug-disabled"].status is Status.MET
    manual = filled.items["process.load-testing"]
    assert manual.status is Status.MANUAL and not manual.applicable


def test_unknown_values_and_rule_failures_are_not_determinable(rules: list[Rule]) -> None:
    item = items()["perf.docker.multi-stage"]
    rule = next(r for r in rules if item.id in r.checklist)
    kind = sorted(rule.artifacts, key=lambda k: k.value)[0]
    env = (
        Environment.PRODUCTION
        if Environment.PRODUCTION in rule.environments
        else Environment.UNKNOWN
    )
    artifact = Artifact("app/Dockerfile", "/nowhere/app/Dockerfile", kind, env)
    passing = Evidence(
        rule.id, rule.checklist, Location("app/Dockerfile", Span.line(1)), "stage 0", "met"
    )
    only_passing = ScanResult(root="/nowhere", artifacts=[artifact], evidence=[passing])
    assert evaluate_item(item, rules, only_passing).status is Status.MET

    unknown = replace(passing, key="stage 1", status="unknown")
    with_unknown = replace(only_passing, evidence=[passing, unknown])
    result = evaluate_item(item, rules, with_unknown)
    assert result.status is Status.NOT_DETERMINABLE and result.applicable
    assert result.unknown == (unknown,)

    failure = Problem(
        "app/Dockerfile", Span.line(1), f"rule {rule.id} failed on this file: boom", "rule-error"
    )
    failed = evaluate_item(item, rules, replace(only_passing, problems=[failure]))
    assert failed.status is Status.NOT_DETERMINABLE and failed.unreadable == ("app/Dockerfile",)


# ------------------------------------------------------------------------ the fixtures


@pytest.mark.parametrize("item_id", FULL_ITEMS)
def test_hardened_fixture_meets_every_applicable_full_item(
    hardened: Readiness, item_id: str
) -> None:
    result = hardened.items[item_id]
    assert not result.findings, [(f.rule_id, f.location.path, f.message) for f in result.findings]
    if not result.applicable:
        # Nothing in the files for its rules: it must say so, and never claim met.
        assert result.status is Status.NOT_DETERMINABLE and result.reason
        return
    unknown = [(e.rule_id, e.location.path, e.location.span.start_line) for e in result.unknown]
    assert result.status is Status.MET, f"{result.reason}; unknown: {unknown}"
    assert result.evidence
    for ev in result.evidence:
        if ev.location.path:  # project-wide checks have no single file
            lines = (HARDENED / ev.location.path).read_text("utf-8").splitlines()
            assert 1 <= ev.location.span.start_line <= len(lines), ev


def test_hardened_fixture_has_nothing_unmet_and_most_full_items_met(hardened: Readiness) -> None:
    assert [i for i, r in hardened.items.items() if r.status is Status.UNMET] == []
    met_full = [i for i in FULL_ITEMS if hardened.items[i].status is Status.MET]
    assert len(met_full) * 2 > len(FULL_ITEMS), met_full


@pytest.mark.parametrize(
    "entry",
    KEY["planted"],
    ids=[f"{e['file']}:{e['line']}:{e['checklist']}" for e in KEY["planted"]],
)
def test_planted_problem_shows_under_its_item(insecure: Readiness, entry: dict[str, Any]) -> None:
    result = insecure.items[entry["checklist"]]
    here = [
        f
        for f in result.findings
        if f.location.path == entry["file"] and f.location.span.start_line == entry["line"]
    ]
    assert here, f"{entry['checklist']} is {result.status.label} ({result.reason}): {entry['what']}"
    assert result.status is Status.UNMET


def test_unmet_items_list_exactly_the_scans_findings(capsys: pytest.CaptureFixture[str]) -> None:
    """Two commands, two outputs: the checklist's findings per item are the scan's findings for
    that item's rules, no more and no fewer, and every finding of the scan is under an item."""
    code, out, _ = run([str(INSECURE), "--format", "json", "--fail-on", "never"], capsys)
    assert code == 0
    scanned = json.loads(out)["findings"]
    code, out, _ = run(["checklist", str(INSECURE), "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)

    def key(f: dict[str, Any]) -> tuple[str, str, int, str]:
        return (f["rule_id"], f["location"]["path"], f["location"]["start_line"], f["fingerprint"])

    assert scanned, "the insecure fixture must produce findings"
    for item in report["items"]:
        expected = Counter(key(f) for f in scanned if item["id"] in f["checklist"])
        assert Counter(key(f) for f in item["findings"]) == expected, item["id"]
        assert (item["status"] == "unmet") == bool(expected), item["id"]
        if item["status"] == "met":
            assert item["evidence"], item["id"]
    listed = {key(f) for item in report["items"] for f in item["findings"]}
    assert listed == {key(f) for f in scanned}


# ------------------------------------------------------------------------ the command


def test_fail_under_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["checklist", str(INSECURE), "-f", "json"], capsys)
    assert code == 0  # no threshold, no gate
    summary = json.loads(out)["summary"]
    percent = summary["readiness"]
    assert percent is not None and percent < 100
    assert run(["checklist", str(INSECURE), "--fail-under", "0"], capsys)[0] == 0
    code, _, err = run(["checklist", str(INSECURE), "--fail-under", f"{percent + 0.1:.1f}"], capsys)
    assert code == 1 and "--fail-under" in err
    assert (
        run(["checklist", str(INSECURE), "--fail-under", str(math.floor(percent))], capsys)[0] == 0
    )

    code, out, _ = run(["checklist", str(HARDENED), "-f", "json"], capsys)
    hardened = json.loads(out)["summary"]
    assert hardened["readiness"] > percent
    floor = str(math.floor(hardened["readiness"]))
    assert run(["checklist", str(HARDENED), "--fail-under", floor, "-f", "json"], capsys)[0] == 0

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["checklist", str(empty), "--fail-under", "1"], capsys)[0] == 1
    assert run(["checklist", str(empty), "--fail-under", "0"], capsys)[0] == 0
    assert run(["checklist", str(INSECURE), "--fail-under", "101"], capsys)[0] == 2
    code, _, err = run(["checklist", str(INSECURE), "--section", "no such section"], capsys)
    assert code == 2 and "Infrastructure" in err


def test_section_option_shows_one_section_and_gates_on_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["checklist", str(HARDENED), "-f", "json", "--section", "security"], capsys)
    assert code == 0
    report = json.loads(out)
    assert [s["title"] for s in report["sections"]] == ["Security"]
    assert report["summary"]["applicable"] == report["sections"][0]["summary"]["applicable"]
    assert {i["id"] for i in report["items"]} == set(report["sections"][0]["items"])
    code, out, _ = run(
        ["checklist", str(HARDENED), "-f", "json", "--section", "Deployment Execution"], capsys
    )
    titles = [s["title"] for s in json.loads(out)["sections"]]
    assert titles == ["Pre-Deployment", "Deployment Steps", "Post-Deployment"]
    code, out, _ = run(["checklist", str(INSECURE), "--section", "Security"], capsys)
    assert "Security" in out and "Infrastructure" not in out and "Sign-Off" not in out


def test_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["checklist", str(INSECURE)], capsys)
    assert code == 0 and "\x1b[" not in out
    assert out.startswith("Production Deployment Checklist: insecure-shop\n")
    assert re.search(r"^\s+\[!\] Strong Redis password", out, re.M)
    assert "finding   .env:10:" in out  # SECRET_KEY=changethis, line 10
    code, out, _ = run(["checklist", str(HARDENED)], capsys)
    assert re.search(r"^\s+\[x\] ", out, re.M) and "evidence  " in out
    assert out.rstrip().splitlines()[-4].lstrip().startswith("Deployment Lead:")


def test_markdown_is_a_github_checklist_with_links_and_sign_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports" / "checklist.md"
    out.parent.mkdir()
    assert run(["checklist", str(HARDENED), "-f", "markdown", "-o", str(out)], capsys)[0] == 0
    md = out.read_text("utf-8")
    assert re.search(r"^- \[x\] \*\*[^*]+\*\*", md, re.M), "a ticked seed line"
    assert re.search(r"^  - \[x\] ", md, re.M), "a ticked sub-bullet"
    assert re.search(r"^- \[ \] ", md, re.M), "an open seed line (manual items at least)"
    checklist = load()
    expected: list[str] = []
    for section in checklist.sections:
        if section.part and (not expected or section.part not in expected):
            expected.append(section.part)
        expected.append(section.title)
    headings = re.findall(r"^#{2,3} (.+)$", md, re.M)
    assert headings == [*expected, "Sign-Off"]
    tail = md[md.index("## Sign-Off") :]
    assert "| Role | Name | Date | Signature |\n| --- | --- | --- | --- |\n" in tail
    for role in checklist.sign_off:
        assert f"| **{role}** |  |  |  |" in tail
    links = re.findall(r"\]\(([^)#\s]+)#L(\d+)\)", md)
    assert len(links) > 20
    for target, line in links:
        path = (out.parent / unquote(target)).resolve()
        assert path.is_file() and HARDENED in path.parents, target
        assert int(line) <= len(path.read_text("utf-8").splitlines()), (target, line)


def test_markdown_escapes_file_text_and_quotes_paths(tmp_path: Path, rules: list[Rule]) -> None:
    repo = write_tree(tmp_path / "repo", {"my app/Dockerfile": _dockerfile(True)})
    filled = fill(repo, rules)
    md = render("markdown", filled, RenderOptions())
    assert "](my%20app/Dockerfile#L" in md
    for line in md.splitlines():
        if "PSD001" in line and "❌" in line:
            assert "<" not in line.split(": ", 1)[1]  # raw HTML never comes from a message


def documented_schema() -> dict[str, Any]:
    doc = (ROOT / "docs" / "checklist.md").read_text("utf-8")
    block = doc.split("<!-- checklist-json-schema -->", 1)[1]
    match = re.search(r"```json\n(.*?)\n```", block, re.S)
    assert match, "docs/checklist.md documents the JSON schema"
    schema: dict[str, Any] = json.loads(match.group(1))
    return schema


@pytest.mark.parametrize(
    ("fixture", "section"),
    [(INSECURE, None), (HARDENED, None), (INSECURE, "Security"), (HARDENED, "Rollback Procedures")],
)
def test_json_validates_against_the_documented_schema(
    rules: list[Rule], fixture: Path, section: str | None
) -> None:
    schema = documented_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    payload = json.loads(render("json", fill(fixture, rules, section)))
    jsonschema.Draft202012Validator(schema).validate(payload)
    by_id = {i["id"]: i for i in payload["items"]}
    for sec in payload["sections"]:
        counts = Counter(by_id[i]["status"] for i in sec["items"])
        for status in ("met", "unmet", "not_determinable", "manual"):
            assert sec["summary"][status] == counts[status], (sec["title"], status)
        assert sec["summary"]["applicable"] == sum(by_id[i]["applicable"] for i in sec["items"])
        for entry in sec["entries"]:
            ids = entry["items"] + [i for d in entry["details"] for i in d["items"]]
            assert set(ids) <= set(sec["items"])
    total = payload["summary"]
    assert total["applicable"] == sum(i["applicable"] for i in payload["items"])
    if total["applicable"]:
        assert total["readiness"] == round(100 * total["met"] / total["applicable"], 1)


def test_reports_are_deterministic_and_never_show_a_secret(
    insecure: Readiness, rules: list[Rule]
) -> None:
    written = "\n".join(
        p.read_text("utf-8", errors="replace") for p in INSECURE.rglob("*") if p.is_file()
    )
    for secret in SECRETS:
        assert secret in written, f"{secret} is no longer in the fixture: update SECRETS"
    again = fill(INSECURE, rules)
    for fmt in ("text", "markdown", "json", "html"):
        text = render(fmt, insecure)
        assert text == render(fmt, again), fmt
        assert str(INSECURE) not in text, f"{fmt} shows an absolute path"
        for secret in SECRETS:
            assert secret not in text, f"{fmt} shows a secret value"
