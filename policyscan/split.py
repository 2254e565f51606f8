"""A scan in two processes split by kind: the Terraform files in a forked worker, the rest here.

Terraform is most of a scan's parsing, and its rules read nothing but Terraform, so a worker
that parses the Terraform files and judges the Terraform rules needs none of the other
documents, and sends back only what it found: the documents themselves never cross (moving
documents between processes cost 0.4-0.5 s each way at 10,000 files, and a fork after parsing
copies every page either process then touches). This process parses the other files, a share of
the Terraform ones when the Terraform side is the heavier (sent to the worker a chunk at a time
as they are parsed, each chunk in one pickle; with the cache, each document in its own, which
is also its cache entry), and judges every other rule. The worker judges a few modules at a
time (terraform_parts.py), so that it holds the documents of one part (and of the chunks of
this process's share it took), not of all of them: the Terraform texts of this process's share
are read before the fork for that, as the parts are planned from every text. A rule of another
family that reads Terraform does so through ``Project.terraform_resources``: the worker sends
those resources (a few, by type) once its last part is judged, and a rule that asked before
they came is judged again after (``engine.judge`` defers it). The items of both processes are
merged in the order one process makes them, so the output is the same as a scan in one process.

Used for exactly two processes, where fork is the platform's way, and not for a tree of
Terraform alone, nor where this process would take most of the Terraform for want of other
work (_mostly_terraform): there both processes judge Terraform parts (scan._in_parts).

With the cache, the texts were read (and hashed) here already and the worker inherits them
(this process then lets the Terraform ones go but for ignore comments). Each process reads and
writes its own shelf of documents (cache.py): the worker the Terraform one, with this process's
share as sent, and this process the other kinds'. So a cached Terraform document is the
worker's to load; this process parses only Terraform files the cache does not hold, when it
has time, and plans with the Terraform shelf's index alone. Whatever goes wrong in the worker
(killed, a bug) returns None here, and the scan is done the ordinary way.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyscan import other_parts, suppress
from policyscan import scan as scanning
from policyscan.cache import ScanCache, Shelf, ShelfWriter, dumps, loads
from policyscan.model import Artifact, Evidence, Finding, Kind, Problem
from policyscan.policy import engine
from policyscan.project import PartialViewError, Project
from policyscan.terraform_parts import Scopes, Stand, judge_in_parts, read_first

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue

    from policyscan.policy.loader import Rule
    from policyscan.project import Subject

# Seconds per megabyte, measured on the generated 10,322-file tree with both processes at work
# (timed in each process): parsing Terraform, judging its rules (with sending their findings
# back), pickling and loading its documents, and everything a megabyte of the other kinds
# costs (parse, view and rules). _OTHER was 0.68 until the rules of the other kinds became
# cheaper (conditions.selector's `matches` clauses); 0.58 was the fastest of 0.50-0.68 timed
# on that tree, alternated (4.55-4.64 s against 4.91-4.95 s for 0.68). _TF_RULES was 0.07 until
# the worker judged in parts (terraform_parts.py: each part's fixed work, freeing its documents):
# 0.085 ran 4.28-4.37 s, against 4.43-4.47 s for 0.07 (this process waited 0.16-0.21 s for the
# worker's resources) and 4.38-4.42 s for 0.10.
_TF_PARSE = 0.21
_TF_RULES = 0.085
_TF_PICKLE = 0.05
_TF_LOAD = 0.042
_OTHER = 0.58
# Parsing alone, of the other kinds: 1.45 s for their 5.4 MB in that tree, one process.
_OTHER_PARSE = 0.27
# Above these, this process's share is judged in parts rather than sent (_mostly_terraform).
_SHARE_MOST = 0.45
_SHARE_MEGABYTES = 2.0
# Bytes of source of the Terraform documents this process sends the worker together. One
# pickle of several shares what the parser shared among them (interned names).
SHARE_CHUNK_BYTES = 256_000


def terraform_equivalent(other_bytes: int) -> int:
    """The bytes of Terraform that take as long to parse and judge as ``other_bytes`` of the
    other kinds take to parse (terraform_parts.Helpers.here_bytes)."""
    return int(other_bytes * _OTHER_PARSE / (_TF_PARSE + _TF_RULES))


@dataclass(frozen=True)
class Sources:
    """With the cache: every readable file's text (as hashed) and document key, the problem
    of each file that could not be read, and the other kinds' shelf and its writer. The
    Terraform shelf is the worker's to open and store; this process plans with its keys alone
    (``terraform_keys``)."""

    texts: dict[str, str]
    failed: dict[str, Problem]
    cached: Shelf
    keys: dict[str, str]
    store: ScanCache
    terraform_keys: dict[str, str]
    writer: ShelfWriter  # of the other kinds' shelf, in this process only

    def terraform_cached(self, path: str) -> bool:
        """Whether the Terraform shelf should hold this file's document as it is now."""
        key = self.terraform_keys.get(path)
        return key is not None and key == self.keys.get(path)

    def cached_here(self, path: str) -> bool:
        """Whether the other kinds' shelf holds this file's document as it is now."""
        key = self.cached.key(path)
        return key is not None and key == self.keys.get(path)


