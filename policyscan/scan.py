"""One scan, start to end: discover, parse, build the project view, evaluate, and collect.

Data flows one way; no stage re-reads a file. The result holds findings sorted by location,
evidence for the checklist report, and every problem met on the way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from policyscan.discover import DiscoveryOptions, discover
from policyscan.errors import UsageError
from policyscan.model import Artifact, Finding, Problem, ScanResult, Span
from policyscan.policy.loader import Rule

if TYPE_CHECKING:
    from policyscan.suppress import SuppressOptions


@dataclass(frozen=True, slots=True)
class ScanOptions:
    paths: tuple[str, ...] = (".",)
    root: str | None = None
    discovery: DiscoveryOptions = field(default_factory=DiscoveryOptions)
    # Report only findings located in these paths (pre-commit, --changed-since). The whole
    # project is still read: cross-file rules must judge a file as a full scan would.
    only: frozenset[str] | None = None
    suppression: SuppressOptions | None = None  # None: inline ignores only, no baseline
    progress: Callable[[int, int], None] | None = None  # (files parsed, files to parse)


def common_root(paths: Sequence[str]) -> str:
    absolute = [os.path.abspath(p) for p in paths]
    for path in absolute:
        if not os.path.lexists(path):
            raise UsageError(f"path does not exist: {path}")
    dirs = [p if os.path.isdir(p) else os.path.dirname(p) for p in absolute]
    return os.path.commonpath(dirs) if dirs else os.getcwd()


def parse_artifact(artifact: Artifact, max_bytes: int) -> tuple[object, str]:
    """Read and parse one file; every failure becomes a Problem in the returned document."""
    from policyscan import parsers
    from policyscan.source import Unreadable, decode, read_bytes

    text = ""
    try:
        text = decode(artifact, read_bytes(artifact, max_bytes))
        return parsers.parse(artifact, text), text
    except Unreadable as exc:
        return _Failed(artifact, [exc.problem]), text
    except RecursionError:
        problem = Problem(
            artifact.path, Span.line(1), "not scanned: nesting too deep", "too-complex"
        )
        return _Failed(artifact, [problem]), text
    except Exception as exc:  # a parser library's bug must not end the scan
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        # The exception's own text is left out: it can quote the file ("invalid literal for
        # int(): 'hunter2'"), and a report never shows a file's values.
        problem = Problem(
            artifact.path,
            Span.line(1),
            f"parser failed: {type(exc).__name__} (a policyscan bug: please report it; "
            "POLICYSCAN_DEBUG=1 shows the traceback)",
            "parser-error",
        )
        return _Failed(artifact, [problem]), text


def snippet(line: str, finding: Finding) -> str:
    """The offending line as the terminal shows it; a secret's columns are masked, and a line
    that holds a secret somewhere we cannot place is not shown at all."""
    from policyscan.policy.engine import mask_credentials

    line = line.rstrip("\r\n")
    if finding.sensitive:
        span = finding.location.span
        if span.end_line != span.start_line or span.end_col <= span.start_col:
            return ""
        line = line[: span.start_col - 1] + "********" + line[span.end_col - 1 :]
    line = mask_credentials(line)
    return line if len(line) <= 200 else line[:197] + "..."


def _with_snippet(
    finding: Finding, texts: dict[str, str], cache: dict[str, list[str]] | None = None
) -> Finding:
    text = texts.get(finding.location.path)
    if text is None:
        return finding
    # Split once per file, not once per finding (a file can hold thousands of findings), and
    # on "\n" only: that is how every parser counts lines (see source.decode).
    lines = cache.get(finding.location.path) if cache is not None else None
    if lines is None:
        lines = text.split("\n")
        if cache is not None:
            cache[finding.location.path] = lines
    index = finding.location.span.start_line - 1
    if not 0 <= index < len(lines):
        return finding
    return replace(finding, snippet=snippet(lines[index], finding))


@dataclass(slots=True)
class _Failed:
    artifact: Artifact
    problems: list[Problem]


def scan(rules: Sequence[Rule], options: ScanOptions) -> ScanResult:
    from policyscan.policy.engine import evaluate
    from policyscan.project import Project

    root = options.root or common_root(options.paths)
    found = discover(options.paths, root, options.discovery)
    result = ScanResult(root=found.root, artifacts=found.artifacts, problems=list(found.problems))
    documents: dict[str, object] = {}
    texts: dict[str, str] = {}
    for done, artifact in enumerate(found.artifacts, 1):
        doc, text = parse_artifact(artifact, options.discovery.max_bytes)
        if options.progress is not None:
            options.progress(done, len(found.artifacts))
        result.problems.extend(doc.problems)  # type: ignore[attr-defined]
        if not isinstance(doc, _Failed):
            documents[artifact.path] = doc
            texts[artifact.path] = text
    project = Project(found.root, found.artifacts, documents)
    findings, evidence, problems = evaluate(rules, project)
    if options.only is not None:
        # By where a finding is, not by its subject: a template's rule can blame the .env.
        findings = [f for f in findings if f.location.path in options.only]
        evidence = [e for e in evidence if e.location.path in options.only]
    split: dict[str, list[str]] = {}
    result.findings = [_with_snippet(f, texts, split) for f in findings]
    result.evidence = evidence
    result.problems.extend(problems)
    result.problems.extend(project.problems)
    result.rules_run = [r.id for r in rules]
    from policyscan import suppress

    silencing = options.suppression or suppress.SuppressOptions()
    suppress.apply(result, texts, project, silencing, options.only)
    if options.only is not None:
        result.problems = [p for p in result.problems if p.path in options.only]
        result.artifacts = [a for a in result.artifacts if a.path in options.only]
    result.problems.sort(key=lambda p: (p.path, p.span.start_line, p.message))
    return result
