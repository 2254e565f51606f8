"""Determinism (issue 7): the same tree gives byte-identical JSON and SARIF, whatever order the
file system lists it in, whatever the hash seed of the process, and however many processes
parse it (``--jobs``, covered when the option exists).

Two copies of one tree are written in opposite orders, so directory listings come back in
different orders; the reports of each are compared after the root path (the only thing that
differs) is replaced. In-process, ``os.scandir`` is also made to list every directory reversed
and shuffled, which no file system guarantees against.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from policyscan.cli import cli
from policyscan.policy.loader import Rule
from policyscan.report import Report, render
from policyscan.scan import ScanOptions, scan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HANG_GUARD = 300  # seconds: a hang guard for the subprocess scans, not a speed assertion


def _files() -> dict[str, bytes]:
    """The fixtures, some broken files (problems must be ordered too) and enough small files
    for a parser pool to be worth starting (a pool only starts past a few hundred files)."""
    files = {
        str(p.relative_to(FIXTURES)): p.read_bytes()
        for p in sorted(FIXTURES.rglob("*"))
        if p.is_file()
    }
    files["broken/docker-compose.yml"] = b"services: {web: [\n"
    files["broken/main.tf"] = b'resource "a" "b" {\n  x = "open\n'
    files["broken/nginx/nginx.conf"] = b"server {\n"
    files["broken/.env"] = b"A=1\nnot an assignment\n\xff\n"
    for i in range(240):
        files[f"many/svc{i:03}/.env"] = f"DEBUG=true\nSECRET_KEY=changeme{i}\nPORT={i}\n".encode()
    return files


def _write(root: Path, files: dict[str, bytes], order: list[str]) -> None:
    (root / ".git").mkdir(parents=True)
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("determinism")
    files = _files()
    names = sorted(files)
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    first, second = base / "one" / "repo", base / "two" / "repo-copy"
    _write(first, files, names)
    _write(second, files, shuffled[::-1])
    return first, second


def _normalised(text: str, root: Path) -> str:
    # The root is the only thing that differs between the copies (SARIF's %SRCROOT%).
    return text.replace(root.as_uri(), "ROOT").replace(str(root), "ROOT")


def _option(command: str, name: str) -> bool:
    cmd = cli.commands.get(command) if isinstance(cli, click.Group) else None
    return cmd is not None and any(name in getattr(p, "opts", ()) for p in cmd.params)


def _cli_reports(root: Path, out: Path, seed: str, extra: list[str]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "POLICYSCAN_DEBUG"}
    env["PYTHONHASHSEED"] = seed  # set and dict orders of strings change with it
    args = [sys.executable, "-m", "policyscan", str(root), "--fail-on", "never", *extra]
    for fmt in ("json", "sarif"):
        args += ["--format", fmt, "--output", str(out / f"report.{fmt}")]
    try:
        proc = subprocess.run(
            args, cwd=out, env=env, capture_output=True, text=True, timeout=HANG_GUARD
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the scan of {root} did not finish in {HANG_GUARD}s")
    assert proc.returncode == 0, proc.stderr
    return {
        fmt: _normalised((out / f"report.{fmt}").read_text("utf-8"), root)
        for fmt in ("json", "sarif")
    }


def test_copies_written_in_different_orders_give_identical_reports(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = trees
    runs: list[tuple[Path, str, list[str]]] = [(first, "1", []), (second, "2", [])]
    if _option("scan", "--jobs"):
        runs += [(first, "3", ["--jobs", "1"]), (second, "4", ["--jobs", "2"])]
    reports = [
        _cli_reports(root, tmp_path / f"run{i}", seed, extra)
        for i, (root, seed, extra) in enumerate(runs)
    ]
    payload = json.loads(reports[0]["json"])
    assert payload["findings"] and payload["problems"]  # something to order
    for other in reports[1:]:
        assert other["json"] == reports[0]["json"]
        assert other["sarif"] == reports[0]["sarif"]


def _scramble_listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on every directory is listed reversed, or shuffled, on alternate calls."""
    real = os.scandir
    rnd = random.Random(11)
    calls = [0]

    class _Listing:
        def __init__(self, path: Any = ".") -> None:
            with real(path) as it:
                self.entries = list(it)
            calls[0] += 1
            if calls[0] % 2:
                self.entries.reverse()
            else:
                rnd.shuffle(self.entries)

            self._next = iter(self.entries)

        def __iter__(self) -> _Listing:
            return self

        def __next__(self) -> os.DirEntry[str]:
            return next(self._next)

        def __enter__(self) -> _Listing:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def close(self) -> None:
            return None

    monkeypatch.setattr(os, "scandir", _Listing)
    return calls


def _in_process(rules: list[Rule], root: Path, jobs: int | None = None) -> tuple[str, str]:
    kwargs: dict[str, Any] = {}
    if jobs is not None:
        kwargs["jobs"] = jobs
    result = scan(rules, ScanOptions(paths=(str(root),), root=str(root), **kwargs))
    report = Report(result, {r.id: r for r in rules})
    return (
        _normalised(render("json", report), root),
        _normalised(render("sarif", report), root),
    )


def test_scrambled_directory_listings_give_identical_reports(
    rules: list[Rule], trees: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = trees
    plain = _in_process(rules, first)
    copy = tmp_path / "copy"
    shutil.copytree(first, copy, symlinks=True)
    calls = _scramble_listings(monkeypatch)
    scrambled = _in_process(rules, copy)
    assert calls[0] > 10  # the walk really went through the scrambled listings
    assert scrambled == plain


def test_parsing_in_a_pool_gives_identical_reports(
    rules: list[Rule], trees: tuple[Path, Path]
) -> None:
    # ScanOptions.jobs is the engine behind --jobs: covered whether or not the flag exists.
    # The tree has more files than the pool's threshold, so two jobs really start a pool.
    from policyscan import scan as scan_module

    first, _ = trees
    assert len(list(first.rglob("*.env"))) > getattr(scan_module, "POOL_MIN_FILES", 0)
    assert _in_process(rules, first, jobs=2) == _in_process(rules, first, jobs=1)
