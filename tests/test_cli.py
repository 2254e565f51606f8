"""The command line as a user meets it: exit codes, errors without tracebacks, sub-commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyscan.cli import main
from tests.conftest import write_tree


def test_clean_tree_exits_0_and_findings_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = write_tree(tmp_path / "clean", {".env": "DEBUG=false\n"})
    dirty = write_tree(tmp_path / "dirty", {".env": "DEBUG=true\n"})
    assert main([str(clean)]) == 0
    assert main([str(dirty), "--no-color"]) == 1
    out = capsys.readouterr().out
    assert ".env:1:7" in out and "PSE001" in out and "\x1b[" not in out


def test_main_as_a_library_keeps_no_result_alive(tmp_path: Path) -> None:
    """Only the command, which leaves with os._exit, keeps what a scan made to the end."""
    from policyscan import cli

    dirty = write_tree(tmp_path / "dirty", {".env": "DEBUG=true\n"})
    assert main([str(dirty), "-q"]) == 1
    assert cli._KEPT is None


def test_fail_on_threshold(tmp_path: Path) -> None:
    repo = write_tree(tmp_path, {"Dockerfile": "FROM python:3.12\nRUN apt-get install -y gcc\n"})
    assert main([str(repo), "--fail-on", "medium"]) == 1  # PSD001 is medium
    assert main([str(repo), "--fail-on", "high"]) == 0
    assert main([str(repo), "--fail-on", "never"]) == 0


def test_select_and_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_tree(tmp_path, {".env": "DEBUG=true\nSECRET_KEY=changethis\n"})
    assert main([str(repo), "--select", "PSE003", "-f", "json"]) == 1
    ids = {f["rule_id"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert ids == {"PSE003"}
    assert main([str(repo), "--ignore", "PSE001,PSE003", "-f", "json"]) == 0


def test_usage_errors_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "does-not-exist")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path), "--select", "NOPE999"]) == 2
    assert "unknown rule id" in capsys.readouterr().err
    assert main(["explain", "NOPE999"]) == 2


def test_broken_policy_names_file_rule_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = write_tree(
        tmp_path / "policies",
        {
            "bad.yaml": (
                "id: ORG001\nname: my-rule\nscope: variable\nartifacts: [env]\nseverity: high\n"
                "confidence: high\nchecklist: [app.env.debug-disabled]\nmessage: m\n"
                "docs: {what: w, why: y, fix: f}\n"
                "assert: {not: {attr: value, op: exist}}\n"
                "examples: {fail: [{files: {.env: 'A=1'}, expect: [{file: .env, line: 1}]}], pass: [{files: {.env: ''}}]}\n"
            )
        },
    )
    assert main([str(tmp_path), "--policies", str(policies)]) == 2
    err = capsys.readouterr().err
    assert (
        "bad.yaml" in err
        and "ORG001" in err
        and "assert -> not -> op: unknown operator 'exist'" in err
    )
    assert "Traceback" not in err


def test_user_policies_run_beside_the_builtin_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = write_tree(
        tmp_path / "policies",
        {
            "org.yaml": (
                "id: ORG001\nname: maintenance-mode-on\nscope: variable\nartifacts: [env]\nseverity: low\n"
                "confidence: high\nchecklist: [app.env.no-dev-values]\nmessage: '{name} is on'\n"
                "docs: {what: w, why: y, fix: f}\n"
                "where: {attr: name, op: equals, value: MAINTENANCE}\n"
                "assert: {not: {attr: value, op: truthy}}\n"
                "examples: {fail: [{files: {.env: 'MAINTENANCE=1'}, expect: [{file: .env, line: 1}]}], pass: [{files: {.env: 'MAINTENANCE=0'}}]}\n"
            )
        },
    )
    repo = write_tree(tmp_path / "repo", {".env": "LOG_LEVEL=info\nMAINTENANCE=on\n"})
    assert main([str(repo), "--policies", str(policies), "-f", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["rule_id"], f["location"]["start_line"]) for f in findings] == [("ORG001", 2)]


def test_rules_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"PSE001", "PSN001", "PST001"} <= {r["id"] for r in listed}
    assert all(r["checklist"] for r in listed)
    assert main(["explain", "PSE001"]) == 0
    out = capsys.readouterr().out
    assert "What it does" in out and "How to fix" in out and "DEBUG=True" in out


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "policyscan", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "policyscan" in proc.stdout


REPO = Path(__file__).resolve().parents[1]
INSECURE = str(REPO / "fixtures" / "insecure-shop")


def test_the_command_writes_its_whole_report_before_it_leaves(tmp_path: Path) -> None:
    """The command leaves with os._exit (cli.console): everything must be flushed first, to a
    pipe, to a file and to the files of -o."""
    sarif = tmp_path / "out.sarif"
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "policyscan",
            INSECURE,
            "-f",
            "json",
            "-f",
            "sarif",
            "-o",
            str(sarif),
        ],
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 1
    in_process = subprocess.run(
        [sys.executable, "-c", "from policyscan.cli import main; main()", INSECURE, "-f", "json"],
        capture_output=True,
        text=True,
    )
    assert piped.stdout == in_process.stdout  # the same bytes as a run that exits normally
    assert json.loads(piped.stdout)["findings"]
    assert json.loads(sarif.read_text(encoding="utf-8"))["runs"][0]["results"]
    with (tmp_path / "report.txt").open("w") as handle:
        to_file = subprocess.run(
            [sys.executable, "-m", "policyscan", INSECURE, "-f", "json"], stdout=handle
        )
    assert to_file.returncode == 1
    assert (tmp_path / "report.txt").read_text(encoding="utf-8") == piped.stdout


def test_a_reader_that_stops_early_is_not_an_error(tmp_path: Path) -> None:
    """`policyscan . | head -1`: the exit code still says what was found, and nothing is
    said about the closed pipe, though the command leaves with os._exit after flushing. The
    report is far larger than a pipe holds, so the command is still writing when the reader
    leaves."""
    tree = tmp_path / "tree"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "generate_monorepo.py"),
            "--services",
            "20",
            "--out",
            str(tree),
        ],
        check=True,
        capture_output=True,
    )
    # Buffered, as a terminal's command is: unbuffered (PYTHONUNBUFFERED, which some machines
    # set), a write into a closed pipe goes unnoticed and this would test nothing.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        # --fail-on never: the exit code is 0 only if the command went on to decide it (click
        # alone turns a closed pipe into exit 1).
        [sys.executable, "-m", "policyscan", str(tree), "-f", "json", "--fail-on", "never"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(1 << 16)) == 1 << 16  # a pipe's worth: more is on its way
    proc.stdout.close()
    errors = proc.stderr.read()
    assert proc.wait() == 0
    assert b"rror" not in errors  # neither "Error" (a traceback) nor "error"


def test_a_full_disk_on_standard_output_is_said_and_exits_2() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "policyscan", INSECURE],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 2
    assert "cannot write standard output" in proc.stderr


def test_each_snippet_is_the_line_its_finding_names(tmp_path: Path) -> None:
    """Snippets come from line offsets kept per file: each must be the finding's own line, the
    first and the last (with no newline after it) too, whatever else the file holds."""
    import shutil

    from policyscan.scan import snippet
    from tests.conftest import FIXTURES, scan_tree

    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "insecure-shop", root)
    write_tree(root, {"edge/.env": "DEBUG=true\n\nAPP_ENV=production\nLOG_LEVEL=debug"})
    result = scan_tree(root, jobs=1, cache=False)
    lines = {
        a.path: Path(a.abspath).read_text(encoding="utf-8").split("\n") for a in result.artifacts
    }
    shown = [f for f in result.findings if f.snippet]
    assert {f.location.span.start_line for f in shown if f.location.path == "edge/.env"} >= {1, 4}
    assert len(shown) > 50
    for finding in shown:
        line = lines[finding.location.path][finding.location.span.start_line - 1]
        assert finding.snippet == snippet(line, finding), finding
