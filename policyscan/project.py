"""The cross-file view of a repository, and the subjects rules are evaluated on.

Built once from the parsed documents; nothing here reads a file. It merges compose overrides
into the production view, interpolates ``${VAR}`` from the ``.env`` beside a compose file,
splices nginx includes (inside the scanned root only) and computes effective headers with nginx's
inheritance, and resolves Terraform ``var.x`` / ``local.x`` within a module.
"""

from __future__ import annotations

import bisect
import copy
import fnmatch
import heapq
import itertools
import posixpath
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from policyscan.interpolate import interpolate
from policyscan.model import Artifact, Environment, Kind, Problem, Span, Value
from policyscan.parsers.compose import ComposeDocument
from policyscan.parsers.dockerfile import DockerfileDocument, Stage
from policyscan.parsers.env import EnvDocument
from policyscan.parsers.nginx import Directive, NginxDocument
from policyscan.parsers.nginx_stock import STOCK_FILES
from policyscan.parsers.terraform import Block, TerraformDocument, reference

_T = TypeVar("_T")
_K = TypeVar("_K", str, int)


@dataclass(slots=True)
class Subject:
    """One thing a rule looks at: a compose service, an env variable, an nginx server, a
    Terraform resource... ``facts`` is a mapping Value that rule conditions address by path."""

    scope: str
    path: str
    span: Span
    key: str
    kind: Kind
    environment: Environment
    facts: Value
    node: Any = None
    template: bool = False


# Checked first: nearly every fact is one of these (subjects have some 300,000 of them).
_SCALAR_TYPES = frozenset({str, bool, int, float, type(None)})


def _fact(data: Any, path: str, span: Span) -> Value:
    if type(data) in _SCALAR_TYPES:
        return Value(data, path, span)
    if isinstance(data, Value):
        return data
    if isinstance(data, dict):
        return Value({k: _fact(v, path, span) for k, v in data.items()}, path, span)
    if isinstance(data, list | tuple):
        return Value([_fact(v, path, span) for v in data], path, span)
    return Value(data, path, span)


class Facts(Value):
    """A subject's facts, whose scalars (nearly all of them: a subject has several, and a scan
    of 10,000 files makes some 150,000) are kept bare and given their place, as a Value at the
    facts' own location, only when a rule reads them. Everything else reads as a Value's."""

    __slots__ = ()

    def get(self, key: str) -> Value | None:
        # Inlined: the hottest read of a scan (a rule's condition on one key).
        found = _bare(self).get(key, _MISSING)
        if type(found) in _SCALAR_TYPES:
            return Value(found, self.path, self.span)
        if type(found) is Later:
            return found.make(found.source)
        return None if found is _MISSING else found

    def lookup(self, dotted: str) -> Value | None:
        if "." not in dotted:  # one key, nearly every path a rule names: get, inlined
            if not dotted:
                return self
            found = _bare(self).get(dotted, _MISSING)
            if type(found) in _SCALAR_TYPES:
                return Value(found, self.path, self.span)
            if type(found) is Later:
                return found.make(found.source)
            return None if found is _MISSING else found
        if dotted == ".":
            return self
        first, _, rest = dotted.partition(".")
        child = self.get(first)
        return child.lookup(rest) if child is not None else None

    @property
    def data(self) -> dict[str, Value]:
        return {k: self._placed(v) for k, v in _bare(self).items()}

    @data.setter
    def data(self, bare: Any) -> None:
        _set_bare(self, bare)

    def _placed(self, found: Any) -> Value:
        if type(found) in _SCALAR_TYPES:
            return Value(found, self.path, self.span)
        return found.make(found.source) if type(found) is Later else found


class Later:
    """A nested fact made each time it is read, from what the document holds already: an nginx
    context's headers, arguments and directive names made some 80,000 values of their own at
    10,322 files, held for as long as the scope was, whether a rule read them or not."""

    __slots__ = ("make", "source")

    def __init__(self, make: Callable[[Any], Value], source: Any) -> None:
        self.make = make  # a module-level function, so that a pickle can name it
        self.source = source

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as what it reads as: a reader in another process needs no document.
        return (_same, (self.make(self.source),))


def _same(value: Value) -> Value:
    return value


_MISSING: Any = object()
_bare_slot = Value.__dict__["data"]
_bare: Callable[[Value], dict[str, Any]] = _bare_slot.__get__
_set_bare: Callable[[Value, dict[str, Any]], None] = _bare_slot.__set__


def facts(path: str, span: Span, **entries: Any) -> Value:
    return Facts(
        {
            k: v if type(v) in _SCALAR_TYPES or type(v) is Later else _fact(v, path, span)
            for k, v in entries.items()
        },
        path,
        span,
    )


@lru_cache(maxsize=4096)
def _is_sensitive(name: str) -> bool:
    # Cached: a tree repeats the same few hundred names thousands of times, and classifying
    # one is a character-by-character walk.
    from policyscan.secretstrength import classify_name

    return classify_name(name) is not None


# ------------------------------------------------------------------------------- compose


_REPLACED_KEYS = frozenset({"command", "entrypoint", "test", "image", "build"})
_MAPPING_LISTS = frozenset({"environment", "labels", "extra_hosts", "sysctls", "annotations"})


def _normalise_mapping_list(value: Value) -> Value:
    """``environment: [A=1]`` and ``environment: {A: 1}`` as one mapping form."""
    if not isinstance(value.data, list):
        return value
    entries: dict[str, Value] = {}
    for item in value.data:
        text = item.as_str()
        if text is None:
            continue
        name, sep, rest = text.partition("=")
        name = name.strip()
        col = item.span.start_col + len(name) + 1
        entry = Value(
            rest if sep else None,
            item.path,
            Span(item.span.start_line, col, item.span.end_line, item.span.end_col),
            known=bool(sep),  # a bare `- NAME` passes the deploying shell's value through
            literal=bool(sep),
            text=rest if sep else None,
        )
        entry.key_span = item.span
        entries[name] = entry
    return Value(entries, value.path, value.span, key_span=value.key_span)


def _merge(base: Value, override: Value, key: str = "", tags: _Tags | None = None) -> Value:
    """Merge the way ``docker compose -f base -f override`` does. ``tags``: the override's
    values tagged ``!reset`` (the entry is removed) or ``!override`` (it replaces the base's
    instead of merging with it), by id."""
    if key in _REPLACED_KEYS or not isinstance(base.data, dict | list):
        return _without_resets(override, tags)
    if key in _MAPPING_LISTS:
        base, override = _normalise_mapping_list(base), _normalise_mapping_list(override)
    if isinstance(base.data, dict) and isinstance(override.data, dict):
        merged = dict(base.data)
        for k, v in override.data.items():
            tag = tags.get(id(v)) if tags else None
            if tag == "!reset":
                merged.pop(k, None)
            elif tag == "!override" or k not in merged:
                merged[k] = _without_resets(v, tags)
            else:
                merged[k] = _merge(merged[k], v, k, tags)
        return Value(merged, base.path, base.span, key_span=base.key_span)
    if isinstance(base.data, list) and isinstance(override.data, list):
        seen = {item.as_str() for item in base.data if item.as_str() is not None}
        extra = [
            item for item in override.data if item.as_str() is None or item.as_str() not in seen
        ]
        return Value(base.data + extra, base.path, base.span, key_span=base.key_span)
    return _without_resets(override, tags)


