"""Dockerfiles through BuildKit's own parser (the ``dockerfile`` package): stages, instructions,
heredocs, line continuations. Columns are not given by the parser: an instruction spans whole
lines, and a variable set by ENV/ARG is placed on the line of its own ``NAME=`` within them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile

from policyscan.model import Artifact, Problem, Span


@dataclass(frozen=True, slots=True)
class Instruction:
    cmd: str
    args: tuple[str, ...]
    flags: tuple[str, ...]
    original: str
    span: Span
    json: bool
    heredocs: tuple[str, ...] = ()

    def flag(self, name: str) -> str | None:
        prefix = f"--{name}="
        for flag in self.flags:
            if flag.lower().startswith(prefix):
                return flag[len(prefix) :]
        return None

    @property
    def shell_text(self) -> str:
        """What the instruction runs, as one string (exec form joined, heredoc bodies added)."""
        return " ".join((*self.args, *self.heredocs))


@dataclass(frozen=True, slots=True)
class Assignment:
    """One ``NAME=value`` of ENV or ARG (value None for ``ARG NAME`` without a default)."""

    cmd: str
    name: str
    value: str | None
    span: Span


@dataclass(slots=True)
class Stage:
    index: int
    image: str
    alias: str | None
    span: Span
    instructions: list[Instruction] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)


@dataclass(slots=True)
class DockerfileDocument:
    artifact: Artifact
    stages: list[Stage] = field(default_factory=list)
    global_args: list[Assignment] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None


_LINE_IN_ERROR = re.compile(r"line (\d+)")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _assignments(cmd: dockerfile.Command, lines: list[str]) -> list[Assignment]:
    pairs: list[tuple[str, str | None]] = []
    if cmd.cmd.upper() == "ENV":
        values = list(cmd.value)
        pairs = [(values[i], _unquote(values[i + 1])) for i in range(0, len(values) - 1, 2)]
    else:
        for item in cmd.value:
            name, sep, value = item.partition("=")
            pairs.append((name, _unquote(value) if sep else None))
    out = []
    for name, value in pairs:
        line = cmd.start_line
        pattern = re.compile(r"(?:^|\s)(" + re.escape(name) + r")(?:[=\s]|$)")
        for number in range(cmd.start_line, min(cmd.end_line, len(lines)) + 1):
            text = lines[number - 1]
            found = pattern.search(text, 4 if number == cmd.start_line else 0)
            if found:
                col = found.start(1)
                line = number
                out.append(Assignment(cmd.cmd.upper(), name, value,
                                      Span(line, col + 1, line, len(text.rstrip()) + 1)))
                break
        else:
            out.append(Assignment(cmd.cmd.upper(), name, value, Span.line(line)))
    return out


def parse(artifact: Artifact, text: str) -> DockerfileDocument:
    doc = DockerfileDocument(artifact)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        match = _LINE_IN_ERROR.search(str(exc))
        line = int(match.group(1)) if match else 1
        doc.problems.append(Problem(artifact.path, Span.line(line), f"Dockerfile syntax error: {exc}"))
        return doc
    lines = text.splitlines()
    for cmd in commands:
        name = cmd.cmd.upper()
        last = lines[cmd.end_line - 1] if 0 < cmd.end_line <= len(lines) else ""
        span = Span(cmd.start_line, 1, cmd.end_line, len(last.rstrip()) + 1)
        instruction = Instruction(
            name, tuple(cmd.value), tuple(cmd.flags), cmd.original, span, bool(cmd.json),
            tuple(h.content for h in cmd.heredocs),
        )
        if name == "FROM":
            args = [a for a in cmd.value]
            image = args[0] if args else ""
            alias = args[2] if len(args) >= 3 and args[1].lower() == "as" else None
            doc.stages.append(Stage(len(doc.stages), image, alias, span, [instruction]))
            if not image:
                doc.problems.append(Problem(artifact.path, span, "FROM without an image", "parse-error"))
            continue
        if name in ("ENV", "ARG"):
            found = _assignments(cmd, lines)
            if doc.stages:
                doc.stages[-1].assignments.extend(found)
            else:
                doc.global_args.extend(found)
        if doc.stages:
            doc.stages[-1].instructions.append(instruction)
        elif name not in ("ARG",):
            doc.problems.append(
                Problem(artifact.path, span, f"{name} before the first FROM", "parse-error", "warning")
            )
    return doc
