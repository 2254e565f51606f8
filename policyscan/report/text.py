"""Terminal output: grouped by file, ``path:line:col``, severity, rule, message, the line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import groupby

from policyscan.model import Finding, Severity
from policyscan.report import Report

_COLORS = {
    Severity.CRITICAL: "\x1b[1;35m",
    Severity.HIGH: "\x1b[1;31m",
    Severity.MEDIUM: "\x1b[33m",
    Severity.LOW: "\x1b[36m",
    Severity.INFO: "\x1b[2m",
}
_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"


def render(report: Report) -> str:
    return "".join(chunks(report))


def chunks(report: Report) -> Iterator[str]:
    """The report a file at a time: 10,000 files' findings make megabytes of text, which the
    command writes as they come instead of holding them all (and then their encoding) at once
    beside the documents."""
    paint = (
        (lambda code, text: f"{code}{text}{_RESET}") if report.color else (lambda _c, text: text)
    )
    shown = [f for f in report.result.findings if f.suppressed is None]
    for path, group in groupby(shown, key=lambda f: f.location.path):
        lines = [paint(_BOLD, path)]
        findings = list(group)
        # Columns line up within a file, so severities and rule ids read as a table.
        width = max(len(_where(path, f)) for f in findings)
        for finding in findings:
            lines.extend(_finding(finding, path, paint, width))
        lines.append("")
        yield _joined(lines)
    lines = []
    if report.result.problems and not report.quiet:
        lines.append(paint(_BOLD, "Problems (files or parts of files not scanned)"))
        for problem in report.result.problems:
            span = problem.span
            lines.append(
                f"  {problem.path}:{span.start_line}:{span.start_col}  "
                f"{problem.level:<7} {problem.message}"
            )
        lines.append("")
    if not report.quiet:
        lines.append(_summary(report, shown))
    if lines:
        yield _joined(lines)


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _where(path: str, finding: Finding) -> str:
    span = finding.location.span
    return f"{path}:{span.start_line}:{span.start_col}"


def _finding(finding: Finding, path: str, paint: object, width: int) -> list[str]:
    span = finding.location.span
    sev = finding.severity
    head = (
        f"  {_where(path, finding):<{width}}  "
        f"{paint(_COLORS[sev], f'{sev.value:<8}')} "  # type: ignore[operator]
        f"{paint(_BOLD, finding.rule_id)}  {finding.message}"  # type: ignore[operator]
    )
    out = [head]
    if finding.snippet:
        snippet = f"      {span.start_line:>5} | {finding.snippet.strip()}"
        out.append(paint(_DIM, snippet))  # type: ignore[operator]
    return out


def _summary(report: Report, shown: list[Finding]) -> str:
    result = report.result
    counts = Counter(f.severity for f in shown)
    parts = [f"{counts[s]} {s.value}" for s in Severity if counts[s]]
    suppressed = sum(1 for f in result.findings if f.suppressed is not None)
    files = len(result.artifacts)
    text = f"{len(shown)} finding{'s' if len(shown) != 1 else ''}"
    if parts:
        text += " (" + ", ".join(parts) + ")"
    text += f" in {files} file{'s' if files != 1 else ''}; {len(result.rules_run)} rules"
    if suppressed:
        text += f"; {suppressed} suppressed"
    if result.problems:
        text += f"; {len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}"
    return text
