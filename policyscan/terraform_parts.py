"""The Terraform rules judged a part of the tree at a time, so that the documents of one part are
let go before the next is parsed.

Terraform is most of what a scan holds (102 of the 163 MB of documents of a 10,000-file tree),
and its rules read their own module, with two exceptions that both have a small answer: which
modules another module calls with a relative ``source`` (their variables are then unknown),
and the few questions a rule asks of the whole tree (``WIDE_QUESTIONS`` in the Terraform
predicates: is there an alarm anywhere, a cross-region backup, a composite alarm, an
account-level public access block). Only a module with a file that names what a question is
about can change its answer, so a look at each file's text (a substring, no parsing) finds the
modules that must be read first. Those are parsed and judged together first, and the answers
worked out from them are given to every later part (``Project.seed``); the other modules
follow in parts of about ``PART_BYTES`` of source, each parsed, judged and dropped. A part
asked a question it was not given raises PartialViewError: the caller then scans the ordinary
way, so a new project-wide question can cost memory, never a wrong answer.

The items come back tagged as one project of all the modules would tag them (engine.merge):
each subject's place in its scope is worked out once every part has told how many subjects
each of its files made. That is also what lets other processes judge some of the parts
(``Helpers``): forked once the first modules are judged and the answers known, each judges a
run of the later parts and sends back what they made, which is merged as if judged here.
"""

from __future__ import annotations

import gc
import os
import posixpath
import signal
import time
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from policyscan.model import Artifact, Finding, Kind, Problem
from policyscan.policy import engine
from policyscan.policy.predicates import terraform as tf_predicates
from policyscan.project import PartialViewError, Project, TerraformModule, facts, local_calls
from policyscan.scan import _with_snippet as with_snippet

if TYPE_CHECKING:
    from array import array
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from policyscan.policy.loader import Rule
    from policyscan.project import Subject

# Source bytes of the modules judged together. Smaller parts hold less at once but each costs
# a project's fixed work (indexes, the rules' loop): measured on the 10,322-file tree, see
# docs/performance.md.
PART_BYTES = 1_000_000

# The Terraform scopes whose subjects come in the order of files (one per assignment of a tfvars
# file, Project._tfvars); the others come in module order (Project.terraform_index).
_BY_FILE = frozenset({"terraform.tfvars"})

_TERRAFORM = frozenset({Kind.TERRAFORM})

# The document of a file, or None when it failed (the caller keeps its problems).
Parse = Callable[[Artifact, str], object | None]


@dataclass(frozen=True)
class Helpers:
    """Processes forked to judge the later parts, a run of parts each, while this one judges
    the first (and then does ``meanwhile``)."""

    count: int  # processes besides this one
    # The rest of this process's work before it needs the helpers' results (the other kinds'
    # parsing), in bytes of Terraform that cost as much: it takes fewer parts for it.
    here_bytes: int
    meanwhile: Callable[[], None]  # that work, done once this process's parts are judged
    report: Callable[[list[str]], object]  # in a helper: what parse recorded of these files
    absorb: Callable[[object], None]  # here: a helper's report


class Summaries(Protocol):
    """What a module gives the rules of other kinds (Project.cross_family_terraform), kept
    from a scan to the next, so that a focused run (pre-commit) need not read the modules it
    does not judge. A module's summary depends on its own files and on whether another module
    calls it (its variables are then unknown), and on nothing else."""

    def known(
        self, directory: str, paths: Sequence[str], called: bool
    ) -> dict[str, TerraformModule] | None:
        """The module's summary, if kept for these files as they are; None otherwise."""

    def learn(
        self,
        directory: str,
        paths: Sequence[str],
        called: bool,
        found: dict[str, TerraformModule],
    ) -> None:
        """The module's summary, worked out from its documents."""

    def unread(self, directories: Sequence[str], paths: Sequence[str]) -> None:
        """Modules answered from their summaries, and their files: never parsed nor
        loaded."""


