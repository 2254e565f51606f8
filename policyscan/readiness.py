"""The production deployment checklist, filled in from one scan.

Every checklist item gets one status:

- **met**: the item's rules ran, left at least one passing check (evidence) and no finding, and
  every file they could read was read. The engine gives every subject a rule selects either a
  finding, a passing or unknown check, or a rule failure, so "evidence for every artifact that
  could violate it" comes down to: no finding, no unknown, no unreadable file of a kind the rules
  read, no rule failure, and at least one passing check. A file in which the rules select nothing
  (an ``http {}`` block has no TLS server for the HSTS rule) cannot violate the item.
- **unmet**: the scan reports findings for the item's rules; they are listed, exactly those.
- **not determinable**: no rule checks the item yet, no file of a kind its rules read exists,
  the rules select nothing to check in the files there are, a value cannot be known statically,
  or a file could not be read.
- **manual**: ``static: none`` items (a process, a drill, a signature).

Readiness is met / applicable. An item is applicable when it is met or unmet, or when the
files hold something its rules check that cannot be decided (an unknown value, a file that could
not be read): a repository cannot tick those, so they count against it. It is not applicable
when it is manual, when no rule checks it, when no file of a kind its rules read exists, or when
its rules select nothing in the files there are (a repository without AWS keys has nothing for
the access-key rule to judge).
"""

from __future__ import annotations

import enum
import importlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from urllib.parse import quote

from policyscan.checklist import Checklist, ChecklistItem, Entry, Section, load
from policyscan.errors import UsageError
from policyscan.model import Artifact, Evidence, Finding, ScanResult
from policyscan.policy.loader import Rule

FORMATS: dict[str, str] = {
    "text": "policyscan.report.checklist_text",
    "markdown": "policyscan.report.checklist_markdown",
    "json": "policyscan.report.checklist_json",
    "html": "policyscan.report.checklist_html",
}


class Status(str, enum.Enum):
    MET = "met"
    UNMET = "unmet"
    NOT_DETERMINABLE = "not_determinable"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


STATUS_ORDER = (Status.MET, Status.UNMET, Status.NOT_DETERMINABLE, Status.MANUAL)


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: ChecklistItem
    status: Status
    reason: str
    applicable: bool
    rules: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    evidence: tuple[Evidence, ...] = ()  # passing checks
    unknown: tuple[Evidence, ...] = ()  # checks the files cannot decide
    suppressed: tuple[Finding, ...] = ()
    unreadable: tuple[str, ...] = ()  # files of a kind the rules read that were not fully read


@dataclass(frozen=True, slots=True)
class Tally:
    met: int = 0
    unmet: int = 0
    not_determinable: int = 0
    manual: int = 0
    applicable: int = 0

    @property
    def total(self) -> int:
        return self.met + self.unmet + self.not_determinable + self.manual

    @property
    def percent(self) -> float | None:
        """Met / applicable in percent; None when nothing is applicable."""
        return None if self.applicable == 0 else 100.0 * self.met / self.applicable

    def count(self, status: Status) -> int:
        return {
            Status.MET: self.met,
            Status.UNMET: self.unmet,
            Status.NOT_DETERMINABLE: self.not_determinable,
            Status.MANUAL: self.manual,
        }[status]

    def below(self, threshold: float) -> bool:
        """Under ``--fail-under``. Nothing applicable proves nothing: it fails any threshold
        above zero, so a CI job pointed at the wrong directory does not pass."""
        if self.applicable == 0:
            return threshold > 0
        # Exact arithmetic: 2/3 met must not pass --fail-under 66.67 by a rounding accident.
        return Fraction(self.met * 100, self.applicable) < Fraction(str(threshold))


@dataclass(frozen=True, slots=True)
class EntryResult:
    entry: Entry
    status: Status | None  # None: no id decides this line
    details: tuple[Status | None, ...]  # one per entry.details


@dataclass(frozen=True, slots=True)
class SectionResult:
    section: Section
    entries: tuple[EntryResult, ...]
    item_ids: tuple[str, ...]
    tally: Tally


@dataclass(frozen=True, slots=True)
class Readiness:
    checklist: Checklist
    result: ScanResult
    rules: Mapping[str, Rule]
    items: Mapping[str, ItemResult]  # every item of the catalogue, in seed order
    sections: tuple[SectionResult, ...]  # the sections shown (all, or the one asked for)
    tally: Tally  # over the items of the sections shown
    section_filter: str | None = None
    sign_off: tuple[str, ...] = field(default=())

    @property
    def root_name(self) -> str:
        return os.path.basename(os.path.normpath(self.result.root)) or self.result.root


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    # Prepended to a finding's root-relative path in links, so that links work from where the
    # report is written (``-o``) rather than only from the scanned root.
    link_prefix: str = ""


