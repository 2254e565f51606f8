"""The rules of the other kinds (compose, env files, Dockerfiles, nginx) judged a part of the tree
at a time, so that the documents of one part are let go before the next is parsed: what
terraform_parts.py does for Terraform.

A part is a run of top-level groups: the directories below the one where the tree first
branches (``services/svc-0001/``, or each repository of a monorepo of repositories), with every
file of those kinds in one of them. The rules of these kinds read their own directory, their
compose directory's env files and Dockerfiles, and their nginx include closure; a part holds
all of that, and checks that it does (``_verify``: an ``env_file`` or a build context that
reaches another part, an include that could, raise PartialViewError, and the caller scans the
ordinary way). The other questions a rule asks of the whole tree are answered from what each
part gives (``_WIDE``) and judged at the end:

- a rule whose check reads the whole tree and nothing but the subject's facts (a backup service
  anywhere, a pooler anywhere, an error tracker in a related directory, the same secret in
  another variable) keeps the subjects its ``where`` selects, without their documents, and is
  checked at the end with the tree's answers given (``Project.seed``);
- PSC020's check reads its service and whether any variable of the tree names a client-side
  timeout: it is judged in each part both ways, and the tree's answer picks;
- PSN013 judges one server of the whole tree (``nginx_judged_once``, ``per: project``): the
  first part's, kept, and checked at the end;
- the project's own rules (PSX001, PSX002) read what each part gave of its Redis services,
  published ports, TLS signs and nginx servers.

A rule of a user's that asks the whole tree some other way makes the tree ineligible (``judge``
is not used), so an unforeseen question costs memory, never a wrong answer. The items come back
tagged as one project of every part would tag them (engine.merge): a subject's place is its
section of the scope (the variable scope's env, compose and Dockerfile entries), its part and
its place in the part, which is the whole tree's order once ``plan`` has checked that the parts
are in the order the whole tree's views are.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from policyscan import suppress
from policyscan.model import Artifact, Evidence, Finding, Kind, Location, Problem, Related, Span
from policyscan.policy import engine
from policyscan.policy.predicates import compose as compose_predicates
from policyscan.policy.predicates import core as core_predicates
from policyscan.policy.predicates import env as env_predicates
from policyscan.policy.predicates import nginx as nginx_predicates
from policyscan.project import PartialViewError, Project, facts

if TYPE_CHECKING:
    from policyscan.policy.loader import Rule
    from policyscan.project import Subject

# Bytes of source of the other kinds judged together. Each part costs a project's fixed work
# (its indexes, the rules' loop), as in terraform_parts.py.
PART_BYTES = 400_000

OTHER_KINDS = frozenset(k for k in Kind if k is not Kind.TERRAFORM)

# A subject's place in the whole tree: section, part, place in the part (bits above each).
_SECTION = {Kind.ENV: 0, Kind.COMPOSE: 1, Kind.DOCKERFILE: 2}
_PART_SHIFT = 26
_SECTION_SHIFT = 44


@dataclass(frozen=True)
class Part:
    indices: list[int]  # its files (into the artifacts), in path order
    prefixes: tuple[str, ...]  # its groups' directories, each with a trailing slash


def plan(
    artifacts: Sequence[Artifact], others: Sequence[int], size: Callable[[Artifact], int]
) -> list[Part] | None:
    """The parts of the files at ``others`` (in path order), about PART_BYTES each; None when
    the tree does not fall into parts (a file above the groups, a single group, views whose
    order is not the parts')."""
    depth = _branching([artifacts[i].path for i in others])
    if depth is None:
        return None
    parts: list[Part] = []
    current: list[int] = []
    prefixes: list[str] = []
    held = 0
    for index in others:
        artifact = artifacts[index]
        head = "/".join(artifact.path.split("/")[: depth + 1]) + "/"
        if not prefixes or head != prefixes[-1]:
            if held >= PART_BYTES:
                parts.append(Part(current, tuple(prefixes)))
                current, prefixes, held = [], [], 0
            prefixes.append(head)
        current.append(index)
        held += size(artifact)
    if current:
        parts.append(Part(current, tuple(prefixes)))
    if len(parts) < 2 or not _views_in_order(artifacts, parts):
        return None
    return parts


def _branching(paths: Sequence[str]) -> int | None:
    """How many directories down the files first part ways, each file below that."""
    if not paths:
        return None
    depth = 0
    while True:
        heads = set()
        for path in paths:
            names = path.split("/")
            if len(names) <= depth + 1:
                return None  # a file where the groups would be: it relates to all of them
            heads.add("/".join(names[: depth + 1]))
        if len(heads) > 1:
            return depth
        depth += 1


def _views_in_order(artifacts: Sequence[Artifact], parts: list[Part]) -> bool:
    """Compose views come in the order of their directories' names, files in the order of
    their paths: ``a/`` files come before ``a-b/`` ones, but the view of ``a-b`` before that of
    ``a/x``. The parts must follow both orders."""
    dirs = [
        sorted(
            {
                posixpath.dirname(artifacts[i].path)
                for i in part.indices
                if artifacts[i].kind is Kind.COMPOSE
            }
        )
        for part in parts
    ]
    joined = [d for part_dirs in dirs for d in part_dirs]
    return joined == sorted(joined)


# ------------------------------------------------------------------------------- the rules

# The predicates whose answers depend on the whole tree, and how a rule that uses them is
# judged in parts.
_STUB_CHECKS = frozenset(
    {"backup_anywhere", "backup_in_project", "error_tracking_configured", "connection_pooling"}
)
_WIDE_PREDICATES = _STUB_CHECKS | {
    "secret_reused",
    "nginx_rate_limited",
    "redis_persistence_anywhere",
    "tls_termination_anywhere",
}

# What each part gives for a wide predicate: the memo, how the parts' answers make the tree's,
# and how a part works its own out.
_FIRST, _ALL, _ANY_TLS = "first", "all", "tls"
_WIDE: dict[str, list[tuple[Hashable, str, Callable[[Project], Any]]]] = {
    "backup_anywhere": [("compose_backup_service", _FIRST, core_predicates.compose_backup_service)],
    "backup_in_project": [
        ("compose_backup_service", _FIRST, core_predicates.compose_backup_service)
    ],
    "connection_pooling": [("compose_pooler", _FIRST, env_predicates.compose_pooler)],
    "nginx_rate_limited": [
        ("compose_rate_limit_label", _FIRST, nginx_predicates.compose_rate_limit_label),
        ("nginx_rate_limit_other", _FIRST, nginx_predicates.rate_limit_other),
    ],
    "redis_persistence_anywhere": [
        ("compose_redis_states", _ALL, compose_predicates.compose_redis_states)
    ],
    "tls_termination_anywhere": [
        ("compose_http_ports", _ALL, compose_predicates.compose_http_ports),
        ("nginx_server_tls", _ALL, compose_predicates.nginx_server_tls),
        ("compose_tls", _ANY_TLS, compose_predicates.compose_tls),
    ],
}
_CLIENT_TIMEOUT: Hashable = ("compose_env_mentions", compose_predicates.CLIENT_TIMEOUT.pattern)
# Stands for "some variable names a client-side timeout" in PSC020's judging: the check keeps
# it only in a passing outcome's related locations, which make no item.
_SOME_MENTION = Related(Location("", Span.line(1)), "")


def _predicates(node: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """Every predicate a condition names, with its arguments."""
    if isinstance(node, dict):
        if "predicate" in node:
            args = node.get("args")
            yield str(node["predicate"]), args if isinstance(args, dict) else {}
        for value in node.values():
            yield from _predicates(value)
    elif isinstance(node, list):
        for item in node:
            yield from _predicates(item)


def _is_wide(name: str, args: dict[str, Any]) -> bool:
    if name == "nginx_judged_once":
        return args.get("per") == "project"
    if name == "postgres_setting":
        return bool(args.get("client_ok"))
    return name in _WIDE_PREDICATES


@dataclass(frozen=True)
class Ways:
    """How each rule of the other kinds is judged: ``local`` ones in their part; ``stubs`` and
    ``reuse`` (PSE004) checked at the end on the subjects their part selected; ``both`` (PSC020)
    judged both ways in each part; ``once`` (PSN013) on the tree's first selected server;
    ``whole`` (the project's) at the end. ``wide`` names the predicates whose answers the parts
    give."""

    local: list[int]
    stubs: list[int]
    reuse: list[int]
    both: list[int]
    once: list[int]
    whole: list[int]
    wide: frozenset[str]


def ways(rules: Sequence[Rule], indices: Iterable[int]) -> Ways | None:
    """None when a rule asks the whole tree in a way not judged here."""
    found = Ways([], [], [], [], [], [], frozenset())
    wide: set[str] = set()
    for index in indices:
        rule = rules[index]
        raw = rule.spec.raw
        where = [p for p in _predicates(raw.get("where")) if _is_wide(*p)]
        check = raw.get("assert")
        name = check.get("predicate") if isinstance(check, dict) else None
        alone = isinstance(check, dict) and set(check) <= {"predicate", "args"}
        inner = [p for p in _predicates(check) if _is_wide(*p)]
        if not where and not inner:
            found.local.append(index)
            continue
        if not alone or not isinstance(name, str) or not isinstance(check, dict):
            return None  # a wide predicate inside all/any/not
        args = check.get("args")
        args = args if isinstance(args, dict) else {}
        if rule.scope == "project" and not where:
            target = found.whole
        elif where:
            node = raw.get("where")
            if (
                not isinstance(node, dict)
                or node.get("predicate") != "nginx_judged_once"
                or name != "nginx_rate_limited"
                or rule.scope != "nginx.server"
            ):
                return None  # the server judged for the tree, and nothing else, selected
            target = found.once
        elif name == "secret_reused" and rule.scope == "variable":
            target = found.reuse
        elif name == "postgres_setting":
            target = found.both
        elif name in _STUB_CHECKS and rule.scope != "project":
            target = found.stubs
        else:
            return None
        if name == "postgres_setting" and args.get("client_ok") is not True:
            return None
        target.append(index)
        wide.add(name)
    return replace(found, wide=frozenset(wide))


# ------------------------------------------------------------------------------- judging


class _Held(dict[str, Any]):
    """A part's documents: asked for a file of the other kinds that another part holds, it
    raises PartialViewError rather than answer as if the file were not there."""

    def __init__(self, documents: dict[str, Any], elsewhere: Callable[[str], bool]) -> None:
        super().__init__(documents)
        self.elsewhere = elsewhere

    def get(self, path: str, default: Any = None) -> Any:
        if path not in self and self.elsewhere(path):
            raise PartialViewError(f"{path} is in another part")
        return super().get(path, default)

    def __getitem__(self, path: str) -> Any:
        if path not in self and self.elsewhere(path):
            raise PartialViewError(f"{path} is in another part")
        return super().__getitem__(path)


# The block scopes an inline ignore can name, of the other kinds.
_BLOCK_SCOPES = ("compose.service", "nginx.server", "nginx.location")


class Parts:
    """The other kinds' rules judged part by part (``judge``), then the rules that wait for
    the whole tree (``finish``)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        judged: Ways,
        root: str,
        artifacts: Sequence[Artifact],
        others: Iterable[int],
        with_evidence: bool,
    ) -> None:
        self.rules = rules
        self.ways = judged
        self.root = root
        self.artifacts = artifacts
        self.other_paths = frozenset(artifacts[i].path for i in others)
        self.with_evidence = with_evidence
        self.findings: list[tuple[engine._Tag, Finding]] = []
        self.evidence: list[tuple[engine._Tag, Evidence]] = []
        self.problems: list[tuple[engine._Tag, Problem]] = []
        self.view_problems: list[Problem] = []
        # Subjects whose check waits for the tree, with their tags' places.
        self.waiting: list[tuple[int, int, Subject]] = []
        self.once_taken: set[int] = set()
        # PSC020 judged both ways: (no mention in the tree, some mention).
        self.both: tuple[engine._Tagged, engine._Tagged] = (([], [], []), ([], [], []))
        self.answers: dict[Hashable, Any] = {}
        self.trackers: list[tuple[int, Subject]] = []
        self.groups: dict[str, list[tuple[int, Subject]]] = {}
        self.blocks: dict[str, list[tuple[int, Subject]]] = {}
        self.number = 0

    def judge(
        self,
        part: Part,
        documents: dict[str, Any],
        marked: frozenset[str],
        timings: dict[str, float] | None = None,
    ) -> None:
        """Judge one part, its documents given (by path); ``marked``: its files with an inline
        ignore; ``timings`` as engine.judge takes them. Raises PartialViewError where the part
        reaches another."""
        number = self.number
        self.number += 1
        paths = frozenset(self.artifacts[i].path for i in part.indices)
        others = self.other_paths
        places: dict[str, list[int]] = {}
        order: dict[str, dict[int, int]] = {}

        def observe(scope: str, subjects: list[Subject]) -> None:
            base = number << _PART_SHIFT
            if scope == "variable":
                places[scope] = [
                    (_SECTION[s.kind] << _SECTION_SHIFT) + base + i for i, s in enumerate(subjects)
                ]
            else:
                places[scope] = [base + i for i in range(len(subjects))]
            order[scope] = {id(s): i for i, s in enumerate(subjects)}

        project = Project(
            self.root,
            [self.artifacts[i] for i in part.indices],
            _Held(documents, lambda path: path in others and path not in paths),
            kinds=OTHER_KINDS,
            retained=frozenset(_BLOCK_SCOPES) if marked else frozenset(),
            observe=observe,
            part_prefixes=part.prefixes,
        )
        _verify(project)

        def place(scope: str, subject: Subject) -> int:
            return places[scope][order[scope][id(subject)]]

        stubs: dict[int, Subject] = {}

        def stub(subject: Subject) -> Subject:
            made = stubs.get(id(subject))
            if made is None:
                made = stubs[id(subject)] = replace(subject, node=None)
            return made

        self._wide(project, place, stub)
        self._waiting(project, stub, places)
        tagged, deferred = engine.judge(
            self.rules, project, self.ways.local, self.with_evidence, timings=timings
        )
        if deferred:
            raise PartialViewError("a rule of the other kinds read Terraform")
        self._keep(tagged, places)
        for scope in _BLOCK_SCOPES if marked else ():
            for subject in project.subjects(scope):
                if subject.path in marked:
                    node = (
                        suppress.Extent(suppress.extent(subject.node))
                        if scope != "compose.service"
                        else None
                    )
                    kept = replace(subject, facts=facts(subject.path, subject.span), node=node)
                    self.blocks.setdefault(scope, []).append((place(scope, subject), kept))
        self.view_problems.extend(project.problems)

    def _retag(self, tag: engine._Tag, places: dict[str, list[int]]) -> engine._Tag:
        r_index, s_index, k = tag
        return (r_index, places[self.rules[r_index].scope][s_index], k)

    def _keep(
        self,
        tagged: engine._Tagged,
        places: dict[str, list[int]],
        into: engine._Tagged | None = None,
    ) -> None:
        findings, evidence, problems = into or (self.findings, self.evidence, self.problems)
        findings.extend((self._retag(t, places), f) for t, f in tagged[0])
        evidence.extend((self._retag(t, places), e) for t, e in tagged[1])
        problems.extend((self._retag(t, places), p) for t, p in tagged[2])

    def _wide(
        self,
        project: Project,
        place: Callable[[str, Subject], int],
        stub: Callable[[Subject], Subject],
    ) -> None:
        """What this part gives of the tree's answers."""
        for name in self.ways.wide:
            for key, how, work in _WIDE.get(name, ()):
                if how == _FIRST:
                    if self.answers.get(key) is None:
                        self.answers[key] = _answer(project, key, work)
                elif how == _ALL:
                    self.answers.setdefault(key, []).extend(_answer(project, key, work))
                else:
                    related, unknown = _answer(project, key, work)
                    first, before = self.answers.get(key, (None, False))
                    self.answers[key] = (first or related, before or unknown)
        if "error_tracking_configured" in self.ways.wide:
            for tracker in env_predicates.tracker_variables(project):
                self.trackers.append((place("variable", tracker), stub(tracker)))
        if self.ways.reuse:
            for text, members in core_predicates.reuse_groups(project).items():
                self.groups.setdefault(text, []).extend(
                    (place("variable", m), stub(m)) for m in members
                )
        if self.ways.both:
            mention = compose_predicates.env_mentions(project, compose_predicates.CLIENT_TIMEOUT)
            self.answers[_CLIENT_TIMEOUT] = self.answers.get(_CLIENT_TIMEOUT) or mention is not None

    def _waiting(
        self,
        project: Project,
        stub: Callable[[Subject], Subject],
        places: dict[str, list[int]],
    ) -> None:
        """The subjects of the rules that wait for the tree; PSC020 judged both ways."""
        for r_index in [*self.ways.stubs, *self.ways.reuse, *self.ways.once]:
            rule = self.rules[r_index]
            for s_index, subject, problem in engine.selected(rule, project):
                where = places[rule.scope][s_index]
                if problem is not None:
                    self.problems.append(((r_index, where, 0), problem))
                elif r_index in self.ways.once:
                    # The servers that declare the setting, and the part's first that does
                    # not: only the first part's speaks for the tree. A server with limit_req
                    # of its own is judged here; the others wait, with their contexts.
                    if _speaks_for_all(rule, project, subject):
                        if r_index in self.once_taken:
                            continue
                        self.once_taken.add(r_index)
                    elif nginx_predicates.rate_limited_alone(subject):
                        checked = engine.checked(rule, subject, project, self.with_evidence)
                        self._made(r_index, where, checked)
                        continue
                    self.waiting.append((r_index, where, subject))
                elif (
                    r_index in self.ways.reuse
                    and core_predicates.compared_secret(subject.facts) is None
                ):
                    self._made(
                        r_index, where, engine.checked(rule, subject, project, self.with_evidence)
                    )
                else:
                    self.waiting.append((r_index, where, stub(subject)))
        if self.ways.both:
            real = project.memo(_CLIENT_TIMEOUT, lambda: None)
            for answer, into in zip((None, _SOME_MENTION), self.both, strict=True):
                project.seed({_CLIENT_TIMEOUT: answer})
                tagged, deferred = engine.judge(
                    self.rules, project, self.ways.both, self.with_evidence
                )
                if deferred:
                    raise PartialViewError("a rule of the other kinds read Terraform")
                self._keep(tagged, places, into)
            project.seed({_CLIENT_TIMEOUT: real})

    def _made(
        self, r_index: int, where: int, made: tuple[list[Finding], list[Evidence], Problem | None]
    ) -> None:
        findings, evidence, problem = made
        if problem is not None:
            self.problems.append(((r_index, where, 0), problem))
            return
        self.findings.extend(((r_index, where, i), f) for i, f in enumerate(findings))
        self.evidence.extend(((r_index, where, i), e) for i, e in enumerate(evidence))

    def finish(self, remote_terraform: Any) -> engine._Tagged:
        """The rules that waited for the tree, judged with its answers; then everything, tagged
        as from one project."""
        final = Project(self.root, [], {}, kinds=OTHER_KINDS, remote_terraform=remote_terraform)
        final.seed({k: v for k, v in self.answers.items() if k != _CLIENT_TIMEOUT})
        if "error_tracking_configured" in self.ways.wide:
            final.seed({"env_trackers": [s for _, s in sorted(self.trackers, key=_first)]})
        if self.ways.reuse:
            groups = {
                text: [s for _, s in sorted(members, key=_first)]
                for text, members in self.groups.items()
            }
            final.seed_scope("variable", {"reuse": groups})
        for r_index, where, subject in self.waiting:
            rule = self.rules[r_index]
            self._made(r_index, where, engine.checked(rule, subject, final, self.with_evidence))
        whole = final.subjects("project")[0] if self.ways.whole else None
        for r_index in self.ways.whole:
            assert whole is not None
            self._made(
                r_index, 0, engine.checked(self.rules[r_index], whole, final, self.with_evidence)
            )
        picked = self.both[1 if self.answers.get(_CLIENT_TIMEOUT) else 0]
        self.findings.extend(picked[0])
        self.evidence.extend(picked[1])
        self.problems.extend(picked[2])
        self.view_problems.extend(final.problems)
        for items in (self.findings, self.evidence, self.problems):
            items.sort(key=engine.tag_of)
        return self.findings, self.evidence, self.problems

    def stand(self) -> Stand:
        return Stand(
            {
                scope: [s for _, s in sorted(found, key=_first)]
                for scope, found in self.blocks.items()
            }
        )


def _speaks_for_all(rule: Rule, project: Project, subject: Subject) -> bool:
    """Whether ``nginx_judged_once`` (``per: project``) selected this server as the first of
    the part that does not declare the setting, rather than as one that does."""
    args = rule.spec.raw["where"].get("args") or {}
    key = (
        "nginx_judged_once",
        "project",
        frozenset(str(n) for n in args.get("directives", ())),
        bool(args.get("tls")),
        bool(args.get("content")),
    )
    first: dict[Any, Any] = project.memo(key, dict)
    return first.get(None) is subject.node


def _answer(project: Project, key: Hashable, work: Callable[[Project], Any]) -> Any:
    """The part's own answer, as its rules would have had it (its memo)."""
    return project.memo(key, lambda: work(project))


def _first(item: tuple[int, Any]) -> int:
    return item[0]


class Stand:
    """The other kinds' blocks that inline ignores read, for what follows a scan in parts."""

    def __init__(self, blocks: dict[str, list[Subject]]) -> None:
        self.blocks = blocks

    def subjects(self, scope: str) -> list[Subject]:
        return self.blocks.get(scope, [])


def _verify(project: Project) -> None:
    """Raises PartialViewError where the part's compose files reach another part: an env_file,
    a build context (from either side: a Dockerfile's builders are looked up by path)."""
    held = project.documents
    assert isinstance(held, _Held)
    for view in project.compose_views:
        for svc in view.services.values():
            compose_predicates.service_env(project, view, svc)
            compose_predicates.build_stage(project, view, svc)
        for target in env_predicates.env_file_targets(view):
            held.get(target)
    from policyscan.policy.predicates.dockerfile import builders_by_dockerfile

    for path in builders_by_dockerfile(project):
        held.get(path)