@dataclass
class Judged:
    """What the Terraform rules made, as from one project of every module."""

    tagged: engine._Tagged
    view_problems: list[Problem]
    cross_family: dict[str, TerraformModule]  # Project.cross_family_terraform of every part
    stubs: dict[str, list[Subject]]  # subjects of block scopes in ``marked`` files (split._stubs)


def may_call_modules(text: str) -> bool:
    """Whether the file can hold a ``module`` block with a relative source: the text has one
    (or hides it behind an escape)."""
    return _escapes(text) or _names_a_call(text)


def _names_a_call(text: str) -> bool:
    return "./" in text and "source" in text


def read_first(text: str) -> bool:
    """Whether the file is read before any part is judged whatever the tree: it may call a
    module, or names what a question needs from every module that does (a stage without
    ``settles``). Others named by a question are read first only up to the module that
    settles it."""
    return may_call_modules(text) or any(
        _marked(text, stage)
        for stages in tf_predicates.WIDE_QUESTIONS
        for stage in stages
        if stage.settles is None
    )


def _escapes(text: str) -> bool:
    """Whether the text escapes characters (``\\u0061``; in JSON also ``\\/``), which can
    spell any name or path."""
    return "\\" in text and ("\\u" in text or "\\U" in text or "\\/" in text)


def _marked(text: str, stage: tf_predicates.WideStage) -> bool:
    if stage.ignore_case:
        text = text.lower()
    return any(marker in text for marker in stage.markers)


