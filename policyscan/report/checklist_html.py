"""The checklist as one self-contained HTML page: inline CSS and JS, no fetch of any kind (a
Content-Security-Policy of ``default-src 'none'`` makes sure), a per-section readiness chart in
inline SVG, filter buttons by status, and the proof under every item.

Everything that comes from the checklist or the scanned files goes through ``html.escape``.
"""

from __future__ import annotations

import html
import re

from policyscan import __version__
from policyscan.checklist import Section
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

COLOR = {
    Status.MET: "#1a7f37",
    Status.UNMET: "#cf222e",
    Status.NOT_DETERMINABLE: "#bf8700",
    Status.MANUAL: "#8c959f",
}
MARK = {
    Status.MET: "\u2713",  # check mark
    Status.UNMET: "\u2717",  # ballot x
    Status.NOT_DETERMINABLE: "?",
    Status.MANUAL: "\u270b",  # raised hand
}

CSS = """
:root { color-scheme: light; --met: #1a7f37; --unmet: #cf222e; --nd: #bf8700; --manual: #8c959f; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #f6f8fa; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
header { background: #fff; border-bottom: 1px solid #d0d7de; max-width: none; }
header .inner { max-width: 1100px; margin: 0 auto; display: flex; gap: 32px; flex-wrap: wrap;
                align-items: center; }
h1 { font-size: 26px; margin: 0 0 4px; }
.meta { color: #59636e; font-size: 14px; }
.score { font-size: 44px; font-weight: 700; line-height: 1; }
.score small { display: block; font-size: 13px; font-weight: 400; color: #59636e; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px;
        margin: 16px 0; }
#readiness-chart svg { width: 100%; height: auto; display: block; }
#readiness-chart text { font: 13px system-ui, sans-serif; fill: #1f2328; }
.legend { display: flex; gap: 16px; flex-wrap: wrap; font-size: 13px; margin-top: 8px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 4px; vertical-align: -1px; }
#filters { position: sticky; top: 0; z-index: 2; background: #f6f8fa; padding: 8px 0;
           display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
#filters button { font: inherit; font-size: 14px; border: 1px solid #d0d7de; background: #fff;
                  border-radius: 16px; padding: 4px 14px; cursor: pointer; }
#filters button[aria-pressed="true"] { background: #1f2328; color: #fff; border-color: #1f2328; }
#filters .count { color: #59636e; font-size: 13px; margin-left: 8px; }
h2.part { font-size: 22px; margin: 32px 0 0; }
.cl-section h3, .cl-section h2 { margin: 0 0 8px; font-size: 19px; display: flex;
                                 align-items: center; gap: 12px; flex-wrap: wrap; }
.bar { display: inline-flex; width: 180px; height: 10px; border-radius: 5px; overflow: hidden;
       background: #eaeef2; }
.bar span { display: block; height: 100%; }
.sec-score { font-size: 13px; font-weight: 400; color: #59636e; }
ul.entries, ul.details { list-style: none; padding-left: 0; margin: 0; }
ul.details { padding-left: 28px; }
li.line { margin: 6px 0; }
.mark { display: inline-block; width: 20px; height: 20px; border-radius: 4px; color: #fff;
        text-align: center; font-size: 13px; line-height: 20px; margin-right: 8px;
        font-weight: 700; vertical-align: 0; }
.mark.none { background: transparent; color: #8c959f; }
.mark.met { background: var(--met); } .mark.unmet { background: var(--unmet); }
.mark.not_determinable { background: var(--nd); } .mark.manual { background: var(--manual); }
.tag { font-size: 12px; color: #59636e; border: 1px solid #d0d7de; border-radius: 10px;
       padding: 0 6px; margin-left: 6px; white-space: nowrap; }
details.item { margin: 4px 0 4px 28px; font-size: 14px; }
details.item summary { cursor: pointer; color: #59636e; }
details.item summary code { color: #1f2328; }
table.proof { border-collapse: collapse; margin: 6px 0 6px 0; width: 100%; table-layout: fixed; }
table.proof col.c-kind { width: 90px; } table.proof col.c-where { width: 30%; }
table.proof col.c-rule { width: 110px; }
table.proof a { overflow-wrap: anywhere; }
table.proof td { border-top: 1px solid #eaeef2; padding: 3px 8px; vertical-align: top; }
table.proof td.kind { white-space: nowrap; font-weight: 600; width: 90px; }
table.proof td.kind.finding { color: var(--unmet); }
table.proof td.kind.evidence { color: var(--met); }
table.proof td.kind.unknown { color: var(--nd); }
a { color: #0969da; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 10px;
      margin: 4px 0 4px 28px; font-size: 13px; overflow-x: auto; }
table.signoff { border-collapse: collapse; width: 100%; }
table.signoff th, table.signoff td { border: 1px solid #d0d7de; padding: 8px; text-align: left; }
table.signoff td { height: 36px; }
[hidden] { display: none !important; }
@media print { #filters { display: none; } details.item { display: block; } }
"""

