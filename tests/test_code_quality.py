"""The package stays typed (mypy --strict), linted and formatted (ruff): checked by the suite so
that CI catches a lapse, not a reviewer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_mypy_strict_on_the_package() -> None:
    proc = _run("mypy", "policyscan")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", "policyscan", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = _run("ruff", "format", "--check", "policyscan", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout[-4000:]
