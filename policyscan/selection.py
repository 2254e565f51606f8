"""Which files a run reports on, and where paths are relative to.

pre-commit passes the staged files; ``--changed-since REF`` asks git for the changed ones. Either
way policyscan reports only on those files, but a finding can depend on files that did not change:
the ``.env`` a compose file interpolates from, the nginx configuration that includes a snippet,
the other files of a Terraform module, and project-wide facts (a backup plan in Terraform for a
compose database, a healthcheck in compose for a Dockerfile, whether this Dockerfile is the only
one and so production). Reading only the named files' directories gave different findings than a
full scan for a quarter of the files of the insecure example, so the whole project is read and
only the findings located in the named files are reported.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from policyscan.errors import UsageError


def relposix(path: str, root: str) -> str:
    """A path relative to ``root`` the way discovery names artifacts."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.realpath(root))).as_posix()


def inside(path: str, directory: str) -> bool:
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def repository_top(start: str) -> str | None:
    """The nearest directory at or above ``start`` holding ``.git`` (no git process needed)."""
    directory = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def project_root(
    paths: Sequence[str], common: str, anchors: Iterable[str | None], named_files: bool
) -> str:
    """Where output paths (and so fingerprints) are relative to.

    The directory of the configuration file, else of the baseline file, when it contains every
    scanned path: a baseline recorded from the repository's top keeps matching when a hook or a
    sub-directory scan runs later. For a list of files (pre-commit), the repository's top: the
    whole repository is the files' context. Otherwise the common directory of the scanned
    paths (outside a repository, files named from a big directory such as the home directory
    do not make policyscan read all of it).
    """
    for anchor in anchors:
        if anchor and all(inside(p, anchor) for p in paths):
            return os.path.abspath(anchor)
    if named_files:
        top = repository_top(common)
        if top is not None:
            return top
    return common


# ----------------------------------------------------------------------------- git


def _git(args: Sequence[str], cwd: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            timeout=120,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("--changed-since needs git, and git was not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"--changed-since: git {' '.join(args)} did not answer in 120 s") from None
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"--changed-since: git {' '.join(args)}: {message}")
    return proc.stdout


def changed_files(ref: str, cwd: str) -> tuple[str, list[str]]:
    """(repository top, changed files as absolute paths): committed since the merge base with
    ``ref`` (``git diff REF...HEAD``, what a pull request changes), plus staged and unstaged
    changes. Deleted files are left out: there is nothing to scan."""
    if ref.startswith("-"):
        raise UsageError(f"--changed-since: {ref!r} is not a git revision")
    top = _git(["rev-parse", "--show-toplevel"], cwd).strip()
    names: set[str] = set()
    for args in (
        ["diff", "--name-only", "-z", "--no-renames", f"{ref}...HEAD", "--"],
        ["diff", "--name-only", "-z", "--no-renames", "--cached", "--"],
        ["diff", "--name-only", "-z", "--no-renames", "--"],
    ):
        names.update(n for n in _git(["-c", "core.quotepath=off", *args], top).split("\0") if n)
    files = sorted(os.path.join(top, n) for n in names)
    return top, [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
