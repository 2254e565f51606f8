"""The checklist as GitHub-flavoured Markdown, shaped like the seed: its headings, its ``- [ ]``
lines (ticked when every check under them is met), the proof under each item as links to
``file#Lline``, and the Sign-Off table last. Fit for a pull request, a release issue or
``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import re

from policyscan import __version__
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
    link_target,
    rule_name,
    safe_text,
)

ICON = {
    Status.MET: "✅",
    Status.UNMET: "❌",
    Status.NOT_DETERMINABLE: "❔",
    Status.MANUAL: "✋",
}

# Characters GitHub would read as markup (emphasis, links, tables, HTML, headings) in text that
# comes from files: a message quoting `*` or `<` must show as written.
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def escape(text: str) -> str:
    # Only what is markup mid-line: no text from files starts a line, so `#`, `>`, `+` and `1.`
    # cannot open a heading, quote or list; `(` only links after `]`, which is escaped.
    return _SPECIAL.sub(r"\\\1", _ENTITY.sub("&amp;", text)).replace("<", "&lt;")


def _seed(text: str) -> str:
    """The seed's own wording keeps its ``**bold**``; everything else in it is escaped."""
    parts = text.split("**")
    return "**".join(escape(p) for p in parts)


def _link(path: str, line: int | None, options: RenderOptions, label: str | None = None) -> str:
    if not path:
        return "(whole project)"
    text = label if label is not None else (f"{path}#L{line}" if line else path)
    return f"[{escape(text)}]({link_target(path, line, options)})"


def _tally_cells(tally: Tally) -> str:
    return " | ".join(str(tally.count(s)) for s in STATUS_ORDER)


