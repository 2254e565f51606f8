"""A Markdown summary for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment.

A headline, a table of counts per rule, then the findings (capped, because GitHub limits a step
summary and a comment to about 64 KB), then the problems. Every cell is escaped: text from the
scanned files (paths, messages) must not open a link, an HTML tag or a new table cell. Messages
never hold a secret's value, and the offending line is not shown.
"""

from __future__ import annotations

import re
from collections import Counter

from policyscan.model import Finding, Severity
from policyscan.report import Report

MAX_ROWS = 200
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def md(text: str) -> str:
    """Plain text as one table cell's worth of inert Markdown."""
    text = _CONTROL.sub(" ", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _location(finding: Finding) -> str:
    if not finding.location.path:
        return "(project)"
    return f"{md(finding.location.path)}:{finding.location.span.start_line}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render(report: Report) -> str:
    result = report.result
    active = [f for f in result.findings if f.suppressed is None]
    silenced = len(result.findings) - len(active)
    by_severity = Counter(f.severity for f in active)
    out = ["## policyscan", ""]
    facts = [_plural(len(result.artifacts), "file"), _plural(len(result.rules_run), "rule")]
    if silenced:
        facts.append(f"{silenced} silenced")
    if result.problems:
        facts.append(_plural(len(result.problems), "problem"))
    if active:
        detail = ", ".join(f"{by_severity[s]} {s.value}" for s in Severity if by_severity[s])
        out.append(f"**{_plural(len(active), 'finding')}** ({detail}) in " + " · ".join(facts))
    else:
        out.append("**No findings** in " + " · ".join(facts))
    out.append("")
    if active:
        out += ["| Rule | Name | Severity | Findings |", "| --- | --- | --- | ---: |"]
        per_rule = Counter(f.rule_id for f in active)
        severity = {f.rule_id: f.severity for f in active}
        order = sorted(per_rule, key=lambda r: (-severity[r].rank, r))
        for rule_id in order:
            rule = report.rules.get(rule_id)
            name = md(rule.name) if rule else ""
            out.append(
                f"| {md(rule_id)} | {name} | {severity[rule_id].value} | {per_rule[rule_id]} |"
            )
        out += [
            "",
            "### Findings",
            "",
            "| Severity | Rule | Location | Message |",
            "| --- | --- | --- | --- |",
        ]
        ranked = sorted(active, key=lambda f: (-f.severity.rank, f.sort_key()))
        for finding in ranked[:MAX_ROWS]:
            cells = (
                finding.severity.value,
                md(finding.rule_id),
                _location(finding),
                md(finding.message),
            )
            out.append("| " + " | ".join(cells) + " |")
        if len(ranked) > MAX_ROWS:
            out += [
                "",
                f"... and {len(ranked) - MAX_ROWS} more: see the SARIF results or the JSON report.",
            ]
        out.append("")
    if result.problems and not report.quiet:
        out += [
            "### Problems (files or parts of files not scanned)",
            "",
            "| Location | Level | Message |",
            "| --- | --- | --- |",
        ]
        for problem in result.problems[:MAX_ROWS]:
            where = f"{md(problem.path)}:{problem.span.start_line}" if problem.path else "(project)"
            out.append(f"| {where} | {problem.level} | {md(problem.message)} |")
        if len(result.problems) > MAX_ROWS:
            out += ["", f"... and {len(result.problems) - MAX_ROWS} more."]
        out.append("")
    return "\n".join(out)
