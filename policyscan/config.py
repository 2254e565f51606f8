"""Project configuration: ``[tool.policyscan]`` in ``pyproject.toml`` or ``.policyscan.yaml``.

One schema for both files. The file is found by walking up from the scanned root to the first
directory that has one, stopping at the repository boundary (a directory holding ``.git``) so a
configuration outside the repository never applies by surprise; ``--config FILE`` overrides the
search. Relative paths and globs in the file are relative to the file's directory.

Every mistake (unknown key, wrong type, bad severity, unknown rule id) is a ConfigError whose
message names the file and the key, so the CLI exits 2 with something a person can act on.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from policyscan.errors import ConfigError

if TYPE_CHECKING:
    from policyscan.policy.loader import Rule

YAML_NAMES = (".policyscan.yaml", ".policyscan.yml")
PYPROJECT = "pyproject.toml"
# Bigger than any honest configuration; a bound so a hostile file cannot eat memory or time.
MAX_CONFIG_BYTES = 1024 * 1024
SEVERITIES = ("critical", "high", "medium", "low", "info")
FAIL_ON = (*SEVERITIES, "never")
ENVIRONMENTS = ("production", "development", "unknown")


@dataclass(frozen=True, slots=True)
class RuleSettings:
    severity: str | None = None
    environments: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Settings from one file (or the defaults when ``path`` is None)."""

    path: str | None = None
    section: str = ""  # how messages name the table: "[tool.policyscan]" or ""
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str | None = None
    exclude: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()  # absolute directories
    baseline: str | None = None  # absolute path
    max_file_size: int | None = None
    warn_unused_ignores: bool = False
    respect_gitignore: bool = True
    production: tuple[str, ...] = ()
    development: tuple[str, ...] = ()
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def directory(self) -> str | None:
        return os.path.dirname(self.path) if self.path else None

    def where(self, key: str) -> str:
        """``pyproject.toml: [tool.policyscan] fail-on`` for error messages."""
        label = self.path or "(configuration)"
        return f"{label}: {self.section + ' ' if self.section else ''}{key}"


# ----------------------------------------------------------------------------- finding the file


def _has_section(path: str) -> bool:
    """Whether a pyproject.toml configures policyscan; a cheap text test first, because most
    pyproject files on the way up are other tools' and parsing them costs time."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return False
    if b"policyscan" not in head:
        return False
    return "policyscan" in _read_toml(path).get("tool", {})


def find_config(start: str) -> str | None:
    """The configuration file that applies to ``start`` (a directory), or None."""
    directory = os.path.abspath(start)
    while True:
        found = [
            os.path.join(directory, n)
            for n in YAML_NAMES
            if os.path.isfile(os.path.join(directory, n))
        ]
        pyproject = os.path.join(directory, PYPROJECT)
        if os.path.isfile(pyproject) and _has_section(pyproject):
            found.append(pyproject)
        if len(found) > 1:
            names = " and ".join(os.path.basename(f) for f in found)
            raise ConfigError(f"{directory}: both {names} configure policyscan; keep one")
        if found:
            return found[0]
        if os.path.exists(os.path.join(directory, ".git")):
            return None  # the repository's top: a file above it belongs to something else
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


# ----------------------------------------------------------------------------- reading the file


def _read_text(path: str) -> str:
    try:
        size = os.path.getsize(path)
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: configuration file is larger than {MAX_CONFIG_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _read_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None


def _read_yaml(path: str) -> Any:
    import yaml

    text = _read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None


def load_config(path: str) -> Config:
    """Read and validate one configuration file (``pyproject.toml`` or ``.policyscan.yaml``)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: configuration file not found")
    if os.path.basename(path) == PYPROJECT or path.endswith(".toml"):
        document = _read_toml(path)
        tool = document.get("tool", {})
        table = tool.get("policyscan") if isinstance(tool, dict) else None
        if table is None:
            raise ConfigError(f"{path}: no [tool.policyscan] table")
        return _validate(table, path, "[tool.policyscan]")
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    return _validate(raw, path, "")


