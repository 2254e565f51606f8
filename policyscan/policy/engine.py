"""Evaluate compiled rules on a project's subjects: findings, evidence, and rule failures.

A rule that raises on one subject is reported as that rule's failure on that file; the other
rules and files still run.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from policyscan.model import Evidence, Finding, Location, Problem, Value
from policyscan.policy.conditions import Outcome, selector_key, selector_text
from policyscan.policy.loader import Rule
from policyscan.policy.operators import pattern_search

if TYPE_CHECKING:
    # Not at run time: the project view imports every parser's library, which a scan answered
    # from the cache, or `policyscan rules`, never needs.
    from policyscan.project import Project, Subject

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.-]*)\}")


def display(value: Value | None) -> str:
    """A value as a message may show it: secrets redacted, long values shortened."""
    if value is None:
        return "unset"
    if not value.known:
        return value.text or "(unknown)"
    if isinstance(value.data, dict | list):
        return (
            "(" + ", ".join(k for k, _ in value.items()) + ")"
            if isinstance(value.data, dict)
            else f"[{len(value.data)} items]"
        )
    text = value.as_str()
    if text is None:
        return "null"
    from policyscan.secretstrength import redact

    if value.sensitive or _looks_secret(text):
        return redact(text)
    text = mask_credentials(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_secret(value: Value | None) -> bool:
    if value is None:
        return False
    return value.sensitive or _looks_secret(value.as_str() or "")


# ``scheme://user:password@`` where the password runs to the ``@``. Tried only where a run of
# non-blank, non-``@`` characters starts, and only if that run ends at an ``@`` (the lookahead
# scans it once): ``(://[^:/@\s]+:)[^@\s]+@`` alone rescans the rest of the run from every ``://``
# in it, quadratic on ``://a:a://a:a...``. Same matches otherwise: group 1 keeps what precedes
# the password.
# Bounded runs keep it linear on adversarial lines (a search retried at every "://").
_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]{1,256}:)[^@\s]{1,512}@")


def mask_credentials(text: str) -> str:
    """``scheme://user:password@host`` with the password hidden."""
    return _URL_CREDENTIALS.sub(r"\1********@", text)


_AWS_KEY = re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}")


def _looks_secret(text: str) -> bool:
    return bool(_AWS_KEY.search(text))


def render(template: str, subject: Subject, outcome: Outcome) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in outcome.details:
            return outcome.details[key]
        if key == "actual":
            return display(outcome.blame)
        if key == "attr":
            return outcome.attr
        return display(subject.facts.lookup(key))

    return _PLACEHOLDER.sub(replace, template)


def fingerprint(rule: Rule, subject: Subject, outcome: Outcome) -> str:
    """Rule, file, the node's logical key and what was wrong with it; never the line, so moved
    code keeps its fingerprint. A secret contributes its judged weakness, not its value."""
    blame = outcome.blame
    if blame is None:
        what = ""
    elif blame.sensitive:
        what = outcome.details.get("reason", "")
    else:
        what = blame.as_str() or ""
    raw = "\x1f".join((rule.id, subject.path, subject.key, outcome.attr, what))
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]


def evaluate(
    rules: Sequence[Rule],
    project: Project,
    timings: dict[str, float] | None = None,
    jobs: int = 1,
    with_evidence: bool = True,
) -> tuple[list[Finding], list[Evidence], list[Problem]]:
    """``timings``, when given, gets the seconds spent building subjects ("project") and in
    each rule ("rule ID"): benchmarks/bench.py shows the costliest. ``jobs`` > 1 shares the
    subjects out among that many forked processes (see _evaluate_forked); the result is the
    same. ``with_evidence=False`` leaves out the evidence of checks that passed or could not
    be decided (only the checklist report shows it: a scan of a large tree makes over a
    hundred thousand)."""
    if jobs > 1:
        shared = _evaluate_forked(rules, project, jobs, with_evidence)
        if shared is not None:
            return shared
    tagged, _ = judge(rules, project, range(len(rules)), with_evidence, timings=timings)
    return merge([tagged])


# ------------------------------------------------------------------------------- in processes