JS = """
(function () {
  var buttons = Array.prototype.slice.call(document.querySelectorAll('#filters button'));
  var lines = Array.prototype.slice.call(document.querySelectorAll('li.line'));
  var sections = Array.prototype.slice.call(document.querySelectorAll('.cl-section'));
  var counter = document.getElementById('shown-count');
  function apply(filter) {
    var shown = 0;
    lines.forEach(function (li) {
      var own = li.getAttribute('data-status');
      var match = filter === 'all' || own === filter;
      if (!match && li.classList.contains('entry')) {
        match = li.querySelector('li.line[data-status="' + filter + '"]') !== null;
      }
      li.hidden = !match;
      if (match && own) { shown += 1; }
    });
    sections.forEach(function (sec) {
      var any = filter === 'all' || sec.querySelector('li.line:not([hidden])') !== null;
      sec.hidden = !any;
    });
    document.querySelectorAll('h2.part').forEach(function (h) {
      var part = h.getAttribute('data-part');
      var any = document.querySelector('.cl-section[data-part="' + part + '"]:not([hidden])');
      h.hidden = any === null;
    });
    buttons.forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-filter') === filter ? 'true' : 'false');
    });
    if (counter) { counter.textContent = shown + ' checklist lines shown'; }
  }
  var known = buttons.map(function (b) { return b.getAttribute('data-filter'); });
  buttons.forEach(function (b) {
    b.addEventListener('click', function () {
      var filter = b.getAttribute('data-filter');
      apply(filter);
      // The filter goes into the address, so a link to the report can open on "unmet".
      if (window.history && history.replaceState) {
        history.replaceState(null, '', filter === 'all' ? '#' : '#filter=' + filter);
      }
    });
  });
  var asked = /[#&]filter=([a-z_]+)/.exec(location.hash);
  apply(asked && known.indexOf(asked[1]) >= 0 ? asked[1] : 'all');
  document.documentElement.setAttribute('data-ready', 'true');
})();
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _seed(text: str) -> str:
    """The seed's ``**bold**`` as <strong>, the rest escaped."""
    parts = [esc(p) for p in text.split("**")]
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _bar(tally: Tally) -> str:
    total = tally.total or 1
    spans = "".join(
        f'<span style="width:{100 * tally.count(s) / total:.2f}%;background:{COLOR[s]}"'
        f' title="{tally.count(s)} {esc(s.label)}"></span>'
        for s in STATUS_ORDER
        if tally.count(s)
    )
    return f'<span class="bar" aria-hidden="true">{spans}</span>'


def _chart(readiness: Readiness) -> str:
    """Stacked bars, one per section with items: share of met, unmet, not determinable and
    manual items, and the section's readiness (met / applicable) at the end of the row."""
    # Sections whose every item is manual have no readiness to draw; they are named below.
    rows = [sr for sr in readiness.sections if sr.tally.manual < sr.tally.total]
    manual_only = [sr.section.title for sr in readiness.sections if sr.item_ids and sr not in rows]
    label_w, bar_w, pct_w, row_h = 230, 560, 110, 28
    width = label_w + bar_w + pct_w
    height = row_h * len(rows) + 10
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="chart-title"><title id="chart-title">Readiness per section</title>'
    ]
    for index, sr in enumerate(rows):
        y = 5 + index * row_h
        t = sr.tally
        parts.append(
            f'<g class="chart-row" data-section="{esc(sr.section.title)}">'
            f'<text x="{label_w - 10}" y="{y + 18}" text-anchor="end">'
            f"{esc(sr.section.title)}</text>"
            f'<rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="16" rx="3" fill="#eaeef2"/>'
        )
        x = float(label_w)
        for status in STATUS_ORDER:
            count = t.count(status)
            if not count:
                continue
            w = bar_w * count / max(t.total, 1)
            parts.append(
                f'<rect x="{x:.2f}" y="{y + 5}" width="{w:.2f}" height="16"'
                f' fill="{COLOR[status]}"><title>{esc(sr.section.title)}: {count}'
                f" {esc(status.label)}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{label_w + bar_w + 10}" y="{y + 18}">{format_percent(t.percent)}'
            f" ({t.met}/{t.applicable})</text></g>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{COLOR[s]}"></i>{esc(s.label)}</span>' for s in STATUS_ORDER
    )
    manual_note = (
        f'<p class="meta">Manual only (a person confirms): {esc(", ".join(manual_only))}.</p>'
        if manual_only
        else ""
    )
    return (
        '<section class="card" id="readiness-chart" aria-label="Readiness per section">'
        "<h2>Readiness per section</h2>"
        + "".join(parts)
        + f'<div class="legend">{legend}</div>'
        + manual_note
        + "</section>"
    )