# ----------------------------------------------------------------------------- the schema


class _Checker:
    """Typed accessors that raise ConfigError naming the file and the key."""

    def __init__(self, path: str, section: str) -> None:
        self.path = path
        self.section = section

    def fail(self, key: str, message: str) -> ConfigError:
        prefix = f"{self.section} " if self.section else ""
        return ConfigError(f"{self.path}: {prefix}{key}: {message}")

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_type_name(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    f"{key}[{index}]", f"expected a non-empty string, got {_type_name(item)}"
                )
        return tuple(item.strip() for item in value)

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise self.fail(key, f"{_show(value)} is not one of {', '.join(allowed)}")
        return value.lower()

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table (mapping), got {_type_name(value)}")
        for name in value:
            if not isinstance(name, str):
                raise self.fail(key, f"keys must be strings, got {_show(name)}")
        return value

    def known_keys(self, table: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = list(allowed)
        for name in table:
            if name not in allowed:
                hint = difflib.get_close_matches(name.replace("_", "-"), allowed, n=1)
                extra = (
                    f" (did you mean {hint[0]!r}?)"
                    if hint
                    else f" (known: {', '.join(sorted(allowed))})"
                )
                raise self.fail(f"{prefix}{name}", f"unknown key{extra}")


def _type_name(value: Any) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TOP_KEYS = (
    "select",
    "ignore",
    "fail-on",
    "exclude",
    "policies",
    "baseline",
    "max-file-size",
    "warn-unused-ignores",
    "respect-gitignore",
    "environments",
    "rules",
    "per-path-ignores",
)


def _validate(raw: Any, path: str, section: str) -> Config:
    check = _Checker(path, section)
    if not isinstance(raw, dict):
        where = f"{section} " if section else ""
        raise ConfigError(f"{path}: {where}expected a mapping of settings, got {_type_name(raw)}")
    table = check.table(raw, "(top level)")
    check.known_keys(table, _TOP_KEYS, "")
    base = os.path.dirname(path)
    values: dict[str, Any] = {"path": path, "section": section}

    handlers: dict[str, Callable[[Any], None]] = {}

    def on(key: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
        def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
            handlers[key] = fn
            return fn

        return register

    @on("select")
    def _select(v: Any) -> None:
        values["select"] = _split_ids(check.strings(v, "select"))

    @on("ignore")
    def _ignore(v: Any) -> None:
        values["ignore"] = _split_ids(check.strings(v, "ignore"))

    @on("fail-on")
    def _fail_on(v: Any) -> None:
        values["fail_on"] = check.choice(v, "fail-on", FAIL_ON)

    @on("exclude")
    def _exclude(v: Any) -> None:
        values["exclude"] = tuple(_glob(g) for g in check.strings(v, "exclude"))

    @on("policies")
    def _policies(v: Any) -> None:
        dirs = tuple(os.path.normpath(os.path.join(base, d)) for d in check.strings(v, "policies"))
        for index, directory in enumerate(dirs):
            if not os.path.isdir(directory):
                raise check.fail(f"policies[{index}]", f"directory not found: {directory}")
        values["policies"] = dirs

    @on("baseline")
    def _baseline(v: Any) -> None:
        if not isinstance(v, str) or not v.strip():
            raise check.fail("baseline", f"expected a file name, got {_show(v)}")
        values["baseline"] = os.path.normpath(os.path.join(base, v.strip()))

    @on("max-file-size")
    def _max(v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise check.fail(
                "max-file-size", f"expected a positive number of bytes, got {_show(v)}"
            )
        values["max_file_size"] = v

    @on("warn-unused-ignores")
    def _warn(v: Any) -> None:
        values["warn_unused_ignores"] = check.boolean(v, "warn-unused-ignores")

    @on("respect-gitignore")
    def _gitignore(v: Any) -> None:
        values["respect_gitignore"] = check.boolean(v, "respect-gitignore")

    @on("environments")
    def _environments(v: Any) -> None:
        envs = check.table(v, "environments")
        check.known_keys(envs, ("production", "development"), "environments.")
        for name in ("production", "development"):
            if name in envs:
                values[name] = tuple(
                    _glob(g) for g in check.strings(envs[name], f"environments.{name}")
                )

    @on("rules")
    def _rules(v: Any) -> None:
        rules: dict[str, RuleSettings] = {}
        for rule_id, settings in check.table(v, "rules").items():
            key = f"rules.{rule_id}"
            body = check.table(settings, key)
            check.known_keys(body, ("severity", "environments"), f"{key}.")
            severity = (
                check.choice(body["severity"], f"{key}.severity", SEVERITIES)
                if "severity" in body
                else None
            )
            envs = None
            if "environments" in body:
                envs = tuple(
                    check.choice(e, f"{key}.environments[{i}]", ENVIRONMENTS)
                    for i, e in enumerate(
                        check.strings(body["environments"], f"{key}.environments")
                    )
                )
            rules[rule_id] = RuleSettings(severity, envs)
        values["rules"] = rules

    @on("per-path-ignores")
    def _per_path(v: Any) -> None:
        entries = []
        for pattern, ids in check.table(v, "per-path-ignores").items():
            if not pattern.strip():
                raise check.fail("per-path-ignores", "an empty glob")
            entries.append(
                (_glob(pattern), _split_ids(check.strings(ids, f"per-path-ignores.{pattern!r}")))
            )
        values["per_path_ignores"] = tuple(entries)

    for key, value in table.items():
        handlers[key](value)
    return Config(**values)


def _split_ids(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _glob(pattern: str) -> str:
    # Globs are written relative to the configuration file; "./x" and "/x" mean the same there.
    pattern = pattern.strip().replace("\\", "/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.lstrip("/") or "*"


# ----------------------------------------------------------------------------- applying it


def matches(relpath: str, patterns: Iterable[str]) -> bool:
    """fnmatch globs (``*`` also crosses ``/``) against the path or its file name, the way
    discovery's ``exclude`` matches."""
    name = PurePosixPath(relpath).name
    return any(fnmatch.fnmatch(relpath, p) or fnmatch.fnmatch(name, p) for p in patterns)


def resolve_rule_ids(config: Config, rules: Sequence[Rule]) -> Config:
    """Check every rule id the file mentions against the loaded rules (names are accepted and
    mapped to ids); an unknown id is a ConfigError naming the key."""
    by_name: dict[str, str] = {}
    for rule in rules:
        by_name[rule.id] = rule.id
        by_name[rule.name] = rule.id

    def resolve(rule_id: str, key: str) -> str:
        if rule_id not in by_name:
            hint = difflib.get_close_matches(rule_id, list(by_name), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else " (see `policyscan rules`)"
            raise ConfigError(f"{config.where(key)}: unknown rule id {rule_id!r}{extra}")
        return by_name[rule_id]

    select = tuple(resolve(r, "select") for r in config.select)
    ignore = tuple(resolve(r, "ignore") for r in config.ignore)
    settings = {resolve(r, f"rules.{r}"): s for r, s in config.rules.items()}
    per_path = tuple(
        (glob, tuple(resolve(r, f"per-path-ignores.{glob!r}") for r in ids))
        for glob, ids in config.per_path_ignores
    )
    return replace(config, select=select, ignore=ignore, rules=settings, per_path_ignores=per_path)


def apply_rule_settings(config: Config, rules: Sequence[Rule]) -> list[Rule]:
    """Rules with the file's per-rule severity and environment overrides applied."""
    from policyscan.model import Environment, Severity

    out = []
    for rule in rules:
        settings = config.rules.get(rule.id)
        if settings is None:
            out.append(rule)
            continue
        if settings.severity is not None:
            rule = replace(rule, severity=Severity(settings.severity))
        if settings.environments is not None:
            rule = replace(
                rule, environments=frozenset(Environment(e) for e in settings.environments)
            )
        out.append(rule)
    return out