# Where an item comes from: (rule index, subject index, order within the pair). Sorting by it
# puts the items of all processes in the order one process makes them.
_Tag = tuple[int, int, int]
_Tagged = tuple[list[tuple[_Tag, Finding]], list[tuple[_Tag, Evidence]], list[tuple[_Tag, Problem]]]
# What forked workers evaluate: set just before forking them, inherited, never pickled. The last
# field says how the work is shared: every process takes every N-th subject of every rule, or
# (two processes) each takes the rules of one family (_family).
_FORKED: tuple[Sequence[Rule], Project, int, bool, bool] | None = None

# The scopes of the first family: compose services and what configures them. The second is
# everything else (Terraform, nginx, Dockerfiles, the project).
_FIRST_FAMILY = ("variable", "compose.", "env.")


def _family(rule: Rule) -> int:
    return 0 if rule.scope.startswith(_FIRST_FAMILY) else 1


def _by_family(project: Project, jobs: int) -> bool:
    """Two processes share the rules by family when the families look about even. Sharing by
    family, each process builds only the subjects (and project-wide answers) its own rules
    read, where sharing every subject makes both build all of them: about a third of one
    process's rule phase, measured on a 10,322-file tree (1.99 s and 1.75 s for the two
    families against 2.72 s for a half share of every rule). The estimate counts files, with
    weights from that tree and the corpus: a compose or env file costs its rules about five
    times what a Terraform, nginx or Docker file does. A tree mostly of one family is shared
    by subjects, or one process would do nearly all of it."""
    if jobs != 2:
        return False
    first = sum(1 for a in project.artifacts if a.kind.value in ("compose", "env"))
    second = (len(project.artifacts) - first) / 5
    return max(first, second) <= 0.6 * (first + second)


def _evaluate_forked(
    rules: Sequence[Rule],
    project: Project,
    jobs: int,
    with_evidence: bool = True,
) -> tuple[list[Finding], list[Evidence], list[Problem]] | None:
    """Evaluate in ``jobs`` processes, this one and ``jobs - 1`` forked ones, each taking every
    ``jobs``-th subject of every rule, or (two processes, _by_family) the rules of one family;
    None where that cannot be done (no fork, a worker lost), and the caller evaluates here.

    Each process walks the rules in order and judges its share; the items come back tagged
    with where they were made (rule, subject) and are merged in that order, so findings,
    evidence and problems are the same, in the same order, as from one process. Building
    subjects changes nothing that a rule reads, so which of them a process has built does not
    matter. Only fork is used: the project is inherited, not pickled."""
    global _FORKED
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from policyscan.cache import loads
    from policyscan.scan import can_fork

    if not can_fork():
        return None
    by_family = _by_family(project, jobs)
    _FORKED = (rules, project, jobs, with_evidence, by_family)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
            # Forked now, before this process builds anything of the view: each process
            # builds the same view, in the same order, in parallel.
            shared = pool.map(_evaluate_part, range(1, jobs))
            mine = _evaluate_share(0)
            parts = [mine, *(loads(blob) for blob in shared)]
    except (BrokenProcessPool, OSError):
        return None
    finally:
        _FORKED = None
    views = [view for _, view in parts]
    if by_family:
        # Each process met the problems of the parts of the view it built; those both built,
        # both met.
        project.problems[:] = _union(views)
    elif any(view != views[0] for view in views):
        return None  # the project view differed between processes: trust one process instead
    return merge([part for part, _ in parts])


def _union(views: list[list[Problem]]) -> list[Problem]:
    """Every problem of any view, as many times as the view that met it most often (a part
    of the project view built by two processes gives both the same problems)."""
    from collections import Counter

    kept: Counter[Problem] = Counter()
    out: list[Problem] = []
    for view in views:
        for problem, count in Counter(view).items():
            if count > kept[problem]:
                out.extend([problem] * (count - kept[problem]))
                kept[problem] = count
    return out


def tag_of(item: tuple[_Tag, object]) -> _Tag:
    return item[0]


def _evaluate_part(part: int) -> bytes:
    """In a worker: _evaluate_share, pickled."""
    import gc

    from policyscan.cache import dumps

    gc.disable()  # as in scan: nothing cyclic to collect in a worker's lifetime
    return dumps(_evaluate_share(part))


