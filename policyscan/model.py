"""The data every stage shares: spans, located values, artifacts, findings, evidence, problems.

Spans are 1-based with an exclusive end column (SARIF's convention). Parser adapters are the only
code that converts a library's positions into a Span; nothing downstream does line arithmetic.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Kind(str, enum.Enum):
    COMPOSE = "compose"
    ENV = "env"
    TERRAFORM = "terraform"
    DOCKERFILE = "dockerfile"
    NGINX = "nginx"


class Environment(str, enum.Enum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Span:
    start_line: int
    start_col: int = 1
    end_line: int = 0
    end_col: int = 0

    def __post_init__(self) -> None:
        # A span given only a start covers that one line.
        if self.end_line < self.start_line:
            object.__setattr__(self, "end_line", self.start_line)

    @classmethod
    def line(cls, line: int) -> Span:
        return cls(line, 1, line, 0)


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class Artifact:
    """A discovered file: where it is (relative, forward slashes), what kind, which environment."""

    path: str
    abspath: str
    kind: Kind
    environment: Environment = Environment.UNKNOWN
    template: bool = False


Scalar = str | int | float | bool | None


@dataclass(slots=True)
class Value:
    """A value with the place it came from.

    ``known`` is false when the value depends on something a static reading cannot know (a shell
    variable, a module output, a function call); rules treat unknown as "cannot decide", never as
    a violation. ``literal`` is false when the value was interpolated from elsewhere (``${VAR}``,
    ``var.x``): a weak secret is reported where it is written, not where it is used.
    """

    data: Scalar | dict[str, Value] | list[Value]
    path: str
    span: Span
    known: bool = True
    literal: bool = True
    text: str | None = None
    sensitive: bool = False
    key_span: Span | None = None

    def get(self, key: str) -> Value | None:
        data = self.data
        if isinstance(data, dict):
            return data.get(key)
        if isinstance(data, list):
            if key.isdigit():
                index = int(key)
                return data[index] if index < len(data) else None
            # A nested Terraform block is a list of one: `versioning.enabled` reads the first.
            return data[0].get(key) if data else None
        return None

    def lookup(self, dotted: str) -> Value | None:
        """Follow a dotted path (``deploy.resources.limits``); ``.`` is the value itself."""
        if dotted in (".", ""):
            return self
        if "." not in dotted:
            # Most paths a rule names are one key of a mapping: the hottest call of a scan.
            data = self.data
            return data.get(dotted) if isinstance(data, dict) else self.get(dotted)
        node: Value | None = self
        for part in dotted.split("."):
            if node is None:
                return None
            node = node.get(part)
        return node

    def items(self) -> Iterator[tuple[str, Value]]:
        if isinstance(self.data, dict):
            yield from self.data.items()
        elif isinstance(self.data, list):
            for index, item in enumerate(self.data):
                yield str(index), item

    def as_str(self) -> str | None:
        """The scalar as compose or an env file would hand it to a program, or None."""
        value = self.data
        if type(value) is str:
            return value
        if value is None or isinstance(value, dict | list):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    @property
    def location(self) -> Location:
        return Location(self.path, self.span)

    def to_plain(self) -> object:
        if isinstance(self.data, dict):
            return {k: v.to_plain() for k, v in self.data.items()}
        if isinstance(self.data, list):
            return [v.to_plain() for v in self.data]
        return self.data


def mapping(path: str, span: Span, entries: Mapping[str, Value] | None = None) -> Value:
    return Value(dict(entries or {}), path, span)


def scalar(data: Scalar, path: str, span: Span, **kwargs: object) -> Value:
    return Value(data, path, span, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that kept a file (or part of it) from being read: reported, never raised."""

    path: str
    span: Span
    message: str
    code: str = "parse-error"
    level: str = "error"


@dataclass(frozen=True, slots=True)
class Related:
    location: Location
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    location: Location
    key: str
    fingerprint: str
    checklist: tuple[str, ...]
    related: tuple[Related, ...] = ()
    suppressed: str | None = None
    sensitive: bool = False  # the offending value is a secret: never show it, nor its line
    snippet: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        span = self.location.span
        return (self.location.path, span.start_line, span.start_col, self.rule_id, self.key)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A check that ran on a node: ``met`` or ``unknown`` (the files cannot decide)."""

    rule_id: str
    checklist: tuple[str, ...]
    location: Location
    key: str
    status: str
    note: str = ""


@dataclass(slots=True)
class ScanResult:
    root: str
    artifacts: list[Artifact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rules_run: list[str] = field(default_factory=list)
    # The project view the rules judged (policyscan.project.Project, or a stand-in built on
    # demand when the results came from the cache). Kept with the result so that it is freed
    # with it: the command exits without freeing it at all (cli.console), which on a large
    # tree saves a second.
    project: Any = field(default=None, repr=False, compare=False)
