"""The checklist as JSON, schema version 1 (the schema is in docs/checklist.md).

Deterministic like the scan's JSON: seed order for sections and items, sorted findings and
evidence, sorted keys, paths relative to the scanned root, no timestamps.
"""

from __future__ import annotations

from typing import Any

from policyscan import __version__
from policyscan.model import Evidence
from policyscan.readiness import (
    ItemResult,
    Readiness,
    RenderOptions,
    SectionResult,
    Tally,
    rule_name,
    safe_text,
)
from policyscan.report import Report, jsontext
from policyscan.report.json_report import finding_dict, problem_dict

SCHEMA_VERSION = 1
KIND = "policyscan.checklist"


def _tally(tally: Tally) -> dict[str, Any]:
    percent = tally.percent
    return {
        "readiness": None if percent is None else round(percent, 1),
        "met": tally.met,
        "unmet": tally.unmet,
        "not_determinable": tally.not_determinable,
        "manual": tally.manual,
        "applicable": tally.applicable,
    }


def _evidence(ev: Evidence, readiness: Readiness) -> dict[str, Any]:
    return {
        "rule_id": ev.rule_id,
        "rule_name": rule_name(readiness, ev.rule_id) or None,
        "path": ev.location.path,
        "line": ev.location.span.start_line,
        "key": safe_text(ev.key),
        "note": safe_text(ev.note) if ev.note else None,
    }


def _item(result: ItemResult, readiness: Readiness, report: Report) -> dict[str, Any]:
    item = result.item
    return {
        "id": item.id,
        "text": item.text,
        "static": item.static,
        "status": result.status.value,
        "applicable": result.applicable,
        "reason": result.reason,
        "rules": list(result.rules),
        "findings": [_finding(f, report) for f in result.findings],
        "evidence": [_evidence(e, readiness) for e in result.evidence],
        "unknown": [_evidence(e, readiness) for e in result.unknown],
        "unreadable": list(result.unreadable),
        "suppressed": [_finding(f, report) for f in result.suppressed],
    }


def _finding(finding: Any, report: Report) -> dict[str, Any]:
    data = finding_dict(finding, report)
    # The scan's messages are already redacted; the checklist adds its own second fence.
    data["message"] = safe_text(data["message"], limit=2000)
    return data


def _section(sr: SectionResult) -> dict[str, Any]:
    section = sr.section
    return {
        "title": section.title,
        "part": section.part,
        "summary": _tally(sr.tally),
        "items": list(sr.item_ids),
        "entries": [
            {
                "text": er.entry.text,
                "status": er.status.value if er.status else None,
                "items": list(er.entry.items),
                "extra": er.entry.extra,
                "command": er.entry.command,
                "details": [
                    {
                        "text": d.text,
                        "status": status.value if status else None,
                        "items": list(d.items),
                        "extra": d.extra,
                    }
                    for d, status in zip(er.entry.details, er.details, strict=True)
                ],
            }
            for er in sr.entries
        ],
        "notes": list(section.notes),
        "steps": [{"text": s.text, "command": s.command} for s in section.steps],
    }


def payload(readiness: Readiness) -> dict[str, Any]:
    result = readiness.result
    report = Report(result=result, rules=readiness.rules)
    shown = list(dict.fromkeys(i for sr in readiness.sections for i in sr.item_ids))
    summary = _tally(readiness.tally)
    summary.update(
        files=len(result.artifacts), rules=len(result.rules_run), problems=len(result.problems)
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "tool": {"name": "policyscan", "version": __version__},
        "checklist": {"title": readiness.checklist.title, "version": readiness.checklist.version},
        "root": readiness.root_name,
        "section_filter": readiness.section_filter,
        "summary": summary,
        "sections": [_section(sr) for sr in readiness.sections],
        "items": [_item(readiness.items[i], readiness, report) for i in shown],
        "problems": [problem_dict(p) for p in result.problems],
        "sign_off": [{"role": role, "name": None, "date": None} for role in readiness.sign_off],
    }


def render(readiness: Readiness, options: RenderOptions) -> str:
    del options  # paths stay relative to the scanned root, as in the scan's JSON
    return jsontext.dumps(payload(readiness)) + "\n"