def _evaluate_share(part: int) -> tuple[_Tagged, list[Problem]]:
    """Share ``part`` of the subjects, tagged; and the problems the project view found."""
    assert _FORKED is not None
    rules, project, parts, with_evidence, by_family = _FORKED
    if by_family:
        # The other process's rules: their subjects are never built here.
        mine = [i for i, rule in enumerate(rules) if _family(rule) == part]
        tagged, _ = judge(rules, project, mine, with_evidence)
    else:
        tagged, _ = judge(rules, project, range(len(rules)), with_evidence, (part, parts))
    return tagged, list(project.problems)


# Scopes whose subjects predicates of rules of other scopes read (``project.subjects`` in a
# predicate), with those scopes: released only once those rules are judged too. A scope missed
# here costs time, not correctness: released too early, it is built again when asked for.
_READ_ACROSS: dict[str, frozenset[str]] = {
    "variable": frozenset({"compose.service", "env.file"}),
    "nginx.server": frozenset({"project"}),
}


def _in_scope_order(
    rules: Sequence[Rule], indices: Iterable[int]
) -> tuple[list[int], dict[int, list[str]]]:
    """``indices`` with the rules of each scope together (scopes in the order they first come),
    and the scopes judged for good after each position."""
    groups: dict[str, list[int]] = {}
    for index in indices:
        groups.setdefault(rules[index].scope, []).append(index)
    order = [index for group in groups.values() for index in group]
    if not order:
        return order, {}
    last: dict[str, int] = {}
    for position, index in enumerate(order):
        scope = rules[index].scope
        last[scope] = position
        for shared, readers in _READ_ACROSS.items():
            if scope in readers:
                last[shared] = position
    done: dict[int, list[str]] = {}
    for scope, position in last.items():
        # Not after the last rule: nothing is built after it, and freeing costs time (0.1 s
        # for the 100 MB of subjects of 10,000 files).
        if position < len(order) - 1:
            done.setdefault(position, []).append(scope)
    return order, done


def judge(
    rules: Sequence[Rule],
    project: Project,
    indices: Iterable[int],
    with_evidence: bool,
    share: tuple[int, int] = (0, 1),
    timings: dict[str, float] | None = None,
) -> tuple[_Tagged, list[int]]:
    """Judge the rules at ``indices`` (of ``rules``), each on its ``share`` (every n-th of
    ``share[1]``) of its candidates; the items tagged with where they were made, to be merged
    in one process's order (merge). Also the indices of the rules that asked for Terraform
    resources not here yet (TerraformElsewhere): nothing of theirs is kept, to judge them again
    once the resources are here. A rule that reads documents this process does not hold
    (PartialViewError) is not a rule's failure but the split's: it is raised.

    The rules of a scope are judged together and its subjects released after the last of them
    (Project.release), but those of a rule judged again later. ``timings``, when given, gets
    the seconds spent building subjects ("project") and in each rule ("rule ID")."""
    from policyscan.project import PartialViewError, TerraformElsewhere

    part, parts = share
    findings: list[tuple[_Tag, Finding]] = []
    evidence: list[tuple[_Tag, Evidence]] = []
    problems: list[tuple[_Tag, Problem]] = []
    deferred: list[int] = []
    order, done = _in_scope_order(rules, indices)
    for position, r_index in enumerate(order):
        rule = rules[r_index]
        made = (len(findings), len(evidence), len(problems))
        started = time.perf_counter() if timings is not None else 0.0
        if timings is not None:
            if project.may_focus(rule.scope):
                project.subjects(rule.scope)
            built = time.perf_counter()
            timings["project"] = timings.get("project", 0.0) + built - started
            started = built
        # What one subject made, tagged and moved on only when there is something: most
        # judgements make nothing, and there are a million of them at 10,000 files.
        made_f: list[Finding] = []
        made_e: list[Evidence] | None = [] if with_evidence else None
        # Whether the rule applies to a subject (its kinds, environments, templates), asked
        # inline: of every candidate, 370,000 at 10,322 files.
        kinds, environments, templates = rule.artifacts, rule.environments, rule.templates
        try:
            for n, (s_index, subject) in enumerate(_candidates(rule, project)):
                if (
                    n % parts != part
                    or subject.kind not in kinds
                    or subject.environment not in environments
                    or (subject.template and not templates)
                ):
                    continue
                try:
                    _evaluate_one(rule, subject, project, made_f, made_e)
                except PartialViewError:
                    raise
                except Exception as exc:
                    problems.append(((r_index, s_index, 0), _rule_error(rule, subject, exc)))
                    made_f.clear()
                    if made_e:
                        made_e.clear()
                    continue
                if made_f:
                    findings.extend(((r_index, s_index, i), f) for i, f in enumerate(made_f))
                    made_f.clear()
                if made_e:
                    evidence.extend(((r_index, s_index, i), e) for i, e in enumerate(made_e))
                    made_e.clear()
        except TerraformElsewhere:
            del findings[made[0] :], evidence[made[1] :], problems[made[2] :]
            deferred.append(r_index)
        if timings is not None:
            # Added to: a tree judged in parts judges each rule once a part.
            name = f"rule {rule.id}"
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        for scope in done.get(position, ()):
            if not any(rules[i].scope == scope for i in deferred):
                project.release(scope)
    # In rule order again: each scope's rules came out together.
    findings.sort(key=tag_of)
    evidence.sort(key=tag_of)
    problems.sort(key=tag_of)
    deferred.sort()
    return (findings, evidence, problems), deferred


