"""Silencing findings on purpose: inline ignore comments, per-path ignores, and the baseline.

Inline: ``# policyscan: ignore[PSE001,PSE003] reason`` at the end of the offending line, or alone
on the line above it (other comment lines may sit between). Every kind policyscan reads uses
``#`` comments (Terraform's ``//`` works too). On the first line of a block (a Terraform
resource, a compose service, an nginx server or location, a Dockerfile stage) the comment covers
the whole block. The comments are read from the text the scan already has in memory; no file is
opened again.

Baseline: today's findings recorded by fingerprint (which hashes the rule, the path, the node's
logical key and what is wrong with it, never the line), so a later scan reports only new ones.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from policyscan.errors import ConfigError
from policyscan.model import Finding, Kind, Problem, ScanResult, Span

# ``#`` or ``//``, then ``policyscan: ignore``, optionally ``[ids]``, then the reason. Linear:
# no nested quantifiers, and the id list cannot run past the line.
_IGNORE = re.compile(r"(?:#|//)[ \t]*policyscan:[ \t]*ignore\b(\[[^\]\n]*\])?([^\n]*)")
_COMMENT_ONLY = re.compile(r"^[ \t]*(?:#|//)")
_REASON_LEAD = " \t-:\u2014\u2013"  # separators people put before a reason: - : em/en dash
MAX_REASON = 200
MAX_IDS = 64
MAX_BASELINE_BYTES = 64 * 1024 * 1024
BASELINE_VERSION = 1

# Scopes whose subject is a block whose first line an ignore comment can name.
# What find_ignores looks for first: a file without it has no ignore comment.
MARKER = "policyscan:"
_BLOCK_SCOPES = (
    "compose.service",
    "nginx.server",
    "nginx.location",
    "terraform.resource",
    "terraform.data",
    "terraform.provider",
    "terraform.variable",
    "dockerfile.stage",
)
TERRAFORM_BLOCK_SCOPES = tuple(s for s in _BLOCK_SCOPES if s.startswith("terraform."))


def scopes_read(texts: Iterable[str]) -> frozenset[str]:
    """The scopes whose subjects inline ignores will read after the rules (Project.retained):
    none when no file has an ignore comment."""
    return frozenset(_BLOCK_SCOPES) if any(MARKER in text for text in texts) else frozenset()


@dataclass(frozen=True, slots=True)
class Ignore:
    path: str
    line: int  # where the comment is
    target: int  # the line it applies to
    rules: tuple[str, ...]  # as written
    reason: str


@dataclass(frozen=True, slots=True)
class SuppressOptions:
    aliases: Mapping[str, str] = field(
        default_factory=dict
    )  # id or name of every loaded rule -> id
    warn_unused: bool = False
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    per_path_base: str | None = None  # the directory per-path globs are relative to
    baseline: Baseline | None = None


# ----------------------------------------------------------------------------- inline comments


def find_ignores(path: str, text: str) -> tuple[list[Ignore], list[Problem]]:
    """Every ignore comment in one file's text, and a problem for each malformed one."""
    ignores: list[Ignore] = []
    problems: list[Problem] = []
    if MARKER not in text:  # the common case costs one substring search
        return ignores, problems
    # Lines end at "\n" only, as every parser counts them (splitlines would also split at
    # form feeds and other separators and shift every line number after one).
    lines = text.split("\n")
    next_code: list[int] | None = None
    for index, line in enumerate(lines):
        if "policyscan:" not in line:
            continue
        match = _IGNORE.search(line)
        if match is None:
            continue
        number = index + 1
        col = match.start() + 1
        written = (match.group(1) or "[]")[1:-1].split(",")
        # A bound on what one comment can name: a hostile line must not make the matching of
        # every finding against it expensive.
        ids = tuple(p.strip() for p in written if p.strip())[:MAX_IDS]
        if not ids:
            problems.append(
                Problem(
                    path,
                    Span(number, col, number, len(line) + 1),
                    "ignore comment names no rule: write # policyscan: ignore[RULE_ID] reason",
                    "ignore-comment",
                    "warning",
                )
            )
            continue
        reason = match.group(2).strip().lstrip(_REASON_LEAD).strip()[:MAX_REASON]
        target = number
        if _COMMENT_ONLY.match(line):
            # A comment alone on its line applies to the next line that is not a comment.
            if next_code is None:
                next_code = _next_code_lines(lines)
            target = next_code[index + 1] if index + 1 < len(lines) else number + 1
        ignores.append(Ignore(path, number, target, ids, reason))
    return ignores, problems


def _next_code_lines(lines: list[str]) -> list[int]:
    """For each line index, the 1-based number of the first line at or after it that is not a
    comment: one pass from the end, so a file of many stacked comments stays linear."""
    out = [0] * len(lines)
    following = len(lines) + 1
    for index in range(len(lines) - 1, -1, -1):
        if not _COMMENT_ONLY.match(lines[index]):
            following = index + 1
        out[index] = following
    return out