# ------------------------------------------------------------------------------------ evaluation

_RULE_ERROR = re.compile(r"^rule (\S+) failed")


def _applies(rule: Rule, artifact: Artifact) -> bool:
    """The engine's applicability test, at the level of a whole file."""
    return (
        artifact.kind in rule.artifacts
        and artifact.environment in rule.environments
        and (rule.templates or not artifact.template)
    )


def _dedupe_evidence(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    """Overlapping compose views (base alone, base + override) run the same check twice."""
    seen: dict[tuple[str, str, int, str, str], Evidence] = {}
    for ev in evidence:
        key = (ev.rule_id, ev.location.path, ev.location.span.start_line, ev.key, ev.status)
        seen.setdefault(key, ev)
    return tuple(
        sorted(
            seen.values(),
            key=lambda e: (e.location.path, e.location.span.start_line, e.rule_id, e.key),
        )
    )


def _kinds(rules: Iterable[Rule]) -> str:
    return "/".join(sorted({k.value for r in rules for k in r.artifacts}))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def evaluate_item(item: ChecklistItem, rules: Sequence[Rule], result: ScanResult) -> ItemResult:
    """One item's status from the scan; ``rules`` are all the rules that ran."""
    if item.static == "none":
        return ItemResult(
            item, Status.MANUAL, "a process, a drill or a signature: a person confirms it", False
        )
    mine = [r for r in rules if item.id in r.checklist]
    rule_ids = tuple(sorted(r.id for r in mine))
    ids = set(rule_ids)
    findings = tuple(f for f in result.findings if f.rule_id in ids and f.suppressed is None)
    suppressed = tuple(f for f in result.findings if f.rule_id in ids and f.suppressed is not None)
    checks = _dedupe_evidence(e for e in result.evidence if e.rule_id in ids)
    passing = tuple(e for e in checks if e.status == "met")
    unknown = tuple(e for e in checks if e.status != "met")
    relevant = [a for a in result.artifacts if any(_applies(r, a) for r in mine)]
    relevant_paths = {a.path for a in relevant}
    not_read = {
        p.path
        for p in result.problems
        if p.level == "error" and p.code != "rule-error" and p.path in relevant_paths
    }
    for problem in result.problems:
        match = _RULE_ERROR.match(problem.message) if problem.code == "rule-error" else None
        if match and match.group(1) in ids:
            not_read.add(problem.path)
    unreadable = tuple(sorted(not_read))

    def build(status: Status, reason: str, applicable: bool) -> ItemResult:
        return ItemResult(
            item,
            status,
            reason,
            applicable,
            rule_ids,
            findings,
            passing,
            unknown,
            suppressed,
            unreadable,
        )

    if findings:
        files = len({f.location.path for f in findings})
        return build(
            Status.UNMET,
            f"{_plural(len(findings), 'finding')} in {_plural(files, 'file')}",
            True,
        )
    if not mine:
        return build(Status.NOT_DETERMINABLE, "no rule checks this item yet", False)
    if not relevant:
        return build(
            Status.NOT_DETERMINABLE,
            f"no file that could show it: no {_kinds(mine)} file its rules read",
            False,
        )
    if unknown:
        return build(
            Status.NOT_DETERMINABLE,
            f"{_plural(len(unknown), 'value')} cannot be known from the files",
            True,
        )
    if unreadable:
        return build(
            Status.NOT_DETERMINABLE,
            "not every file could be read: " + ", ".join(unreadable),
            True,
        )
    if not passing:
        # The rules read every file and selected nothing: no file holds what could violate the
        # item (no AWS key variable, no single-stage Dockerfile), so nothing shows it either way.
        # Not applicable: a repository cannot add proof that a rule does not look for.
        return build(
            Status.NOT_DETERMINABLE,
            f"nothing to check: its rules select nothing in the {_plural(len(relevant), 'file')}"
            f" they read ({_kinds(mine)})",
            False,
        )
    files = len({e.location.path for e in passing})
    return build(
        Status.MET,
        f"{_plural(len(passing), 'passing check')} in {_plural(files, 'file')}",
        True,
    )


def aggregate(statuses: Iterable[Status]) -> Status | None:
    """A seed line decided by several ids: ticked only when every one is met."""
    seen = list(statuses)
    if not seen:
        return None
    if Status.UNMET in seen:
        return Status.UNMET
    if all(s is Status.MET for s in seen):
        return Status.MET
    if Status.NOT_DETERMINABLE in seen:
        return Status.NOT_DETERMINABLE
    return Status.MANUAL


def tally(results: Iterable[ItemResult]) -> Tally:
    counts = dict.fromkeys(Status, 0)
    applicable = 0
    for r in results:
        counts[r.status] += 1
        applicable += r.applicable
    return Tally(
        counts[Status.MET],
        counts[Status.UNMET],
        counts[Status.NOT_DETERMINABLE],
        counts[Status.MANUAL],
        applicable,
    )


def select_sections(checklist: Checklist, name: str | None) -> tuple[Section, ...]:
    """``--section NAME``: a section title or a part (``Deployment Execution``), any case."""
    if name is None:
        return checklist.sections
    wanted = " ".join(name.split()).casefold()
    chosen = tuple(
        s
        for s in checklist.sections
        if s.title.casefold() == wanted or (s.part or "").casefold() == wanted
    )
    if not chosen:
        names = list(dict.fromkeys(n for s in checklist.sections for n in (s.part, s.title) if n))
        raise UsageError(f"unknown section {name!r}; sections: {', '.join(names)}")
    return chosen


def evaluate(
    result: ScanResult,
    rules: Sequence[Rule],
    *,
    section: str | None = None,
    checklist: Checklist | None = None,
) -> Readiness:
    checklist = checklist or load()
    shown = select_sections(checklist, section)
    # Seed order first (the order a reader meets them), then any id the seed does not place.
    order: list[str] = []
    for s in checklist.sections:
        order.extend(s.item_ids())
    order.extend(checklist.items)
    items = {
        item_id: evaluate_item(checklist.items[item_id], rules, result)
        for item_id in dict.fromkeys(order)
    }
    sections: list[SectionResult] = []
    for s in shown:
        entries = tuple(
            EntryResult(
                entry,
                aggregate(items[i].status for i in entry.item_ids()),
                tuple(aggregate(items[i].status for i in d.items) for d in entry.details),
            )
            for entry in s.entries
        )
        ids = s.item_ids()
        sections.append(SectionResult(s, entries, ids, tally(items[i] for i in ids)))
    shown_ids = dict.fromkeys(i for s in sections for i in s.item_ids)
    return Readiness(
        checklist,
        result,
        {r.id: r for r in rules},
        items,
        tuple(sections),
        tally(items[i] for i in shown_ids),
        section,
        checklist.sign_off,
    )


# ------------------------------------------------------------------------- helpers for renderers

_AWS_KEY = re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}")