def judge_in_parts(
    rules: Sequence[Rule],
    indices: Sequence[int],
    artifacts: list[Artifact],
    root: str,
    texts: dict[str, str],
    parse: Parse,
    with_evidence: bool,
    focus: frozenset[str] | None,
    marked: set[str],
    retained: frozenset[str],
    timings: dict[str, float] | None = None,
    part_bytes: int | None = None,
    helpers: Helpers | None = None,
    summaries: Summaries | None = None,
) -> Judged:
    """Judge the Terraform rules at ``indices`` on the Terraform files of ``texts`` (each file's
    text, by path), parsing each with ``parse``; ``texts`` is emptied as parts are judged (the
    findings get their snippets here). ``marked``: the files with an ignore comment, whose
    subjects of block scopes are kept as stubs. ``timings`` gets "parse.terraform" (parsing
    the documents and letting them go), "project" and each rule's seconds, of this process.
    With ``helpers``, the later parts are judged in forked processes (see Helpers). With
    ``summaries``, each module judged or read leaves its summary, and with a focus a part none
    of whose modules is in focus is answered from theirs when all are known. Raises
    PartialViewError where a part cannot be judged alone, or a helper failed."""
    place = {a.path: i for i, a in enumerate(artifacts)}
    by_dir: dict[str, list[str]] = {}
    for path in sorted(texts, key=place.__getitem__):
        by_dir.setdefault(posixpath.dirname(path), []).append(path)
    order = sorted(by_dir)
    docs: dict[str, object] = {}
    attempted: set[str] = set()

    def parse_files(paths: Iterable[str]) -> None:
        started = time.perf_counter()
        for path in paths:
            if path not in attempted:
                attempted.add(path)
                doc = parse(artifacts[place[path]], texts[path])
                if doc is not None:
                    docs[path] = doc
        if timings is not None:
            key = "parse.terraform"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - started

    judging = _Parts(rules, indices, with_evidence, texts, marked, timings)

    def project_of(directories: Sequence[str], part: bool, judged: bool = True) -> Project:
        held = {p: docs[p] for d in directories for p in by_dir[d] if p in docs}
        return Project(
            root,
            artifacts,
            held,
            kinds=_TERRAFORM,
            focus=focus,
            retained=retained,
            modules_called=calls,
            terraform_part=part,
            observe=judging.observe if judged else None,
        )

    def files(directories: Iterable[str]) -> list[str]:
        return [p for d in directories for p in by_dir[d]]

    def drop(paths: Iterable[str]) -> None:
        # Timed with parsing: the documents' end, as the parse floor's bare loop counts it
        # (it lets each parse go).
        started = time.perf_counter()
        for path in paths:
            docs.pop(path, None)
        if timings is not None:
            key = "parse.terraform"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - started

    escapes = {p for p in files(order) if _escapes(texts[p])}
    # First the files that can call other modules: every module's variables depend on them.
    callers = [p for p in files(order) if p in escapes or _names_a_call(texts[p])]
    parse_files(callers)
    called: set[str] = set()
    for path in callers:
        doc = docs.get(path)
        if doc is not None and not path.endswith((".tfvars", ".tfvars.json")):
            for block in doc.blocks:  # type: ignore[attr-defined]
                if block.type == "module":
                    called.update(local_calls(posixpath.dirname(path), block))
    calls = frozenset(called)
    # Then, for each project-wide question, the modules that can change its answer: the
    # first that settles it, or every one that names what it asks about.
    early: set[str] = set()
    escaped = {posixpath.dirname(p) for p in escapes}
    for stages in tf_predicates.WIDE_QUESTIONS:
        for stage in stages:
            settled = False
            for directory in order:
                if directory not in escaped and not any(
                    _marked(texts[p], stage) for p in by_dir[directory]
                ):
                    continue
                parse_files(by_dir[directory])
                if stage.settles is None:
                    early.add(directory)
                    continue
                alone = project_of([directory], part=False, judged=False)
                module = alone.terraform_modules.get(directory)
                if module is not None and stage.settles(module):
                    early.add(directory)
                    settled = True
                    break
            if settled:
                break
    # Those modules answer the questions as the whole tree would: a module that does not
    # settle a question adds nothing to its answer, and one that names nothing it asks about
    # cannot.
    first = project_of(sorted(early), part=False)
    answers: dict[Hashable, Any] = tf_predicates.wide_answers(first)
    first.seed(answers)
    if early:
        judging.judge(first, files(sorted(early)))
    del first
    drop(files(early))
    # The modules parsed already (callers, modules that did not settle a question) next, so
    # that their documents go first.
    rest = sorted(
        (d for d in order if d not in early),
        key=lambda d: not any(p in attempted for p in by_dir[d]),
    )
    # With a focus (pre-commit), a part none of whose directories holds a file in focus has no
    # subject to judge (Project.part_of: a Terraform subject's part is its module's files):
    # only the resources other families read are taken from it.
    focused = None if focus is None else {posixpath.dirname(p) for p in focus}
    limit = PART_BYTES if part_bytes is None else part_bytes

    def judge_group(group: list[str]) -> None:
        judged = focused is None or not focused.isdisjoint(group)
        if not judged and summaries is not None:
            known = [summaries.known(d, by_dir[d], d in calls) for d in group]
            if all(k is not None for k in known):
                for found in known:
                    judging.cross_family.update(found or {})
                judging.let_go(files(group))
                summaries.unread(group, files(group))
                return
        parse_files(files(group))
        part = project_of(group, part=True)
        part.seed(answers)
        found = (judging.judge if judged else judging.skip)(part, files(group))
        del part
        drop(files(group))
        if summaries is not None:
            for d in group:
                summaries.learn(d, by_dir[d], d in calls, {d: found[d]} if d in found else {})

    groups = _groups(rest, by_dir, texts, limit)
    if helpers is None:
        for group in groups:
            judge_group(group)
        return judging.result(place)
    sizes = [sum(len(texts[p]) for p in files(group)) for group in groups]
    mine, *theirs = _share_out(groups, sizes, helpers.count, helpers.here_bytes)
    running = _fork(
        [run for run in theirs if run], judging, judge_group, files, docs, texts, helpers
    )
    try:
        for group in mine:
            judge_group(group)
        helpers.meanwhile()
        for _, receive in running:
            judging.absorb(_received(receive), helpers)
    finally:
        for process, receive in running:
            receive.close()
            if process.is_alive():  # given up here, or interrupted
                process.kill()
            process.join()
    return judging.result(place)