def _link(path: str, line: int | None, options: RenderOptions) -> str:
    if not path:
        return "(whole project)"
    label = f"{path}:{line}" if line else path
    return f'<a href="{esc(link_target(path, line, options))}">{esc(label)}</a>'


def _item(result: ItemResult, readiness: Readiness, options: RenderOptions) -> str:
    item = result.item
    rows: list[str] = []
    for f in result.findings:
        span = f.location.span
        rows.append(
            '<tr><td class="kind finding">finding</td>'
            f"<td>{_link(f.location.path, span.start_line, options)}</td>"
            f"<td><code>{esc(f.rule_id)}</code> {esc(f.severity.value)}</td>"
            f"<td>{esc(safe_text(f.message))}</td></tr>"
        )
    for ev in result.unknown:
        note = esc(safe_text(ev.note)) if ev.note else "value not known from the files"
        rows.append(
            '<tr><td class="kind unknown">unknown</td>'
            f"<td>{_link(ev.location.path, ev.location.span.start_line, options)}</td>"
            f"<td><code>{esc(ev.rule_id)}</code></td><td>{esc(safe_text(ev.key))}: {note}</td></tr>"
        )
    for path in result.unreadable:
        rows.append(
            '<tr><td class="kind unknown">not read</td>'
            f"<td>{_link(path, None, options)}</td><td></td><td>the file could not be read"
            "</td></tr>"
        )
    for rule_id, path, numbers in evidence_groups(result.evidence):
        links = ", ".join(_link(path, n, options) for n in numbers)
        rows.append(
            '<tr><td class="kind evidence">evidence</td>'
            f"<td>{links}</td><td><code>{esc(rule_id)}</code></td>"
            f"<td>{esc(rule_name(readiness, rule_id))}: passing check</td></tr>"
        )
    for f in result.suppressed:
        rows.append(
            '<tr><td class="kind">suppressed</td>'
            f"<td>{_link(f.location.path, f.location.span.start_line, options)}</td>"
            f"<td><code>{esc(f.rule_id)}</code></td>"
            f"<td>{esc(safe_text(f.suppressed or 'no reason given'))}</td></tr>"
        )
    partial = " (static partial: a person confirms the rest)" if item.static == "partial" else ""
    cols = '<colgroup><col class="c-kind"><col class="c-where"><col class="c-rule"><col></colgroup>'
    table = f'<table class="proof">{cols}{"".join(rows)}</table>' if rows else ""
    return (
        f'<details class="item" data-item="{esc(item.id)}"'
        f"{' open' if result.status is Status.UNMET else ''}>"
        f"<summary><code>{esc(item.id)}</code> {esc(result.status.label)}: "
        f"{esc(result.reason)}{esc(partial)}</summary>{table}</details>"
    )


def _mark(status: Status | None) -> str:
    if status is None:
        return '<span class="mark none" aria-hidden="true">\u2022</span>'
    return (
        f'<span class="mark {status.value}" role="img" aria-label="{esc(status.label)}"'
        f' title="{esc(status.label)}">{MARK[status]}</span>'
    )


def _heading(section: Section, sr: SectionResult) -> str:
    tag = "h3" if section.part else "h2"
    score = ""
    if sr.item_ids:
        t = sr.tally
        score = (
            f'{_bar(t)}<span class="sec-score">{format_percent(t.percent)}'
            f" &middot; {t.met}/{t.applicable} applicable met &middot; {t.unmet} unmet"
            f" &middot; {t.not_determinable} not determinable &middot; {t.manual} manual</span>"
        )
    return f"<{tag}>{esc(section.title)}{score}</{tag}>"


