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
_QUOTED = re.compile(r'"[^"\n]*"')
# BuildKit's parser is quadratic in the length of an instruction (continuations and heredoc
# bodies included): a 60 KB instruction takes seconds. A larger Dockerfile is reported instead.
MAX_BYTES = 64 * 1024
_INSTRUCTION = re.compile(
    r"^[ \t]*(?:from|run|cmd|label|maintainer|expose|env|add|copy|entrypoint|volume|user|workdir|"
    r"arg|onbuild|stopsignal|healthcheck|shell)\b",
    re.IGNORECASE,
)


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
    # Names are written in order: each search starts where the previous name was found, so an
    # ENV of a thousand continued lines is read once. After a name that cannot be placed, the
    # rest take the cursor's line rather than searching every line again.
    last = min(cmd.end_line, len(lines))
    number = cmd.start_line
    first = lines[number - 1] if 0 < number <= len(lines) else ""
    pos = len(first) - len(first.lstrip()) + len(cmd.cmd)
    lost = False
    for name, value in pairs:
        pattern = re.compile(r"(?:^|(?<=\s))" + re.escape(name) + r"(?=[=\s]|$)")
        found = None
        while not lost and number <= last:
            text = lines[number - 1]
            found = pattern.search(text, pos)
            if found:
                break
            number, pos = number + 1, 0
        if found is None:
            lost = True
            number = min(number, max(last, cmd.start_line))
            out.append(Assignment(cmd.cmd.upper(), name, value, Span.line(number)))
            continue
        end = len(text.rstrip()) + 1
        out.append(
            Assignment(cmd.cmd.upper(), name, value, Span(number, found.start() + 1, number, end))
        )
        pos = found.end()
    return out


def _error_line(text: str, message: str) -> int:
    """BuildKit's errors carry no line: parse instruction by instruction (cheaper than the whole
    file, the parser being quadratic) and return the line of the first that fails the same way."""
    match = _LINE_IN_ERROR.search(message)
    if match:
        return int(match.group(1))
    lines = text.split("\n")
    starts = [
        i
        for i, line in enumerate(lines)
        if _INSTRUCTION.match(line) and not (i and lines[i - 1].rstrip().endswith(("\\", "`")))
    ]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        try:
            dockerfile.parse_string("\n".join(lines[start:end]) + "\n")
        except (dockerfile.GoParseError, UnicodeDecodeError) as exc:
            if str(exc) == message:
                return start + 1
    return 1


def parse(artifact: Artifact, text: str) -> DockerfileDocument:
    doc = DockerfileDocument(artifact)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(1),
                f"not scanned: {size} bytes is over the Dockerfile limit of {MAX_BYTES} bytes",
                "too-large",
            )
        )
        return doc
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        line = _error_line(text, str(exc))
        # BuildKit quotes the offending word (`can't find = in "hunter2"`): a report never
        # shows a file's values, and the line says where to look.
        message = _QUOTED.sub('"..."', str(exc))
        doc.problems.append(
            Problem(artifact.path, Span.line(line), f"Dockerfile syntax error: {message}")
        )
        return doc
    except UnicodeDecodeError as exc:
        # The dockerfile package hands back a flag cut inside a multi-byte character
        # (`COPY --s\u6800 a b`, found by benchmarks/fuzz_parsers.py): not readable as parsed.
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(_error_line(text, str(exc))),
                "Dockerfile not scanned: BuildKit's parser returned broken text for this "
                "instruction (non-ASCII text in a --flag)",
                "parse-error",
            )
        )
        return doc
    # Lines as the parser counts them: "\n" only (str.splitlines also splits on \f, \v, ...).
    lines = [line.rstrip("\r") for line in text.split("\n")]
    for cmd in commands:
        if cmd.cmd is None:  # a lone line continuation ("\\" and nothing after it)
            continue
        name = cmd.cmd.upper()
        last = lines[cmd.end_line - 1] if 0 < cmd.end_line <= len(lines) else ""
        span = Span(cmd.start_line, 1, cmd.end_line, len(last.rstrip()) + 1)
        instruction = Instruction(
            name,
            tuple(cmd.value),
            tuple(cmd.flags),
            cmd.original,
            span,
            bool(cmd.json),
            tuple(h.content for h in cmd.heredocs),
        )
        if name == "FROM":
            args = [a for a in cmd.value]
            image = args[0] if args else ""
            alias = args[2] if len(args) >= 3 and args[1].lower() == "as" else None
            doc.stages.append(Stage(len(doc.stages), image, alias, span, [instruction]))
            if not image:
                doc.problems.append(
                    Problem(artifact.path, span, "FROM without an image", "parse-error")
                )
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
                Problem(
                    artifact.path, span, f"{name} before the first FROM", "parse-error", "warning"
                )
            )
    return doc