def _share_out(
    groups: list[list[str]], sizes: list[int], count: int, here_bytes: int
) -> list[list[list[str]]]:
    """The groups in ``count + 1`` runs, in order, this process's first, of about the same
    cost once this process's other work (``here_bytes``) is counted with its run."""
    runs: list[list[list[str]]] = [[] for _ in range(count + 1)]
    each = (sum(sizes) + here_bytes) / (count + 1)
    at = here_bytes
    for group, size in zip(groups, sizes, strict=True):
        runs[min(count, int((at + size / 2) // each) if each else 0)].append(group)
        at += size
    return runs


_Running = list[tuple["BaseProcess", "Connection"]]  # each helper, and where it sends


def _fork(
    runs: list[list[list[str]]],
    judging: _Parts,
    judge_group: Callable[[list[str]], None],
    files: Callable[[Iterable[str]], list[str]],
    docs: dict[str, object],
    texts: dict[str, str],
    helpers: Helpers,
) -> _Running:
    """A helper forked for each run; this process lets go of their texts and documents.
    PartialViewError where one cannot be started."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    running: _Running = []
    for run in runs:
        paths = files(d for group in run for d in group)
        receive, send = context.Pipe(duplex=False)

        def work(
            run: list[list[str]] = run, paths: list[str] = paths, send: Connection = send
        ) -> None:
            _help(run, paths, send, judging, judge_group, docs, texts, helpers)

        process = context.Process(target=work, daemon=True)
        try:
            process.start()
        except OSError:
            receive.close()
            send.close()
            for started, connection in running:
                started.kill()
                connection.close()
            raise PartialViewError("a helper could not be started") from None
        send.close()  # the helper's end: with it closed here, a dead helper reads as EOF
        running.append((process, receive))
        for path in paths:
            texts.pop(path, None)
            docs.pop(path, None)
    return running


def _help(
    run: list[list[str]],
    paths: list[str],
    send: Connection,
    judging: _Parts,
    judge_group: Callable[[list[str]], None],
    docs: dict[str, object],
    texts: dict[str, str],
    helpers: Helpers,
) -> None:
    """In a helper: judge its run of parts, send what they made."""
    from policyscan.cache import dumps

    gc.disable()  # as in scan: nothing cyclic to collect in a helper's lifetime
    # Ctrl-C is the parent's to handle (it stops the helpers): no traceback from here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mine = set(paths)
    for held in (docs, texts):
        for path in [p for p in held if p not in mine]:
            del held[path]
    judging.start_over()
    try:
        for group in run:
            judge_group(group)
        message = dumps(("ok", judging.made(), helpers.report(paths)))
    except Exception:
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        message = dumps(("failed",))  # the caller scans the ordinary way
    send.send_bytes(message)


def _received(receive: Connection) -> tuple[_Made, object]:
    """A helper's parts and report; PartialViewError when it failed or died."""
    from policyscan.cache import loads

    try:
        message = loads(receive.recv_bytes())
    except (EOFError, OSError):
        raise PartialViewError("a helper ended without its parts") from None
    if message[0] != "ok":
        raise PartialViewError("a helper could not judge its parts")
    return message[1], message[2]


def _groups(
    directories: list[str], by_dir: dict[str, list[str]], texts: dict[str, str], limit: int
) -> list[list[str]]:
    """The modules in order, in runs of about ``limit`` characters of source."""
    groups: list[list[str]] = []
    size = limit
    for directory in directories:
        if size >= limit:
            groups.append([])
            size = 0
        groups[-1].append(directory)
        size += sum(len(texts[p]) for p in by_dir[directory])
    return groups


# What the parts judged by one process made: each part's tagged items with its runs, the view's
# problems, the resources other families read, the stubs (_Parts).
_Made = tuple[
    list[tuple[engine._Tagged, dict[str, list[tuple[str, int]]]]],
    list[Problem],
    dict[str, TerraformModule],
    dict[str, list["Subject"]],
]


class _Parts:
    """The rules judged part after part, and each part's items tagged by the place of their
    subject in its part, with what it takes to move them to the whole tree's places."""

    def __init__(
        self,
        rules: Sequence[Rule],
        indices: Sequence[int],
        with_evidence: bool,
        texts: dict[str, str],
        marked: set[str],
        timings: dict[str, float] | None,
    ) -> None:
        self.rules = rules
        self.indices = indices
        self.with_evidence = with_evidence
        self.texts = texts
        self.marked = marked
        self.timings = timings
        self.scopes = {rules[i].scope for i in indices}
        # For each part: its tagged items, and by scope the files its subjects came from, in
        # its order, with how many each made.
        self.parts: list[tuple[engine._Tagged, dict[str, list[tuple[str, int]]]]] = []
        self.runs: dict[str, list[tuple[str, int]]] = {}
        self.view_problems: list[Problem] = []
        self.cross_family: dict[str, TerraformModule] = {}
        self.stubs: dict[str, list[Subject]] = {}

    def start_over(self) -> None:
        """In a helper: forget what this process had judged before the fork."""
        self.parts = []
        self.view_problems = []
        self.cross_family = {}
        self.stubs = {}

    def made(self) -> _Made:
        return self.parts, self.view_problems, self.cross_family, self.stubs

    def absorb(self, received: tuple[_Made, object], helpers: Helpers) -> None:
        """A helper's parts, after this process's own (they came later in the order)."""
        (parts, view_problems, cross_family, stubs), report = received
        self.parts.extend(parts)
        self.view_problems.extend(view_problems)
        self.cross_family.update(cross_family)
        for scope, subjects in stubs.items():
            self.stubs.setdefault(scope, []).extend(subjects)
        helpers.absorb(report)

    def observe(self, scope: str, subjects: list[Subject]) -> None:
        if scope in self.runs:  # built again after a release: the same subjects
            return
        runs: list[tuple[str, int]] = []
        for subject in subjects:
            if runs and runs[-1][0] == subject.path:
                runs[-1] = (subject.path, runs[-1][1] + 1)
            else:
                runs.append((subject.path, 1))
        self.runs[scope] = runs

    def judge(self, part: Project, paths: Sequence[str]) -> dict[str, TerraformModule]:
        """Judge a part; ``paths``: its files (the texts to let go after). Returns what the
        part gives the rules of other kinds."""
        self.runs = {}
        timings: dict[str, float] | None = {} if self.timings is not None else None
        tagged, deferred = engine.judge(
            self.rules, part, self.indices, self.with_evidence, timings=timings
        )
        if deferred:  # cannot be: this process holds the Terraform documents
            raise PartialViewError("a Terraform rule was deferred")
        if self.timings is not None and timings is not None:
            for key, seconds in timings.items():
                self.timings[key] = self.timings.get(key, 0.0) + seconds
        held = set(part.documents)
        line_starts: dict[str, array[int]] = {}
        findings: list[tuple[engine._Tag, Finding]] = []
        for tag, finding in tagged[0]:
            if finding.location.path not in held:
                # Its text is another part's: cannot be (a rule blames its own module).
                raise PartialViewError("a Terraform finding outside its part")
            findings.append((tag, with_snippet(finding, self.texts, line_starts)))
        self.parts.append(((findings, tagged[1], tagged[2]), self.runs))
        self.view_problems.extend(part.problems)
        found = part.cross_family_terraform()
        self.cross_family.update(found)
        mine = self.marked & held
        if mine:
            from policyscan.suppress import TERRAFORM_BLOCK_SCOPES

            for scope in TERRAFORM_BLOCK_SCOPES:
                self.stubs.setdefault(scope, []).extend(stubs(part, scope, mine))
        self.let_go(paths)
        return found

    def skip(self, part: Project, paths: Sequence[str]) -> dict[str, TerraformModule]:
        """A part with nothing to judge: what other families read of it (returned too), and
        its texts let go."""
        found = part.cross_family_terraform()
        self.cross_family.update(found)
        self.let_go(paths)
        return found

    def let_go(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.texts.pop(path, None)

    def result(self, place: dict[str, int]) -> Judged:
        # Where each file's subjects start in each scope of the whole tree.
        starts: dict[str, dict[str, int]] = {}
        for scope in self.scopes:
            files = [run for _, runs in self.parts for run in runs.get(scope, ())]
            if scope in _BY_FILE:
                files.sort(key=lambda run: place[run[0]])
            else:
                files.sort(key=lambda run: (posixpath.dirname(run[0]), place[run[0]]))
            at = 0
            starts[scope] = {}
            for path, count in files:
                starts[scope][path] = at
                at += count
        findings: list[tuple[engine._Tag, Finding]] = []
        evidence: list[tuple[engine._Tag, Any]] = []
        problems: list[tuple[engine._Tag, Problem]] = []
        for (found, shown, failed), runs in self.parts:
            move = _Mover(self.rules, runs, starts)
            findings.extend((move(tag), item) for tag, item in found)
            evidence.extend((move(tag), item) for tag, item in shown)
            problems.extend((move(tag), item) for tag, item in failed)
        findings.sort(key=engine.tag_of)
        evidence.sort(key=engine.tag_of)
        problems.sort(key=engine.tag_of)
        return Judged(
            (findings, evidence, problems), self.view_problems, self.cross_family, self.stubs
        )


class _Mover:
    """A part's tags moved to the whole tree's places: the subject at place i of the part's
    scope is the (i - s)-th of its file's, whose run starts at s in the part."""

    def __init__(
        self,
        rules: Sequence[Rule],
        runs: dict[str, list[tuple[str, int]]],
        starts: dict[str, dict[str, int]],
    ) -> None:
        self.rules = rules
        self.where: dict[str, tuple[list[int], list[int]]] = {}
        for scope, scope_runs in runs.items():
            local: list[int] = []
            whole: list[int] = []
            at = 0
            for path, count in scope_runs:
                local.append(at)
                whole.append(starts[scope][path])
                at += count
            self.where[scope] = (local, whole)

    def __call__(self, tag: engine._Tag) -> engine._Tag:
        r_index, s_index, k = tag
        local, whole = self.where[self.rules[r_index].scope]
        run = bisect_right(local, s_index) - 1
        return (r_index, whole[run] + s_index - local[run], k)


class Scopes(Protocol):
    def subjects(self, scope: str) -> list[Subject]: ...


class Stand:
    """The project a scan judged in parts leaves for what follows it (inline ignores): the
    view of the other kinds (or their blocks, other_parts.Stand), and the Terraform subjects,
    without their facts, where a file has an ignore."""

    def __init__(self, project: Scopes, terraform: dict[str, list[Subject]]) -> None:
        self.project = project
        self.terraform = terraform

    def subjects(self, scope: str) -> list[Subject]:
        if scope.startswith("terraform."):
            return self.terraform.get(scope, [])
        return self.project.subjects(scope)


def stubs(project: Project, scope: str, paths: set[str]) -> list[Subject]:
    """A scope's subjects in ``paths`` as inline ignores read them: where they are and what
    they are called (an ignore comment only reaches the blocks of its own file)."""
    return [
        replace(s, facts=facts(s.path, s.span), node=None)
        for s in project.subjects(scope)
        if s.path in paths
    ]
