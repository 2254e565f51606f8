"""``.env`` files through python-dotenv's own parser, with exact lines and columns.

python-dotenv attaches a binding's line to the start of its raw chunk, and a chunk begins with
the blank lines before it; the key's real line is found by skipping them here, once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from dotenv.parser import parse_stream

from policyscan.model import Artifact, Problem, Span


@dataclass(frozen=True, slots=True)
class EnvEntry:
    name: str
    value: str | None
    name_span: Span
    value_span: Span
    quoted: bool


@dataclass(slots=True)
class EnvDocument:
    artifact: Artifact
    entries: list[EnvEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # By name, made on the first get(): rules ask for every key of every template beside the
    # file, and a walk over the entries each time was quadratic. The entries are complete once
    # the file is parsed.
    _by_name: dict[str, EnvEntry] | None = field(default=None, repr=False, compare=False)

    def get(self, name: str) -> EnvEntry | None:
        if self._by_name is None:
            # Later entries overwrite earlier ones: the last assignment wins, as in every loader.
            self._by_name = {entry.name: entry for entry in self.entries}
        return self._by_name.get(name)


def parse(artifact: Artifact, text: str) -> EnvDocument:
    doc = EnvDocument(artifact)
    # Lines are counted here, not taken from python-dotenv: its count takes a CR LF that falls
    # across two bindings (``A=b {\r`` then ``\nC=d``) for two line ends. The bindings' raw
    # chunks cover the text in order, so a running count of "\n" is exact.
    start_line = 1
    for binding in parse_stream(io.StringIO(text)):
        raw = binding.original.string
        line = start_line
        start_line += raw.count("\n")
        lines = raw.split("\n")
        skip = 0
        while skip < len(lines) - 1 and not lines[skip].strip():
            skip += 1
        line += skip
        first = lines[skip].rstrip("\r") if lines else ""
        if binding.error:
            doc.problems.append(
                Problem(
                    artifact.path,
                    Span(line, 1, line, len(first) + 1),
                    "cannot parse this line as KEY=VALUE",
                    "parse-error",
                )
            )
            continue
        if binding.key is None:
            continue
        key_col = first.find(binding.key) + 1 or 1
        name_span = Span(line, key_col, line, key_col + len(binding.key))
        eq = first.find("=", key_col - 1 + len(binding.key))
        if eq < 0:
            value_span = Span(line, key_col, line, key_col + len(binding.key))
            quoted = False
        else:
            start = eq + 1
            while start < len(first) and first[start] in " \t":
                start += 1
            quoted = start < len(first) and first[start] in "'\""
            end_line = (
                line + max(0, len(lines) - skip - 2)
                if binding.value and "\n" in binding.value
                else line
            )
            end_col = len(first) + 1 if end_line == line else len(lines[-2].rstrip("\r")) + 1
            value_span = Span(line, start + 1, end_line, max(end_col, start + 1))
        doc.entries.append(EnvEntry(binding.key, binding.value, name_span, value_span, quoted))
    return doc
