"""JUnit XML for GitLab (``artifacts:reports:junit``) and Jenkins (the JUnit plugin).

One ``<testsuite>`` per rule and one ``<testcase>`` per rule and file the rule applies to: a file
with findings fails (one ``<failure>`` listing them), a file whose findings are all silenced is
skipped, and the others pass, so a test report shows what was checked, not only what broke.
Files not read are ``<error>`` test cases of a ``policyscan.problems`` suite. The shape is the
common subset both readers accept, which is also what the Jenkins xUnit plugin's junit-10 schema
allows: ``testsuites > testsuite > testcase > failure|error|skipped|system-out``; the suites carry
name, tests, failures, errors, skipped and time; a test case carries name, classname and time
only (the schema has no ``file`` on a test case, so the path is in the name).
"""

from __future__ import annotations

import re
from collections import defaultdict
from xml.etree import ElementTree as ET

from policyscan.model import Finding, Kind
from policyscan.report import Report

PROJECT = "(project)"
# Characters XML 1.0 cannot carry at all (control characters, lone surrogates from undecodable
# file names): ElementTree would write them and produce a file no reader accepts.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _finding_line(finding: Finding) -> str:
    span = finding.location.span
    where = (
        f"{finding.location.path}:{span.start_line}:{span.start_col}"
        if finding.location.path
        else PROJECT
    )
    return f"{where} {finding.severity.value} {finding.rule_id} {finding.message}"


def render(report: Report) -> str:
    result = report.result
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_case[(finding.rule_id, finding.location.path or PROJECT)].append(finding)
    files_by_kind: dict[Kind, list[str]] = defaultdict(list)
    for artifact in result.artifacts:
        files_by_kind[artifact.kind].append(artifact.path)

    root = ET.Element("testsuites", name="policyscan")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for rule_id in sorted(set(result.rules_run) | {f.rule_id for f in result.findings}):
        rule = report.rules.get(rule_id)
        files: set[str] = set()
        if rule is not None:
            for kind in rule.artifacts:
                files.update(files_by_kind.get(kind, ()))
        files.update(path for (rid, path) in by_case if rid == rule_id)
        if not files:
            continue
        name = f"{rule_id} {rule.name}" if rule else rule_id
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for path in sorted(files):
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{rule_id} {path}",
                classname=f"policyscan.{rule_id}",
                time="0",
            )
            counts["tests"] += 1
            findings = by_case.get((rule_id, path), [])
            active = [f for f in findings if f.suppressed is None]
            if active:
                counts["failures"] += 1
                worst = max(active, key=lambda f: f.severity.rank)
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{_count(len(active))}: {active[0].message}",
                    type=worst.severity.value,
                )
                failure.text = "\n".join(_finding_line(f) for f in active) + "\n"
            elif findings:
                counts["skipped"] += 1
                ET.SubElement(
                    case,
                    "skipped",
                    message=f"silenced: {findings[0].suppressed or 'no reason given'}",
                )
        _set_counts(suite, counts)
        for key in totals:
            totals[key] += counts[key]

    if result.problems and not report.quiet:
        suite = ET.SubElement(root, "testsuite", name="policyscan.problems")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for problem in result.problems:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{problem.code} {problem.path or PROJECT}",
                classname="policyscan.problems",
                time="0",
            )
            counts["tests"] += 1
            span = problem.span
            where = f"{problem.path}:{span.start_line}:{span.start_col}"
            text = f"{where} {problem.level} {problem.message}"
            if problem.level == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=problem.message, type=problem.code).text = (
                    text + "\n"
                )
            else:
                ET.SubElement(case, "system-out").text = text + "\n"
        _set_counts(suite, counts)
        for key in totals:
            totals[key] += counts[key]
    _set_counts(root, totals)
    for element in root.iter():
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
        for name, value in list(element.attrib.items()):
            element.set(name, _NOT_XML.sub("\ufffd", value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _count(n: int) -> str:
    return f"{n} finding{'s' if n != 1 else ''}"


def _set_counts(element: ET.Element, counts: dict[str, int]) -> None:
    # The schema allows "skipped" on a testsuite but not on the testsuites root.
    keys = (
        ("tests", "failures", "errors", "skipped")
        if element.tag == "testsuite"
        else ("tests", "failures", "errors")
    )
    for key in keys:
        element.set(key, str(counts[key]))
    element.set("time", "0")