@dataclass(frozen=True)
class _Plan:
    """What both processes know of the scan."""

    rules: Sequence[Rule]
    terraform_rules: list[int]  # indices into rules
    artifacts: list[Artifact]
    root: str
    max_bytes: int
    with_evidence: bool
    sources: Sources | None  # None: without the cache, each file is read where it is parsed
    focus: frozenset[str] | None  # Project.focus: the files reported on; None: all
    # Without the cache: this process's Terraform files, read before the fork, so that the
    # worker knows every Terraform text from the start (terraform_parts reads them all first).
    read: dict[int, str | Problem]


# One file's document (or a _Failed), its text, its pickle when one is wanted (to send it to
# the worker, or for the cache), and whether that pickle is the cache's.
_Obtained = tuple[object, str, bytes | None, bool]


# What the worker tells of each file it parsed: its problems, whether it failed, and the text
# when it has ignore comments and the parent did not read it (without the cache).
_Parsed = tuple[list[Problem], bool, str | None]


def _obtain(plan: _Plan, index: int, pickle: bool, shelf: Shelf | None = None) -> _Obtained:
    """A file's document: read and parsed, or taken from the cache (``shelf``, or the
    Sources' one)."""
    artifact = plan.artifacts[index]
    sources = plan.sources
    if sources is None:
        read = plan.read.get(index)
        if read is None:
            doc, text = scanning.parse_artifact(artifact, plan.max_bytes)
        elif isinstance(read, Problem):
            doc, text = scanning._Failed(artifact, [read]), ""
        else:
            doc, text = scanning.parse_text(artifact, read), read
        failed = isinstance(doc, scanning._Failed)
        return doc, text, scanning._dumps(doc) if pickle and not failed else None, False
    problem = sources.failed.get(artifact.path)
    if problem is not None:
        return scanning._Failed(artifact, [problem]), "", None, False
    text = sources.texts[artifact.path]
    shelf = sources.cached if shelf is None else shelf
    blob = shelf.unchanged(artifact.path, sources.keys.get(artifact.path))
    if blob is not None:
        loaded = scanning._load(blob)
        if loaded is not None:
            return loaded, text, blob, True
    doc = scanning.parse_text(artifact, text)
    # Pickled now: evaluation may annotate the document afterwards. One that did not load
    # from its entry is not stored again (it would not load next time either).
    if blob is not None or isinstance(doc, scanning._Failed):
        return doc, text, None, False
    return doc, text, scanning._dumps(doc), False


# What the worker does, set just before it is forked, inherited, never pickled: the plan, the
# Terraform files it parses, and its two channels.
_WORK: tuple[_Plan, list[int], Queue[Any], Connection] | None = None


@dataclass
class Split:
    """What a split scan made: as from one process, and in the same order."""

    project: Stand
    findings: list[Finding]
    evidence: list[Evidence]
    rule_problems: list[Problem]
    parse_problems: list[Problem]  # every file's, in path order
    view_problems: list[Problem]