@dataclass(slots=True)
class _Block:
    path: str
    key: str
    first_line: int
    last_line: int  # the last line of the block in its own file (0: match by key only)


class Extent:
    """An nginx block's extent (``extent``), kept in place of its context where the documents
    are let go before the ignores are read (other_parts.py)."""

    __slots__ = ("last_line",)

    def __init__(self, last_line: int) -> None:
        self.last_line = last_line


def extent(node: Any) -> int:
    """Last line of an nginx block in its own file: a server's locations do not have keys
    that start with the server's key, so a server ignore covers them by lines."""
    if isinstance(node, Extent):
        return node.last_line
    directive = getattr(node, "directive", None)
    if directive is None or directive.block is None:
        return 0
    last: int = directive.span.end_line
    stack = list(directive.block)
    while stack:
        child = stack.pop()
        if child.path == directive.path:
            last = max(last, child.span.end_line)
        if child.block:
            stack.extend(child.block)
    return last + 1  # the closing brace


def _blocks(
    project: Any, targets: set[tuple[str, int]], kinds: Mapping[str, Kind]
) -> dict[tuple[str, int], list[_Block]]:
    from policyscan.scopes import SCOPES

    # A scope's blocks are in files of its own kind: one with no ignore in such a file is not
    # built (a run that reports on a Terraform file need not load every compose document).
    wanted = {kinds.get(path) for path, _ in targets}
    found: dict[tuple[str, int], list[_Block]] = {}
    for scope in _BLOCK_SCOPES:
        if scope not in SCOPES or Kind(scope.split(".", 1)[0]) not in wanted:
            continue
        try:
            subjects = project.subjects(scope)
        except Exception:
            continue
        for subject in subjects:
            where = (subject.path, subject.span.start_line)
            if where in targets:
                last = extent(subject.node) if scope.startswith("nginx.") else 0
                found.setdefault(where, []).append(
                    _Block(subject.path, subject.key, where[1], last)
                )
    return found


def _same_unit(finding_path: str, block_path: str, kinds: Mapping[str, Kind]) -> bool:
    """A compose service spans the files of its directory (base + overrides); a Terraform
    resource's module is its directory; other blocks are one file."""
    if finding_path == block_path:
        return True
    kind = kinds.get(block_path)
    return kind in (Kind.COMPOSE, Kind.TERRAFORM) and posixpath.dirname(
        finding_path
    ) == posixpath.dirname(block_path)


def _covers(block: _Block, finding: Finding, kinds: Mapping[str, Kind]) -> bool:
    if not _same_unit(finding.location.path, block.path, kinds):
        return False
    if finding.key == block.key or finding.key.startswith(block.key + " / "):
        return True
    line = finding.location.span.start_line
    return finding.location.path == block.path and block.first_line <= line <= block.last_line


def apply(
    result: ScanResult,
    texts: Mapping[str, str],
    project: Any,
    options: SuppressOptions,
    only: frozenset[str] | None = None,
) -> None:
    """Mark (or drop) silenced findings in ``result`` and add problems for malformed ignores
    and, with ``warn_unused``, for ignores that matched nothing."""
    findings = _per_path(result.findings, result.root, options)
    ignores: list[Ignore] = []
    for path in sorted(texts):
        if only is not None and path not in only:
            continue  # context files: their findings are not reported, so neither are their ignores
        found, problems = find_ignores(path, texts[path])
        ignores.extend(found)
        result.problems.extend(problems)
    if ignores:
        findings = _apply_inline(findings, ignores, project, result, options)
    if options.baseline is not None:
        findings = options.baseline.apply(findings, result.root)
    result.findings = findings


def _per_path(findings: list[Finding], root: str, options: SuppressOptions) -> list[Finding]:
    if not options.per_path_ignores:
        return findings
    from policyscan.config import matches

    base = options.per_path_base or root
    kept = []
    for finding in findings:
        rel = Path(os.path.relpath(os.path.join(root, finding.location.path), base)).as_posix()
        dropped = any(
            finding.rule_id in ids and matches(rel, (glob,))
            for glob, ids in options.per_path_ignores
        )
        if not dropped:
            kept.append(finding)
    return kept