def _section(sr: SectionResult, readiness: Readiness, options: RenderOptions) -> str:
    section = sr.section
    out = [
        f'<section class="card cl-section" id="s-{_slug(section.title)}"'
        f' data-part="{esc(section.part or "")}">',
        _heading(section, sr),
    ]
    if section.notes:
        out.append("<ul>" + "".join(f"<li>{_seed(n)}</li>" for n in section.notes) + "</ul>")
    if section.steps:
        steps = "".join(
            f"<li>{_seed(s.text)}" + (f"<pre>{esc(s.command)}</pre>" if s.command else "") + "</li>"
            for s in section.steps
        )
        out.append(f"<ol>{steps}</ol>")
    if sr.entries:
        out.append('<ul class="entries">')
        for er in sr.entries:
            entry = er.entry
            status_attr = f' data-status="{er.status.value}"' if er.status else ""
            extra = '<span class="tag">beyond the seed</span>' if entry.extra else ""
            out.append(
                f'<li class="line entry"{status_attr}>{_mark(er.status)}{_seed(entry.text)}{extra}'
            )
            if entry.command:
                out.append(f"<pre>{esc(entry.command)}</pre>")
            out.extend(
                _item(readiness.items[i], readiness, options)
                for i in entry.items
                if readiness.items[i].status is not Status.MANUAL
            )
            if entry.details:
                out.append('<ul class="details">')
                for detail, status in zip(entry.details, er.details, strict=True):
                    status_attr = f' data-status="{status.value}"' if status else ""
                    extra = '<span class="tag">beyond the seed</span>' if detail.extra else ""
                    out.append(
                        f'<li class="line detail"{status_attr}>{_mark(status)}'
                        f"{_seed(detail.text)}{extra}"
                    )
                    out.extend(
                        _item(readiness.items[i], readiness, options)
                        for i in detail.items
                        if readiness.items[i].status is not Status.MANUAL
                    )
                    out.append("</li>")
                out.append("</ul>")
            out.append("</li>")
        out.append("</ul>")
    out.append("</section>")
    return "\n".join(out)


def _filters(readiness: Readiness) -> str:
    lines: dict[Status, int] = dict.fromkeys(Status, 0)
    for sr in readiness.sections:
        for er in sr.entries:
            for status in (er.status, *er.details):
                if status is not None:
                    lines[status] += 1
    buttons = ['<button type="button" data-filter="all" aria-pressed="true">All</button>']
    buttons += [
        f'<button type="button" data-filter="{s.value}" aria-pressed="false">'
        f"{esc(s.label.capitalize())} ({lines[s]})</button>"
        for s in STATUS_ORDER
    ]
    return (
        '<nav id="filters" aria-label="Filter by status">'
        + "".join(buttons)
        + '<span class="count" id="shown-count"></span></nav>'
    )


def render(readiness: Readiness, options: RenderOptions) -> str:
    checklist = readiness.checklist
    t = readiness.tally
    title = f"{checklist.title}: {readiness.root_name}"
    result = readiness.result
    section_note = (
        f" &middot; section: {esc(readiness.section_filter)}" if readiness.section_filter else ""
    )
    body: list[str] = [
        '<header><div class="inner"><div>',
        f"<h1>{esc(checklist.title)}</h1>",
        f'<div class="meta">Repository <strong>{esc(readiness.root_name)}</strong>{section_note}'
        f" &middot; checklist version {esc(checklist.version)} &middot; filled in by policyscan"
        f" {esc(__version__)} from {len(result.artifacts)} files and {len(result.rules_run)}"
        " rules</div></div>",
        f'<div class="score" id="overall-readiness">{format_percent(t.percent)}'
        f"<small>{t.met} of {t.applicable} applicable items met &middot; {t.unmet} unmet"
        f" &middot; {t.not_determinable} not determinable &middot; {t.manual} manual</small>"
        "</div></div></header>",
        "<main>",
        _chart(readiness),
        _filters(readiness),
    ]
    part: str | None = None
    for sr in readiness.sections:
        if sr.section.part and sr.section.part != part:
            body.append(
                f'<h2 class="part" data-part="{esc(sr.section.part)}">{esc(sr.section.part)}</h2>'
            )
        part = sr.section.part
        body.append(_section(sr, readiness, options))
    errors = [p for p in result.problems if p.level == "error"]
    if errors:
        body.append('<section class="card" id="not-read"><h2>Files not read</h2><ul>')
        body.extend(
            f"<li>{_link(p.path, p.span.start_line, options)}: {esc(safe_text(p.message))}</li>"
            for p in errors
        )
        body.append("</ul></section>")
    if readiness.section_filter is None and readiness.sign_off:
        rows = "".join(
            f"<tr><th>{esc(role)}</th><td></td><td></td><td></td></tr>"
            for role in readiness.sign_off
        )
        body.append(
            '<section class="card" id="sign-off"><h2>Sign-Off</h2><table class="signoff">'
            "<tr><th>Role</th><th>Name</th><th>Date</th><th>Signature</th></tr>"
            f"{rows}</table></section>"
        )
    body.append("</main>")
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{JS}</script>\n</body>\n</html>\n"
    )
