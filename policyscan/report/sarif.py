"""SARIF 2.1.0 for GitHub code scanning (see tests/sarif/README.md for what GitHub reads).

Rules carry help, tags (``security`` and their checklist ids), ``security-severity`` as a string
and ``precision``; results carry relative URIs under ``%SRCROOT%`` and a fingerprint built from
the rule, the path and the node's logical key, never the line. Suppressed findings are left out
unless asked for: GitHub opens alerts for suppressed results anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policyscan import __version__
from policyscan.model import Finding, Location, Problem, Severity
from policyscan.policy import docs
from policyscan.policy.loader import Rule
from policyscan.report import Report, jsontext

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "policyscan/v1"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}
PRECISION = {"high": "high", "medium": "medium", "low": "low"}


def _region(location: Location) -> dict[str, Any]:
    span = location.span
    region: dict[str, Any] = {"startLine": span.start_line, "startColumn": span.start_col}
    if span.end_line >= span.start_line:
        region["endLine"] = span.end_line
    if span.end_col > 0 and (span.end_line > span.start_line or span.end_col > span.start_col):
        region["endColumn"] = span.end_col
    return region


def _physical(location: Location) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": location.path, "uriBaseId": "%SRCROOT%"},
            "region": _region(location),
        }
    }


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    tags = ["security", rule.scope.split(".")[0], *rule.checklist, *rule.tags]
    unique_tags = list(dict.fromkeys(tags))[:20]
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": docs.short_description(rule)},
        "fullDescription": {
            "text": (rule.model.docs.what.strip() + " " + rule.model.docs.why.strip())[:1024]
        },
        "help": {"text": docs.text(rule), "markdown": docs.markdown(rule)},
        "helpUri": docs.help_uri(rule),
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": unique_tags,
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": PRECISION[rule.confidence],
            "checklist": list(rule.checklist),
            "problem.severity": "error" if LEVEL[rule.severity] == "error" else "warning",
        },
    }


def _result(finding: Finding, index: dict[str, int], report: Report) -> dict[str, Any]:
    message = finding.message
    if finding.related:
        message += (
            " (see "
            + ", ".join(f"[{r.message}]({i + 1})" for i, r in enumerate(finding.related))
            + ")"
        )
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index[finding.rule_id],
        "level": LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [_physical(finding.location)],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {"checklist": list(finding.checklist), "key": finding.key},
    }
    if finding.related:
        result["relatedLocations"] = [
            {"id": i + 1, **_physical(r.location), "message": {"text": r.message}}
            for i, r in enumerate(finding.related)
        ]
    if finding.suppressed is not None:
        result["suppressions"] = [
            {"kind": "inSource", "justification": finding.suppressed or "no reason given"}
        ]
    return result


def _notification(problem: Problem) -> dict[str, Any]:
    return {
        "level": {"error": "error", "warning": "warning"}.get(problem.level, "note"),
        "message": {"text": problem.message},
        "descriptor": {"id": problem.code},
        "locations": [_physical(Location(problem.path, problem.span))] if problem.path else [],
    }


def render(report: Report) -> str:
    return "".join(chunks(report))


def chunks(report: Report) -> Iterator[str]:
    result = report.result
    rules = sorted(report.rules.values(), key=lambda r: r.id)
    index = {rule.id: i for i, rule in enumerate(rules)}
    findings = [f for f in result.findings if f.suppressed is None or report.include_suppressed]
    notifications = [_notification(p) for p in result.problems]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "policyscan",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://github.com/policyscan/policyscan",
                "rules": [rule_descriptor(rule) for rule in rules],
            }
        },
        "automationDetails": {"id": "policyscan/"},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(result.root).as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [
            {
                "executionSuccessful": not any(
                    p.code in ("rule-error", "parser-error") for p in result.problems
                ),
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": jsontext.Stream(_result(f, index, report) for f in findings),
    }
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    yield from jsontext.chunks(log)
    yield "\n"
