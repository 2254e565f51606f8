"""A scan in two processes split by kind: the Terraform files in a forked worker, the rest here.

Terraform is most of a scan's parsing, and its rules read nothing but Terraform, so a worker
that parses the Terraform files and judges the Terraform rules needs none of the other
documents, and sends back only what it found: the documents themselves never cross (moving
documents between processes cost 0.4-0.5 s each way at 10,000 files, and a fork after parsing
copies every page either process then touches). This process parses the other files, a share of
the Terraform ones when the Terraform side is the heavier (sent to the worker as they are
parsed, pickled), and judges every other rule. A rule of another family that reads Terraform
does so through ``Project.terraform_resources``: the worker sends those resources (a few, by
type) as soon as it has them, and a rule that asked before they came is judged again after
(``engine.judge`` defers it). The items of both processes are merged in the order one process
makes them, so the output is the same as a scan in one process.

Used for exactly two processes, without the cache (whose entries are the pickled documents the
split avoids making) and where fork is the platform's way. Whatever goes wrong in the worker
(killed, a bug) returns None here, and the scan is done the ordinary way.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyscan.model import Artifact, Kind, Problem

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue

    from policyscan.policy.loader import Rule
    from policyscan.project import Project, Subject

# Seconds per megabyte, measured on the generated 10,322-file tree (benchmarks/bench.py) with
# both processes at work: parsing Terraform, judging its rules, pickling and loading its
# documents, and everything a megabyte of the other kinds costs (parse, view and rules).
_TF_PARSE = 0.26
_TF_RULES = 0.075
_TF_PICKLE = 0.05
_TF_LOAD = 0.042
_OTHER = 0.85


@dataclass(frozen=True)
class _Plan:
    """What both processes know of the scan."""

    rules: Sequence[Rule]
    terraform_rules: list[int]  # indices into rules
    artifacts: list[Artifact]
    root: str
    max_bytes: int
    with_evidence: bool


# What the worker does, set just before it is forked, inherited, never pickled: the plan, the
# Terraform files it parses, and its two channels.
_WORK: tuple[_Plan, list[int], Queue[Any], Connection] | None = None


class _Stand:
    """The project a split scan leaves for what follows it (inline ignores): this process's
    view, and the worker's Terraform subjects, without their facts, where a file has an ignore."""

    def __init__(self, project: Project, terraform: dict[str, list[Subject]]) -> None:
        self.project = project
        self.terraform = terraform

    def subjects(self, scope: str) -> list[Subject]:
        if scope.startswith("terraform."):
            return self.terraform.get(scope, [])
        return self.project.subjects(scope)