def safe_text(text: str, limit: int = 300) -> str:
    """A message or note as a report may show it. Rules already redact the values they judge;
    this is the second fence: credentials in URLs and access key ids never reach a report."""
    from policyscan.policy.engine import mask_credentials

    text = _AWS_KEY.sub("AKIA********", mask_credentials(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain(text: str) -> str:
    """The seed's wording without its Markdown bold."""
    return text.replace("**", "")


def format_percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    rounded = round(value, 1)
    return f"{rounded:.0f}%" if rounded == int(rounded) else f"{rounded:.1f}%"


def evidence_groups(evidence: Iterable[Evidence]) -> list[tuple[str, str, tuple[int, ...]]]:
    """Passing checks as (rule, path, lines): every file:line, without one row per variable."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for ev in evidence:
        lines = grouped.setdefault((ev.rule_id, ev.location.path), [])
        if ev.location.span.start_line not in lines:
            lines.append(ev.location.span.start_line)
    return [
        (rule, path, tuple(sorted(lines)))
        for (rule, path), lines in sorted(grouped.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def link_target(path: str, line: int | None, options: RenderOptions) -> str:
    target = quote(options.link_prefix + path, safe="/._-~")
    return f"{target}#L{line}" if line else target


def link_prefix_for(root: str, output: str | None) -> str:
    """Links relative to the directory the report is written to (or the current one)."""
    base = os.path.dirname(os.path.abspath(output)) if output else os.getcwd()
    rel = os.path.relpath(os.path.abspath(root), base)
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


def rule_name(readiness: Readiness, rule_id: str) -> str:
    rule = readiness.rules.get(rule_id)
    return rule.name if rule else ""


def render(fmt: str, readiness: Readiness, options: RenderOptions | None = None) -> str:
    module = importlib.import_module(FORMATS[fmt])
    text: str = module.render(readiness, options or RenderOptions())
    return text
