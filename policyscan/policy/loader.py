"""Load policy files: YAML, then the JSON Schema, then pydantic, then the conditions compiled.

Every error names the file, the rule id (when it could be read) and the key path inside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from policyscan.errors import PolicyError
from policyscan.model import Environment, Kind, Severity
from policyscan.policy.conditions import Condition, compile_condition
from policyscan.policy.model import PolicyModel
from policyscan.policy.predicates import PREDICATES
from policyscan.scopes import SCOPES

MAX_POLICY_BYTES = 256 * 1024


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
    model: PolicyModel
    source: str
    builtin: bool


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


def load_policy_file(path: Path, *, builtin: bool, checklist_ids: frozenset[str]) -> Rule:
    label = str(path)
    try:
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"{label}: policy file is larger than {MAX_POLICY_BYTES} bytes")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise PolicyError(f"{label}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{label}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{label}: a policy file is a mapping with id, name, scope, ...")
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else "?"
    prefix = f"{label}: rule {rule_id}"
    errors = list(_schema_validator().iter_errors(raw))
    if errors:
        import jsonschema.exceptions

        best = jsonschema.exceptions.best_match(errors)
        raise PolicyError(f"{prefix}: {_keypath(best.absolute_path)}: {best.message}")
    model = PolicyModel.model_validate(raw)
    if model.scope not in SCOPES:
        raise PolicyError(
            f"{prefix}: scope: unknown scope {model.scope!r} (known: {', '.join(SCOPES)})"
        )
    for index, item in enumerate(model.checklist):
        if item not in checklist_ids:
            raise PolicyError(f"{prefix}: checklist -> {index}: unknown checklist id {item!r}")
    try:
        where = (
            compile_condition(model.where, "where", PREDICATES) if model.where is not None else None
        )
        check = compile_condition(model.assert_, "assert", PREDICATES)
    except PolicyError as exc:
        raise PolicyError(f"{prefix}: {exc}") from None
    return Rule(
        model.id,
        model.name,
        model.scope,
        frozenset(Kind(a) for a in model.artifacts),
        frozenset(Environment(e) for e in model.environments),
        model.templates,
        Severity(model.severity),
        model.confidence,
        model.checklist,
        model.tags,
        model.message,
        where,
        check,
        model,
        label,
        builtin,
    )


def load_policies(
    extra_dirs: Sequence[str | Path] = (), *, include_builtin: bool = True
) -> list[Rule]:
    from policyscan.checklist import items

    checklist_ids = frozenset(items())
    rules: list[Rule] = []
    sources: list[tuple[Path, bool]] = []
    if include_builtin:
        sources.append((builtin_policy_dir(), True))
    sources.extend((Path(d), False) for d in extra_dirs)
    seen: dict[str, str] = {}
    for directory, builtin in sources:
        for path in _policy_files(directory):
            rule = load_policy_file(path, builtin=builtin, checklist_ids=checklist_ids)
            if rule.id in seen:
                raise PolicyError(
                    f"{path}: rule {rule.id}: id: duplicate id, already defined in {seen[rule.id]}"
                )
            seen[rule.id] = str(path)
            rules.append(rule)
    return sorted(rules, key=lambda r: r.id)
