"""GitHub Actions workflow commands: one annotation per finding, shown on the pull request's diff.

``::error file=PATH,line=N,endLine=N,col=N,endColumn=N,title=TITLE::MESSAGE``. Critical and high
findings are errors, medium warnings, low and info notices; problems (files not read) follow
their own level. Paths are made relative to ``$GITHUB_WORKSPACE`` when the scanned root lies in
it, because GitHub places annotations by workspace-relative path.

Escaping follows the runner's rules: in the message ``%``, CR and LF are percent-encoded; in a
property ``:`` and ``,`` are too, since they separate properties. Messages are the findings' own,
which never hold a secret's value; the offending line is not included.
"""

from __future__ import annotations

import os
from pathlib import Path

from policyscan.model import Finding, Problem, Severity
from policyscan.report import Report

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}
_PROBLEM_LEVEL = {"error": "error", "warning": "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _path(relpath: str, root: str) -> str:
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace or not relpath:
        return relpath
    absolute = os.path.join(root, relpath)
    inside = os.path.relpath(absolute, os.path.realpath(workspace))
    return relpath if inside.startswith("..") else Path(inside).as_posix()


def command(level: str, message: str, **properties: object) -> str:
    props = ",".join(
        f"{name}={escape_property(str(value))}"
        for name, value in properties.items()
        if value is not None
    )
    return (
        f"::{level} {props}::{escape_data(message)}"
        if props
        else f"::{level}::{escape_data(message)}"
    )


def _finding(finding: Finding, report: Report) -> str:
    span = finding.location.span
    rule = report.rules.get(finding.rule_id)
    title = f"{finding.rule_id} {rule.name}" if rule else finding.rule_id
    single_line = span.end_line == span.start_line
    return command(
        LEVEL[finding.severity],
        f"{finding.message} [{finding.severity.value}]",
        file=_path(finding.location.path, report.result.root) or None,
        line=span.start_line,
        endLine=span.end_line if span.end_line > span.start_line else None,
        col=span.start_col,
        # GitHub ignores endColumn on multi-line annotations.
        endColumn=span.end_col if single_line and span.end_col > span.start_col else None,
        title=title,
    )


def _problem(problem: Problem, report: Report) -> str:
    return command(
        _PROBLEM_LEVEL.get(problem.level, "notice"),
        problem.message,
        file=_path(problem.path, report.result.root) or None,
        line=problem.span.start_line,
        col=problem.span.start_col,
        title=f"policyscan: {problem.code}",
    )


def render(report: Report) -> str:
    lines = [_finding(f, report) for f in report.result.findings if f.suppressed is None]
    if not report.quiet:
        lines.extend(_problem(p, report) for p in report.result.problems)
    return "".join(line + "\n" for line in lines)
