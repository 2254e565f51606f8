"""Read an artifact's bytes once and turn them into text, or into a Problem that says why not."""

from __future__ import annotations

import codecs
import os
import re

from policyscan.model import Artifact, Problem, Span


class Unreadable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def read_bytes(artifact: Artifact, max_bytes: int) -> bytes:
    # O_NONBLOCK: if a FIFO slipped in between discovery and here, open must not wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(artifact.abspath, flags)
    except OSError as exc:
        raise Unreadable(
            _problem(artifact, 1, f"cannot read: {exc.strerror}", "unreadable")
        ) from None
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise Unreadable(
                _problem(
                    artifact,
                    1,
                    f"skipped: {size} bytes is over the size limit of {max_bytes} bytes",
                    "too-large",
                )
            )
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise Unreadable(
            _problem(artifact, 1, f"cannot read: {exc.strerror}", "unreadable")
        ) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise Unreadable(
            _problem(artifact, 1, f"skipped: over the size limit of {max_bytes} bytes", "too-large")
        )
    return data


def decode(artifact: Artifact, data: bytes) -> str:
    """UTF-8 (a BOM is dropped), or UTF-16 with a BOM; anything else is a Problem at the line of
    the first byte that does not decode. Line ends are made ones every parser agrees on."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise Unreadable(_problem(artifact, 1, "invalid UTF-16 text", "encoding")) from None
        nul = text.find("\0")
        if nul >= 0:
            line = text.count("\n", 0, nul) + 1
            raise Unreadable(_problem(artifact, line, _BINARY, "binary"))
        return _line_ends(text)
    nul = data.find(b"\0")
    if nul >= 0:
        if _looks_utf16(data):
            raise Unreadable(
                _problem(
                    artifact,
                    1,
                    "UTF-16 text without a byte order mark: not read (save it as UTF-8)",
                    "encoding",
                )
            )
        line = data.count(b"\n", 0, nul) + 1
        raise Unreadable(_problem(artifact, line, _BINARY, "binary"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Unreadable(
            _problem(artifact, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", "encoding")
        ) from None
    return _line_ends(text)


_BINARY = "binary content (NUL byte): not a text file"
# PyYAML and python-dotenv end a line at a lone CR too, and PyYAML at NEL, LS and PS;
# tree-sitter, crossplane and BuildKit do not. One character for one keeps every offset, and
# then a line is what ends in "\n" for every parser, the snippets and the reports alike.
_ODD_LINE_ENDS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


def _line_ends(text: str) -> str:
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text:
        return _ODD_LINE_ENDS.sub("\n", text)
    return text


def _looks_utf16(data: bytes) -> bool:
    """Mostly-ASCII text in UTF-16 without a BOM: NULs at every other byte, and only there."""
    sample = data[:4096]
    pairs = len(sample) // 2
    even, odd = sample[0 : 2 * pairs : 2].count(0), sample[1 : 2 * pairs : 2].count(0)
    return pairs > 0 and ((odd * 2 >= pairs and even == 0) or (even * 2 >= pairs and odd == 0))


def _problem(artifact: Artifact, line: int, message: str, code: str) -> Problem:
    return Problem(artifact.path, Span.line(line), message, code)
