"""Read an artifact's bytes once and turn them into text, or into a Problem that says why not."""

from __future__ import annotations

import codecs
import os

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
    the first byte that does not decode."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise Unreadable(_problem(artifact, 1, "invalid UTF-16 text", "encoding")) from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise Unreadable(
            _problem(artifact, line, "binary content (NUL byte): not a text file", "binary")
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Unreadable(
            _problem(artifact, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", "encoding")
        ) from None


def _problem(artifact: Artifact, line: int, message: str, code: str) -> Problem:
    return Problem(artifact.path, Span.line(line), message, code)