def _summary_table(readiness: Readiness) -> list[str]:
    lines = [
        "| Section | Readiness | Met | Unmet | Not determinable | Manual |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sr in readiness.sections:
        if not sr.item_ids:
            continue
        lines.append(
            f"| {escape(sr.section.title)} | {format_percent(sr.tally.percent)} | "
            f"{_tally_cells(sr.tally)} |"
        )
    t = readiness.tally
    lines.append(
        f"| **Overall** | **{format_percent(t.percent)}** | "
        + " | ".join(f"**{t.count(s)}**" for s in STATUS_ORDER)
        + " |"
    )
    return lines


def _item(
    result: ItemResult, indent: str, readiness: Readiness, options: RenderOptions, shown: set[str]
) -> list[str]:
    """Sub-bullets under a line: the item's status and why, then its proof."""
    item = result.item
    if result.status is Status.MANUAL:
        return []  # the line's ✋ says it all; a person ticks it
    head = f"{indent}- {ICON[result.status]} **{result.status.label}** · `{item.id}`"
    head += f" · {escape(result.reason)}"
    if item.static == "partial" and result.status is Status.MET:
        head += " · _partial: a person confirms the rest_"
    if item.id in shown:
        return [head + " · _(details above)_"]
    shown.add(item.id)
    lines = [head]
    sub = indent + "  "
    for f in result.findings:
        where = _link(f.location.path, f.location.span.start_line, options)
        lines.append(
            f"{sub}- ❌ `{f.rule_id}` {f.severity.value} {where}: {escape(safe_text(f.message))}"
        )
    for ev in result.unknown:
        where = _link(ev.location.path, ev.location.span.start_line, options)
        note = f": {escape(safe_text(ev.note))}" if ev.note else ""
        lines.append(f"{sub}- ❔ `{ev.rule_id}` {where} {escape(safe_text(ev.key))}{note}")
    for path in result.unreadable:
        lines.append(f"{sub}- ❔ not read: {_link(path, None, options)}")
    for rule_id, path, numbers in evidence_groups(result.evidence):
        first, *rest = numbers
        links = [_link(path, first, options)] + [
            _link(path, n, options, label=f"L{n}") for n in rest
        ]
        name = rule_name(readiness, rule_id)
        lines.append(f"{sub}- ✅ `{rule_id}` {escape(name)}: {', '.join(links)}")
    for f in result.suppressed:
        where = _link(f.location.path, f.location.span.start_line, options)
        reason = escape(safe_text(f.suppressed or "no reason given"))
        lines.append(f"{sub}- 🔕 `{f.rule_id}` {where} suppressed: {reason}")
    return lines


def _code(command: str, indent: str) -> list[str]:
    return [f"{indent}```bash", *(f"{indent}{c}" for c in command.splitlines()), f"{indent}```"]


def _section(
    sr: SectionResult, readiness: Readiness, options: RenderOptions, shown: set[str]
) -> list[str]:
    section = sr.section
    level = "###" if section.part else "##"
    lines = [f"{level} {escape(section.title)}", ""]
    if sr.item_ids:
        t = sr.tally
        lines += [
            f"_Readiness {format_percent(t.percent)}: {t.met} of {t.applicable} applicable "
            f"items met · {t.unmet} unmet · {t.not_determinable} not determinable · "
            f"{t.manual} manual_",
            "",
        ]
    for note in section.notes:
        lines.append(f"- {_seed(note)}")
    for number, step in enumerate(section.steps, 1):
        lines.append(f"{number}. {_seed(step.text)}")
        if step.command:
            lines += _code(step.command, "   ")
    if section.notes or section.steps:
        lines.append("")
    for er in sr.entries:
        entry = er.entry
        box = "x" if er.status is Status.MET else " "
        icon = f" {ICON[er.status]}" if er.status else ""
        extra = " _(beyond the seed)_" if entry.extra else ""
        lines.append(f"- [{box}] {_seed(entry.text)}{extra}{icon}")
        if entry.command:
            lines += _code(entry.command, "  ")
        for item_id in entry.items:
            lines += _item(readiness.items[item_id], "  ", readiness, options, shown)
        for detail, status in zip(entry.details, er.details, strict=True):
            extra = " _(beyond the seed)_" if detail.extra else ""
            if status is None:
                lines.append(f"  - {_seed(detail.text)}{extra}")
                continue
            box = "x" if status is Status.MET else " "
            lines.append(f"  - [{box}] {_seed(detail.text)}{extra} {ICON[status]}")
            for item_id in detail.items:
                lines += _item(readiness.items[item_id], "    ", readiness, options, shown)
        lines.append("")
    return lines


def render(readiness: Readiness, options: RenderOptions) -> str:
    checklist = readiness.checklist
    t = readiness.tally
    lines = [f"# {escape(checklist.title)}", ""]
    meta = f"**Repository**: `{readiness.root_name}` · **Checklist version**: {checklist.version}"
    if readiness.section_filter:
        meta += f" · **Section**: {escape(readiness.section_filter)}"
    lines += [
        meta + f" · filled in by policyscan {__version__} from "
        f"{len(readiness.result.artifacts)} files and {len(readiness.result.rules_run)} rules",
        "",
        f"> **Readiness: {format_percent(t.percent)}**: {t.met} of {t.applicable} applicable "
        f"items met · {t.unmet} unmet · {t.not_determinable} not determinable · "
        f"{t.manual} manual",
        "",
        *_summary_table(readiness),
        "",
        "✅ met (proof linked) · ❌ unmet (findings linked) · ❔ not determinable from the files · "
        "✋ manual (a person confirms). A box is ticked only when every check under it is met.",
        "",
        "---",
        "",
    ]
    shown: set[str] = set()
    part: str | None = None
    for sr in readiness.sections:
        if sr.section.part and sr.section.part != part:
            lines += [f"## {escape(sr.section.part)}", ""]
        part = sr.section.part
        lines += _section(sr, readiness, options, shown)
    errors = [p for p in readiness.result.problems if p.level == "error"]
    if errors:
        lines += ["## Files not read", ""]
        lines += [
            f"- {_link(p.path, p.span.start_line, options)}: {escape(safe_text(p.message))}"
            for p in errors
        ]
        lines.append("")
    if readiness.section_filter is None:
        if checklist.notes:
            lines += ["---", "", "**Notes**:"]
            lines += [f"- {_seed(n)}" for n in checklist.notes]
            lines.append("")
        if readiness.sign_off:
            lines += [
                "---",
                "",
                "## Sign-Off",
                "",
                "| Role | Name | Date | Signature |",
                "| --- | --- | --- | --- |",
            ]
            lines += [f"| **{escape(role)}** |  |  |  |" for role in readiness.sign_off]
            lines.append("")
    return "\n".join(lines)
