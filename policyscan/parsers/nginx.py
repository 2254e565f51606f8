"""nginx configuration through crossplane, from text already read and decoded.

crossplane reads files by itself; here its lexer is fed the text policyscan read, so crossplane
never opens a file (an ``include`` of ``/etc/nginx/...`` must not read the scanning host's
configuration). Includes are resolved later, by the project view, inside the scanned root.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from sys import intern
from typing import Any

import crossplane
import crossplane.lexer
import crossplane.parser

from policyscan.model import Artifact, Problem, Span

MAX_DEPTH = 100


@dataclass(slots=True)
class Directive:
    name: str
    args: tuple[str, ...]
    span: Span
    path: str
    block: list[Directive] | None = None

    def find(self, name: str) -> list[Directive]:
        return [d for d in self.block or () if d.name == name]


@dataclass(slots=True)
class NginxDocument:
    artifact: Artifact
    directives: list[Directive] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_texts = threading.local()


def _lex_from_text(filename: str) -> Iterator[tuple[str, int, bool]]:
    text: str = _texts.by_name[filename]
    tokens = crossplane.lexer._lex_file_object(io.StringIO(text))
    yield from crossplane.lexer._balance_braces(tokens, filename)


crossplane.parser.lex = _lex_from_text


def _convert(
    stmts: list[dict[str, Any]], path: str, lines: list[str], depth: int
) -> list[Directive]:
    out = []
    for stmt in stmts:
        line = int(stmt.get("line") or 1)
        width = len(lines[line - 1].rstrip()) + 1 if 0 < line <= len(lines) else 1
        block = stmt.get("block")
        children = None
        if block is not None:
            children = _convert(block, path, lines, depth + 1) if depth < MAX_DEPTH else []
        out.append(
            Directive(
                # Interned: configurations repeat the same names and arguments (add_header,
                # always, $host...), and each token was a string of its own.
                intern(stmt["directive"]),
                tuple(map(intern, stmt.get("args", ()))),
                Span(line, 1, line, width),
                path,
                children,
            )
        )
    return out


def _too_deep(text: str) -> int | None:
    """Line where braces nest deeper than MAX_DEPTH: crossplane recurses once per level."""
    if text.count("{") <= MAX_DEPTH:
        return None  # too few braces to nest that deep: no need to walk the text in Python
    depth = 0
    line = 1
    for char in text:
        if char == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char == "}":
            depth -= 1
        elif char == "\n":
            line += 1
    return None


def _unclosed(text: str) -> int | None:
    """Line of the outermost ``{`` that no ``}`` closes (quoted braces are not braces)."""
    opened: list[int] = []
    for token, line, quoted in crossplane.lexer._lex_file_object(io.StringIO(text)):
        if quoted:
            continue
        if token == "{":
            opened.append(line)
        elif token == "}" and opened:
            opened.pop()
    return opened[0] if opened else None


def parse(artifact: Artifact, text: str) -> NginxDocument:
    doc = NginxDocument(artifact)
    deep = _too_deep(text)
    if deep is not None:
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(deep),
                f"not scanned: blocks nested deeper than {MAX_DEPTH} levels",
                "too-complex",
            )
        )
        return doc
    name = artifact.path
    _texts.by_name = {name: text}
    try:
        payload = crossplane.parse(
            name, single=True, check_ctx=False, check_args=False, catch_errors=True
        )
    finally:
        _texts.by_name = {}
    # Lines as crossplane counts them: "\n" only (str.splitlines also splits on \f, \v, ...).
    lines = [line.rstrip("\r") for line in text.split("\n")]
    for error in payload.get("errors", ()):
        line = error.get("line") or 1
        message = str(error.get("error", "syntax error"))
        # crossplane appends " in <file>:<line>"; the location is reported separately.
        message = message.split(" in " + name)[0]
        if message.startswith("unexpected end of file"):
            # crossplane names the end of the file; the line to fix is the block left open.
            opened = _unclosed(text)
            if opened is not None:
                line, message = opened, 'block opened here is never closed (expecting "}")'
        doc.problems.append(
            Problem(artifact.path, Span.line(int(line)), f"nginx syntax error: {message}")
        )
    for config in payload.get("config", ()):
        doc.directives.extend(_convert(config.get("parsed", []), artifact.path, lines, 0))
    # crossplane.parse's nested functions hold the payload in a reference cycle, which only
    # the cyclic collector frees, and a scan runs without it (cli.console): emptied here, the
    # payload's directives are freed now (12 MB at 2,457 files) and the cycle left is small.
    payload.clear()
    return doc