def scan_by_kind(
    rules: Sequence[Rule],
    artifacts: list[Artifact],
    root: str,
    max_bytes: int,
    with_evidence: bool,
    texts: dict[str, str],
    sources: Sources | None = None,
    progress: Callable[[int, int], None] | None = None,
    lap: Callable[[str], None] | None = None,
    focus: frozenset[str] | None = None,
) -> Split | None:
    """The scan's documents and rules in two processes; None where it could not be done (the
    caller scans the ordinary way). ``texts`` gets the text of every document parsed;
    ``lap("parse")`` is called when this process has parsed its share."""
    global _WORK
    import multiprocessing

    terraform = [i for i, a in enumerate(artifacts) if a.kind is Kind.TERRAFORM]
    if not scanning.can_fork() or not terraform or len(terraform) == len(artifacts):
        return None
    here = _share_here(artifacts, terraform, sources)
    if _mostly_terraform(artifacts, terraform, here, sources):
        return None  # judged in parts by both processes instead (scan._in_parts)
    terraform_rules = [i for i, r in enumerate(rules) if r.scope.startswith("terraform.")]
    read = (
        {}
        if sources is not None
        else {i: scanning.read_text(artifacts[i], max_bytes) for i in here}
    )
    # The files the worker's parts read first (terraform_parts.read_first) stay with it: it
    # would otherwise wait for this process's share before its first part.
    for index in list(here):
        text = read[index] if sources is None else sources.texts.get(artifacts[index].path)
        if isinstance(text, str) and read_first(text):
            here.discard(index)
            read.pop(index, None)
    plan = _Plan(
        rules, terraform_rules, artifacts, root, max_bytes, with_evidence, sources, focus, read
    )
    context = multiprocessing.get_context("fork")
    inbox: Queue[Any] = context.Queue()
    receive, send = context.Pipe(duplex=False)
    _WORK = (plan, [i for i in terraform if i not in here], inbox, send)
    try:
        worker = context.Process(target=_worker, daemon=True)
        worker.start()
    except OSError:
        return None
    finally:
        _WORK = None
    send.close()  # the worker's end: with this one closed, a dead worker reads as EOF here
    done = None
    try:
        done = _here(plan, here, texts, inbox, receive, progress, lap)
        return done
    finally:
        receive.close()
        inbox.close()
        if done is None:  # given up, or interrupted (Ctrl-C reaches only this process)
            worker.kill()
        worker.join(timeout=1)  # it leaves once it has sent its findings
        if worker.is_alive():
            worker.kill()
            worker.join()


