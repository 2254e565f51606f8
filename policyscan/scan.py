"""One scan, start to end: discover, parse, build the project view, evaluate, and collect.

Data flows one way; no stage re-reads a file. The result holds findings sorted by location,
evidence for the checklist report, and every problem met on the way.

Speed (docs/performance.md): files are parsed by a pool of processes when there are enough of
them (each worker returns its documents pickled; they are merged in path order, so the output is
the same as with one process), and with the cache (policyscan/cache.py) an unchanged file is
not parsed again and an unchanged tree is not evaluated again. Everything after parsing runs
once, in this process, on the same documents whichever way they were obtained.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import TYPE_CHECKING, Any, cast

from policyscan.discover import DiscoveryOptions, discover
from policyscan.errors import UsageError
from policyscan.model import Artifact, Evidence, Finding, Kind, Problem, ScanResult, Span
from policyscan.policy.loader import Rule

if TYPE_CHECKING:
    from policyscan.cache import ScanCache, Shelf, ShelfWriter
    from policyscan.project import Project
    from policyscan.split import Sources
    from policyscan.suppress import SuppressOptions

# Below this many files to parse, starting processes costs more than it saves (a fork-started
# worker is ready in ~10 ms, but pickling the documents back is a fifth of parsing them).
POOL_MIN_FILES = 200
# Rules are shared out among processes only from this many files: each process builds the
# whole project view and the project-wide answers predicates keep (a third of the rule phase),
# and a fork copies the pages it touches. Measured with --jobs 2: no gain at 1,184 files (the
# corpus, 0.21 s either way), 0.90 s -> 0.70 s at 2,538 and 4.0 s -> 3.1 s at 10,322.
RULES_POOL_MIN_FILES = 2000


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
    jobs: int = 1  # processes that parse and judge; 1: all in this process, no pool
    cache: bool = False  # read and write the cache (CACHE_DIRNAME under the root)
    cache_dir: str | None = None  # the cache elsewhere (tests, benchmarks)
    # Keep the evidence of passed and undecided checks (the checklist report shows it; the
    # scan's reports do not, and a large tree makes over a hundred thousand).
    evidence: bool = True
    # Seconds per phase, filled in when given (benchmarks/bench.py): discover, read, parse,
    # parse.<kind> (in this process only), project, rules, report, cache.load, cache.store.
    timings: dict[str, float] | None = None


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def common_root(paths: Sequence[str]) -> str:
    absolute = [os.path.abspath(p) for p in paths]
    for path in absolute:
        if not os.path.lexists(path):
            raise UsageError(f"path does not exist: {path}")
    dirs = [p if os.path.isdir(p) else os.path.dirname(p) for p in absolute]
    return os.path.commonpath(dirs) if dirs else os.getcwd()


def parse_artifact(artifact: Artifact, max_bytes: int) -> tuple[object, str]:
    """Read and parse one file; every failure becomes a Problem in the returned document."""
    text = read_text(artifact, max_bytes)
    if isinstance(text, Problem):
        return _Failed(artifact, [text]), ""
    return parse_text(artifact, text), text


def read_text(artifact: Artifact, max_bytes: int) -> str | Problem:
    """One file's text, or the Problem that says why it cannot be read."""
    from policyscan.source import Unreadable, decode, read_bytes

    try:
        return decode(artifact, read_bytes(artifact, max_bytes))
    except Unreadable as exc:
        return exc.problem


def parse_text(artifact: Artifact, text: str) -> object:
    """Parse one file's text; a parser's failure becomes a Problem in the returned document."""
    from policyscan import parsers

    try:
        return parsers.parse(artifact, text)
    except RecursionError:
        problem = Problem(
            artifact.path, Span.line(1), "not scanned: nesting too deep", "too-complex"
        )
        return _Failed(artifact, [problem])
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
        return _Failed(artifact, [problem])


def snippet(line: str, finding: Finding) -> str:
    """The offending line as the terminal shows it; a secret's columns are masked, and a line
    that holds a secret somewhere we cannot place is not shown at all. Any other secret on
    the line (``ENV DEBUG=1 API_KEY=...``: the finding is about DEBUG) is masked by its name."""
    from policyscan.policy.engine import mask_credentials

    line = line.rstrip("\r\n")
    if finding.sensitive:
        span = finding.location.span
        if span.end_line != span.start_line or span.end_col <= span.start_col:
            return ""
        line = line[: span.start_col - 1] + "********" + line[span.end_col - 1 :]
    # Only 200 characters are shown: the masking need not read a megabyte-long line. A value
    # cut here is still masked (an open quote runs to the end).
    line = mask_credentials(_mask_named_secrets(line[:4096]))
    return line if len(line) <= 200 else line[:197] + "..."


# NAME=value, NAME: "value", NAME = 'value', NAME value, "--flag", "value" (a command list).
# The lookbehind starts a name only at a word's first character, and a value is read only
# after a secret's name: one pass over the line.
_NAME = re.compile(r"(?<![\w.$-])(-{0,2}[A-Za-z_$][\w.$-]*)[\"']?(?:\s*[:=]\s*|\s+|\s*,\s*)")
_VALUE = re.compile(r"\"(?:[^\"\\]|\\.)*(?:\"|$)|'[^']*(?:'|$)|[^\s;,}\]\"']+")
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _mask_named_secrets(line: str) -> str:
    from policyscan.secretstrength import classify_name

    out: list[str] = []
    done = 0
    for name in _NAME.finditer(line):
        if name.start() < done:
            continue  # inside a value already masked
        word = name.group(1).lstrip("$-")
        if word.lower() not in _SECRET_HEADERS and classify_name(word) is None:
            continue
        value = _VALUE.match(line, name.end())
        if value is None:
            continue
        quote = value.group()[0] if value.group()[:1] in "\"'" else ""
        out.append(line[done : value.start()] + f"{quote}********{quote}")
        done = value.end()
    return "".join(out) + line[done:]