def scan_by_kind(
    rules: Sequence[Rule],
    artifacts: list[Artifact],
    root: str,
    max_bytes: int,
    with_evidence: bool,
    texts: dict[str, str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[_Stand, tuple[list[Any], list[Any], list[Problem]], list[Problem], list[Problem]] | None:
    """The scan's documents and rules in two processes. Returns the project stand-in, (findings,
    evidence, rule problems), the parse problems (in path order) and the view's problems; None
    where it could not be done (the caller scans the ordinary way)."""
    global _WORK
    import multiprocessing

    from policyscan.scan import can_fork

    terraform = [i for i, a in enumerate(artifacts) if a.kind is Kind.TERRAFORM]
    if not can_fork() or not terraform or len(terraform) == len(artifacts):
        return None
    here = _share_here(artifacts, terraform)
    terraform_rules = [i for i, r in enumerate(rules) if r.scope.startswith("terraform.")]
    plan = _Plan(rules, terraform_rules, artifacts, root, max_bytes, with_evidence)
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
    try:
        return _here(plan, here, texts, inbox, receive, progress)
    finally:
        receive.close()
        inbox.close()
        worker.join(timeout=1)  # it leaves once it has sent its findings
        if worker.is_alive():  # this process is leaving early (interrupted), or lost it
            worker.kill()
            worker.join()


def _here(
    plan: _Plan,
    here_tf: set[int],
    texts: dict[str, str],
    inbox: Queue[Any],
    receive: Connection,
    progress: Callable[[int, int], None] | None,
) -> tuple[_Stand, tuple[list[Any], list[Any], list[Problem]], list[Problem], list[Problem]] | None:
    from policyscan.policy import engine
    from policyscan.project import Project
    from policyscan.scan import _dumps, _Failed, parse_artifact

    artifacts = plan.artifacts
    total = len(artifacts)
    mine = [*sorted(here_tf), *(i for i, a in enumerate(artifacts) if a.kind is not Kind.TERRAFORM)]
    problems: dict[str, list[Problem]] = {}
    documents: dict[str, object] = {}
    sent: list[tuple[int, str, bytes | None]] = []
    # This process's Terraform share first, so that the worker has it when it wants it.
    if not here_tf:
        inbox.put(sent)
    for done, index in enumerate(mine, 1):
        artifact = artifacts[index]
        doc, text = parse_artifact(artifact, plan.max_bytes)
        problems[artifact.path] = list(doc.problems)  # type: ignore[attr-defined]
        if not isinstance(doc, _Failed):
            texts[artifact.path] = text
            if artifact.kind is Kind.TERRAFORM:
                sent.append((index, text, _dumps(doc)))
            else:
                documents[artifact.path] = doc
        if done == len(here_tf):
            inbox.put(sent)  # written by the queue's own thread: this process goes on
        if progress is not None:
            progress(done * total // len(mine), total)

    kinds = frozenset(k for k in Kind if k is not Kind.TERRAFORM)
    project = Project(plan.root, artifacts, documents, kinds=kinds)
    theirs = set(plan.terraform_rules)
    others = [i for i in range(len(plan.rules)) if i not in theirs]
    mine_tagged, deferred = engine.judge(plan.rules, project, others, plan.with_evidence)

    remote = _receive(receive)
    if remote is None:
        return None
    project.remote_terraform = remote
    late, again = engine.judge(plan.rules, project, deferred, plan.with_evidence)
    if again:
        return None
    done_there = _receive(receive)
    if done_there is None:
        return None
    tagged, view_problems, parsed, stubs = done_there
    for path, (found, text) in parsed.items():
        problems[path] = found
        if text is not None:
            texts[path] = text
    parse_problems = [p for a in artifacts for p in problems.get(a.path, ())]
    return (
        _Stand(project, stubs),
        engine.merge([mine_tagged, late, tagged]),
        parse_problems,
        [*project.problems, *view_problems],
    )


def _receive(receive: Connection) -> Any:
    """The worker's next message; None when it died or failed."""
    from policyscan.cache import loads

    try:
        message = loads(receive.recv_bytes())
    except (EOFError, OSError):
        return None
    if isinstance(message, tuple) and message and message[0] == "failed":
        return None
    return message[1] if isinstance(message, tuple) and message[0] == "ok" else None


def _share_here(artifacts: list[Artifact], terraform: list[int]) -> set[int]:
    """The Terraform files this process parses, so that both finish about together: by the
    bytes of each kind and the costs above."""
    sizes: dict[int, float] = {}
    other = 0.0
    for index, artifact in enumerate(artifacts):
        try:
            megabytes = os.path.getsize(artifact.abspath) / 1e6
        except OSError:
            megabytes = 0.0
        if artifact.kind is Kind.TERRAFORM:
            sizes[index] = megabytes
        else:
            other += megabytes
    total = sum(sizes.values())
    # Here: other * _OTHER + y * (_TF_PARSE + _TF_PICKLE); there: (total - y) * _TF_PARSE +
    # y * _TF_LOAD + total * _TF_RULES. Equal at:
    wanted = (total * (_TF_PARSE + _TF_RULES) - other * _OTHER) / (
        2 * _TF_PARSE + _TF_PICKLE - _TF_LOAD
    )
    here: set[int] = set()
    taken = 0.0
    # From the end: the worker starts at the front, and a module's files stay together.
    for index in reversed(terraform):
        if taken >= wanted:
            break
        here.add(index)
        taken += sizes[index]
    return here


def _worker() -> None:
    """In the worker: parse its Terraform files, take this process's, send the resources that
    rules of other families read, judge the Terraform rules, send what they found."""
    assert _WORK is not None
    send = _WORK[3]
    gc.disable()  # as in scan: nothing cyclic to collect in a worker's lifetime
    from policyscan.cache import dumps

    try:
        send.send_bytes(dumps(("ok", _work(*_WORK))))
    except Exception:
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        send.send_bytes(dumps(("failed",)))  # the parent scans the ordinary way


def _work(
    plan: _Plan, mine: list[int], inbox: Queue[Any], send: Connection
) -> tuple[Any, list[Problem], dict[str, tuple[list[Problem], str | None]], dict[str, Any]]:
    from policyscan import suppress
    from policyscan.cache import dumps
    from policyscan.policy import engine
    from policyscan.project import Project
    from policyscan.scan import _Failed, _load, parse_artifact, parse_text

    documents: dict[str, object] = {}
    parsed: dict[str, tuple[list[Problem], str | None]] = {}
    for index in mine:
        artifact = plan.artifacts[index]
        doc, text = parse_artifact(artifact, plan.max_bytes)
        failed = isinstance(doc, _Failed)
        parsed[artifact.path] = (list(doc.problems), None if failed else text)  # type: ignore[attr-defined]
        if not failed:
            documents[artifact.path] = doc
    texts = {path: text for path, (_, text) in parsed.items() if text is not None}
    for index, text, blob in _take(inbox):
        artifact = plan.artifacts[index]
        doc = _load(blob)
        if doc is None:  # not picklable there: parsed again here
            doc = parse_text(artifact, text)
        documents[artifact.path] = doc
        texts[artifact.path] = text
    project = Project(plan.root, plan.artifacts, documents, kinds=frozenset({Kind.TERRAFORM}))
    # Sent by a thread: the parent reads it only when its rules want it, and a pipe holds 64 KB.
    sender = threading.Thread(
        target=send.send_bytes, args=(dumps(("ok", project.cross_family_terraform())),)
    )
    sender.start()
    tagged, deferred = engine.judge(plan.rules, project, plan.terraform_rules, plan.with_evidence)
    assert not deferred  # this process holds the Terraform documents
    sender.join()
    stubs: dict[str, list[Subject]] = {}
    if any(suppress.MARKER in text for text in texts.values()):
        stubs = {scope: _stubs(project, scope) for scope in suppress.TERRAFORM_BLOCK_SCOPES}
    return tagged, list(project.problems), parsed, stubs


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


def _stubs(project: Project, scope: str) -> list[Subject]:
    """A scope's subjects as inline ignores read them: where they are and what they are called."""
    from dataclasses import replace

    from policyscan.project import facts

    return [replace(s, facts=facts(s.path, s.span), node=None) for s in project.subjects(scope)]
