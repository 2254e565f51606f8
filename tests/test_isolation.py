"""No network, no execution, nothing read outside the scanned root (issue 7).

A scan runs in this process with the doors watched: every socket connection, name lookup,
subprocess, fork, exec and ``os.system`` is recorded and refused, and every file opened is
recorded. The scanned tree holds Python files that would leave a marker file behind if anything
imported or ran them (``sitecustomize.py``, ``conftest.py``, ``setup.py``, a package), values
that would do the same if evaluated, and references to files outside the root (nginx includes
of ``/etc/nginx/...`` and ``../../``, compose ``env_file``, Terraform ``file()``). Afterwards:
nothing was attempted, no marker exists, no module was imported from the tree, no file outside
the root was opened, and nothing from outside appears in any report.
"""

from __future__ import annotations

import builtins
import importlib
import io
import json
import os
import pkgutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import policyscan
from policyscan.policy.loader import Rule
from policyscan.report import FORMATS, Report, render
from policyscan.scan import ScanOptions, scan

PACKAGE = Path(policyscan.__file__).resolve().parent


def _tree(root: Path, outside: Path, marker: Path) -> None:
    plant = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    files = {
        ".git/HEAD": "",
        "sitecustomize.py": plant,
        "usercustomize.py": plant,
        "conftest.py": plant,
        "setup.py": plant,
        "app/__init__.py": plant,
        "app/settings.py": plant,
        "app/policyscan.py": plant,  # shadows the package's own name if the tree were on sys.path
        "prod/.env": (
            "DEBUG=true\n"
            f"HOOK=__import__('os').system('touch {marker}')\n"
            f"SHELL_VALUE=$(touch {marker})\n"
        ),
        "prod/docker-compose.yml": (
            "services:\n"
            "  web:\n"
            "    image: nginx:1.25.3\n"
            "    env_file:\n"
            f"      - {outside}/secret.env\n"
            "      - ../../outside/secret.env\n"
            "    environment:\n"
            f"      HOOK: ${{HOOK:-$(touch {marker})}}\n"
            f"      FROM_OUTSIDE: ${{OUTSIDE_SECRET}}\n"
        ),
        "prod/main.tf": (
            "locals {\n"
            '  passwd   = file("/etc/passwd")\n'
            f'  outside  = file("{outside}/secret.env")\n'
            '  relative = templatefile("../../outside/secret.env", {})\n'
            "}\n"
            'resource "aws_db_instance" "db" {\n'
            "  backup_retention_period = length(local.passwd)\n"
            "}\n"
        ),
        "prod/Dockerfile": f"FROM python:3.12\nCOPY {outside}/secret.env /app/\nRUN touch {marker}\n",
        "prod/nginx/nginx.conf": (
            "http {\n"
            "  include /etc/nginx/mime.types;\n"
            "  include /etc/nginx/conf.d/*.conf;\n"
            f"  include {outside}/outside.conf;\n"
            "  include ../../outside/outside.conf;\n"
            "  include ../../../outside/*.conf;\n"
            "  include /etc/nginx/../../../../outside/outside.conf;\n"
            "  server {\n"
            "    listen 443 ssl;\n"
            "    include ../../outside/outside.conf;\n"
            "  }\n"
            "}\n"
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.env").write_text("OUTSIDE_SECRET=outside-secret-4e8d1c\n")
    (outside / "outside.conf").write_text('add_header X-Outside-Marker "outside-marker-b71f";\n')


class _Watch:
    """Records what a scan attempts; refuses what it must never do."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.opened: list[str] = []

    def refuse(self, what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            self.attempts.append(f"{what}{args[:2]!r}")
            raise PermissionError(f"policyscan must not {what}")

        return refused

    def unless_importing(self, what: str, real: Callable[..., Any]) -> Callable[..., Any]:
        refused = self.refuse(f"builtins.{what}")

        def guarded(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("importlib."):
                return real(*args, **kwargs)
            return refused(*args, **kwargs)

        return guarded

    def recording(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | bytes | os.PathLike):
                self.opened.append(os.path.abspath(os.fsdecode(file)))
            return real(file, *args, **kwargs)

        return opener


def _install(monkeypatch: pytest.MonkeyPatch, watch: _Watch) -> None:
    for name in ("connect", "connect_ex", "sendto", "bind"):
        monkeypatch.setattr(socket.socket, name, watch.refuse(f"socket.{name}"))
    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, watch.refuse(f"socket.{name}"))
    monkeypatch.setattr(subprocess.Popen, "__init__", watch.refuse("subprocess.Popen"))
    for name in (
        "system",
        "popen",
        "fork",
        "forkpty",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "posix_spawn",
        "posix_spawnp",
        "spawnv",
        "spawnve",
    ):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, watch.refuse(f"os.{name}"))
    monkeypatch.setattr(builtins, "open", watch.recording(builtins.open))
    monkeypatch.setattr(io, "open", watch.recording(io.open))
    monkeypatch.setattr(os, "open", watch.recording(os.open))
    for name in ("eval", "exec", "compile"):
        # The import system compiles and execs modules (policyscan imports its parsers lazily);
        # any other caller during a scan would be evaluating what it read.
        monkeypatch.setattr(builtins, name, watch.unless_importing(name, getattr(builtins, name)))


def _inside(path: str, root: Path) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, rules: list[Rule]) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("isolation")
    root = (base / "repo").resolve()
    outside = (base / "outside").resolve()
    marker = base / "MARKER"
    _tree(root, outside, marker)
    # Every module of the package (and so every parser library) is imported before the doors
    # close: an import reads, compiles and execs files, rightly. (Loading BuildKit's Go
    # extension under a wrapped exec also crashes the interpreter.)
    for info in pkgutil.walk_packages(policyscan.__path__, "policyscan."):
        if not info.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(info.name)
    modules_before = set(sys.modules)
    path_before = list(sys.path)
    watch = _Watch()
    mp = pytest.MonkeyPatch()
    try:
        _install(mp, watch)
        result = scan(rules, ScanOptions(paths=(str(root),), root=str(root)))
        reports = {fmt: render(fmt, Report(result, {r.id: r for r in rules})) for fmt in FORMATS}
    finally:
        mp.undo()
    return {
        "root": root,
        "outside": outside,
        "marker": marker,
        "watch": watch,
        "result": result,
        "reports": reports,
        "new_modules": {name: sys.modules[name] for name in set(sys.modules) - modules_before},
        "path_changed": sys.path != path_before,
    }


def test_no_socket_no_subprocess_no_eval(watched: dict[str, Any]) -> None:
    assert watched["watch"].attempts == []


def test_nothing_from_the_tree_is_imported_or_run(watched: dict[str, Any]) -> None:
    assert not watched["marker"].exists(), watched["marker"].read_text()
    root = str(watched["root"])
    from_tree = [
        name
        for name, module in watched["new_modules"].items()
        if str(getattr(module, "__file__", "") or "").startswith(root)
    ]
    assert from_tree == []
    assert not watched["path_changed"]


def test_no_file_outside_the_root_is_opened(watched: dict[str, Any]) -> None:
    allowed = [sys.prefix, sys.base_prefix, str(PACKAGE)]  # lazy imports and package data
    outside = [
        path
        for path in watched["watch"].opened
        if not _inside(path, watched["root"]) and not any(path.startswith(a) for a in allowed)
    ]
    assert outside == []
    # And the scan did read the tree (the recorder works).
    assert any(
        path.endswith(os.path.join("nginx", "nginx.conf")) for path in watched["watch"].opened
    )


def test_nothing_from_outside_appears_in_any_report(watched: dict[str, Any]) -> None:
    for fmt, text in watched["reports"].items():
        assert "outside-secret-4e8d1c" not in text, fmt
        assert "outside-marker-b71f" not in text, fmt
        assert "X-Outside-Marker" not in text, fmt


def test_includes_outside_the_root_are_reported_not_read(watched: dict[str, Any]) -> None:
    problems = {
        (p.span.start_line, p.code)
        for p in watched["result"].problems
        if p.path == "prod/nginx/nginx.conf"
    }
    # /etc/nginx/... is the repository's own nginx directory (how it is usually mounted):
    # mime.types is nginx's stock file and conf.d/*.conf matches nothing, so lines 2 and 3
    # are quiet. Every include that leaves the root is a problem at its own line, unread.
    assert problems == {(line, "include") for line in (4, 5, 6, 7, 10)}, problems
    report = json.loads(watched["reports"]["json"])
    assert report["findings"]  # the scan did its work (DEBUG, missing headers, ...)


class _Payload:
    """Unpickling this runs ``exec`` on code that leaves the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def test_a_planted_cache_is_never_unpickled_into_code(tmp_path: Path) -> None:
    # The default command line reads .policyscan_cache/ in the scanned root: a repository can
    # plant pickles there, bare or behind the cache's own header with a forged signature.
    import pickle

    from policyscan import cache

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "prod.env").write_text("DEBUG=true\n")
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(_Payload(marker))
    planted = repo / cache.CACHE_DIRNAME
    planted.mkdir()
    magic = getattr(cache, "_MAGIC", b"")
    (planted / "documents.bin").write_bytes(payload)
    (planted / "results.bin").write_bytes(magic + b"\0" * 32 + payload)
    proc = subprocess.run(
        [sys.executable, "-m", "policyscan", str(repo), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard only
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists()
    assert [f["rule_id"] for f in json.loads(proc.stdout)["findings"]] == ["PSE001"]
    # The cache really was in use (and the planted files were replaced by signed ones).
    assert (planted / "documents.bin").read_bytes() != payload
