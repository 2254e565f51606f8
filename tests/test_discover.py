"""Discovery's walk: what it asks of the file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyscan.discover import discover
from tests.conftest import write_tree


def test_a_walked_file_is_known_from_its_directory_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file's type comes with its name in the listing: at 10,000 files the two lstat calls
    # each file cost were a third of discovery. Links and special files are still reported,
    # from the listing too.
    root = write_tree(
        tmp_path,
        {
            "docker-compose.yml": "services: {}\n",
            "deploy/.env": "A=1\n",
            "deploy/nginx/site.conf": "server {}\n",
            "deploy/README.md": "not a deployment file\n",
            ".gitignore": "*.log\n",
        },
    )
    os.symlink("docker-compose.yml", root / "docker-compose.prod.yml")
    os.mkfifo(root / "deploy" / "Dockerfile")
    asked: list[str] = []
    real = os.lstat

    def lstat(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        asked.append(os.fspath(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", lstat)
    found = discover([str(root)], str(root))
    assert [a.path for a in found.artifacts] == [
        "deploy/.env",
        "deploy/nginx/site.conf",
        "docker-compose.yml",
    ]
    assert sorted((p.path, p.code) for p in found.problems) == [
        ("deploy/Dockerfile", "not-a-file"),
        ("docker-compose.prod.yml", "symlink"),
    ]
    # The root given, and the .gitignore read (a link or a FIFO there is not read either).
    # Nothing in deploy/ (files, a FIFO, directories) was asked about one by one. At the root:
    # the .gitignore read, and the link with what it points at (to say where it leads).
    assert not [p for p in asked if p.startswith(str(root / "deploy"))]
    below = {p for p in asked if p.startswith(str(root) + os.sep)}
    assert below == {
        str(root / n) for n in (".gitignore", "docker-compose.prod.yml", "docker-compose.yml")
    }


def test_a_file_named_on_the_command_line_is_looked_at_itself(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"docker-compose.yml": "services: {}\n"})
    os.symlink("docker-compose.yml", root / "docker-compose.prod.yml")
    os.mkfifo(root / "Dockerfile")
    named = [str(root / n) for n in ("docker-compose.yml", "docker-compose.prod.yml", "Dockerfile")]
    found = discover(named, str(root))
    assert [a.path for a in found.artifacts] == ["docker-compose.yml"]
    assert sorted((p.path, p.code) for p in found.problems) == [
        ("Dockerfile", "not-a-file"),
        ("docker-compose.prod.yml", "symlink"),
    ]