def _with_snippet(
    finding: Finding, texts: dict[str, str], cache: dict[str, array[int]] | None = None
) -> Finding:
    text = texts.get(finding.location.path)
    if text is None or finding.snippet is not None:  # made already where the text was
        return finding
    # Where each line starts, found once per file (a file can hold thousands of findings) and
    # kept as offsets: the lines themselves, kept for every file with a finding, were 28 MB
    # at 10,000 files. Lines end at "\n" only: that is how every parser counts them (see
    # source.decode).
    nexts = cache.get(finding.location.path) if cache is not None else None
    if nexts is None:
        nexts = _next_line_starts(text)
        if cache is not None:
            cache[finding.location.path] = nexts
    index = finding.location.span.start_line - 1
    if not 0 <= index < len(nexts):
        return finding
    start = nexts[index - 1] if index else 0
    return replace(finding, snippet=snippet(text[start : nexts[index] - 1], finding))


def _next_line_starts(text: str) -> array[int]:
    """For each line, the offset just past its "\n" (past the end of the text, for the last)."""
    return array("q", accumulate(len(line) + 1 for line in text.split("\n")))


@dataclass(slots=True)
class _Failed:
    artifact: Artifact
    problems: list[Problem]


@dataclass(slots=True)
class _Evaluated:
    """What the rules made of a tree: the part of a scan the cache keeps whole."""

    parse_problems: list[Problem]  # every file's, in path order
    findings: list[Finding]
    evidence: list[Evidence]
    rule_problems: list[Problem]
    project_problems: list[Problem]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a scan runs. A scan makes millions of objects and
    frees almost none (documents, values, spans: no cycles), so each collection walks a heap
    that only grows: a quarter of a whole scan's time, and most of the time taken to unpickle
    documents. Whatever cyclic garbage a scan makes is collected after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Clock:
    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self.last
        self.last = now

    def timings_move(self, source: str, target: str, seconds: float) -> None:
        """Count ``seconds`` of a lap of ``source`` as ``target``'s (work done in turns)."""
        if self.timings is not None:
            self.timings[source] = self.timings.get(source, 0.0) - seconds
            self.timings[target] = self.timings.get(target, 0.0) + seconds


def scan(rules: Sequence[Rule], options: ScanOptions) -> ScanResult:
    root = options.root or common_root(options.paths)
    with _collector_paused():
        return _scan(rules, options, root)


def _scan(rules: Sequence[Rule], options: ScanOptions, root: str) -> ScanResult:
    clock = _Clock(options.timings)
    found = discover(options.paths, root, options.discovery)
    clock.lap("discover")
    result = ScanResult(root=found.root, artifacts=found.artifacts, problems=list(found.problems))
    store = _open_cache(found.root, options)
    texts: dict[str, str] = {}
    project: Any
    by_kind = None
    if store is None:
        by_kind = _split(rules, options, found.root, found.artifacts, texts, clock)
    if by_kind is not None:
        project, evaluated = by_kind
    elif store is None:
        in_parts = _in_parts(rules, options, found.root, found.artifacts, texts, clock)
        if in_parts is not None:
            project, evaluated = in_parts
        else:
            documents, parse_problems = _parse_all(found.artifacts, options, texts, clock)
            project, evaluated = _evaluate(
                rules, found.root, found.artifacts, documents, texts, clock, options
            )
            evaluated.parse_problems = parse_problems
    else:
        project, evaluated = _scan_cached(
            rules, options, found.root, found.artifacts, texts, store, clock
        )

    result.problems.extend(evaluated.parse_problems)
    findings, evidence = evaluated.findings, evaluated.evidence
    if options.only is not None:
        # By where a finding is, not by its subject: a template's rule can blame the .env.
        findings = [f for f in findings if f.location.path in options.only]
        evidence = [e for e in evidence if e.location.path in options.only]
    line_starts: dict[str, array[int]] = {}
    result.findings = [_with_snippet(f, texts, line_starts) for f in findings]
    result.evidence = evidence
    result.problems.extend(evaluated.rule_problems)
    result.problems.extend(evaluated.project_problems)
    result.rules_run = [r.id for r in rules]
    from policyscan import suppress

    silencing = options.suppression or suppress.SuppressOptions()
    suppress.apply(result, texts, project, silencing, options.only)
    if options.only is not None:
        result.problems = [p for p in result.problems if p.path in options.only]
        result.artifacts = [a for a in result.artifacts if a.path in options.only]
    result.problems.sort(key=lambda p: (p.path, p.span.start_line, p.message))
    clock.lap("report")
    result.project = project
    return result


def _split(
    rules: Sequence[Rule],
    options: ScanOptions,
    root: str,
    artifacts: list[Artifact],
    texts: dict[str, str],
    clock: _Clock,
    sources: Sources | None = None,
) -> tuple[Any, _Evaluated] | None:
    """Two processes, split by kind (split.py), where that is how the scan is shared out: the
    project (a stand-in) and what the rules made. ``texts`` is changed only when it was
    done."""
    if _jobs_for(options.jobs, len(artifacts)) != 2:
        return None
    from policyscan.split import scan_by_kind

    kept = dict(texts)
    done = scan_by_kind(
        rules,
        artifacts,
        root,
        options.discovery.max_bytes,
        options.evidence,
        kept,
        sources,
        options.progress,
        clock.lap,
        options.only,
    )
    if done is None:
        return None
    texts.clear()
    texts.update(kept)
    clock.lap("rules")
    evaluated = _Evaluated(
        done.parse_problems, done.findings, done.evidence, done.rule_problems, done.view_problems
    )
    return done.project, evaluated


