"""JSON output, schema version 1 (documented in docs/output-formats.md).

Deterministic: sorted findings, sorted keys, no timestamps and no absolute paths, so the same
tree gives byte-identical output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policyscan import __version__
from policyscan.model import Finding, Location, Problem
from policyscan.report import Report, jsontext

SCHEMA_VERSION = 1


def _location(location: Location) -> dict[str, Any]:
    span = location.span
    return {
        "path": location.path,
        "start_line": span.start_line,
        "start_column": span.start_col,
        "end_line": span.end_line,
        "end_column": span.end_col if span.end_col > 0 else None,
    }


def finding_dict(finding: Finding, report: Report) -> dict[str, Any]:
    rule = report.rules.get(finding.rule_id)
    return {
        "rule_id": finding.rule_id,
        "rule_name": rule.name if rule else None,
        "severity": finding.severity.value,
        "message": finding.message,
        "location": _location(finding.location),
        "key": finding.key,
        "fingerprint": finding.fingerprint,
        "checklist": list(finding.checklist),
        "related": [
            {"message": r.message, "location": _location(r.location)} for r in finding.related
        ],
        "remediation": rule.model.docs.fix.strip() if rule else None,
        "suppressed": finding.suppressed,
    }


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "line": problem.span.start_line,
        "column": problem.span.start_col,
        "level": problem.level,
        "code": problem.code,
        "message": problem.message,
    }


def render(report: Report) -> str:
    return "".join(chunks(report))


def chunks(report: Report) -> Iterator[str]:
    result = report.result
    active = [f for f in result.findings if f.suppressed is None]
    suppressed = [f for f in result.findings if f.suppressed is not None]
    counts: dict[str, int] = {}
    for f in active:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    payload = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "policyscan", "version": __version__},
        "summary": {
            "files": len(result.artifacts),
            "rules": len(result.rules_run),
            "findings": len(active),
            "suppressed": len(suppressed),
            "problems": len(result.problems),
            "by_severity": counts,
        },
        "findings": jsontext.Stream(finding_dict(f, report) for f in active),
        "suppressed": jsontext.Stream(finding_dict(f, report) for f in suppressed),
        "problems": [problem_dict(p) for p in result.problems],
    }
    yield from jsontext.chunks(payload)
    yield "\n"