def _here(
    plan: _Plan,
    here_tf: set[int],
    texts: dict[str, str],
    inbox: Queue[Any],
    receive: Connection,
    progress: Callable[[int, int], None] | None,
    lap: Callable[[str], None] | None,
) -> Split | None:
    artifacts = plan.artifacts
    total = len(artifacts)
    others = [i for i, a in enumerate(artifacts) if a.kind is not Kind.TERRAFORM]
    theirs = set(plan.terraform_rules)
    rest = [i for i in range(len(plan.rules)) if i not in theirs]
    in_parts = _other_parts(plan, others, rest)
    # In parts, this loop parses only the Terraform share; the other kinds come part by part.
    mine = [*sorted(here_tf), *(others if in_parts is None else ())]
    count = len(mine) + (len(others) if in_parts is not None else 0)  # for progress
    problems: dict[str, list[Problem]] = {}
    place = {a.path: i for i, a in enumerate(artifacts)}

    def load(path: str) -> object | None:
        doc = _obtain(plan, place[path], pickle=False)[0]
        return None if isinstance(doc, scanning._Failed) else doc

    documents = _Waiting(load)
    sent: list[tuple[int, bytes | None]] = []
    share: list[object] = []  # without the cache: the documents of a chunk, in one pickle
    chunk = 0  # bytes of source in ``sent``
    left = len(here_tf)
    if plan.sources is not None:
        # The worker has them all (inherited): here a Terraform text is wanted only for its
        # ignore comments, and this process's share until it is parsed. Should the split
        # fail, the caller reads the tree again (scan._split_cached).
        for index, artifact in enumerate(artifacts):
            if artifact.kind is Kind.TERRAFORM and index not in here_tf:
                _drop_text(plan.sources, texts, artifact.path)
    # This process's Terraform share first, so that the worker has it when it wants it.
    if not here_tf:
        inbox.put((sent, None, True))
    sources = plan.sources
    stored: set[str] = set()  # the other kinds' shelf entries given
    for done, index in enumerate(mine, 1):
        artifact = artifacts[index]
        if artifact.kind is not Kind.TERRAFORM:
            if sources is not None and _may_wait(plan, sources, artifact.path):
                sources.writer.keep(artifact.path, sources.keys[artifact.path])
                texts[artifact.path] = sources.texts[artifact.path]
                documents.wait(artifact.path)
            else:
                other = _other(plan, index, texts, problems, stored)
                if other is not None:
                    documents[artifact.path] = other
            if progress is not None:
                progress(done * total // count, total)
            continue
        # With the cache, each document's own pickle is the cache's entry too.
        doc, text, blob, _ = _obtain(plan, index, pickle=plan.sources is not None)
        plan.read.pop(index, None)  # read before the fork for the worker; here, once is all
        problems[artifact.path] = list(doc.problems)  # type: ignore[attr-defined]
        if isinstance(doc, scanning._Failed):
            texts.pop(artifact.path, None)
        else:
            # A Terraform text is wanted here only for its ignore comments: the worker makes
            # the snippets of its findings.
            if suppress.MARKER in text:
                texts[artifact.path] = text
            elif plan.sources is not None:
                _drop_text(plan.sources, texts, artifact.path)
            sent.append((index, blob))
            chunk += len(text)
            if plan.sources is None:
                share.append(doc)
        left -= 1
        if chunk >= SHARE_CHUNK_BYTES or not left:
            # Sent a chunk at a time, each let go once sent, rather than the whole share
            # held until the last of it was parsed: 3-4 MB less of this process's largest
            # at 10,000 files, and the worker starts on it sooner. Written by the queue's
            # own thread: this process goes on.
            inbox.put((sent, _together(share) if share else None, not left))
            sent, share, chunk = [], [], 0  # the thread's now
            if not left:
                # The queue's thread keeps the last message it wrote (pickled) until it
                # writes another: this one, never read, lets the last chunk go.
                inbox.put(None)
        if progress is not None:
            progress(done * total // count, total)
    judged = None
    stand: Scopes
    if in_parts is not None:
        judged = _judge_parts(
            plan, in_parts, texts, problems, receive, progress, len(mine), stored, lap
        )
        if judged is None:  # a part reached another: the other kinds are judged whole
            for index in others:
                doc = _other(plan, index, texts, problems, stored)
                if doc is not None:
                    documents[artifacts[index].path] = doc
    if lap is not None:
        lap("parse")

    if judged is not None:
        stand, mine_tagged, view_here = judged
        late: engine._Tagged = ([], [], [])
    else:
        kinds = frozenset(k for k in Kind if k is not Kind.TERRAFORM)
        project = Project(
            plan.root,
            artifacts,
            documents,
            kinds=kinds,
            focus=plan.focus,
            retained=suppress.scopes_read(texts.values()),
        )
        try:
            mine_tagged, deferred = engine.judge(plan.rules, project, rest, plan.with_evidence)
            remote = _receive(receive)
            if remote is None:
                return None
            project.remote_terraform = remote
            late, again = engine.judge(plan.rules, project, deferred, plan.with_evidence)
        except PartialViewError:
            # A rule (a user's, say: any predicate may serve any scope) reads Terraform other
            # than through terraform_resources: this tree is scanned the ordinary way.
            return None
        if again:
            return None
        stand, view_here = project, project.problems
    done_there = _receive(receive)
    if done_there is None:
        return None
    tagged, view_problems, parsed, stubs = done_there
    for path, (found, failed, text) in parsed.items():
        problems[path] = found
        if failed:
            texts.pop(path, None)
        if text is not None:
            texts[path] = text
    findings, evidence, rule_problems = engine.merge([mine_tagged, late, tagged])
    return Split(
        Stand(stand, stubs),
        findings,
        evidence,
        rule_problems,
        [p for a in artifacts for p in problems.get(a.path, ())],
        [*view_here, *view_problems],
    )


def _other(
    plan: _Plan,
    index: int,
    texts: dict[str, str],
    problems: dict[str, list[Problem]],
    stored: set[str],
) -> object | None:
    """A document of the other kinds, read and parsed or loaded, with its text and problems
    kept and (with the cache) its entry given to the shelf once (``stored``); None when it
    failed."""
    doc, text, blob, kept = _obtain(plan, index, pickle=False)
    path = plan.artifacts[index].path
    problems[path] = list(doc.problems)  # type: ignore[attr-defined]
    if isinstance(doc, scanning._Failed):
        texts.pop(path, None)
        return None
    texts[path] = text
    if blob is not None and plan.sources is not None and path not in stored:
        stored.add(path)
        plan.sources.writer.take(path, plan.sources.keys[path], None if kept else blob, blob)
    return doc


def _other_parts(
    plan: _Plan, others: list[int], rules: list[int]
) -> tuple[list[other_parts.Part], other_parts.Ways] | None:
    """The parts the other kinds are judged in (other_parts.py), and how each rule is; None
    when they are judged whole: with a focus (a run that reports on a few files leaves the
    others' documents in the cache, _may_wait), or where the tree or the rules do not fall
    into parts."""
    if plan.focus is not None:
        return None
    ways = other_parts.ways(plan.rules, rules)
    if ways is None:
        return None
    parts = other_parts.plan(plan.artifacts, others, scanning.file_size)
    return None if parts is None else (parts, ways)


def _judge_parts(
    plan: _Plan,
    in_parts: tuple[list[other_parts.Part], other_parts.Ways],
    texts: dict[str, str],
    problems: dict[str, list[Problem]],
    receive: Connection,
    progress: Callable[[int, int], None] | None,
    done: int,
    stored: set[str],
    lap: Callable[[str], None] | None,
) -> tuple[other_parts.Stand, engine._Tagged, list[Problem]] | None:
    """The other kinds read, parsed and judged a part at a time, then the rules that wait for
    the whole tree once the worker's Terraform resources are here; None where a part reached
    another (nothing of the parts is kept: the caller judges the other kinds whole)."""
    parts, ways = in_parts
    artifacts = plan.artifacts
    others = [i for part in parts for i in part.indices]
    judged = other_parts.Parts(plan.rules, ways, plan.root, artifacts, others, plan.with_evidence)
    total = len(artifacts)
    count = done + len(others)
    try:
        for part in parts:
            documents: dict[str, object] = {}
            marked: set[str] = set()
            for index in part.indices:
                path = artifacts[index].path
                doc = _other(plan, index, texts, problems, stored)
                if doc is not None:
                    documents[path] = doc
                    if suppress.MARKER in texts[path]:
                        marked.add(path)
                done += 1
                if progress is not None:
                    progress(done * total // count, total)
            if lap is not None:
                lap("parse")
            judged.judge(part, documents, frozenset(marked))
            del documents
            if lap is not None:
                lap("rules")  # parsing and judging take turns, a part at a time
    except PartialViewError:
        return None
    remote = _receive(receive)
    if remote is None:
        return None
    tagged = judged.finish(remote)
    return judged.stand(), tagged, judged.view_problems


def _may_wait(plan: _Plan, sources: Sources, path: str) -> bool:
    """Whether a document of this process's kinds may stay in the cache until a rule asks for
    it: in a run that reports on other files, one the cache holds as the file is now."""
    return (
        plan.focus is not None
        and path not in plan.focus
        and path not in sources.failed
        and sources.cached_here(path)
    )


class _Waiting(dict[str, Any]):
    """This process's documents, some of which (_may_wait) are loaded from the cache only when
    first asked for (``in``, ``[]``, ``get``): a run that reports on a few files judges few of
    the others' subjects, or none when no rule of their kinds can find anything in those few
    files, and loading every document was 0.28 s of a pre-commit run of the 10,322-file tree.
    One that turns out not to load nor parse is not there. Iterating lists only those loaded."""

    def __init__(self, load: Callable[[str], object | None]) -> None:
        super().__init__()
        self._load = load
        self._waiting: set[str] = set()

    def wait(self, path: str) -> None:
        self._waiting.add(path)

    def _arrive(self, path: object) -> None:
        if path in self._waiting:
            assert isinstance(path, str)
            self._waiting.discard(path)
            doc = self._load(path)
            if doc is not None:
                self[path] = doc

    def __contains__(self, path: object) -> bool:
        self._arrive(path)
        return super().__contains__(path)

    def __getitem__(self, path: str) -> Any:
        self._arrive(path)
        return super().__getitem__(path)

    def get(self, path: str, default: Any = None) -> Any:
        self._arrive(path)
        return super().get(path, default)

    def pop(self, path: str, *default: Any) -> Any:
        self._waiting.discard(path)
        return super().pop(path, *default)


def _drop_text(sources: Sources, texts: dict[str, str], path: str) -> None:
    text = sources.texts.get(path)
    if text is not None and suppress.MARKER not in text:
        del sources.texts[path]
        texts.pop(path, None)


def _receive(receive: Connection) -> Any:
    """The worker's next message; None when it died, failed, or sent what cannot be read (the
    parent then scans the ordinary way: a worker's trouble never fails the scan)."""
    try:
        message = loads(receive.recv_bytes())
    except Exception:  # EOF (it died), or a damaged message: as good as none
        return None
    if not isinstance(message, tuple) or not message or message[0] != "ok":
        return None
    return message[1]


def _mostly_terraform(
    artifacts: list[Artifact], terraform: list[int], here: set[int], sources: Sources | None
) -> bool:
    """Whether this process would parse so much of the Terraform, for want of other work,
    that judging it in parts in both processes does better: this process holds its share until
    it is sent, and pickling and loading it costs both. Measured without the cache on the
    10,322-file tree (a share of 0.24 of the Terraform: the split ran 4.66 s against 5.2 s for
    both in parts, the same memory), the same without its nginx files (0.43: even) and also
    without half its compose files (0.51: 4.0-4.2 s and 179 MB against 3.8 s and 140 MB), and
    with one compose file (0.69: 3.7-3.8 s and 193 MB against 2.6-2.8 s and 64 MB; with a cold
    cache 4.5-5.0 s and 203 MB against 3.1-3.3 s and 100 MB, and with one file changed since
    the cache was written 2.5 s and 301 MB against 1.3 s and 137 MB). The corpus (0.53 of 3.2
    MB) is faster split (0.71 s against 0.88 s): below a few parts, holding the share costs
    little and the parts' planning, done before the fork, more."""
    if not here:
        return False
    sizes = {i: _size(artifacts[i], sources) / 1e6 for i in terraform}
    share = sum(sizes[i] for i in here)
    return share > _SHARE_MEGABYTES and share > _SHARE_MOST * sum(sizes.values())


def _size(artifact: Artifact, sources: Sources | None) -> int:
    """A file's size, to plan by: with the cache, the length of its text, at hand (a stat of
    every file was 0.03 s at 10,000 files, before the worker could start)."""
    text = sources.texts.get(artifact.path) if sources is not None else None
    return len(text) if text is not None else scanning.file_size(artifact)


def _share_here(
    artifacts: list[Artifact], terraform: list[int], sources: Sources | None
) -> set[int]:
    """The Terraform files this process takes, so that both finish about together: by the
    bytes of each file and the costs above. A document the cache holds is the worker's, which
    loads it from the Terraform shelf."""
    cost: dict[int, tuple[float, float, float]] = {}  # there, here, there for one taken here
    here_total = there_total = 0.0
    for index, artifact in enumerate(artifacts):
        megabytes = _size(artifact, sources) / 1e6
        if artifact.kind is not Kind.TERRAFORM:
            here_total += megabytes * _OTHER
            continue
        if sources is not None and sources.terraform_cached(artifact.path):
            there_total += megabytes * (_TF_LOAD + _TF_RULES)
            continue
        obtain = megabytes * _TF_PARSE
        # Taken here, a parsed document is pickled for the worker (with the cache, that
        # pickle is the cache's entry, made wherever it is parsed), and the worker loads it.
        if sources is not None:
            obtain += megabytes * _TF_PICKLE
        here_cost = obtain + (megabytes * _TF_PICKLE if sources is None else 0.0)
        cost[index] = (obtain, here_cost, megabytes * _TF_LOAD)
        there_total += obtain + megabytes * _TF_RULES
    here: set[int] = set()
    # From the end: the worker starts at the front, and a module's files stay together.
    for index in reversed(terraform):
        if index not in cost:
            continue  # cached: the worker's
        there, taken_here, loaded_there = cost[index]
        if here_total + taken_here > there_total - there + loaded_there:
            break
        here.add(index)
        here_total += taken_here
        there_total += loaded_there - there
    return here


def _worker() -> None:
    """In the worker: parse its Terraform files, take this process's, send the resources that
    rules of other families read, judge the Terraform rules, send what they found."""
    assert _WORK is not None
    send = _WORK[3]
    gc.disable()  # as in scan: nothing cyclic to collect in a worker's lifetime
    # Ctrl-C is the parent's to handle (it stops the worker): no traceback from here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plan = _WORK[0]
        if plan.sources is None:
            message = dumps(("ok", _work(*_WORK)))
        else:
            shelf = plan.sources.store.open_shelf(terraform=True)
            writer = plan.sources.store.shelf_writer(True, shelf)
            try:
                message = dumps(("ok", _work(*_WORK, shelf, writer)))
            finally:
                writer.discard()  # nothing once closed
                shelf.close()
    except Exception:
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        message = dumps(("failed",))  # the parent scans the ordinary way
    send.send_bytes(message)


def _work(
    plan: _Plan,
    mine: list[int],
    inbox: Queue[Any],
    send: Connection,
    shelf: Shelf | None = None,
    writer: ShelfWriter | None = None,
) -> tuple[Any, list[Problem], dict[str, _Parsed], dict[str, list[Subject]]]:
    """What the worker found (see _Parsed). The Terraform rules are judged a few modules at a
    time (terraform_parts.py), each part's documents let go before the next is parsed; this
    process's share is taken when a part first needs it. With the cache, the documents are
    taken from the Terraform ``shelf`` where they can be, and each goes to ``writer`` as it
    comes; the shelf is stored before the findings are sent (a worker still writing when the
    parent is done would be stopped, its file left half written)."""
    parsed: dict[str, _Parsed] = {}
    texts: dict[str, str] = {}
    sources = plan.sources
    mine_set = set(mine)
    terraform = [i for i, a in enumerate(plan.artifacts) if a.kind is Kind.TERRAFORM]
    for index in terraform:
        artifact = plan.artifacts[index]
        if plan.sources is not None:
            failure = plan.sources.failed.get(artifact.path)
            text: str | Problem = failure or plan.sources.texts[artifact.path]
        elif index in mine_set:
            text = scanning.read_text(artifact, plan.max_bytes)
        else:
            text = plan.read[index]
        if isinstance(text, Problem):
            if index in mine_set:
                parsed[artifact.path] = ([text], True, None)
            continue
        texts[artifact.path] = text
    marked = {path for path, text in texts.items() if suppress.MARKER in text}
    kept = {path: texts[path] for path in marked}
    shared: dict[str, object | None] = {}
    complete: list[bool] = []  # the last chunk of the share came
    early: set[str] = set()  # the share's files parsed here before they came
    place = {a.path: i for i, a in enumerate(plan.artifacts)}

    def take(wait: bool) -> None:
        """The chunks of the parent's share that came (with ``wait``, all of them)."""
        while not complete:
            arrived = _shared(plan, inbox, wait=wait, writer=writer)
            if arrived is None:
                return
            docs, last = arrived
            shared.update((p, d) for p, d in docs.items() if p not in early)
            if last:
                complete.append(True)

    def parse(artifact: Artifact, text: str) -> object | None:
        index = place[artifact.path]
        if index not in mine_set:
            if artifact.path not in shared:
                take(wait=False)
            if artifact.path in shared:
                doc = shared.pop(artifact.path)
                return doc if doc is not None else _parsed_here(artifact, text)
            if complete:
                return None  # it failed there (the parent has its problems)
            # Not sent yet (a question read a module of the share first): parsed here
            # rather than waited for; the parent's copy is dropped when it comes.
            early.add(artifact.path)
            return _parsed_here(artifact, text)
        doc, _, blob, from_shelf = _obtain(plan, index, pickle=False, shelf=shelf)
        found = list(doc.problems)  # type: ignore[attr-defined]
        if isinstance(doc, scanning._Failed):
            parsed[artifact.path] = (found, True, None)
            return None
        # The parent needs a text only for its ignore comments: snippets are made here.
        parsed[artifact.path] = (found, False, kept.get(artifact.path) if sources is None else None)
        if sources is not None and writer is not None and blob is not None:
            key = sources.keys[artifact.path]
            writer.take(artifact.path, key, None if from_shelf else blob, blob)
        return doc

    # A Terraform rule that reads other kinds (PartialViewError) fails the worker: the parent
    # then scans the ordinary way.
    summaries = None
    if sources is not None and shelf is not None and writer is not None:
        summaries = scanning.ModuleSummaries(sources.keys, shelf, writer.take)
    judged = judge_in_parts(
        plan.rules,
        plan.terraform_rules,
        plan.artifacts,
        plan.root,
        texts,
        parse,
        plan.with_evidence,
        plan.focus,
        marked,
        suppress.scopes_read(kept.values()),
        summaries=summaries,
    )
    take(wait=True)  # all of it, or the parent's queue thread waits at exit
    send.send_bytes(dumps(("ok", judged.cross_family)))
    if writer is not None:
        writer.close()
    return judged.tagged, judged.view_problems, parsed, judged.stubs


def _shared(
    plan: _Plan,
    inbox: Queue[Any],
    wait: bool = True,
    writer: ShelfWriter | None = None,
) -> tuple[dict[str, object | None], bool] | None:
    """A chunk of the parent's Terraform documents, by path (None: to be parsed here), and
    whether it is the last; None when none has come and ``wait`` is false. With the cache,
    ``writer`` gets the cache entry of each (its pickle as sent) that loads."""
    import queue

    if wait:
        message = _take(inbox)
    else:
        try:
            message = inbox.get(block=False)
        except queue.Empty:
            return None
    sent, together, last = message
    share = iter(_load_together(together, len(sent)))
    del together  # loaded: the pickle is let go
    out: dict[str, object | None] = {}
    for index, blob in sent:
        path = plan.artifacts[index].path
        out[path] = doc = scanning._load(blob) if blob is not None else next(share)
        if plan.sources is not None and writer is not None and blob is not None and doc is not None:
            writer.put(path, plan.sources.keys[path], blob)
    return out, last


def _parsed_here(artifact: Artifact, text: str) -> object | None:
    """A document of the parent's that could not be sent: parsed again here."""
    doc = scanning.parse_text(artifact, text)
    return None if isinstance(doc, scanning._Failed) else doc


def _together(docs: list[object]) -> bytes | None:
    """The documents in one pickle, where one each would be as large: the memo of one pickler
    shares what the parser shared among files (the names it interned, equal spans), which
    documents loaded each from its own pickle do not (1.8 times the memory of the parsed
    ones, measured on 800 generated Terraform files). None: not picklable, parsed there."""
    return scanning._dumps(docs)


def _load_together(together: bytes | None, count: int) -> list[object | None]:
    """The documents of _together, or None for each where that could not be loaded."""
    loaded = scanning._load(together)
    return loaded if isinstance(loaded, list) else [None] * count


def _take(inbox: Queue[Any]) -> Any:
    """The parent's Terraform documents. The queue's pipe is open at both ends here too, so a
    parent that died never reads as EOF: waited for in steps, checking it is still there."""
    import queue

    parent = os.getppid()
    while True:
        try:
            return inbox.get(timeout=1)
        except queue.Empty:
            if os.getppid() != parent:
                os._exit(1)