def _can_part(options: ScanOptions, artifacts: list[Artifact]) -> bool:
    """Whether _in_parts can be tried: the tree has Terraform, and helpers can be forked if
    more than one job is asked for."""
    if _jobs_for(options.jobs, len(artifacts)) > 1 and not can_fork():
        return False
    return any(a.kind is Kind.TERRAFORM for a in artifacts)


# A document's cache entry as a process took it: its key, and its new pickle, or None when
# the shelf's was kept.
_Taken = tuple[str, bytes | None]

# The name in the Terraform shelf of a module's summary (ModuleSummaries): no file's path
# holds a NUL.
_SUMMARY = "\0terraform module "

# Where a process puts a shelf entry: name, key, the new pickle or None to keep the shelf's,
# and the shelf's pickle when at hand.
_Took = Callable[[str, str, bytes | None, bytes | None], None]


class ModuleSummaries:
    """terraform_parts.Summaries kept in the Terraform shelf, an entry a module, under a key
    that hashes its files' keys and whether it is called. ``took`` gets each entry this scan
    keeps or makes; ``unread`` (optional) is told of the files never read."""

    def __init__(
        self,
        keys: dict[str, str],
        shelf: Shelf,
        took: _Took,
        unread: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self._keys = keys
        self._shelf = shelf
        self._took = took
        self._unread = unread

    def _key(self, paths: Sequence[str], called: bool) -> str | None:
        lines = [f"called={called}"]
        for path in sorted(paths):
            key = self._keys.get(path)
            if key is None:
                return None
            lines.append(f"{path}\t{key}")
        return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()

    def known(self, directory: str, paths: Sequence[str], called: bool) -> dict[str, Any] | None:
        key = self._key(paths, called)
        if key is None:
            return None
        found = _load(self._shelf.unchanged(_SUMMARY + directory, key))
        return found if isinstance(found, dict) else None

    def learn(
        self, directory: str, paths: Sequence[str], called: bool, found: dict[str, Any]
    ) -> None:
        key = self._key(paths, called)
        if key is None:
            return
        name = _SUMMARY + directory
        if self._shelf.key(name) == key:  # the same files: the same summary
            self._took(name, key, None, None)
            return
        blob = _dumps(found)
        if blob is not None:
            self._took(name, key, blob, None)

    def unread(self, directories: Sequence[str], paths: Sequence[str]) -> None:
        # Kept in the shelf, as they were: the files' documents and the summaries (just
        # found there under their keys).
        for path in paths:
            key = self._keys.get(path)
            if key is not None and self._shelf.key(path) == key:
                self._took(path, key, None, None)
        for directory in directories:
            name = _SUMMARY + directory
            summary = self._shelf.key(name)
            if summary is not None:
                self._took(name, summary, None, None)
        if self._unread is not None:
            self._unread(paths)


@dataclass
class _FromCache:
    """With the cache: each readable file's key, the problem of each file that could not be
    read, the shelves as stored (by "is Terraform") and their writers. Each document taken
    (loaded or parsed) goes to its writer, as _documents does it; in a process forked from
    this one (a helper), to ``taken`` instead, for this one to write (``give``): the writers'
    file is this process's."""

    keys: dict[str, str]
    failed: dict[str, Problem]
    shelves: dict[bool, Shelf]
    writers: dict[bool, ShelfWriter]
    taken: dict[str, _Taken] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)

    def document(self, artifact: Artifact, text: str) -> object:
        path, key = artifact.path, self.keys[artifact.path]
        terraform = artifact.kind is Kind.TERRAFORM
        blob = self.shelves[terraform].unchanged(path, key)
        doc = _load(blob) if blob is not None else None
        if doc is not None:
            self._took(path, key, None, terraform, blob)
            return doc
        doc = parse_text(artifact, text)
        # Pickled now: evaluation may annotate the document afterwards. One that did not load
        # from its entry is not stored again (it would not load next time either).
        fresh = None if blob is not None or isinstance(doc, _Failed) else _dumps(doc)
        if fresh is not None:
            self._took(path, key, fresh, terraform)
        return doc

    def _took(
        self, path: str, key: str, blob: bytes | None, terraform: bool, kept: bytes | None = None
    ) -> None:
        if os.getpid() != self.pid:
            self.taken[path] = (key, blob)
        else:
            self.writers[terraform].take(path, key, blob, kept)

    def summaries(self, unread: Callable[[Sequence[str]], None]) -> ModuleSummaries:
        """The Terraform modules' summaries, kept in the Terraform shelf as documents are."""

        def took(name: str, key: str, blob: bytes | None, kept: bytes | None) -> None:
            self._took(name, key, blob, True, kept)

        return ModuleSummaries(self.keys, self.shelves[True], took, unread)

    def give(self, path: str, taken: _Taken, terraform: bool) -> None:
        """An entry a helper took."""
        self.writers[terraform].take(path, *taken)


