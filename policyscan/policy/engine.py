"""Evaluate compiled rules on a project's subjects: findings, evidence, and rule failures.

A rule that raises on one subject is reported as that rule's failure on that file; the other
rules and files still run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

from policyscan.model import Evidence, Finding, Location, Problem, Value
from policyscan.policy.conditions import Outcome
from policyscan.policy.loader import Rule
from policyscan.project import Project, Subject

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.-]*)\}")


def display(value: Value | None) -> str:
    """A value as a message may show it: secrets redacted, long values shortened."""
    if value is None:
        return "unset"
    if not value.known:
        return value.text or "(unknown)"
    if isinstance(value.data, dict | list):
        return (
            "(" + ", ".join(k for k, _ in value.items()) + ")"
            if isinstance(value.data, dict)
            else f"[{len(value.data)} items]"
        )
    text = value.as_str()
    if text is None:
        return "null"
    from policyscan.secretstrength import redact

    if value.sensitive or _looks_secret(text):
        return redact(text)
    text = mask_credentials(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_secret(value: Value | None) -> bool:
    if value is None:
        return False
    return value.sensitive or _looks_secret(value.as_str() or "")


_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def mask_credentials(text: str) -> str:
    """``scheme://user:password@host`` with the password hidden."""
    return _URL_CREDENTIALS.sub(r"\1********@", text)


_AWS_KEY = re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}")


def _looks_secret(text: str) -> bool:
    return bool(_AWS_KEY.search(text))


def render(template: str, subject: Subject, outcome: Outcome) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in outcome.details:
            return outcome.details[key]
        if key == "actual":
            return display(outcome.blame)
        if key == "attr":
            return outcome.attr
        return display(subject.facts.lookup(key))

    return _PLACEHOLDER.sub(replace, template)


def fingerprint(rule: Rule, subject: Subject, outcome: Outcome) -> str:
    """Rule, file, the node's logical key and what was wrong with it; never the line, so moved
    code keeps its fingerprint. A secret contributes its judged weakness, not its value."""
    blame = outcome.blame
    if blame is None:
        what = ""
    elif blame.sensitive:
        what = outcome.details.get("reason", "")
    else:
        what = blame.as_str() or ""
    raw = "\x1f".join((rule.id, subject.path, subject.key, outcome.attr, what))
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]


def _applies(rule: Rule, subject: Subject) -> bool:
    return (
        subject.kind in rule.artifacts
        and subject.environment in rule.environments
        and (rule.templates or not subject.template)
    )


def evaluate(
    rules: Sequence[Rule], project: Project, only: frozenset[str] | None = None
) -> tuple[list[Finding], list[Evidence], list[Problem]]:
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    problems: list[Problem] = []
    for rule in rules:
        for subject in project.subjects(rule.scope):
            if not _applies(rule, subject):
                continue
            if only is not None and subject.path not in only:
                continue
            try:
                _evaluate_one(rule, subject, project, findings, evidence)
            except Exception as exc:
                problems.append(
                    Problem(
                        subject.path,
                        subject.span,
                        f"rule {rule.id} failed on this file: {type(exc).__name__}: {exc}",
                        "rule-error",
                    )
                )
    return _dedupe(findings), evidence, problems


def _evaluate_one(
    rule: Rule,
    subject: Subject,
    project: Project,
    findings: list[Finding],
    evidence: list[Evidence],
) -> None:
    if rule.where is not None:
        selected = rule.where(subject.facts, subject, project)
        if selected.result is not True:
            return
    outcome = rule.check(subject.facts, subject, project)
    location = Location(subject.path, subject.span)
    if outcome.result is False:
        if outcome.blame is not None and outcome.blame.path and outcome.attr:
            location = outcome.blame.location
        findings.append(
            Finding(
                rule.id,
                rule.severity,
                render(rule.message, subject, outcome),
                location,
                subject.key,
                fingerprint(rule, subject, outcome),
                rule.checklist,
                outcome.related,
                sensitive=_is_secret(outcome.blame),
            )
        )
        return
    status = "met" if outcome.result else "unknown"
    note = outcome.details.get("evidence", "") if outcome.details else ""
    if outcome.result is None and outcome.blame is not None:
        note = f"{outcome.attr or 'value'} is not known statically: {display(outcome.blame)}"
    evidence.append(Evidence(rule.id, rule.checklist, location, subject.key, status, note))


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping compose views (base alone, base+override) can see the same node twice."""
    seen: dict[tuple[str, str, int, str], Finding] = {}
    for finding in findings:
        key = (
            finding.rule_id,
            finding.location.path,
            finding.location.span.start_line,
            finding.fingerprint,
        )
        seen.setdefault(key, finding)
    return sorted(seen.values(), key=Finding.sort_key)


def select_rules(
    rules: Sequence[Rule], select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Rule]:
    chosen = set(select)
    dropped = set(ignore)
    return [
        r
        for r in rules
        if (not chosen or r.id in chosen or r.name in chosen)
        and r.id not in dropped
        and r.name not in dropped
    ]


def severity_of(rules: Mapping[str, Rule], rule_id: str) -> str:
    return rules[rule_id].severity.value