def merge(parts: Sequence[_Tagged]) -> tuple[list[Finding], list[Evidence], list[Problem]]:
    """The tagged items of several judge() calls, in the order one process makes them."""
    import heapq

    findings = [f for _, f in heapq.merge(*(t[0] for t in parts), key=tag_of)]
    evidence = [e for _, e in heapq.merge(*(t[1] for t in parts), key=tag_of)]
    problems = [p for _, p in heapq.merge(*(t[2] for t in parts), key=tag_of)]
    return _dedupe(findings), evidence, problems


def _candidates(rule: Rule, project: Project) -> Iterable[tuple[int, Subject]]:
    """The subjects of the rule's scope that its ``where`` could select, in scope order, with
    their place in the scope. A rule with a selector (conditions.selector) finds them in
    indexes of the scope by attribute, built once per project: by lowered text for ``in``
    clauses, by text for ``matches`` ones, whose pattern is then tried once per distinct
    text."""
    if not project.may_focus(rule.scope, rule.blames):
        return iter(())
    subjects = project.subjects(rule.scope)
    focused = _focused(project, rule.scope, subjects)
    if rule.selects is None:
        if focused is None:
            return enumerate(subjects)
        return ((i, subjects[i]) for i in focused)
    found: set[int] = set()
    for attr, op, arg in rule.selects:
        if op == "matches" and isinstance(arg, str):
            found.update(_matching(project, rule.scope, attr, arg, subjects))
        else:
            index = _index(project, rule.scope, attr, selector_key, subjects)
            for key in arg:
                found.update(index.get(key, ()))
    if focused is not None:
        found.intersection_update(focused)
    return ((i, subjects[i]) for i in sorted(found))


def _focused(project: Project, scope: str, subjects: list[Subject]) -> list[int] | None:
    """The places of the scope's subjects in the project's focus (Project.in_focus), worked
    out once per scope; None without a focus."""
    if project.focus is None:
        return None

    def build() -> list[int]:
        return [i for i, subject in enumerate(subjects) if project.in_focus(subject)]

    found: list[int] = project.memo_of_scope(scope, "in focus", build)
    return found


def _index(
    project: Project,
    scope: str,
    attr: str,
    key_of: Callable[[Value | None], str | None],
    subjects: list[Subject],
) -> dict[str, list[int]]:
    def build() -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for i, subject in enumerate(subjects):
            key = key_of(subject.facts.lookup(attr))
            if key is not None:
                index.setdefault(key, []).append(i)
        return index

    found: dict[str, list[int]] = project.memo_of_scope(scope, ("selector", attr, key_of), build)
    return found


def _matching(
    project: Project, scope: str, attr: str, pattern: str, subjects: list[Subject]
) -> list[int]:
    def build() -> list[int]:
        search = pattern_search(pattern)
        by_text = _index(project, scope, attr, selector_text, subjects)
        return [i for text, places in by_text.items() if search(text) for i in places]

    found: list[int] = project.memo_of_scope(scope, ("selector matches", attr, pattern), build)
    return found