def _in_parts(
    rules: Sequence[Rule],
    options: ScanOptions,
    root: str,
    artifacts: list[Artifact],
    texts: dict[str, str],
    clock: _Clock,
    cached: _FromCache | None = None,
) -> tuple[Any, _Evaluated] | None:
    """The Terraform rules judged a few modules at a time, each part's documents let go before
    the next is parsed (terraform_parts.py), then the other rules on the other documents, given
    the Terraform resources they read. With more than one job, forked helpers judge the later
    parts while this process judges the first and parses the other kinds. With the cache
    (``cached``), ``texts`` holds every readable file's text already, and documents are loaded
    from the cache where they can be. None where the tree has no Terraform, or a part could not
    be judged alone (the caller then scans the ordinary way; ``texts`` may have lost some)."""
    if not _can_part(options, artifacts):
        return None
    jobs = _jobs_for(options.jobs, len(artifacts))
    from policyscan import suppress
    from policyscan.policy import engine
    from policyscan.project import READ_BY, PartialViewError, Project
    from policyscan.terraform_parts import Helpers, Stand, judge_in_parts

    max_bytes = options.discovery.max_bytes
    problems: dict[str, list[Problem]] = {}
    terraform: dict[str, str] = {}
    done = 0  # files parsed (or not to be), for options.progress
    # With the cache, progress was told as the files were read and hashed.
    progress = options.progress if cached is None else None

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(artifacts))

    def obtain(artifact: Artifact, text: str) -> object:
        return parse_text(artifact, text) if cached is None else cached.document(artifact, text)

    for artifact in artifacts:
        if artifact.kind is Kind.TERRAFORM:
            # Only read: parsed with its part.
            if cached is None:
                text = read_text(artifact, max_bytes)
            else:
                text = cached.failed.get(artifact.path) or texts.pop(artifact.path)
            if isinstance(text, Problem):
                problems[artifact.path] = [text]
                tick()  # no part parses it
            else:
                terraform[artifact.path] = text
    # The parts let go of their texts; those with an ignore comment are kept for it.
    marked = {path for path, text in terraform.items() if suppress.MARKER in text}
    kept = {path: terraform[path] for path in marked}
    per_kind = clock.timings is not None
    timings: dict[str, float] | None = {} if per_kind else None

    def parse(artifact: Artifact, text: str) -> object | None:
        doc = obtain(artifact, text)
        problems[artifact.path] = list(doc.problems)  # type: ignore[attr-defined]
        tick()
        return None if isinstance(doc, _Failed) else doc

    theirs = [i for i, rule in enumerate(rules) if rule.scope.startswith("terraform.")]
    rest = [i for i, rule in enumerate(rules) if not rule.scope.startswith("terraform.")]
    documents: dict[str, object] = {}
    others = 0.0  # seconds parsing the other kinds

    def other(artifact: Artifact) -> object | None:
        """A document of the other kinds, with its text and problems kept; None: it failed."""
        started = time.perf_counter() if per_kind else 0.0
        if cached is None:
            doc, text = parse_artifact(artifact, max_bytes)
        elif artifact.path in cached.failed:
            doc, text = _Failed(artifact, [cached.failed[artifact.path]]), ""
        else:
            text = texts[artifact.path]
            doc = obtain(artifact, text)
        if per_kind:
            _add_kind_time(clock, artifact, time.perf_counter() - started)
        problems[artifact.path] = list(doc.problems)  # type: ignore[attr-defined]
        tick()
        if isinstance(doc, _Failed):
            texts.pop(artifact.path, None)
            return None
        texts[artifact.path] = text
        return doc

    def parse_others() -> None:
        nonlocal others
        begun = time.perf_counter()
        # nginx last: its documents go first (below), and what is freed together comes back.
        for artifact in sorted(artifacts, key=lambda a: a.kind is Kind.NGINX):
            if artifact.kind is not Kind.TERRAFORM:
                doc = other(artifact)
                if doc is not None:
                    documents[artifact.path] = doc
        others = time.perf_counter() - begun

    def report(paths: list[str]) -> tuple[dict[str, list[Problem]], dict[str, _Taken]]:
        # Every entry the helper took: its files', and its modules' summaries.
        taken = cached.taken if cached is not None else {}
        return {p: problems[p] for p in paths if p in problems}, taken

    def absorb(got: object) -> None:
        found, taken = cast(tuple[dict[str, list[Problem]], dict[str, _Taken]], got)
        for path, its in found.items():
            problems[path] = its
            tick()
        if cached is not None:
            for path, entry in taken.items():
                cached.give(path, entry, terraform=True)  # helpers judge Terraform parts

    def unread(paths: Sequence[str]) -> None:
        for path in paths:
            problems[path] = []  # in no part in focus: what it would have is not reported
            tick()

    helpers = None
    if jobs > 1:
        from policyscan.split import terraform_equivalent

        other_bytes = sum(file_size(a) for a in artifacts if a.kind is not Kind.TERRAFORM)
        helpers = Helpers(
            jobs - 1,
            terraform_equivalent(other_bytes),
            parse_others,
            report,
            absorb,
        )
    try:
        # Terraform first: its parts come and go before the other documents are parsed.
        started = time.perf_counter()
        judged = judge_in_parts(
            rules,
            theirs,
            artifacts,
            root,
            terraform,
            parse,
            options.evidence,
            options.only,
            marked,
            suppress.scopes_read(kept.values()),
            timings,
            helpers=helpers,
            summaries=cached.summaries(unread) if cached is not None else None,
        )
        in_parts = time.perf_counter() - started - others
    except PartialViewError:
        return None
    by_parts = None
    if helpers is None and options.only is None:
        # The other kinds a part at a time too, where the tree falls into parts.
        try:
            by_parts = _other_parts(
                rules, rest, artifacts, root, options, other, texts, timings, judged.cross_family
            )
        except PartialViewError:
            return None  # a part reached another (its documents are parsed: start again)
    scopes: Any
    if by_parts is not None:
        judging, (scopes, mine, view_here) = by_parts
        clock.lap("parse")
        clock.timings_move("parse", "rules", judging)
        here = [mine]
    else:
        if helpers is None:
            parse_others()
        clock.lap("parse")
        project = Project(
            root,
            artifacts,
            documents,
            kinds=frozenset(k for k in Kind if k is not Kind.TERRAFORM),
            focus=options.only,
            retained=suppress.scopes_read([*texts.values(), *kept.values()]),
            remote_terraform=judged.cross_family,
        )
        # The rules that read nginx first: its documents can then go before the largest
        # scopes (variables, compose services, env files) are built.
        reading = READ_BY[Kind.NGINX]
        first = [i for i in rest if rules[i].scope in reading]
        then = [i for i in rest if rules[i].scope not in reading]
        try:
            tagged, deferred = engine.judge(
                rules, project, first, options.evidence, timings=timings
            )
            project.let_go(Kind.NGINX)
            later, deferred_later = engine.judge(
                rules, project, then, options.evidence, timings=timings
            )
        except PartialViewError:
            return None
        if deferred or deferred_later:  # cannot be: the Terraform resources are all here
            return None
        scopes, here, view_here = project, [tagged, later], project.problems
    texts.update(kept)
    findings, evidence, rule_problems = engine.merge([judged.tagged, *here])
    clock.lap("rules")
    _retime(clock, timings, in_parts)
    parse_problems = [p for a in artifacts for p in problems.get(a.path, ())]
    view_problems = [*view_here, *judged.view_problems]
    return Stand(scopes, judged.stubs), _Evaluated(
        parse_problems, findings, evidence, rule_problems, view_problems
    )


