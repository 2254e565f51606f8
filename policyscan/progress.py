"""A progress bar on stderr for long interactive scans; nothing when piped, in CI, or for a
handful of files (a bar that flashes by is noise, and CI logs keep every redraw)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

MIN_FILES = 200
WIDTH = 30


def wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    ci = environ.get("CI", "").strip().lower()
    if ci and ci not in ("0", "false", "no"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


class Progress:
    """``progress(done, total)``: redraws only when the bar would change, so a scan of 100,000
    files writes a few hundred short lines to the terminal, not 100,000."""

    def __init__(self, stream: TextIO, min_files: int = MIN_FILES) -> None:
        self.stream = stream
        self.min_files = min_files
        self.last = -1
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total < self.min_files:
            return
        step = done * 100 // total
        if step == self.last:
            return
        self.last = step
        filled = WIDTH * done // total
        bar = "#" * filled + "-" * (WIDTH - filled)
        self.stream.write(f"\rscanning [{bar}] {done}/{total} files")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")  # leave the terminal as it was
            self.stream.flush()
            self.drawn = False