def _rule_error(rule: Rule, subject: Subject, exc: Exception) -> Problem:
    if os.environ.get("POLICYSCAN_DEBUG"):
        raise exc
    return Problem(
        subject.path,
        subject.span,
        # The exception's text can quote a value from the file: only its type is shown
        # (POLICYSCAN_DEBUG=1 raises it whole).
        f"rule {rule.id} failed on this file: {type(exc).__name__}",
        "rule-error",
    )


def selected(rule: Rule, project: Project) -> Iterator[tuple[int, Subject, Problem | None]]:
    """The subjects the rule judges (its candidates that it applies to and its ``where``
    selects), with their places in the scope; where the ``where`` failed on one, the rule's
    problem there instead. For a rule whose check waits for the rest of the tree
    (other_parts.py)."""
    from policyscan.project import PartialViewError

    kinds, environments, templates = rule.artifacts, rule.environments, rule.templates
    for s_index, subject in _candidates(rule, project):
        if (
            subject.kind not in kinds
            or subject.environment not in environments
            or (subject.template and not templates)
        ):
            continue
        if rule.where is not None:
            try:
                chosen = rule.where(subject.facts, subject, project)
            except PartialViewError:
                raise
            except Exception as exc:
                yield s_index, subject, _rule_error(rule, subject, exc)
                continue
            if chosen.result is not True:
                continue
        yield s_index, subject, None


def checked(
    rule: Rule, subject: Subject, project: Project, with_evidence: bool
) -> tuple[list[Finding], list[Evidence], Problem | None]:
    """The rule's check alone, on a subject it selected (``selected``): what it made, or the
    rule's problem there."""
    from policyscan.project import PartialViewError

    findings: list[Finding] = []
    evidence: list[Evidence] | None = [] if with_evidence else None
    try:
        _check(rule, subject, project, findings, evidence)
    except PartialViewError:
        raise
    except Exception as exc:
        return [], [], _rule_error(rule, subject, exc)
    return findings, evidence or [], None


def _evaluate_one(
    rule: Rule,
    subject: Subject,
    project: Project,
    findings: list[Finding],
    evidence: list[Evidence] | None,
) -> None:
    """Judge one subject: a finding, or (when ``evidence`` is a list) the evidence."""
    if rule.where is not None:
        selected = rule.where(subject.facts, subject, project)
        if selected.result is not True:
            return
    _check(rule, subject, project, findings, evidence)


def _check(
    rule: Rule,
    subject: Subject,
    project: Project,
    findings: list[Finding],
    evidence: list[Evidence] | None,
) -> None:
    outcome = rule.check(subject.facts, subject, project)
    if outcome.result is False:
        if outcome.blame is not None and outcome.blame.path and outcome.attr:
            location = outcome.blame.location
        else:
            location = Location(subject.path, subject.span)
        findings.append(
            Finding(
                rule.id,
                rule.severity,
                render(rule.message, subject, outcome),
                location,
                subject.key,
                fingerprint(rule, subject, outcome),
                rule.checklist,
                outcome.related,
                sensitive=_is_secret(outcome.blame),
            )
        )
        return
    if evidence is None:
        return
    location = Location(subject.path, subject.span)
    status = "met" if outcome.result else "unknown"
    note = outcome.details.get("evidence", "") if outcome.details else ""
    if outcome.result is None and outcome.blame is not None:
        note = f"{outcome.attr or 'value'} is not known statically: {display(outcome.blame)}"
    evidence.append(Evidence(rule.id, rule.checklist, location, subject.key, status, note))


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping compose views (base alone, base+override) can see the same node twice."""
    seen: dict[tuple[str, str, int, str], Finding] = {}
    for finding in findings:
        key = (
            finding.rule_id,
            finding.location.path,
            finding.location.span.start_line,
            finding.fingerprint,
        )
        seen.setdefault(key, finding)
    return sorted(seen.values(), key=Finding.sort_key)


def select_rules(
    rules: Sequence[Rule], select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Rule]:
    chosen = set(select)
    dropped = set(ignore)
    return [
        r
        for r in rules
        if (not chosen or r.id in chosen or r.name in chosen)
        and r.id not in dropped
        and r.name not in dropped
    ]


def severity_of(rules: Mapping[str, Rule], rule_id: str) -> str:
    return rules[rule_id].severity.value