def _retime(clock: _Clock, timings: dict[str, float] | None, in_parts: float) -> None:
    """The "parse" lap holds the Terraform parts whole: what was not parsing there (the view
    and the rules) moves to "rules", and the view from there to "project"."""
    if clock.timings is None or timings is None:
        return
    parsing = timings.pop("parse.terraform", 0.0)
    view = timings.pop("project", 0.0)
    clock.timings["parse.terraform"] = clock.timings.get("parse.terraform", 0.0) + parsing
    clock.timings_move("parse", "rules", in_parts - parsing)
    clock.timings_move("rules", "project", view)
    clock.timings.update(timings)


def _other_parts(
    rules: Sequence[Rule],
    rest: list[int],
    artifacts: list[Artifact],
    root: str,
    options: ScanOptions,
    other: Callable[[Artifact], object | None],
    texts: dict[str, str],
    timings: dict[str, float] | None,
    terraform: Any,
) -> tuple[float, tuple[Any, Any, list[Problem]]] | None:
    """In one process, once the Terraform parts are judged: the other kinds' rules judged a
    part of the tree at a time (other_parts.py), ``other`` giving each document (its text then
    in ``texts``) and ``terraform`` the resources they read; the seconds spent judging, and the
    other kinds' blocks for inline ignores, what the rules made and the view's problems. None
    where the tree or the rules do not fall into parts; PartialViewError where a part reached
    another."""
    from policyscan import other_parts, suppress

    ways = other_parts.ways(rules, rest)
    others = [i for i, a in enumerate(artifacts) if a.kind is not Kind.TERRAFORM]
    planned = None if ways is None else other_parts.plan(artifacts, others, file_size)
    if ways is None or planned is None:
        return None
    parts = other_parts.Parts(rules, ways, root, artifacts, others, options.evidence)
    judging = 0.0
    for part in planned:
        documents: dict[str, object] = {}
        marked: set[str] = set()
        for index in part.indices:
            doc = other(artifacts[index])
            if doc is not None:
                documents[artifacts[index].path] = doc
                if suppress.MARKER in texts[artifacts[index].path]:
                    marked.add(artifacts[index].path)
        started = time.perf_counter()
        parts.judge(part, documents, frozenset(marked), timings)
        judging += time.perf_counter() - started
    return judging, (parts.stand(), parts.finish(terraform), parts.view_problems)


def _evaluate(
    rules: Sequence[Rule],
    root: str,
    artifacts: list[Artifact],
    documents: dict[str, object],
    texts: dict[str, str],
    clock: _Clock,
    options: ScanOptions,
) -> tuple[Project, _Evaluated]:
    from policyscan.policy.engine import evaluate
    from policyscan.project import Project
    from policyscan.suppress import scopes_read

    project = Project(
        root, artifacts, documents, focus=options.only, retained=scopes_read(texts.values())
    )
    timings: dict[str, float] = {}
    files = len(artifacts)
    jobs = _jobs_for(options.jobs, files) if files >= RULES_POOL_MIN_FILES else 1
    # Rule timings come from one process only: bench.py asks for them with --jobs 1.
    findings, evidence, problems = evaluate(
        rules,
        project,
        timings=timings if jobs == 1 else None,
        jobs=jobs,
        with_evidence=options.evidence,
    )
    clock.lap("rules")
    if clock.timings is not None:
        # evaluate() timed the subjects it had built (the project view) and each rule.
        view = timings.pop("project", 0.0)
        clock.timings["project"] = clock.timings.get("project", 0.0) + view
        clock.timings["rules"] -= view
        clock.timings.update(timings)
    return project, _Evaluated([], findings, evidence, problems, project.problems)


# ------------------------------------------------------------------------------- parsing


