"""Parse floor: the cost of parsing every deployment file once, with no rules at all.

Run with the project's virtualenv (it needs PyYAML, python-dotenv, tree-sitter,
tree-sitter-hcl, dockerfile and crossplane; everything else is standard library):

    /work/venv/bin/python benchmarks/parse_floor.py /work/shared/corpus
    /work/venv/bin/python benchmarks/parse_floor.py /tmp/monorepo --json
    /work/venv/bin/python benchmarks/parse_floor.py DIR --repeat 5 --show-errors

Files are picked by name only:

    compose     docker-compose*.yml|yaml, compose*.yml|yaml
    env         .env, .env.*, *.env
    terraform   *.tf, *.tfvars
    dockerfile  Dockerfile, Dockerfile.*, *.Dockerfile, Containerfile
    nginx       *.conf

and each is parsed once, in a bare loop per kind, by the fastest parser of its kind:

    compose     yaml.compose(text, Loader=yaml.CSafeLoader)    (SafeLoader without libyaml)
    env         list(dotenv.parser.parse_stream(io.StringIO(text)))
    terraform   tree_sitter.Parser(Language(tree_sitter_hcl.language())).parse(data)
    dockerfile  dockerfile.parse_string(text)
    nginx       crossplane.parse(path, single=True, check_ctx=False, check_args=False)

The timed part of each file is open + read + decode + parse (crossplane reads the file
itself, so the others do too). Library import time and parser construction are measured
separately and excluded, as is the directory walk. A parse error is counted, never fatal:
an exception (YAML, Dockerfile, undecodable UTF-8), a dotenv binding with ``error=True``,
a tree-sitter tree with ``has_error``, or a crossplane payload whose status is not "ok".

The walk never follows symbolic links, skips .git/.hg/.svn, and honours the simple forms
of patterns in DIR/.gitignore (``name``, ``name/``, ``*.ext``, ``dir/sub``; no ``!``
negation, no nested .gitignore files); ``--no-ignore`` turns the .gitignore off.
MB/s is 10**6 bytes per second.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import platform
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

KINDS: tuple[str, ...] = ("compose", "env", "terraform", "dockerfile", "nginx")
VCS_DIRS = frozenset({".git", ".hg", ".svn"})
LIBRARIES = (
    "PyYAML",
    "python-dotenv",
    "tree-sitter",
    "tree-sitter-hcl",
    "dockerfile",
    "crossplane",
)

_COMPOSE_GLOBS = (
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose*.yml",
    "compose*.yaml",
)
_DOCKERFILE_GLOBS = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "Containerfile")

Parse = Callable[[str], bool]


def kind_of(name: str) -> str | None:
    """Kind of a file from its base name, or None when it is not a deployment file."""
    if any(fnmatch.fnmatchcase(name, g) for g in _COMPOSE_GLOBS):
        return "compose"
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "env"
    if name.endswith((".tf", ".tfvars")):
        return "terraform"
    if any(fnmatch.fnmatchcase(name, g) for g in _DOCKERFILE_GLOBS):
        return "dockerfile"
    if name.endswith(".conf"):
        return "nginx"
    return None


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    dir_only: bool
    anchored: bool

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(relpath, self.pattern)
        return fnmatch.fnmatchcase(relpath.rsplit("/", 1)[-1], self.pattern)


def load_gitignore(root: str) -> tuple[list[IgnoreRule], list[str]]:
    """Rules from ROOT/.gitignore, and the lines this subset does not understand."""
    rules: list[IgnoreRule] = []
    unsupported: list[str] = []
    try:
        with open(os.path.join(root, ".gitignore"), encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return rules, unsupported
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            unsupported.append(line)
            continue
        dir_only = line.endswith("/")
        pattern = line.rstrip("/")
        if pattern.startswith("**/"):
            pattern = pattern[3:]
        anchored = "/" in pattern
        rules.append(IgnoreRule(pattern.lstrip("/"), dir_only, anchored))
    return rules, unsupported


@dataclass
class Discovered:
    files: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    ignored_dirs: int = 0
    ignored_files: int = 0
    seconds: float = 0.0


def discover(root: str, use_gitignore: bool) -> tuple[Discovered, list[str]]:
    """Walk ROOT and group matching regular files by kind, each with its size in bytes."""
    started = time.perf_counter()
    rules, unsupported = load_gitignore(root) if use_gitignore else ([], [])
    found = Discovered()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        reldir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if reldir == "." else reldir + "/"
        kept: list[str] = []
        for name in dirnames:
            if name in VCS_DIRS or any(r.matches(prefix + name, True) for r in rules):
                found.ignored_dirs += 1
            else:
                kept.append(name)
        dirnames[:] = sorted(kept)
        for name in filenames:
            kind = kind_of(name)
            if kind is None:
                continue
            if any(r.matches(prefix + name, False) for r in rules):
                found.ignored_files += 1
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.files[kind].append((path, st.st_size))
    for entries in found.files.values():
        entries.sort()
    found.seconds = time.perf_counter() - started
    return found, unsupported


def load_parsers() -> tuple[dict[str, Parse], dict[str, Any]]:
    """Import the parser libraries and build one parse function per kind.

    Everything slow that is not parsing (imports, building the tree-sitter parser) happens
    here, outside the timed loops.
    """
    started = time.perf_counter()
    import crossplane
    import dockerfile
    import tree_sitter
    import tree_sitter_hcl
    import yaml
    from dotenv.parser import parse_stream

    loader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    hcl_parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))

    def read(path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def parse_compose(path: str) -> bool:
        yaml.compose(read(path).decode("utf-8"), Loader=loader)
        return True

    def parse_env(path: str) -> bool:
        stream = io.StringIO(read(path).decode("utf-8"))
        return not any(binding.error for binding in parse_stream(stream))

    def parse_terraform(path: str) -> bool:
        return not hcl_parser.parse(read(path)).root_node.has_error

    def parse_dockerfile(path: str) -> bool:
        dockerfile.parse_string(read(path).decode("utf-8"))
        return True

    def parse_nginx(path: str) -> bool:
        payload = crossplane.parse(path, single=True, check_ctx=False, check_args=False)
        return bool(payload["status"] == "ok")

    info: dict[str, Any] = {
        "import_seconds": time.perf_counter() - started,
        "yaml_loader": loader.__name__,
        "libraries": {name: _version(name) for name in LIBRARIES},
    }
    parsers: dict[str, Parse] = {
        "compose": parse_compose,
        "env": parse_env,
        "terraform": parse_terraform,
        "dockerfile": parse_dockerfile,
        "nginx": parse_nginx,
    }
    return parsers, info


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def run_kind(parse: Parse, paths: list[str]) -> tuple[float, list[str]]:
    """Parse every path once; return the elapsed seconds and the paths that failed."""
    failed: list[str] = []
    started = time.perf_counter()
    for path in paths:
        try:
            ok = parse(path)
        except Exception:
            ok = False
        if not ok:
            failed.append(path)
    return time.perf_counter() - started, failed


def _row(files: int, size: int, seconds: float, errors: int) -> dict[str, Any]:
    return {
        "files": files,
        "bytes": size,
        "seconds": round(seconds, 6),
        "mb_per_s": round(size / 1e6 / seconds, 3) if seconds > 0 else None,
        "errors": errors,
    }


def measure(root: str, use_gitignore: bool, repeat: int) -> dict[str, Any]:
    parsers, info = load_parsers()
    found, unsupported = discover(root, use_gitignore)
    kinds: dict[str, dict[str, Any]] = {}
    error_files: dict[str, list[str]] = {}
    total_files = total_bytes = total_errors = 0
    total_seconds = 0.0
    for kind in KINDS:
        entries = found.files[kind]
        paths = [path for path, _ in entries]
        size = sum(n for _, n in entries)
        best = float("inf")
        failed: list[str] = []
        for _ in range(repeat):
            seconds, failed = run_kind(parsers[kind], paths)
            best = min(best, seconds)
        kinds[kind] = _row(len(paths), size, best, len(failed))
        error_files[kind] = [os.path.relpath(p, root) for p in failed]
        total_files += len(paths)
        total_bytes += size
        total_errors += len(failed)
        total_seconds += best
    return {
        "root": os.path.abspath(root),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_count": os.cpu_count(),
        **info,
        "repeat": repeat,
        "gitignore": use_gitignore,
        "gitignore_unsupported": unsupported,
        "discovery_seconds": round(found.seconds, 6),
        "ignored_dirs": found.ignored_dirs,
        "ignored_files": found.ignored_files,
        "kinds": kinds,
        "total": _row(total_files, total_bytes, total_seconds, total_errors),
        "error_files": error_files,
    }


def format_table(result: dict[str, Any], show_errors: bool) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in result["libraries"].items())
    lines = [
        f"root: {result['root']}",
        f"{result['python']}; {libs}; yaml loader {result['yaml_loader']}",
        f"imports {result['import_seconds']:.3f} s and walk {result['discovery_seconds']:.3f} s"
        f" (not timed below); ignored {result['ignored_dirs']} dirs,"
        f" {result['ignored_files']} files"
        + ("" if result["gitignore"] else " (--no-ignore)")
        + (f"; best of {result['repeat']} runs" if result["repeat"] > 1 else ""),
        "",
        f"{'kind':<11}{'files':>7}{'bytes':>12}{'seconds':>10}{'MB/s':>9}{'errors':>8}",
    ]
    rows = [*result["kinds"].items(), ("total", result["total"])]
    for name, row in rows:
        if name == "total":
            lines.append("-" * 57)
        rate = f"{row['mb_per_s']:.2f}" if row["mb_per_s"] is not None else "-"
        lines.append(
            f"{name:<11}{row['files']:>7}{row['bytes']:>12,}{row['seconds']:>10.4f}"
            f"{rate:>9}{row['errors']:>8}"
        )
    if result["gitignore_unsupported"]:
        lines.append(f"\n.gitignore lines not understood: {result['gitignore_unsupported']}")
    if show_errors:
        for kind, paths in result["error_files"].items():
            for path in paths:
                lines.append(f"error  {kind:<11}{path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Parse every deployment file under DIR once, with no rules, and time it."
    )
    parser.add_argument("dir", metavar="DIR", help="directory to scan")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the timed loops N times, report the fastest"
    )
    parser.add_argument("--no-ignore", action="store_true", help="do not read DIR/.gitignore")
    parser.add_argument(
        "--show-errors", action="store_true", help="list the files that failed to parse"
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        parser.error(f"not a directory: {args.dir}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    result = measure(args.dir, not args.no_ignore, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result, args.show_errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
