"""CI outputs: GitHub workflow commands, JUnit XML, Markdown summary; several outputs from one
scan; --statistics, -q and the progress bar."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from policyscan import cli, report
from policyscan.cli import main
from policyscan.report.github import command, escape_data, escape_property
from policyscan.report.markdown import md
from tests.conftest import write_tree

SECRET = "Zq8!vR2#mK9$tL4wXy7pQ"
INSECURE: dict[str, str | bytes] = {
    ".env": f"DEBUG=true\nSECRET_KEY=changethis\nAPI_TOKEN={SECRET}\n",
    "docker-compose.yml": "services:\n  db:\n    image: postgres:16\n    ports: ['5432:5432']\n",
    "main.tf": 'resource "aws_db_instance" "db" {\n  publicly_accessible = true\n}\n',
    "broken/docker-compose.yml": "services: [\n",
}


def test_cli_offers_every_registered_format() -> None:
    assert set(cli.FORMATS) == set(report.FORMATS)


# -------------------------------------------------------------------------------- github


def test_workflow_command_escaping() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%d\ne") == "a%3Ab%2Cc%25d%0Ae"
    assert (
        command("error", "m: a, b", file="x,y:z.env", line=3, col=None)
        == "::error file=x%2Cy%3Az.env,line=3::m: a, b"
    )


_COMMAND = re.compile(
    r"^::(error|warning|notice) ((?:[a-zA-Z]+=[^,:]*)(?:,[a-zA-Z]+=[^,:]*)*)::(.*)$"
)


def _annotations(text: str) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for line in text.splitlines():
        match = _COMMAND.match(line)
        assert match, line
        props = dict(p.split("=", 1) for p in match.group(2).split(","))
        out.append((match.group(1), props, match.group(3)))
    return out


def test_github_annotations_from_a_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory whose name needs escaping in a property.
    repo = write_tree(tmp_path / "ws", {f"50%,a:b/{name}": text for name, text in INSECURE.items()})
    monkeypatch.setenv("GITHUB_WORKSPACE", str(repo.parent))
    assert (
        main([str(repo / "50%,a:b"), "--format", "github", "--select", "PSE001,PSE003,PST002"]) == 1
    )
    out = capsys.readouterr().out
    assert SECRET not in out and SECRET[:6] not in out
    notes = _annotations(out)
    by_title = {props.get("title", ""): (level, props, msg) for level, props, msg in notes}
    level, props, message = by_title["PSE001 debug-enabled"]
    # Workspace-relative, escaped: the runner decodes it back to ws/50%,a:b/.env
    assert (level, props["file"], props["line"], props["col"]) == (
        "error",
        "ws/50%25%2Ca%3Ab/.env",
        "1",
        "7",
    )
    assert message.startswith("DEBUG is true") and message.endswith("[high]")
    assert by_title["PST002 rds-publicly-accessible"][0] == "error"  # critical
    assert any(
        p.get("title") == "policyscan%3A parse-error" and lvl == "error" for lvl, p, _ in notes
    )


# -------------------------------------------------------------------------------- junit


def _check_junit_shape(root: ET.Element) -> None:
    """The constraints of the Jenkins xUnit plugin's junit-10 schema (the strictest reader):
    which elements nest where, which attributes are allowed and required; plus consistent counts,
    which GitLab and Jenkins both display."""
    assert root.tag == "testsuites"
    assert set(root.attrib) <= {"name", "time", "tests", "failures", "errors"}
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests", "failures", "errors"} <= set(suite.attrib)
        assert set(suite.attrib) <= {
            "name",
            "tests",
            "failures",
            "errors",
            "skipped",
            "time",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "group",
        }
        assert re.fullmatch(r"[0-9]*(\.[0-9]*)?", suite.get("time", "0"))
        counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        for case in suite:
            assert case.tag == "testcase"
            assert "name" in case.attrib and set(case.attrib) <= {
                "name",
                "time",
                "classname",
                "group",
            }
            counts["tests"] += 1
            for child in case:
                assert child.tag in ("failure", "error", "skipped", "system-out", "system-err")
                if child.tag in ("failure", "error", "skipped"):
                    assert set(child.attrib) <= {"type", "message"}
                    counts[
                        {"failure": "failures", "error": "errors", "skipped": "skipped"}[child.tag]
                    ] += 1
        for key, value in counts.items():
            assert suite.get(key, "0") == str(value), (suite.get("name"), key)
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        assert root.get(key) == str(value)


def test_junit_one_case_per_rule_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files: dict[str, str | bytes] = dict(INSECURE)
    files["svc/.env"] = "DEBUG=false\n"  # PSE001 applies and passes here
    files["svc/.env.production"] = "DEBUG=true  # policyscan: ignore[PSE001] a demo\n"
    # A control character reaches a message through a value: XML 1.0 cannot carry it.
    files["ctl/.env"] = "DEBUG=tr\x01ue\nLOG_LEVEL=debug\x02\n"
    repo = write_tree(tmp_path, files)
    assert main([str(repo), "-f", "junit", "--select", "PSE001,PSE003,PSE006,PST002"]) == 1
    text = capsys.readouterr().out
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert SECRET not in text and SECRET[:6] not in text
    root = ET.fromstring(text.encode("utf-8"))
    _check_junit_shape(root)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == len(list(root.iter("testcase")))  # one per rule and file
    failed = cases["PSE001 .env"].find("failure")
    assert failed is not None and failed.get("type") == "high" and ".env:1:7" in (failed.text or "")
    assert list(cases["PSE001 svc/.env"]) == []  # checked and passed
    skipped = cases["PSE001 svc/.env.production"].find("skipped")
    assert skipped is not None and "a demo" in (skipped.get("message") or "")
    assert "PST002 .env" not in cases  # a Terraform rule has no case for an env file
    problems = [s for s in root if s.get("name") == "policyscan.problems"]
    assert problems and problems[0].find("testcase/error") is not None


# -------------------------------------------------------------------------------- markdown


def test_markdown_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_tree(tmp_path, {**INSECURE, "x|<b>[a](y)/.env": "DEBUG=true\n"})
    assert main([str(repo), "-f", "markdown", "--select", "PSE001,PSE003,PST002"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## policyscan\n")
    assert re.search(r"^\*\*4 findings\*\* \(2 critical, 2 high\) in \d+ files", out, re.M), out
    assert "| PSE001 | debug\\-enabled | high | 2 |" not in out  # names are not over-escaped...
    assert "| PSE001 | debug-enabled | high | 2 |" in out
    # ...but text from the scanned tree cannot open a cell, a tag or a link.
    assert "x\\|&lt;b&gt;\\[a\\]\\(y\\)/.env:1" in out and "<b>" not in out
    # Every row of the findings table has exactly four cells (escaped pipes do not split).
    table = out.split("### Findings")[1].split("###")[0]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 4
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in rows), rows
    assert SECRET not in out
    assert "### Problems" in out
    assert md("a|b\n<i>*x*") == "a\\|b &lt;i&gt;\\*x\\*"


def test_markdown_with_no_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_tree(tmp_path, {".env": "DEBUG=false\n"})
    assert main([str(repo), "-f", "markdown"]) == 0
    assert "**No findings** in 1 file" in capsys.readouterr().out


# -------------------------------------------------------------------------------- one scan, many outputs


def test_several_outputs_from_one_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_tree(tmp_path / "repo", INSECURE)
    sarif, summary = tmp_path / "results.sarif", tmp_path / "summary.md"
    code = main(
        [
            str(repo),
            "--format",
            "sarif",
            "-o",
            str(sarif),
            "--format",
            "text",
            "--format",
            "markdown",
            "-o",
            str(summary),
            "--no-color",
        ]
    )
    assert code == 1
    stdout = capsys.readouterr().out
    assert "PSE001" in stdout and stdout.rstrip().splitlines()[-1].startswith(tuple("0123456789"))
    log = json.loads(sarif.read_text("utf-8"))
    assert log["version"] == "2.1.0" and log["runs"][0]["results"]
    assert summary.read_text("utf-8").startswith("## policyscan")


@pytest.mark.parametrize(
    "args,expected",
    [
        ([], [("text", None)]),
        (["-o", "a"], [("text", "a")]),
        (["-o", "a", "--format", "json"], [("json", "a")]),  # -o first: the next --format
        (["-f", "sarif", "-o", "a", "-f", "text"], [("sarif", "a"), ("text", None)]),
        (["-f", "text", "-f", "sarif", "-o", "a"], [("text", None), ("sarif", "a")]),
        (["-f", "json", "-o", "-", "-f", "sarif", "-o", "b"], [("json", None), ("sarif", "b")]),
    ],
)
def test_format_output_pairing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: list[tuple[str, str | None]],
) -> None:
    seen: list[tuple[str, str | None]] = []
    # Record which format went where instead of rendering it.
    monkeypatch.setattr(report, "chunks", lambda fmt, rep: fmt)
    monkeypatch.setattr(cli, "_emit", lambda text, output: seen.append((text, output)))
    write_tree(tmp_path, {".env": "A=1\n"})
    monkeypatch.chdir(tmp_path)
    main([".", *args])
    assert seen == expected


def test_text_report_comes_a_file_at_a_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(
        tmp_path,
        {
            "a/.env": "DEBUG=true\nSECRET_KEY=changeme\n",
            "b/.env": "DEBUG=1\n",
            "c/docker-compose.yml": "services:\n  db:\n    image: postgres\n",
        },
    )
    from policyscan.plan import Settings, make_plan
    from policyscan.report import Report, chunks, render

    plan = make_plan(Settings(paths=(str(tmp_path),)))
    result = cli._run(plan, cache=False)
    made = Report(result, {r.id: r for r in plan.rules})
    pieces = list(chunks("text", made))
    paths = sorted({f.location.path for f in result.findings})
    assert paths == ["a/.env", "b/.env", "c/docker-compose.yml"]
    assert [p.split("\n", 1)[0] for p in pieces[:-1]] == paths  # one piece a file, then the sum
    assert pieces[-1].startswith(f"{len(result.findings)} findings")
    assert "".join(pieces) == render("text", made)


def test_output_is_written_as_it_is_made(capsys: pytest.CaptureFixture[str]) -> None:
    # cli._emit writes a run of pieces once it is 64 KiB long, before the next is made.
    first, second, third = "a" * 40_000, "b" * 40_000, "c" * 10
    seen: list[str] = []

    def pieces():  # type: ignore[no-untyped-def]
        yield first
        yield second
        seen.append(capsys.readouterr().out)  # asked for the third: the first two are out
        yield third

    cli._emit(pieces(), None)
    assert seen == [first + second]
    assert capsys.readouterr().out == third


@pytest.mark.parametrize(
    "args,message",
    [
        (["-f", "json", "-f", "sarif"], "would all go to standard output"),
        (["-f", "json", "-o", "same", "-f", "sarif", "-o", "same"], "same file"),
        (["-f", "json", "-o", "a", "-o", "b"], "-o b: no --format left"),
    ],
)
def test_format_output_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    write_tree(tmp_path, {".env": "A=1\n"})
    assert main([str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


# -------------------------------------------------------------------------------- terminal niceties


def test_statistics_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_tree(
        tmp_path,
        {
            ".env": "DEBUG=true\nSECRET_KEY=changethis  # policyscan: ignore[PSE003] x\n",
            "b/.env": "DEBUG=1\n",
            "broken/docker-compose.yml": "services: [\n",
        },
    )
    assert main([str(repo), "--select", "PSE001,PSE003", "--statistics", "-q", "--no-color"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Problems" not in out and " in 3 files" not in out  # -q: findings only
    assert re.search(r"^\s+2  PSE001\s+high\s+debug-enabled$", out, re.M), out
    assert re.search(r"^\s+0  PSE003\s+critical\s+weak-secret  \(1 silenced\)$", out, re.M), out
    assert lines[-1].split() == ["2", "total", "(1", "silenced)"]


def _run_with_stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[str, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyscan", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=120)
    os.close(master)
    return stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_an_interactive_terminal(tmp_path: Path) -> None:
    repo = write_tree(tmp_path, {f"svc{i:03d}/.env": "A=1\n" for i in range(210)})
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    stdout, terminal = _run_with_stderr_on_a_terminal([str(repo), "--select", "PSE001"], env)
    assert "scanning [" in terminal and "210/210 files" in terminal
    assert "scanning" not in stdout  # never mixed into the report
    _, terminal = _run_with_stderr_on_a_terminal(
        [str(repo), "--select", "PSE001"], {**env, "CI": "true"}
    )
    assert "scanning" not in terminal
    # Few files: no bar even on a terminal.
    small = write_tree(tmp_path / "small", {".env": "A=1\n"})
    _, terminal = _run_with_stderr_on_a_terminal([str(small)], env)
    assert "scanning" not in terminal
    # Piped stderr: no bar.
    proc = subprocess.run(
        [sys.executable, "-m", "policyscan", str(repo), "--select", "PSE001"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "scanning" not in proc.stderr