def _parse_all(
    artifacts: list[Artifact], options: ScanOptions, texts: dict[str, str], clock: _Clock
) -> tuple[dict[str, object], list[Problem]]:
    """Read and parse every file, in a pool or here; documents and problems in path order."""
    documents: dict[str, object] = {}
    problems: list[Problem] = []
    for artifact, text, doc in _parsed(artifacts, options, clock):
        problems.extend(doc.problems)  # type: ignore[attr-defined]
        if not isinstance(doc, _Failed):
            documents[artifact.path] = doc
            texts[artifact.path] = text
    clock.lap("parse")
    return documents, problems


def _parsed(
    artifacts: list[Artifact], options: ScanOptions, clock: _Clock
) -> Iterator[tuple[Artifact, str, object]]:
    total = len(artifacts)
    progress = options.progress
    jobs = _jobs_for(options.jobs, total)
    if jobs > 1:
        pooled = _parse_in_pool(artifacts, None, options.discovery.max_bytes, jobs)
        for done, (artifact, (text, blob, doc)) in enumerate(
            zip(artifacts, pooled, strict=True), 1
        ):
            if doc is None:
                doc = _load(blob)
            if doc is None:  # the worker could not pickle it: parse it here
                doc, text = parse_artifact(artifact, options.discovery.max_bytes)
            if progress is not None:
                progress(done, total)
            yield artifact, text, doc
        return
    per_kind = clock.timings is not None
    for done, artifact in enumerate(artifacts, 1):
        started = time.perf_counter() if per_kind else 0.0
        doc, text = parse_artifact(artifact, options.discovery.max_bytes)
        if per_kind:
            _add_kind_time(clock, artifact, time.perf_counter() - started)
        if progress is not None:
            progress(done, total)
        yield artifact, text, doc


def file_size(artifact: Artifact) -> int:
    """The file's size in bytes; 0 when it cannot be had (it is reported where it is read)."""
    try:
        return os.path.getsize(artifact.abspath)
    except OSError:
        return 0


def _add_kind_time(clock: _Clock, artifact: Artifact, seconds: float) -> None:
    assert clock.timings is not None
    phase = f"parse.{artifact.kind.value}"
    clock.timings[phase] = clock.timings.get(phase, 0.0) + seconds