def _apply_inline(
    findings: list[Finding],
    ignores: list[Ignore],
    project: Any,
    result: ScanResult,
    options: SuppressOptions,
) -> list[Finding]:
    aliases = options.aliases
    by_line: dict[tuple[str, int], list[Ignore]] = {}
    for ignore in ignores:
        by_line.setdefault((ignore.path, ignore.target), []).append(ignore)
    kinds = {a.path: a.kind for a in result.artifacts}
    blocks = _blocks(project, set(by_line), kinds)
    block_ignores = [
        (ignore, block)
        for where, items in by_line.items()
        for ignore in items
        for block in blocks.get(where, ())
    ]
    used: set[tuple[Ignore, str]] = set()

    def named(ignore: Ignore, rule_id: str) -> str | None:
        for written in ignore.rules:
            if aliases.get(written, written) == rule_id:
                return written
        return None

    out = []
    for finding in findings:
        if finding.suppressed is not None:
            out.append(finding)
            continue
        match: Ignore | None = None
        where = (finding.location.path, finding.location.span.start_line)
        for ignore in by_line.get(where, ()):
            written = named(ignore, finding.rule_id)
            if written is not None:
                used.add((ignore, written))
                match = match or ignore
        for ignore, block in block_ignores:
            written = named(ignore, finding.rule_id)
            if written is not None and _covers(block, finding, kinds):
                used.add((ignore, written))
                match = match or ignore
        out.append(finding if match is None else replace(finding, suppressed=match.reason))
    if options.warn_unused:
        ran = set(result.rules_run)
        for ignore in ignores:
            for written in ignore.rules:
                rule_id = aliases.get(written)
                if rule_id is None:
                    message = f"ignore comment names an unknown rule: {written}"
                elif rule_id not in ran or (ignore, written) in used:
                    continue  # a rule that did not run cannot be judged unused
                else:
                    message = f"unused ignore: {written} reports nothing on line {ignore.target}"
                result.problems.append(
                    Problem(
                        ignore.path, Span.line(ignore.line), message, "unused-ignore", "warning"
                    )
                )
    return out


# ----------------------------------------------------------------------------- baseline


def _baseline_path(finding: Finding, root: str, base: str) -> str:
    """Paths in the baseline are relative to the baseline file, so scanning a sub-directory or
    running from elsewhere reads the same entries."""
    absolute = os.path.join(root, finding.location.path) if finding.location.path else root
    return Path(os.path.relpath(absolute, base)).as_posix()


@dataclass(slots=True)
class Baseline:
    path: str
    entries: Counter[tuple[str, str, str]]  # (rule, path, fingerprint) -> how many

    def apply(self, findings: Iterable[Finding], root: str) -> list[Finding]:
        """Findings recorded in the baseline become suppressed; the rest are new. When the same
        fingerprint occurs more often than recorded, the extra ones (last in order) are new."""
        remaining = Counter(self.entries)
        base = os.path.dirname(self.path)
        reason = f"in the baseline ({os.path.basename(self.path)})"
        out = []
        for finding in findings:
            if finding.suppressed is None:
                identity = (
                    finding.rule_id,
                    _baseline_path(finding, root, base),
                    finding.fingerprint,
                )
                if remaining[identity] > 0:
                    remaining[identity] -= 1
                    finding = replace(finding, suppressed=reason)
            out.append(finding)
        return out


def baseline_text(findings: Sequence[Finding], root: str, baseline_path: str) -> str:
    """The baseline file: sorted, one finding per line, so it diffs and merges cleanly in git.
    It holds rule ids, paths, logical keys (names, never values) and fingerprints: no secret,
    no message and no line number."""
    base = os.path.dirname(os.path.abspath(baseline_path))
    counts: Counter[tuple[str, str, str, str]] = Counter(
        (_baseline_path(f, root, base), f.rule_id, f.key, f.fingerprint)
        for f in findings
        if f.suppressed is None
    )
    lines = []
    for (path, rule, key, fingerprint), count in sorted(counts.items()):
        entry = {"count": count, "fingerprint": fingerprint, "key": key, "path": path, "rule": rule}
        lines.append("    " + json.dumps(entry, sort_keys=True, ensure_ascii=False))
    body = ",\n".join(lines)
    return (
        "{\n"
        f'  "findings": [\n{body}{chr(10) if lines else ""}  ],\n'
        '  "tool": "policyscan",\n'
        f'  "version": {BASELINE_VERSION}\n'
        "}\n"
    )


def load_baseline(path: str) -> Baseline:
    path = os.path.abspath(path)
    try:
        if os.path.getsize(path) > MAX_BASELINE_BYTES:
            raise ConfigError(f"{path}: baseline file is larger than {MAX_BASELINE_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: baseline file not found (create it with `policyscan baseline`)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the baseline: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the baseline is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} (line {exc.lineno}): the baseline is not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: the baseline is nested too deeply") from None
    if not isinstance(raw, dict) or raw.get("tool") != "policyscan":
        raise ConfigError(
            f'{path}: not a policyscan baseline (expected an object with "tool": "policyscan")'
        )
    if raw.get("version") != BASELINE_VERSION:
        raise ConfigError(
            f"{path}: version: unsupported baseline version {raw.get('version')!r} "
            f"(this policyscan reads {BASELINE_VERSION})"
        )
    items = raw.get("findings")
    if not isinstance(items, list):
        raise ConfigError(f"{path}: findings: expected a list")
    entries: Counter[tuple[str, str, str]] = Counter()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: findings[{index}]: expected an object")
        for key in ("rule", "path", "fingerprint"):
            if not isinstance(item.get(key), str):
                raise ConfigError(f"{path}: findings[{index}].{key}: expected a string")
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"{path}: findings[{index}].count: expected a positive integer")
        entries[(item["rule"], item["path"], item["fingerprint"])] += count
    return Baseline(path, entries)
