"""Load policy files: YAML, then the JSON Schema, then pydantic, then the conditions compiled.

Every error names the file, the rule id (when it could be read) and the key path inside it.

Built-in policies are validated once per content: after a run has validated all of them, a
marker named by the hash of their files (and of the schema, the checklist and this version) is
left in the user's cache directory, holding what their YAML read as; later runs take that
instead of reading the YAML and skip jsonschema, pydantic and the checklist (together most of a
pre-commit run's start). A user's own policies are always read and validated.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from policyscan import __version__
from policyscan.cache import user_cache_dir
from policyscan.errors import PolicyError
from policyscan.model import Environment, Kind, Severity
from policyscan.policy.conditions import Condition, Selector, compile_condition, selector
from policyscan.policy.predicates import BLAMES, PREDICATES
from policyscan.scopes import SCOPES

if TYPE_CHECKING:
    from policyscan.policy.model import PolicyModel

MAX_POLICY_BYTES = 256 * 1024
# libyaml reads the policies ten times faster than PyYAML's pure-Python reader; its error
# messages differ, so a file it rejects is read again by the pure one for the message.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The defaults of policy.model.PolicyModel, for built-in files read without pydantic (a test
# checks that both ways give the same rules).
_ALL_ENVIRONMENTS = ("production", "development", "unknown")


class PolicySpec:
    """A policy file's contents; the pydantic model of it is built on first use (reports,
    ``explain``), so a scan with the built-in policies never imports pydantic."""

    __slots__ = ("_model", "raw")

    def __init__(self, raw: Mapping[str, Any], model: PolicyModel | None = None) -> None:
        self.raw = raw
        self._model = model

    def model(self) -> PolicyModel:
        if self._model is None:
            from policyscan.policy.model import PolicyModel

            self._model = PolicyModel.model_validate(self.raw)
        return self._model


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    scope: str
    artifacts: frozenset[Kind]
    environments: frozenset[Environment]
    templates: bool
    severity: Severity
    confidence: str
    checklist: tuple[str, ...]
    tags: tuple[str, ...]
    message: str
    where: Condition | None
    check: Condition
    spec: PolicySpec
    source: str
    builtin: bool
    selects: Selector | None = None  # from ``where``: the engine's index lookup (conditions)
    # The kinds of file its findings can be in, where it asserts one predicate that says
    # (predicates.BLAMES); None: any. A run that reports on other files does not judge it.
    blames: frozenset[Kind] | None = None

    @property
    def model(self) -> PolicyModel:
        return self.spec.model()


def builtin_policy_dir() -> Path:
    packaged = Path(str(resources.files("policyscan"))) / "_builtin_policies"
    if packaged.is_dir():
        return packaged
    # An editable install or a source checkout: the policies live beside the package.
    return Path(__file__).resolve().parents[2] / "policies"


@lru_cache(maxsize=1)
def _schema_validator() -> Any:
    import jsonschema

    schema = json.loads(
        resources.files("policyscan.policy").joinpath("policy.schema.json").read_text("utf-8")
    )
    return jsonschema.Draft202012Validator(schema)


def _keypath(parts: Iterable[Any]) -> str:
    return " -> ".join(str(p) for p in parts) or "(top level)"


def _policy_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise PolicyError(f"{directory}: policy directory not found")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        found.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith((".yaml", ".yml")))
    return sorted(found)


MAX_POLICY_NODES = 20_000
MAX_POLICY_DEPTH = 50


def _check_shape(node: yaml.Node | None, label: str) -> None:
    """Refuse alias bombs and absurd nesting before anything builds or recurses over them
    (the condition compiler and the schema validator both recurse)."""
    stack: list[tuple[yaml.Node, int]] = [(node, 0)] if node is not None else []
    seen = 0
    while stack:
        current, depth = stack.pop()
        seen += 1
        if seen > MAX_POLICY_NODES:
            raise PolicyError(f"{label}: policy expands to more than {MAX_POLICY_NODES} YAML nodes")
        if depth > MAX_POLICY_DEPTH:
            raise PolicyError(f"{label}: policy nests deeper than {MAX_POLICY_DEPTH} levels")
        if isinstance(current, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def _read_text(path: Path, label: str) -> str:
    """The file's text; a FIFO or a device is refused without waiting on it (O_NONBLOCK: opening
    a FIFO for reading would block until a writer comes)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PolicyError(f"{label}: cannot read: not a regular file")
        if st.st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"{label}: policy file is larger than {MAX_POLICY_BYTES} bytes")
        data = os.read(fd, MAX_POLICY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{label}: policy file is larger than {MAX_POLICY_BYTES} bytes")
    return data.decode("utf-8")


def _read_policy(path: Path, label: str) -> Any:
    try:
        text = _read_text(path, label)
        _check_shape(yaml.compose(text, Loader=_FAST_LOADER), label)
        try:
            return yaml.load(text, Loader=_FAST_LOADER)  # a safe loader, in C
        except yaml.YAMLError:
            return yaml.safe_load(text)  # raises again, with PyYAML's own message
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise PolicyError(f"{label}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{label}: cannot read: {exc}") from None


def load_policy_file(
    path: Path,
    *,
    builtin: bool,
    checklist_ids: frozenset[str],
    validated: bool = False,
    raw: Any = None,
) -> Rule:
    """``validated``: this very content already passed the schema, pydantic and the checklist
    (see ``_validated_marker``), and ``raw`` is what its YAML read as; only then are they
    skipped."""
    label = str(path)
    if raw is None:
        raw = _read_policy(path, label)
    if not isinstance(raw, dict):
        raise PolicyError(f"{label}: a policy file is a mapping with id, name, scope, ...")
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else "?"
    prefix = f"{label}: rule {rule_id}"
    if validated:
        spec = PolicySpec(raw)
        fields = _fields_of(raw)
    else:
        errors = list(_schema_validator().iter_errors(raw))
        if errors:
            import jsonschema.exceptions

            best = jsonschema.exceptions.best_match(errors)
            raise PolicyError(f"{prefix}: {_keypath(best.absolute_path)}: {best.message}")
        from policyscan.policy.model import PolicyModel

        model = PolicyModel.model_validate(raw)
        spec = PolicySpec(raw, model)
        fields = _fields_of_model(model)
    scope, checklist, where_node, assert_node = (
        fields["scope"],
        fields["checklist"],
        fields["where"],
        fields["assert"],
    )
    if scope not in SCOPES:
        raise PolicyError(f"{prefix}: scope: unknown scope {scope!r} (known: {', '.join(SCOPES)})")
    for index, item in enumerate(() if validated else checklist):
        if item not in checklist_ids:
            raise PolicyError(f"{prefix}: checklist -> {index}: unknown checklist id {item!r}")
    try:
        where = (
            compile_condition(where_node, "where", PREDICATES) if where_node is not None else None
        )
        check = compile_condition(assert_node, "assert", PREDICATES)
    except PolicyError as exc:
        raise PolicyError(f"{prefix}: {exc}") from None
    return Rule(
        fields["id"],
        fields["name"],
        scope,
        frozenset(Kind(a) for a in fields["artifacts"]),
        frozenset(Environment(e) for e in fields["environments"]),
        fields["templates"],
        Severity(fields["severity"]),
        fields["confidence"],
        checklist,
        fields["tags"],
        fields["message"],
        where,
        check,
        spec,
        label,
        builtin,
        selector(where_node),
        _blames(assert_node),
    )


def _blames(assert_node: Any) -> frozenset[Kind] | None:
    if isinstance(assert_node, dict) and set(assert_node) <= {"predicate", "args"}:
        return BLAMES.get(str(assert_node.get("predicate")))
    return None


def _fields_of_model(model: PolicyModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "name": model.name,
        "scope": model.scope,
        "artifacts": model.artifacts,
        "environments": model.environments,
        "templates": model.templates,
        "severity": model.severity,
        "confidence": model.confidence,
        "checklist": model.checklist,
        "tags": model.tags,
        "message": model.message,
        "where": model.where,
        "assert": model.assert_,
    }


def _fields_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The same fields from a file known to be valid, with PolicyModel's defaults."""
    return {
        "id": raw["id"],
        "name": raw["name"],
        "scope": raw["scope"],
        "artifacts": tuple(raw["artifacts"]),
        "environments": tuple(raw.get("environments", _ALL_ENVIRONMENTS)),
        "templates": raw.get("templates", False),
        "severity": raw["severity"],
        "confidence": raw["confidence"],
        "checklist": tuple(raw["checklist"]),
        "tags": tuple(raw.get("tags", ())),
        "message": raw["message"],
        "where": raw.get("where"),
        "assert": raw["assert"],
    }


def _validated_marker(files: Sequence[Path]) -> Path | None:
    """Where the marker for exactly these built-in files would be; None if they cannot be read
    (they are then loaded the slow way, which reports why)."""
    digest = hashlib.sha256(__version__.encode())
    try:
        digest.update(
            resources.files("policyscan.policy").joinpath("policy.schema.json").read_bytes()
        )
        digest.update(resources.files("policyscan").joinpath("data/checklist.yaml").read_bytes())
        for path in files:
            data = path.read_bytes()
            digest.update(f"\0{path.name}\0{len(data)}\0".encode())
            digest.update(data)
    except OSError:
        return None
    return user_cache_dir() / f"builtin-policies-{digest.hexdigest()[:32]}.marshal"


def _validated(marker: Path | None, count: int) -> list[Any] | None:
    """What the validated files read as, from their marker; None if there is none."""
    if marker is None or _always_validate():
        return None
    try:
        raws = marshal.loads(marker.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(raws, list) or len(raws) != count:
        return None
    return raws


def _mark_validated(marker: Path, raws: list[Any]) -> None:
    # marshal: YAML's values (mappings with any scalar keys) come back as they were, 20x faster
    # than reading the YAML. Best effort: a read-only home only means reading it next time.
    try:
        data = marshal.dumps(raws)
        marker.parent.mkdir(parents=True, exist_ok=True)
        temp = marker.with_name(f".{marker.name}.{os.getpid()}")
        temp.write_bytes(data)
        os.replace(temp, marker)
    except (OSError, ValueError):  # ValueError: a value marshal cannot write (a YAML date)
        pass


def load_policies(
    extra_dirs: Sequence[str | Path] = (), *, include_builtin: bool = True
) -> list[Rule]:
    ids: frozenset[str] | None = None

    def checklist_ids() -> frozenset[str]:
        nonlocal ids
        if ids is None:
            from policyscan.checklist import items

            ids = frozenset(items())
        return ids

    rules: list[Rule] = []
    sources: list[tuple[Path, bool]] = []
    if include_builtin:
        sources.append((builtin_policy_dir(), True))
    sources.extend((Path(d), False) for d in extra_dirs)
    seen: dict[str, str] = {}
    for directory, builtin in sources:
        files = _policy_files(directory)
        marker = _validated_marker(files) if builtin else None
        known = _validated(marker, len(files))
        raws: list[Any] = []
        for index, path in enumerate(files):
            if known is not None:
                rule = load_policy_file(
                    path,
                    builtin=builtin,
                    checklist_ids=frozenset(),
                    validated=True,
                    raw=known[index],
                )
            else:
                rule = load_policy_file(path, builtin=builtin, checklist_ids=checklist_ids())
            raws.append(rule.spec.raw)
            if rule.id in seen:
                raise PolicyError(
                    f"{path}: rule {rule.id}: id: duplicate id, already defined in {seen[rule.id]}"
                )
            seen[rule.id] = str(path)
            rules.append(rule)
        if marker is not None and known is None:
            _mark_validated(marker, raws)
    return sorted(rules, key=lambda r: r.id)


def _always_validate() -> bool:
    return bool(os.environ.get("POLICYSCAN_VALIDATE_BUILTINS"))