def _jobs_for(jobs: int, files: int) -> int:
    if jobs <= 1 or files < POOL_MIN_FILES:
        return 1
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 1  # policyscan called from a pool's worker: multiprocessing forbids children
    # Each worker gets at least ~50 files: fewer do not pay for the worker's start.
    return max(1, min(jobs, files // 50))


def _dumps(doc: object) -> bytes | None:
    from policyscan.cache import dumps

    try:
        return dumps(doc)
    except Exception:  # too deep for the pickler, or a value it cannot write: not transferred
        return None


def _load(blob: bytes | None) -> object | None:
    from policyscan.cache import loads

    if blob is None:
        return None
    try:
        doc: object = loads(blob)
    except Exception:
        return None
    return doc


def _parse_chunk(
    task: tuple[list[Artifact], list[str] | None, int],
) -> list[tuple[str, bytes | None]]:
    """In a worker: parse files (read here, or from the texts sent) and return each file's text
    and pickled document. Pickled here, one document at a time, so that the parent can keep the
    bytes for the cache as they are."""
    gc.disable()  # see _collector_paused; a worker lives for one scan
    artifacts, texts, max_bytes = task
    out: list[tuple[str, bytes | None]] = []
    for index, artifact in enumerate(artifacts):
        if texts is None:
            doc, text = parse_artifact(artifact, max_bytes)
        else:
            text = texts[index]
            doc = parse_text(artifact, text)
        out.append((text, _dumps(doc)))
    return out


def _parse_in_pool(
    artifacts: list[Artifact], texts: list[str] | None, max_bytes: int, jobs: int
) -> Iterator[tuple[str, bytes | None, object | None]]:
    """Each file's text and its document, pickled by a worker or parsed here, in the order
    given.

    The files go in runs of consecutive paths (so mostly whole directories: a module's files
    together), several runs per process so that a slow run does not leave the others idle.
    This process is one of the ``jobs``: it parses every ``jobs``-th run itself, between
    taking the workers' results, which saves pickling and loading its share of documents and
    a process competing for the cores. Results come back in order: the merge is the order of
    the paths, whatever finished first. A pool that cannot start, or that breaks (a worker
    killed), leaves the rest to this process.

    Dockerfiles are parsed here: their parser is BuildKit's, in Go, and the Go runtime does
    not survive a fork (a forked worker hangs in its first parse once this process has loaded
    it). Kept out of the workers, it never runs in one, whatever this process loaded before;
    they are few and quick to parse.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from policyscan.model import Kind

    here = [a.kind is Kind.DOCKERFILE for a in artifacts]
    rest = [i for i, local in enumerate(here) if not local]
    size = max(8, min(256, len(rest) // (jobs * 8) or 1))
    runs = [rest[k : k + size] for k in range(0, len(rest), size)]
    for run in runs[::jobs]:
        for i in run:
            here[i] = True
    tasks = [
        (
            [artifacts[i] for i in run],
            [texts[i] for i in run] if texts is not None else None,
            max_bytes,
        )
        for n, run in enumerate(runs)
        if n % jobs
    ]

    def results() -> Iterator[tuple[str, bytes | None]]:
        # fork: a worker starts in milliseconds, with the parsers already imported here.
        context = multiprocessing.get_context("fork" if can_fork() else "spawn")
        _import_parsers(artifacts)
        done = 0
        started = False
        try:
            with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
                chunks = pool.map(_parse_chunk, tasks)  # all submitted: the workers start
                started = True
                yield "", None  # the pool is running (see below)
                for chunk in chunks:
                    yield from chunk
                    done += 1
        except (BrokenProcessPool, OSError):
            if not started:
                yield "", None
            for task in tasks[done:]:
                yield from _parse_chunk(task)

    pooled = results()
    # Start the workers before this process parses its own first run, not when it first needs
    # a worker's result.
    next(pooled)
    for index, artifact in enumerate(artifacts):
        if here[index]:
            if texts is None:
                doc, text = parse_artifact(artifact, max_bytes)
            else:
                text = texts[index]
                doc = parse_text(artifact, text)
            yield text, None, doc
        else:
            text, blob = next(pooled)
            yield text, blob, None


def can_fork() -> bool:
    """fork where it is the platform's own way: not on macOS, whose system libraries are not
    fork-safe (Python's default there is spawn), nor Windows, which has no fork."""
    import multiprocessing
    import sys

    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def _import_parsers(artifacts: list[Artifact]) -> None:
    """Import the parsers the workers will need before forking them (all but Dockerfile's)."""
    import importlib

    from policyscan.model import Kind
    from policyscan.parsers import _ADAPTERS

    for kind in sorted({a.kind for a in artifacts} - {Kind.DOCKERFILE}):
        importlib.import_module(_ADAPTERS[kind])


# ------------------------------------------------------------------------------- cache


def _open_cache(root: str, options: ScanOptions) -> ScanCache | None:
    if not options.cache:
        return None
    from policyscan.cache import ScanCache

    return ScanCache.open(root, options.cache_dir)


class _LazyProject:
    """The project for the inline-ignore pass after a scan answered from the cache: built (from
    the cached documents) only if an ignore comment needs a block's extent."""

    def __init__(self, build: Callable[[], Project]) -> None:
        self._build = build
        self._project: Project | None = None

    def subjects(self, scope: str) -> Any:
        if self._project is None:
            self._project = self._build()
        return self._project.subjects(scope)


def _scan_cached(
    rules: Sequence[Rule],
    options: ScanOptions,
    root: str,
    artifacts: list[Artifact],
    texts: dict[str, str],
    store: ScanCache,
    clock: _Clock,
    again: bool = False,
) -> tuple[Any, _Evaluated]:
    """The scan with the cache: read and hash every file here; if the tree and the rules are
    as last time, take the rule results as they were; otherwise take each unchanged file's
    document as it was, parse the others, and evaluate (split by kind, or Terraform in parts,
    where it can be). ``again``: the tree read again after one of those failed, scanned the
    ordinary way."""
    from policyscan import cache
    from policyscan.source import Unreadable, decode, read_bytes

    max_bytes = options.discovery.max_bytes
    keys: list[str | None] = []  # a file's document key; None: unreadable
    failed: dict[str, Problem] = {}
    entries: list[str] = []
    progress = options.progress
    for done, artifact in enumerate(artifacts, 1):
        if progress is not None:
            progress(done, len(artifacts))
        try:
            data = read_bytes(artifact, max_bytes)
            digest = cache.content_hash(data)
            texts[artifact.path] = decode(artifact, data)
            key: str | None = cache.document_key(artifact, digest, max_bytes)
        except Unreadable as exc:
            # Not parsed, so not cached: the problem says why, and is part of the tree's key.
            failed[artifact.path] = exc.problem
            texts.pop(artifact.path, None)
            key = None
        keys.append(key)
        entries.append(key or f"unreadable {artifact.path} {failed[artifact.path]}")
    # Results made without evidence cannot answer a checklist: the choice is part of the key.
    tree = cache.tree_key(
        root, cache.rules_fingerprint(rules), [f"evidence={options.evidence}", *entries]
    )
    clock.lap("read")

    shelves: dict[bool, Shelf] = {}

    def shelf(terraform: bool) -> Shelf:
        if terraform not in shelves:
            shelves[terraform] = store.open_shelf(terraform)
        return shelves[terraform]

    def close_shelves() -> None:
        for opened in shelves.values():
            opened.close()
        shelves.clear()

    hit = store.load_results(tree)
    clock.lap("cache.load")
    if isinstance(hit, _Evaluated):

        def build() -> Project:
            from policyscan.project import Project

            with _collector_paused():
                try:
                    docs, _ = _documents(
                        artifacts, keys, failed, texts, shelf, None, options, clock
                    )
                finally:
                    close_shelves()
                return Project(root, artifacts, docs)

        return _LazyProject(build), hit
    try:
        keyed = {a.path: k for a, k in zip(artifacts, keys, strict=True) if k is not None}
        split = None
        if not again:
            split = _split_cached(
                rules, options, root, artifacts, keyed, failed, texts, store, shelf, clock
            )
            if split == "again":
                # The split failed, and the Terraform texts had gone with it: read again.
                return _scan_cached(rules, options, root, artifacts, texts, store, clock, True)
        if isinstance(split, tuple):
            project, evaluated = split  # each process stored its own shelf
        else:
            writers = {kind: store.shelf_writer(kind, shelf(kind)) for kind in (False, True)}
            try:
                if not again and _can_part(options, artifacts):
                    source = _FromCache(keyed, failed, {k: shelf(k) for k in writers}, writers)
                    in_parts = _in_parts(rules, options, root, artifacts, texts, clock, source)
                    if in_parts is None:
                        # A part could not be judged alone, and some texts went with the parts:
                        # read again.
                        return _scan_cached(
                            rules, options, root, artifacts, texts, store, clock, True
                        )
                    project, evaluated = in_parts
                else:
                    docs, parse_problems = _documents(
                        artifacts, keys, failed, texts, shelf, writers, options, clock
                    )
                    # Documents are taken before evaluation, which may annotate them.
                    project, evaluated = _evaluate(
                        rules, root, artifacts, docs, texts, clock, options
                    )
                    evaluated.parse_problems = parse_problems
                for writer in writers.values():
                    writer.close()
            finally:
                for writer in writers.values():
                    writer.discard()  # nothing once closed
        if options.only is None:
            # A run that reports on some files judged only what can make a finding in them
            # (Project.focus): its results would answer a later run of the whole tree wrongly.
            # A hit above is another matter: a whole tree's results hold any part's. Kept with
            # their snippets, made from the texts the key is made of: a hit then makes none
            # (0.08 s of an unchanged re-scan's 0.5 s at 10,322 files).
            line_starts: dict[str, array[int]] = {}
            evaluated.findings = [_with_snippet(f, texts, line_starts) for f in evaluated.findings]
            store.store_results(tree, evaluated)
        clock.lap("cache.store")
        return project, evaluated
    finally:
        close_shelves()


def _split_cached(
    rules: Sequence[Rule],
    options: ScanOptions,
    root: str,
    artifacts: list[Artifact],
    keys: dict[str, str],
    failed: dict[str, Problem],
    texts: dict[str, str],
    store: ScanCache,
    shelf: Callable[[bool], Shelf],
    clock: _Clock,
) -> tuple[Any, _Evaluated] | str | None:
    """_split with the cache: each document whose key is unchanged is loaded rather than
    parsed, and each process stores its own shelf (this one the other kinds'). None where the
    split was not done; "again" where it failed after this process had let the Terraform
    texts go (split._here)."""
    if _jobs_for(options.jobs, len(artifacts)) != 2:
        return None
    from policyscan.split import Sources

    others = shelf(False)
    writer = store.shelf_writer(False, others)
    sources = Sources(texts, failed, others, keys, store, shelf(True).keys(), writer)
    clock.lap("cache.load")
    try:
        done = _split(rules, options, root, artifacts, texts, clock, sources)
        if done is None:
            gone = any(
                a.kind is Kind.TERRAFORM and a.path in keys and a.path not in texts
                for a in artifacts
            )
            return "again" if gone else None
        writer.close()
    finally:
        writer.discard()  # nothing once closed
    return done


def _documents(
    artifacts: list[Artifact],
    keys: list[str | None],
    failed: dict[str, Problem],
    texts: dict[str, str],
    shelf: Callable[[bool], Shelf],
    writers: dict[bool, ShelfWriter] | None,
    options: ScanOptions,
    clock: _Clock,
) -> tuple[dict[str, object], list[Problem]]:
    """Every file's document: the shelf's (``shelf(is Terraform)``) if its key is unchanged,
    else parsed (the texts already read: what is parsed is what was hashed). Returns the
    documents and the parse problems in path order; ``writers`` (by "is Terraform") get each
    document's entry."""

    def stored(artifact: Artifact, key: str | None) -> bool:
        return key is not None and shelf(artifact.kind is Kind.TERRAFORM).key(artifact.path) == key

    todo = [i for i, key in enumerate(keys) if key is not None and not stored(artifacts[i], key)]
    clock.lap("cache.load")
    parsed: dict[int, object] = {}

    def write(index: int, blob: bytes | None) -> None:
        key, artifact = keys[index], artifacts[index]
        if writers is not None and key is not None and blob is not None:
            writers[artifact.kind is Kind.TERRAFORM].put(artifact.path, key, blob)

    jobs = _jobs_for(options.jobs, len(todo))
    if jobs > 1:
        pooled = _parse_in_pool(
            [artifacts[i] for i in todo],
            [texts[artifacts[i].path] for i in todo],
            options.discovery.max_bytes,
            jobs,
        )
        for index, (_, blob, doc) in zip(todo, pooled, strict=True):
            if doc is None:
                doc = _load(blob)
            else:
                blob = _dumps(doc)
            if doc is None:  # not picklable: parsed here
                doc, blob = parse_text(artifacts[index], texts[artifacts[index].path]), None
            parsed[index] = doc
            if not isinstance(doc, _Failed):
                write(index, blob)
    else:
        per_kind = clock.timings is not None
        for index in todo:
            artifact = artifacts[index]
            started = time.perf_counter()
            parsed[index] = doc = parse_text(artifact, texts[artifact.path])
            if not isinstance(doc, _Failed):
                # Pickled now: evaluation may annotate the document afterwards.
                write(index, _dumps(doc))
            if per_kind:
                _add_kind_time(clock, artifact, time.perf_counter() - started)
    clock.lap("parse")

    documents: dict[str, object] = {}
    problems: list[Problem] = []
    for index, (artifact, key) in enumerate(zip(artifacts, keys, strict=True)):
        if key is None:
            problems.append(failed[artifact.path])
            continue
        doc = parsed.get(index)
        if doc is None:
            terraform = artifact.kind is Kind.TERRAFORM
            blob = shelf(terraform).unchanged(artifact.path, key)
            doc = _load(blob)
            if doc is None:  # an entry that would not load: parsed here, not stored again
                doc = parse_text(artifact, texts[artifact.path])
            elif writers is not None:
                writers[terraform].keep(artifact.path, key, blob)
        problems.extend(doc.problems)  # type: ignore[attr-defined]
        if isinstance(doc, _Failed):
            texts.pop(artifact.path, None)
            continue
        documents[artifact.path] = doc
    clock.lap("cache.load")
    return documents, problems