# Values tagged !reset or !override in one compose file, by id: Values are not hashable.
_Tags = dict[int, str]


def _without_resets(value: Value, tags: _Tags | None) -> Value:
    """``value`` without the mapping entries tagged ``!reset`` anywhere in it (compose ignores
    their value, in the first file as in an override)."""
    if not tags or "!reset" not in tags.values():
        return value
    data = value.data
    if isinstance(data, dict):
        kept = {k: _without_resets(v, tags) for k, v in data.items() if tags.get(id(v)) != "!reset"}
        if len(kept) == len(data) and all(kept[k] is data[k] for k in kept):
            return value
        return _holding(value, kept)
    if isinstance(data, list):
        items = [_without_resets(v, tags) for v in data]
        if all(a is b for a, b in zip(items, data, strict=True)):
            return value
        return _holding(value, items)
    return value


@dataclass(slots=True)
class ComposeView:
    """The services one ``docker compose`` invocation would run (base file plus overrides)."""

    directory: str
    files: list[str]
    environment: Environment
    services: dict[str, Value]
    root: Value
    dotenv: dict[str, str]
    references: list[tuple[str, bool, Value]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "+".join(posixpath.basename(f) for f in self.files)


def _holding(value: Value, data: dict[str, Value] | list[Value]) -> Value:
    """``dataclasses.replace(value, data=data)``, at a fraction of its cost: every node of every
    compose view is copied."""
    return Value(
        data,
        value.path,
        value.span,
        value.known,
        value.literal,
        value.text,
        value.sensitive,
        value.key_span,
    )


def _interpolate_tree(
    value: Value, env: dict[str, str], refs: list[tuple[str, bool, Value]]
) -> Value:
    """The tree with ``${VAR}`` resolved, sharing what interpolation changed nothing in (as
    resolve_tree does): nothing changes a view's containers once it is made, and its leaves
    were shared with the parsed document (and the other views) already."""
    data = value.data
    if isinstance(data, dict):
        changed: dict[str, Value] | None = None
        for key, item in data.items():
            new = _interpolate_tree(item, env, refs)
            if new is not item:
                if changed is None:
                    changed = {}
                changed[key] = new
        if changed is None:
            return value
        return _holding(value, {k: changed.get(k, v) for k, v in data.items()})
    if isinstance(data, list):
        items = [_interpolate_tree(v, env, refs) for v in data]
        if all(a is b for a, b in zip(items, data, strict=True)):
            return value
        return _holding(value, items)
    if not isinstance(data, str) or "$" not in data:
        return value
    result = interpolate(data, env)
    for name, has_default in result.references:
        refs.append((name, has_default, value))
    if not result.substituted:
        return Value(result.text, value.path, value.span, text=value.text, key_span=value.key_span)
    if result.text is None:
        return Value(
            None,
            value.path,
            value.span,
            known=False,
            literal=False,
            text=value.text,
            key_span=value.key_span,
        )
    return Value(
        result.text,
        value.path,
        value.span,
        literal=False,
        text=result.text,
        key_span=value.key_span,
    )


# ------------------------------------------------------------------------------- nginx


@dataclass(slots=True)
class NginxContext:
    """A server or location with what it declares and the headers nginx would actually send."""

    directive: Directive
    parent: NginxContext | None
    headers: dict[str, Directive]  # effective add_header, by lowercased header name
    inherited_from: NginxContext | None  # where the effective headers are declared

    def values(self, name: str) -> list[Directive]:
        return self.directive.find(name)

    def lookup(self, name: str) -> Directive | None:
        """The directive in force here: declared here, else in an enclosing context."""
        ctx: NginxContext | None = self
        while ctx is not None:
            found = ctx.directive.find(name)
            if found:
                return found[-1]
            ctx = ctx.parent
        return None


def _headers_declared(block: list[Directive]) -> dict[str, Directive]:
    return {d.args[0].lower(): d for d in block if d.name == "add_header" and d.args}


# ------------------------------------------------------------------------------- terraform


@dataclass(slots=True)
class TerraformModule:
    directory: str
    blocks: list[Block] = field(default_factory=list)
    variables: dict[str, Value] = field(default_factory=dict)
    locals: dict[str, Value] = field(default_factory=dict)

    def resources(self, rtype: str | None = None) -> list[Block]:
        return [
            b
            for b in self.blocks
            if b.type == "resource" and (rtype is None or b.labels[0] == rtype)
        ]

    def referencing(self, target: Block, rtype: str) -> list[Block]:
        """Resources of ``rtype`` whose attributes refer to ``target`` (``aws_s3_bucket.x.id``)."""
        needle = target.address + "."
        return [b for b in self.resources(rtype) if _mentions(b.body, needle)]

    def resolve(self, value: Value, depth: int = 0) -> Value:
        if value.known or value.text is None or depth > 8:
            return value
        found = reference(value.text)
        if found is None:
            return value
        source = (self.variables if found[0] == "var" else self.locals).get(found[1])
        if source is None:
            return value
        resolved = self.resolve(source, depth + 1)
        if not resolved.known:
            return value
        # Made directly, not by copy.copy (three times the cost, on thousands of values).
        return Value(
            resolved.data,
            value.path,
            value.span,
            resolved.known,
            False,
            resolved.text,
            resolved.sensitive,
            value.key_span,
        )

    def resolve_tree(self, value: Value) -> Value:
        """``value`` with every ``var.``/``local.`` reference in it resolved. What nothing
        changed in is shared, not copied (copying every block body cost 12 MB and 0.1 s at
        10,322 files): nothing changes a Terraform value in place (a secret is marked on a
        copy)."""
        data = value.data
        if isinstance(data, dict):
            changed = self._resolved_children(data.items())
            if changed is None:
                return value
            return _holding(value, {k: changed.get(k, v) for k, v in data.items()})
        if isinstance(data, list):
            by_index = self._resolved_children(enumerate(data))
            if by_index is None:
                return value
            return _holding(value, [by_index.get(i, v) for i, v in enumerate(data)])
        return self.resolve(value)

    def resolved_body(self, block: Block) -> Value:
        """``resolve_tree(block.body)``, without walking a body the parser saw no reference in."""
        return self.resolve_tree(block.body) if block.references else block.body

    def _resolved_children(self, children: Iterable[tuple[_K, Value]]) -> dict[_K, Value] | None:
        """The children that resolving changes, by key; None when none does. Known leaves,
        most of a block, are passed over without a call."""
        changed: dict[_K, Value] | None = None
        for key, item in children:
            if isinstance(item.data, dict | list):
                resolved = self.resolve_tree(item)
            elif item.known or item.text is None:
                continue
            else:
                resolved = self.resolve(item)
            if resolved is not item:
                if changed is None:
                    changed = {}
                changed[key] = resolved
        return changed


def _mentions(value: Value, needle: str) -> bool:
    if value.text is not None and needle in value.text:
        return True
    return any(_mentions(v, needle) for _, v in value.items())


# ------------------------------------------------------------------------------- project


# The Terraform resources that rules of other families read (the one way they read Terraform:
# Project.terraform_resources). When a scan is split by kind (split.py), the process without
# the Terraform documents gets these resources, and only these, from the process with them.
CROSS_FAMILY_RESOURCES = frozenset(
    {
        "aws_alb_listener",
        "aws_backup_plan",
        "aws_backup_selection",
        "aws_cloudfront_distribution",
        "aws_db_proxy",
        "aws_elasticache_cluster",
        "aws_elasticache_replication_group",
        "aws_elasticache_serverless_cache",
        "aws_lb_listener",
        "aws_memorydb_cluster",
        "aws_wafv2_web_acl",
    }
)


@dataclass(slots=True)
class TerraformIndex:
    """Every block of a set of modules, in module order, walked once: by block type, and the
    resources by resource type with their place in that order (to merge several types back
    into it). Each scope of blocks and each project-wide question reads it, where each walked
    every block of the tree before."""

    blocks: list[tuple[TerraformModule, Block]] = field(default_factory=list)
    by_type: dict[str, list[tuple[TerraformModule, Block]]] = field(default_factory=dict)
    resources: dict[str, list[tuple[int, TerraformModule, Block]]] = field(default_factory=dict)

    @classmethod
    def of(cls, modules: dict[str, TerraformModule]) -> TerraformIndex:
        index = cls()
        for _, module in sorted(modules.items()):
            for block in module.blocks:
                pair = (module, block)
                if block.type == "resource" and block.labels:
                    place = (len(index.blocks), module, block)
                    index.resources.setdefault(block.labels[0], []).append(place)
                index.blocks.append(pair)
                index.by_type.setdefault(block.type, []).append(pair)
        return index

    def resources_of(self, types: Collection[str]) -> Iterator[tuple[TerraformModule, Block]]:
        """The resources of ``types``, in module order."""
        found = [self.resources[t] for t in set(types) if t in self.resources]
        merged = found[0] if len(found) == 1 else heapq.merge(*found, key=_place)
        for _, module, block in merged:
            yield module, block


def _place(item: tuple[int, TerraformModule, Block]) -> int:
    return item[0]


def local_calls(directory: str, block: Block) -> Iterator[str]:
    """The directory that a ``module`` block of the module in ``directory`` calls with a
    relative ``source``, when it is not the caller's own."""
    source = block.body.get("source")
    text = source.as_str() if source is not None and source.known else None
    if text and text.startswith(("./", "../")):
        target = posixpath.normpath(posixpath.join(directory, text))
        target = "" if target == "." else target
        if target != directory:
            yield target


class TerraformElsewhere(BaseException):
    """A rule asked for Terraform resources before the process that holds them sent them
    (split.py): the rule is judged again once they are here. A BaseException, so that the
    engine's net for a predicate's own errors does not catch it."""


class PartialViewError(RuntimeError):
    """A rule read documents of a kind this process does not hold (split.py): a rule of the
    wrong family, or a cross-family read that does not go through terraform_resources."""


@dataclass
class Project:
    root: str
    artifacts: list[Artifact]
    documents: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    _cache: dict[str, list[Subject]] = field(default_factory=dict)
    _memo: dict[Hashable, Any] = field(default_factory=dict)
    # What was worked out from one scope's subjects (memo_of_scope), forgotten with them.
    _scope_memo: dict[str, dict[Hashable, Any]] = field(default_factory=dict)
    # The kinds of document this project holds; None: all of them. A project split by kind
    # raises PartialViewError when asked for others, rather than answering as if there were none.
    kinds: frozenset[Kind] | None = None
    # Without the Terraform documents: the resources of CROSS_FAMILY_RESOURCES by module, once
    # the other process sent them.
    remote_terraform: dict[str, TerraformModule] | None = None
    # The files a run reports on (pre-commit, --changed-since); None: all. Rules then judge only
    # the subjects whose part of the tree holds one of them (part_of): no other can make a
    # finding there. The view and every project-wide answer are still the whole tree's.
    focus: frozenset[str] | None = None
    # Scopes read after the rules (inline ignores read blocks' extents): never released.
    retained: frozenset[str] = frozenset()
    # Each main nginx file's configuration, includes spliced (set with nginx_contexts).
    _nginx_mains: dict[str, list[Directive]] = field(default_factory=dict)
    # When this project holds only some of the tree's Terraform modules (terraform_parts.py):
    # the modules that others of the whole tree call, worked out from all of them; and, for a
    # part, that a project-wide Terraform question is answered only from what seed() gave.
    modules_called: frozenset[str] | None = None
    terraform_part: bool = False
    # Told of each scope's subjects when they are built (terraform_parts.py: where they stand
    # in the whole tree's order).
    observe: Callable[[str, list[Subject]], None] | None = None
    # When this project holds one part of the tree's other kinds (other_parts.py): the part's
    # directories, each with a trailing slash. An nginx include that could reach beyond them
    # raises PartialViewError.
    part_prefixes: tuple[str, ...] | None = None

    def _holds(self, kind: Kind) -> None:
        if self.kinds is not None and kind not in self.kinds:
            raise PartialViewError(f"this process holds no {kind.value} documents")

    def environment_of(self, path: str) -> Environment:
        return self._environments.get(path, Environment.UNKNOWN)

    @cached_property
    def _environments(self) -> dict[str, Environment]:
        return {a.path: a.environment for a in self.artifacts}

    def docs(self, kind: Kind) -> list[Any]:
        self._holds(kind)
        return [
            self.documents[a.path]
            for a in self.artifacts
            if a.kind is kind and a.path in self.documents
        ]

    def in_focus(self, subject: Subject) -> bool:
        """Whether a rule must judge ``subject`` in this run (see ``focus``)."""
        if self.focus is None:
            return True
        part = self.part_of(subject)
        return part is None or not part.isdisjoint(self.focus)

    def may_focus(self, scope: str, blames: frozenset[Kind] | None = None) -> bool:
        """Whether some subject of ``scope`` could be in focus (in_focus), told from the kinds
        of the files in focus alone, before the scope is built; and whether a rule whose
        findings can only be in files of the kinds ``blames`` could make one there."""
        if self.focus is None:
            return True
        if blames is not None and blames.isdisjoint(self._focus_kinds):
            return False
        kinds = _SCOPE_KINDS.get(scope)
        if kinds is None:
            return True
        return any(not _PART_KINDS[kind].isdisjoint(self._focus_kinds) for kind in kinds)

    @cached_property
    def _focus_kinds(self) -> frozenset[Kind]:
        focus = self.focus or frozenset()
        return frozenset(a.kind for a in self.artifacts if a.path in focus)

    def part_of(self, subject: Subject) -> frozenset[str] | None:
        """The files where a finding about ``subject`` can be located (None: anywhere). A
        rule blames the subject's own values or others of its part, never another part's
        (docs/bounded-memory.md lists every project-wide question and what its answers
        carry): a compose or env subject, the compose and env files of its directory (a view
        merges those; a template's finding is on the deployed file beside it); a Terraform
        one, its module's files; an nginx one, the files of every configuration that includes
        its file; a Dockerfile, itself. The project's own subject: anywhere."""
        kind = subject.kind
        if subject.scope == "project":
            return None
        if kind is Kind.NGINX:
            return self._nginx_parts.get(subject.path, frozenset({subject.path}))
        if kind is Kind.DOCKERFILE:
            return frozenset({subject.path})
        return self._directory_files(posixpath.dirname(subject.path), _PART_KINDS[kind])

    def _directory_files(self, directory: str, kinds: frozenset[Kind]) -> frozenset[str]:
        """The files of ``directory`` of the kinds that share a part (_PART_KINDS)."""

        def build() -> dict[tuple[str, frozenset[Kind]], frozenset[str]]:
            found: dict[tuple[str, frozenset[Kind]], set[str]] = {}
            for a in self.artifacts:
                key = (posixpath.dirname(a.path), _PART_KINDS[a.kind])
                found.setdefault(key, set()).add(a.path)
            return {key: frozenset(paths) for key, paths in found.items()}

        table: dict[tuple[str, frozenset[Kind]], frozenset[str]] = self.memo(
            "directory_files", build
        )
        return table.get((directory, kinds), frozenset())

    @cached_property
    def _nginx_parts(self) -> dict[str, frozenset[str]]:
        """Each nginx file, and the files of every main configuration whose includes reach it."""
        _ = self.nginx_contexts  # fills _nginx_mains
        reached: dict[str, set[str]] = {}
        for main, tree in self._nginx_mains.items():
            files = {main}
            stack = list(tree)
            while stack:
                directive = stack.pop()
                files.add(directive.path)
                if directive.block:
                    stack.extend(directive.block)
            for path in files:
                reached.setdefault(path, set()).update(files)
        return {path: frozenset(files) for path, files in reached.items()}

    def memo(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """``build()``, computed once per project. Predicates run once per subject, and many
        of their questions are about the whole project: asked afresh for every subject, they
        make a scan quadratic in the size of the tree."""
        if key not in self._memo:
            self._memo[key] = build()
        found: _T = self._memo[key]
        return found

    def let_go(self, kind: Kind) -> None:
        """Forget the documents of ``kind`` and what was worked out from them, once no rule
        left to judge reads them (READ_BY names who does). A rule that still asks raises
        PartialViewError (_holds), and the caller scans the ordinary way. Not done when an
        ignore comment will read the kind's blocks after the rules (``retained``)."""
        if any(_SCOPE_KINDS.get(scope) == frozenset({kind}) for scope in self.retained):
            return
        self.kinds = (self.kinds if self.kinds is not None else frozenset(Kind)) - {kind}
        for artifact in self.artifacts:
            if artifact.kind is kind:
                self.documents.pop(artifact.path, None)
        for scope, kinds in _SCOPE_KINDS.items():
            if kinds == frozenset({kind}):
                self._cache.pop(scope, None)
                self._scope_memo.pop(scope, None)
        if kind is Kind.NGINX:
            self.__dict__.pop("nginx_contexts", None)
            self.__dict__.pop("_nginx_parts", None)
            self._nginx_mains.clear()
        # Memos about the kind are named after it ("nginx_index", ("memo_for", "nginx_...")):
        # a memo_for table is keyed by identities that freed objects give up.
        self._memo = {k: v for k, v in self._memo.items() if not _names(k, kind.value)}

    def seed(self, answers: dict[Hashable, Any]) -> None:
        """Memo answers worked out elsewhere (for a part: from the whole tree)."""
        self._memo.update(answers)

    def seed_scope(self, scope: str, answers: dict[Hashable, Any]) -> None:
        """memo_of_scope answers worked out elsewhere."""
        self._scope_memo.setdefault(scope, {}).update(answers)

    def memo_for(self, name: Hashable, obj: object, build: Callable[[], _T]) -> _T:
        """``build()`` for one object (a service, a block, a document), computed once per
        project: for what several rules ask of each of them. By the object's identity, which
        no other object takes while the project holds this one, and it holds every document,
        view and block for as long as a memo lives."""
        table: dict[int, _T] = self.memo(("memo_for", name), dict)
        key = id(obj)
        if key not in table:
            table[key] = build()
        return table[key]

    def memo_of_scope(self, scope: str, key: Hashable, build: Callable[[], _T]) -> _T:
        """``memo``, for what is worked out from the subjects of ``scope`` (an index of them):
        released with them."""
        table = self._scope_memo.setdefault(scope, {})
        if key not in table:
            table[key] = build()
        found: _T = table[key]
        return found

    def subjects(self, scope: str) -> list[Subject]:
        if scope not in self._cache:
            builder = _SCOPES.get(scope)
            if builder is None:
                raise KeyError(scope)
            built = self._cache[scope] = list(builder(self))
            if self.observe is not None:
                self.observe(scope, built)
        return self._cache[scope]

    def release(self, scope: str) -> None:
        """Forget the subjects of ``scope`` and what was worked out from them, once judged:
        the subjects of every scope together are about a third of what a scan holds (100 MB
        of 282 at 10,000 files, one process). Asked for again, they are built again, the
        same; nothing else refers to them but a few that a memo keeps (env_trackers)."""
        if scope in self.retained:
            return
        self._cache.pop(scope, None)
        self._scope_memo.pop(scope, None)

    # --- compose

    @cached_property
    def compose_views(self) -> list[ComposeView]:
        by_dir: dict[str, list[ComposeDocument]] = {}
        for doc in self.docs(Kind.COMPOSE):
            if doc.root is not None and not doc.artifact.template:
                by_dir.setdefault(posixpath.dirname(doc.artifact.path), []).append(doc)
        views = []
        for directory, docs in sorted(by_dir.items()):
            dotenv = self.dotenv_for(directory)
            bases = [d for d in docs if _is_base_compose(d.artifact.path)]
            overrides = [d for d in docs if d not in bases]
            prod = [d for d in overrides if d.artifact.environment is Environment.PRODUCTION]
            others = [d for d in overrides if d not in prod]
            groups: list[tuple[list[ComposeDocument], Environment]] = []
            if bases:
                env = Environment.PRODUCTION if prod else bases[0].artifact.environment
                groups.append((bases[:1] + prod, env))
                groups.extend(([bases[0], o], o.artifact.environment) for o in others)
            else:
                groups.extend(([d], d.artifact.environment) for d in overrides)
            for files, env in groups:
                views.append(self._compose_view(directory, files, env, dotenv))
        return views

    def _compose_view(
        self, directory: str, docs: list[ComposeDocument], env: Environment, dotenv: dict[str, str]
    ) -> ComposeView:
        root: Value | None = None
        for doc in docs:
            assert doc.root is not None
            tags = {id(v): tag for v, tag in doc.merge_tags}
            if root is None:
                root = _without_resets(doc.root, tags)
            else:
                root = _merge(root, doc.root, "", tags)
        assert root is not None
        refs: list[tuple[str, bool, Value]] = []
        # Normalise `- A=${A}` to mapping form first, so each value is interpolated (and marked
        # as not literal) on its own, exactly like the mapping form.
        root = _interpolate_tree(_normalise_services(root), dotenv, refs)
        services: dict[str, Value] = {}
        svc_root = root.get("services")
        if svc_root is not None and isinstance(svc_root.data, dict):
            services = {n: s for n, s in svc_root.data.items() if isinstance(s.data, dict)}
        for svc in services.values():
            # Marked here, where the view is made, so that every rule sees it, whatever it
            # runs after: a secret's value is never shown, nor part of a fingerprint.
            variables = svc.get("environment")
            if variables is not None and isinstance(variables.data, dict):
                for name, value in variables.data.items():
                    value.sensitive = _is_sensitive(name)
        return ComposeView(
            directory, [d.artifact.path for d in docs], env, services, root, dotenv, refs
        )

    def dotenv_for(self, directory: str) -> dict[str, str]:
        self._holds(Kind.ENV)
        path = posixpath.join(directory, ".env") if directory else ".env"
        doc = self.documents.get(path)
        if not isinstance(doc, EnvDocument):
            return {}
        return {e.name: e.value for e in doc.entries if e.value is not None}

    # --- terraform

    @cached_property
    def terraform_modules(self) -> dict[str, TerraformModule]:
        modules: dict[str, TerraformModule] = {}
        tfvars: list[TerraformDocument] = []
        calls: list[tuple[TerraformModule, Block]] = []
        for doc in self.docs(Kind.TERRAFORM):
            directory = posixpath.dirname(doc.artifact.path)
            module = modules.setdefault(directory, TerraformModule(directory))
            if doc.artifact.path.endswith((".tfvars", ".tfvars.json")):
                tfvars.append(doc)
                continue
            module.blocks.extend(doc.blocks)
            for block in doc.blocks:
                if block.type == "variable" and block.labels:
                    default = block.body.get("default")
                    if default is not None:
                        module.variables[block.labels[0]] = default
                elif block.type == "locals" and isinstance(block.body.data, dict):
                    module.locals.update(block.body.data)
                elif block.type == "module":
                    calls.append((module, block))
        # Only files Terraform loads by itself: terraform.tfvars and *.auto.tfvars.
        for doc in tfvars:
            name = posixpath.basename(doc.artifact.path)
            if name.startswith("terraform.tfvars") or ".auto.tfvars" in name:
                modules[posixpath.dirname(doc.artifact.path)].variables.update(doc.attributes)
        # A module that another module of the scan calls (`source = "../../"`) gets its inputs
        # from the caller: its defaults are only fallbacks, so `var.x` there stays unknown.
        targets = self.modules_called
        if targets is None:
            targets = frozenset(
                t for module, block in calls for t in local_calls(module.directory, block)
            )
        for target in targets:
            called = modules.get(target)
            if called is not None:
                called.variables.clear()
        return modules

    @cached_property
    def terraform_index(self) -> TerraformIndex:
        return TerraformIndex.of(self.terraform_modules)

    def terraform_blocks(self, block_type: str) -> Iterable[tuple[TerraformModule, Block]]:
        return self.terraform_index.by_type.get(block_type, [])

    def terraform_resources(
        self, types: Collection[str]
    ) -> Iterator[tuple[TerraformModule, Block]]:
        """The resources of ``types`` (all in CROSS_FAMILY_RESOURCES), in module order: how a
        rule about compose, env files or nginx reads Terraform."""
        if self.kinds is None or Kind.TERRAFORM in self.kinds:
            return self.terraform_index.resources_of(types)
        unsent = set(types) - CROSS_FAMILY_RESOURCES
        if unsent:
            raise PartialViewError(f"not in CROSS_FAMILY_RESOURCES: {sorted(unsent)}")
        if self.remote_terraform is None:
            raise TerraformElsewhere
        # Only the few resources the other process sent: indexed on each call.
        return TerraformIndex.of(self.remote_terraform).resources_of(types)

    def cross_family_terraform(self) -> dict[str, TerraformModule]:
        """What terraform_resources reads, for the process that lacks the documents: each
        module with such resources, those resources only, with their values resolved here.
        The module's variables and locals stay here (they were four fifths of the bytes): a
        resolved value resolves to itself, so a rule's ``module.resolved_body(block)``
        there gives what it gives here."""
        out: dict[str, TerraformModule] = {}
        for directory, module in self.terraform_modules.items():
            blocks = [
                replace(b, body=module.resolved_body(b))
                for b in module.blocks
                if b.type == "resource" and b.labels and b.labels[0] in CROSS_FAMILY_RESOURCES
            ]
            if blocks:
                out[directory] = TerraformModule(directory, blocks)
        return out

    # --- nginx

    @cached_property
    def nginx_contexts(self) -> list[tuple[str, NginxContext]]:
        """Every server and location in every top-level configuration, includes spliced."""
        docs = {d.artifact.path: d for d in self.docs(Kind.NGINX)}
        included: set[str] = set()
        spliced: dict[str, list[Directive]] = {}
        problems: dict[str, list[Problem]] = {}
        for path, doc in docs.items():
            before = len(self.problems)
            spliced[path] = self._splice(doc, doc.directives, path, docs, included, 0)
            problems[path] = self.problems[before:]
            del self.problems[before:]
        # An included file's own includes resolve from the main file's directory, as in nginx;
        # what they looked like when the file was read on its own does not count.
        for path in sorted(problems):
            if path not in included:
                self.problems.extend(problems[path])
        out: list[tuple[str, NginxContext]] = []
        for path in sorted(spliced):
            if path in included:
                continue
            self._nginx_mains[path] = spliced[path]
            _walk_contexts(spliced[path], None, {}, out, "server")
        return out

    def _splice(
        self,
        doc: NginxDocument,
        block: list[Directive],
        main: str,
        docs: dict[str, NginxDocument],
        included: set[str],
        depth: int,
    ) -> list[Directive]:
        out: list[Directive] = []
        changed = False
        for directive in block:
            if directive.name == "include" and directive.args and depth < 10:
                targets = self._include_targets(directive, main, docs)
                if not targets:
                    # Kept, so rules can tell "not set" from "set somewhere we could not read".
                    out.append(directive)
                changed = changed or bool(targets)
                for target in targets:
                    if target != doc.artifact.path:
                        included.add(target)
                        out.extend(
                            self._splice(
                                docs[target],
                                docs[target].directives,
                                main,
                                docs,
                                included,
                                depth + 1,
                            )
                        )
                continue
            if directive.block is not None:
                inner = self._splice(doc, directive.block, main, docs, included, depth)
                if inner is not directive.block:
                    directive = Directive(
                        directive.name, directive.args, directive.span, directive.path, inner
                    )
                    changed = True
            out.append(directive)
        # A block with no include anywhere in it is the document's own (nothing changes a
        # directive once parsed): shared, not copied.
        return out if changed else block

    def _include_targets(
        self, directive: Directive, main: str, docs: dict[str, NginxDocument]
    ) -> list[str]:
        pattern = directive.args[0]
        base = posixpath.dirname(main)
        if pattern.startswith("/etc/nginx/"):
            # The usual layout mounts the repository's nginx directory at /etc/nginx.
            pattern = posixpath.join(base, pattern[len("/etc/nginx/") :])
        elif pattern.startswith("/"):
            self._include_problem(directive, "not read: absolute path outside the scanned root")
            return []
        else:
            pattern = posixpath.normpath(posixpath.join(base, pattern))
        if pattern.startswith("../") or pattern == "..":
            self._include_problem(
                directive, "not read: the include points outside the scanned root"
            )
            return []
        literal = len(pattern)
        for ch in "*?[":
            at = pattern.find(ch)
            if at != -1:
                literal = min(literal, at)
        if self.part_prefixes is not None and not pattern[:literal].startswith(self.part_prefixes):
            raise PartialViewError(f"an include of {directive.path} may reach another part")
        if literal < len(pattern):
            # Only paths that start with the pattern's literal part can match (fnmatch's `*`
            # crosses `/`, so not only that directory): a range of the sorted paths, not a
            # match against every file for every include.
            paths: list[str] = self.memo("nginx_paths_sorted", lambda: sorted(docs))
            prefix = pattern[:literal]
            start = bisect.bisect_left(paths, prefix)
            matched = []
            for path in itertools.islice(paths, start, None):
                if not path.startswith(prefix):
                    break
                if fnmatch.fnmatchcase(path, pattern):
                    matched.append(path)
            return matched
        if pattern in docs:
            return [pattern]
        if posixpath.basename(pattern) in STOCK_FILES:
            return []  # shipped with nginx itself; nothing of the project's in it
        self._include_problem(
            directive, f"included file {directive.args[0]!r} was not found in the scan"
        )
        return []

    def _include_problem(self, directive: Directive, message: str) -> None:
        self.problems.append(Problem(directive.path, directive.span, message, "include", "warning"))


def _normalise_services(root: Value) -> Value:
    """A shallow copy of the root whose services have their mapping lists in mapping form."""
    svc_root = root.get("services")
    if svc_root is None or not isinstance(svc_root.data, dict) or not isinstance(root.data, dict):
        return root
    services: dict[str, Value] = {}
    for name, svc in svc_root.data.items():
        if isinstance(svc.data, dict) and any(k in svc.data for k in _MAPPING_LISTS):
            data = {
                k: _normalise_mapping_list(v) if k in _MAPPING_LISTS else v
                for k, v in svc.data.items()
            }
            svc = Value(data, svc.path, svc.span, key_span=svc.key_span)
        services[name] = svc
    out = dict(root.data)
    out["services"] = Value(services, svc_root.path, svc_root.span, key_span=svc_root.key_span)
    return Value(out, root.path, root.span, key_span=root.key_span)


def _is_base_compose(path: str) -> bool:
    return posixpath.basename(path).lower() in (
        "docker-compose.yml",
        "docker-compose.yaml",
        "compose.yml",
        "compose.yaml",
    )


def _walk_contexts(
    block: list[Directive],
    parent: NginxContext | None,
    inherited: dict[str, Directive],
    out: list[tuple[str, NginxContext]],
    want: str,
) -> None:
    declared = _headers_declared(block)
    for directive in block:
        if directive.block is None:
            continue
        if directive.name in ("http", "server", "location", "if") or directive.name == want:
            own = _headers_declared(directive.block)
            effective = own if own else inherited
            ctx = NginxContext(directive, parent, effective, None)
            if directive.name in ("server", "location"):
                out.append((directive.name, ctx))
            _walk_contexts(directive.block, ctx, effective, out, want)
    del declared


# ------------------------------------------------------------------------------- subjects

_Builder = Callable[[Project], Iterable[Subject]]


def _variables(project: Project) -> Iterable[Subject]:
    for doc in project.docs(Kind.ENV):
        art = doc.artifact
        for entry in doc.entries:
            value = Value(
                entry.value,
                art.path,
                entry.value_span,
                text=entry.value,
                sensitive=_is_sensitive(entry.name),
            )
            yield Subject(
                "variable",
                art.path,
                entry.value_span,
                f"env {entry.name}",
                Kind.ENV,
                art.environment,
                facts(
                    art.path,
                    entry.name_span,
                    name=entry.name,
                    value=value,
                    source="env",
                    literal=True,
                    template=art.template,
                    service=None,
                ),
                entry,
                art.template,
            )
    for view in project.compose_views:
        for service, svc in view.services.items():
            env = svc.get("environment")
            if env is None or not isinstance(env.data, dict):
                continue
            for name, value in env.data.items():
                yield Subject(
                    "variable",
                    value.path,
                    value.span,
                    f"service {service} / environment / {name}",
                    Kind.COMPOSE,
                    view.environment,
                    facts(
                        value.path,
                        value.key_span or value.span,
                        name=name,
                        value=value,
                        source="compose",
                        literal=value.literal and value.known,
                        template=False,
                        service=service,
                    ),
                    value,
                )
    for doc in project.docs(Kind.DOCKERFILE):
        art = doc.artifact
        stages: list[tuple[Stage | None, list[Any]]] = [(None, doc.global_args)]
        stages += [(s, s.assignments) for s in doc.stages]
        final = doc.final
        for stage, assignments in stages:
            for a in assignments:
                value = Value(
                    a.value, art.path, a.span, text=a.value, sensitive=_is_sensitive(a.name)
                )
                stage_name = "global" if stage is None else (stage.alias or str(stage.index))
                yield Subject(
                    "variable",
                    art.path,
                    a.span,
                    f"stage {stage_name} / {a.cmd} {a.name}",
                    Kind.DOCKERFILE,
                    art.environment,
                    facts(
                        art.path,
                        a.span,
                        name=a.name,
                        value=value,
                        source="dockerfile",
                        instruction=a.cmd,
                        literal=a.value is not None,
                        template=art.template,
                        final_stage=stage is final and stage is not None,
                        service=None,
                    ),
                    a,
                    art.template,
                )


def _compose_services(project: Project) -> Iterable[Subject]:
    for view in project.compose_views:
        for name, svc in view.services.items():
            span = svc.key_span or svc.span
            data = dict(svc.data) if isinstance(svc.data, dict) else {}
            data["name"] = Value(name, svc.path, span)
            data["files"] = _fact(view.files, svc.path, span)
            yield Subject(
                "compose.service",
                svc.path,
                span,
                f"service {name}",
                Kind.COMPOSE,
                view.environment,
                Value(data, svc.path, span),
                (view, name),
            )


def _instruction_values(stage: Stage, cmd: str, path: str) -> list[Value]:
    return [
        Value(i.shell_text, path, i.span, text=i.shell_text)
        for i in stage.instructions
        if i.cmd == cmd
    ]


def _stage_facts(doc: DockerfileDocument, stage: Stage) -> Value:
    path = doc.artifact.path
    data: dict[str, Value] = {
        "image": Value(stage.image, path, stage.span, text=stage.image),
        "alias": Value(stage.alias, path, stage.span),
        "index": Value(stage.index, path, stage.span),
        "final": Value(stage is doc.final, path, stage.span),
        "stages": Value(len(doc.stages), path, stage.span),
        "run": Value(_instruction_values(stage, "RUN", path), path, stage.span),
        "copy_from": Value(
            [
                Value(i.flag("from"), path, i.span)
                for i in stage.instructions
                if i.cmd in ("COPY", "ADD") and i.flag("from")
            ],
            path,
            stage.span,
        ),
    }
    for cmd in ("CMD", "ENTRYPOINT", "USER", "HEALTHCHECK", "WORKDIR"):
        found = _instruction_values(stage, cmd, path)
        if found:
            data[cmd.lower()] = found[-1]  # the last one is the one in force
    return Value(data, path, stage.span)


def _dockerfile_stages(project: Project) -> Iterable[Subject]:
    for doc in project.docs(Kind.DOCKERFILE):
        art = doc.artifact
        for stage in doc.stages:
            yield Subject(
                "dockerfile.stage",
                art.path,
                stage.span,
                f"stage {stage.alias or stage.index}",
                Kind.DOCKERFILE,
                art.environment,
                _stage_facts(doc, stage),
                (doc, stage),
                art.template,
            )


def _enclosing_server(ctx: NginxContext | None) -> NginxContext | None:
    while ctx is not None and ctx.directive.name != "server":
        ctx = ctx.parent
    return ctx


def _is_tls(server: NginxContext) -> bool:
    for listen in server.values("listen"):
        if "ssl" in listen.args or "quic" in listen.args:
            return True
    ssl = server.values("ssl")
    return bool(ssl and ssl[-1].args[:1] == ("on",))


def _header_fact(header: Directive) -> Value:
    """An add_header value. One that is a single variable (``$csp`` from a ``map``) is computed
    elsewhere, so unknown; ``$http_origin`` is the exception: its meaning (the request's own
    Origin, reflected) is exactly what the CORS rules look for."""
    text = " ".join(header.args[1:])
    core = text[: -len(" always")] if text.endswith(" always") else text
    core = core.strip().strip("\"'")
    single_variable = core.startswith("$") and core[1:].replace("_", "").isalnum()
    computed = single_variable and core != "$http_origin"
    return Value(text, header.path, header.span, known=not computed, text=text)


def _listen(ctx: NginxContext) -> list[str]:
    return [" ".join(x.args) for x in ctx.values("listen")]


# The nested facts of an nginx subject (Later), at the context's own directive.
def _args_fact(d: Directive) -> Value:
    return _fact(list(d.args), d.path, d.span)


def _listen_fact(ctx: NginxContext) -> Value:
    d = ctx.directive
    return _fact(_listen(ctx), d.path, d.span)


def _headers_fact(ctx: NginxContext) -> Value:
    d = ctx.directive
    return Value({name: _header_fact(h) for name, h in ctx.headers.items()}, d.path, d.span)


def _directives_fact(d: Directive) -> Value:
    return _fact(sorted({x.name for x in d.block or ()}), d.path, d.span)


def _nginx(scope: str) -> _Builder:
    def build(project: Project) -> Iterable[Subject]:
        for kind, ctx in project.nginx_contexts:
            if kind != scope:
                continue
            d = ctx.directive
            listen = _listen(ctx)
            key = f"{kind} {' '.join(d.args) or ''}".strip()
            if kind == "server":
                names = [" ".join(x.args) for x in ctx.values("server_name")]
                key = f"server {' '.join(names) or '_'} {' '.join(listen)}".strip()
            else:
                server = ctx.parent
                while server is not None and server.directive.name != "server":
                    server = server.parent
                if server is not None:
                    names = [" ".join(x.args) for x in server.values("server_name")]
                    key = f"server {' '.join(names) or '_'} / location {' '.join(d.args)}"
            server_ctx = _enclosing_server(ctx)
            yield Subject(
                f"nginx.{kind}",
                d.path,
                d.span,
                key,
                Kind.NGINX,
                project.environment_of(d.path),
                facts(
                    d.path,
                    d.span,
                    args=Later(_args_fact, d),
                    listen=Later(_listen_fact, ctx),
                    headers=Later(_headers_fact, ctx),
                    directives=Later(_directives_fact, d),
                    tls=server_ctx is not None and _is_tls(server_ctx),
                    own_headers=any(x.name == "add_header" for x in d.block or ()),
                ),
                ctx,
            )

    return build


def _terraform(block_type: str) -> _Builder:
    scope = f"terraform.{block_type}"

    def build(project: Project) -> Iterable[Subject]:
        # One header span per position, as the parsers share theirs (a block's first line).
        headers: dict[tuple[int, int], Span] = {}
        for module, block in project.terraform_blocks(block_type):
            body = module.resolved_body(block)
            data = dict(body.data) if isinstance(body.data, dict) else {}
            label = block.labels[0] if block.labels else ""
            # Underscored: resources have attributes called `type` and `name` of their own.
            data["_type"] = Value(label, block.path, block.span)
            data["_name"] = Value(
                block.labels[1] if len(block.labels) > 1 else label, block.path, block.span
            )
            start = block.span
            header = headers.get((start.start_line, start.start_col))
            if header is None:
                header = Span(start.start_line, start.start_col, start.start_line, 0)
                headers[start.start_line, start.start_col] = header
            yield Subject(
                scope,
                block.path,
                header,
                block.address,
                Kind.TERRAFORM,
                Environment.UNKNOWN,
                Value(data, block.path, header),
                (module, block),
            )

    return build


def _tfvars(project: Project) -> Iterable[Subject]:
    """One subject per assignment of a ``*.tfvars`` file, whether Terraform loads it by itself
    or is given it (``-var-file=prod.tfvars``): the values a deployment passes to its
    variables, secrets among them. The facts are those of a ``variable`` subject, so the
    secret predicates judge both alike."""
    for doc in project.docs(Kind.TERRAFORM):
        art = doc.artifact
        if not art.path.endswith((".tfvars", ".tfvars.json")):
            continue
        for name, assigned in doc.attributes.items():
            value = assigned
            if _is_sensitive(name) and not isinstance(assigned.data, dict | list):
                # Marked on a copy: the document's own value stays as parsed.
                value = copy.copy(assigned)
                value.sensitive = True
            span = assigned.key_span or assigned.span
            yield Subject(
                "terraform.tfvars",
                art.path,
                span,
                f"tfvars {name}",
                Kind.TERRAFORM,
                art.environment,
                facts(
                    art.path,
                    span,
                    name=name,
                    value=value,
                    source="tfvars",
                    literal=assigned.known and assigned.literal,
                    template=art.template,
                    service=None,
                ),
                None,
                art.template,
            )


def _project(project: Project) -> Iterable[Subject]:
    yield Subject(
        "project",
        "",
        Span.line(1),
        "project",
        Kind.COMPOSE,
        Environment.UNKNOWN,
        facts("", Span.line(1)),
    )


def _env_files(project: Project) -> Iterable[Subject]:
    """One subject per env file, for rules about what a file configures as a whole (a key that
    no file sets, an error tracker missing from an otherwise complete production file)."""
    for doc in project.docs(Kind.ENV):
        art = doc.artifact
        span = Span.line(1)
        keys = {
            e.name: Value(
                e.value, art.path, e.value_span, text=e.value, sensitive=_is_sensitive(e.name)
            )
            for e in doc.entries
        }
        yield Subject(
            "env.file",
            art.path,
            span,
            f"env file {posixpath.basename(art.path)}",
            Kind.ENV,
            art.environment,
            facts(
                art.path,
                span,
                name=posixpath.basename(art.path),
                keys=Value(keys, art.path, span),
                count=len(keys),
                template=art.template,
            ),
            doc,
            art.template,
        )


def _compose_references(project: Project) -> Iterable[Subject]:
    """One subject per ``${VAR}`` a compose view interpolates. Views share their base file, so
    a reference is yielded once per environment (the rule's ``environments`` picks)."""
    seen: set[tuple[str, int, int, str, Environment]] = set()
    for view in project.compose_views:
        for name, has_default, value in view.references:
            key = (value.path, value.span.start_line, value.span.start_col, name, view.environment)
            if key in seen:
                continue
            seen.add(key)
            raw = value.data if isinstance(value.data, str) else (value.text or "")
            # ${VAR:?message} / ${VAR?message}: compose refuses to start without it, by design.
            required = "${" + name + ":?" in raw or "${" + name + "?" in raw
            yield Subject(
                "compose.reference",
                value.path,
                value.span,
                f"${{{name}}}",
                Kind.COMPOSE,
                view.environment,
                facts(
                    value.path,
                    value.span,
                    name=Value(name, value.path, value.span),
                    has_default=has_default,
                    required=required,
                    directory=view.directory,
                ),
                (view, value),
            )


_SCOPES: dict[str, _Builder] = {
    "variable": _variables,
    "compose.service": _compose_services,
    "dockerfile.stage": _dockerfile_stages,
    "nginx.server": _nginx("server"),
    "nginx.location": _nginx("location"),
    "terraform.resource": _terraform("resource"),
    "terraform.provider": _terraform("provider"),
    "terraform.variable": _terraform("variable"),
    "terraform.data": _terraform("data"),
    "terraform.tfvars": _tfvars,
    "project": _project,
    "env.file": _env_files,
    "compose.reference": _compose_references,
}

SCOPES = tuple(sorted(_SCOPES))

# The scopes whose rules read each kind's documents, where that is not every scope: once they
# are judged, the documents can go (Project.let_go).
READ_BY: dict[Kind, frozenset[str]] = {
    # nginx rules, and the project's own (PSX002 reads nginx servers)
    Kind.NGINX: frozenset({"nginx.server", "nginx.location", "project"}),
}


def _names(key: Hashable, prefix: str) -> bool:
    if isinstance(key, str):
        return key.startswith(prefix)
    if isinstance(key, tuple):
        return any(isinstance(part, str) and part.startswith(prefix) for part in key[:2])
    return False


# The kinds of the subjects of each scope (the project's own subject aside), and the kinds of
# the files in a subject's part by its kind (Project.part_of): a scope none of whose parts can
# hold a file in focus is not even built.
_SCOPE_KINDS: dict[str, frozenset[Kind]] = {
    "variable": frozenset({Kind.ENV, Kind.COMPOSE, Kind.DOCKERFILE}),
    "compose.service": frozenset({Kind.COMPOSE}),
    "compose.reference": frozenset({Kind.COMPOSE}),
    "env.file": frozenset({Kind.ENV}),
    "dockerfile.stage": frozenset({Kind.DOCKERFILE}),
    "nginx.server": frozenset({Kind.NGINX}),
    "nginx.location": frozenset({Kind.NGINX}),
    **{s: frozenset({Kind.TERRAFORM}) for s in _SCOPES if s.startswith("terraform.")},
}
_PART_KINDS: dict[Kind, frozenset[Kind]] = {
    Kind.NGINX: frozenset({Kind.NGINX}),
    Kind.DOCKERFILE: frozenset({Kind.DOCKERFILE}),
    Kind.TERRAFORM: frozenset({Kind.TERRAFORM}),
    Kind.COMPOSE: frozenset({Kind.COMPOSE, Kind.ENV}),
    Kind.ENV: frozenset({Kind.COMPOSE, Kind.ENV}),
}
