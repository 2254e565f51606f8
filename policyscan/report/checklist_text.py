"""The checklist for the terminal: the seed's sections and lines, a mark per line, the proof
under each item (passing checks grouped by rule and file, findings one per line)."""

from __future__ import annotations

from collections.abc import Callable

from policyscan.readiness import (
    STATUS_ORDER,
    ItemResult,
    Readiness,
    RenderOptions,
    SectionResult,
    Status,
    Tally,
    evidence_groups,
    format_percent,
    plain,
    rule_name,
    safe_text,
)

MARK = {
    Status.MET: "[x]",
    Status.UNMET: "[!]",
    Status.NOT_DETERMINABLE: "[?]",
    Status.MANUAL: "[ ]",
}
_COLOR = {
    Status.MET: "\x1b[32m",
    Status.UNMET: "\x1b[1;31m",
    Status.NOT_DETERMINABLE: "\x1b[33m",
    Status.MANUAL: "\x1b[2m",
}
_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
BAR_WIDTH = 20

Paint = Callable[[str, str], str]


def _tally_line(tally: Tally) -> str:
    return (
        f"{tally.met}/{tally.applicable} applicable met ({format_percent(tally.percent)}); "
        + ", ".join(f"{tally.count(s)} {s.label}" for s in STATUS_ORDER[1:])
    )


def _bar(tally: Tally) -> str:
    if tally.applicable == 0:
        return "[" + " " * BAR_WIDTH + "]"
    filled = round(BAR_WIDTH * tally.met / tally.applicable)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def _mark(status: Status | None, paint: Paint) -> str:
    if status is None:
        return " - "
    return paint(_COLOR[status], MARK[status])


def _item_lines(
    result: ItemResult, indent: str, readiness: Readiness, shown: set[str], paint: Paint
) -> list[str]:
    item = result.item
    head = f"{indent}{paint(_DIM, item.id)}  {paint(_COLOR[result.status], result.status.label)}"
    if result.status is not Status.MANUAL:
        head += f": {result.reason}"
    if item.static == "partial" and result.status is Status.MET:
        head += " (partial: a person confirms the rest)"
    if item.id in shown:
        return [head + " (details above)"]
    shown.add(item.id)
    lines = [head]
    for f in result.findings:
        span = f.location.span
        lines.append(
            f"{indent}  finding   {f.location.path}:{span.start_line}:{span.start_col}  "
            f"{f.severity.value}  {f.rule_id}  {safe_text(f.message)}"
        )
    for ev in result.unknown:
        note = f"  {safe_text(ev.note)}" if ev.note else ""
        lines.append(
            f"{indent}  unknown   {ev.location.path}:{ev.location.span.start_line}  "
            f"{ev.rule_id}  {safe_text(ev.key)}{note}"
        )
    for path in result.unreadable:
        lines.append(f"{indent}  not read  {path}")
    for rule_id, path, numbers in evidence_groups(result.evidence):
        name = rule_name(readiness, rule_id)
        where = f"{path}:{', '.join(str(n) for n in numbers)}" if path else "(whole project)"
        lines.append(f"{indent}  evidence  {rule_id} {name}  {where}")
    for f in result.suppressed:
        lines.append(
            f"{indent}  suppressed {f.location.path}:{f.location.span.start_line}  {f.rule_id}  "
            f"({safe_text(f.suppressed or 'no reason given')})"
        )
    return lines


def _section(sr: SectionResult, readiness: Readiness, shown: set[str], paint: Paint) -> list[str]:
    title = sr.section.title
    lines = []
    if sr.item_ids:
        lines.append(f"{paint(_BOLD, title)}  {_bar(sr.tally)}  {_tally_line(sr.tally)}")
    else:
        lines.append(paint(_BOLD, title))
    for note in sr.section.notes:
        lines.append(f"  - {plain(note)}")
    for number, step in enumerate(sr.section.steps, 1):
        lines.append(f"  {number}. {plain(step.text)}")
        if step.command:
            lines.extend(f"       $ {c}" for c in step.command.splitlines())
    for er in sr.entries:
        entry = er.entry
        extra = " (beyond the seed)" if entry.extra else ""
        lines.append(f"  {_mark(er.status, paint)} {plain(entry.text)}{extra}")
        if entry.command:
            lines.extend(f"        $ {c}" for c in entry.command.splitlines())
        for item_id in entry.items:
            lines.extend(_item_lines(readiness.items[item_id], "        ", readiness, shown, paint))
        for detail, status in zip(entry.details, er.details, strict=True):
            extra = " (beyond the seed)" if detail.extra else ""
            lines.append(f"      {_mark(status, paint)} {plain(detail.text)}{extra}")
            for item_id in detail.items:
                lines.extend(
                    _item_lines(readiness.items[item_id], "            ", readiness, shown, paint)
                )
    lines.append("")
    return lines


def render(readiness: Readiness, options: RenderOptions) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if options.color else text

    checklist = readiness.checklist
    lines = [paint(_BOLD, f"{checklist.title}: {readiness.root_name}")]
    if readiness.section_filter:
        lines.append(f"Section: {readiness.section_filter}")
    lines.append(f"Readiness: {_tally_line(readiness.tally)}")
    result = readiness.result
    lines.append(
        f"{len(result.artifacts)} files scanned, {len(result.rules_run)} rules; "
        "[x] met  [!] unmet  [?] not determinable  [ ] manual (a person confirms)"
    )
    lines.append("")
    shown: set[str] = set()
    part: str | None = None
    for sr in readiness.sections:
        if sr.section.part and sr.section.part != part:
            lines.append(paint(_BOLD, f"== {sr.section.part} =="))
            lines.append("")
        part = sr.section.part
        lines.extend(_section(sr, readiness, shown, paint))
    errors = [p for p in result.problems if p.level == "error"]
    if errors:
        lines.append(paint(_BOLD, "Files or parts of files not read"))
        lines.extend(f"  {p.path}:{p.span.start_line}  {safe_text(p.message)}" for p in errors)
        lines.append("")
    if readiness.section_filter is None and readiness.sign_off:
        lines.append(paint(_BOLD, "Sign-Off"))
        width = max(len(role) for role in readiness.sign_off)
        lines.extend(
            f"  {role + ':':<{width + 1}}  _____________________  Date: __________"
            for role in readiness.sign_off
        )
        lines.append("")
    return "\n".join(lines)
