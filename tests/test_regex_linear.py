"""Regular expressions stay linear on adversarial input (issue 7).

Every regular expression policyscan runs is probed: the module-level patterns of every module
of the package, and every pattern in the built-in policies (the ``matches``/``not_matches``
values and the ``pattern`` arguments of predicates, found by walking each loaded policy's
conditions). Each is run over inputs built to make a backtracking engine work hard: a piece of
a string the pattern almost matches, repeated to a megabyte (``apt apt apt ...`` for a pattern
that wants a package name after ``apt``; ``://a:://a:...`` for one that wants a password before
an ``@``), and long runs of one character. A linear pattern finishes each in milliseconds; a
quadratic one needs minutes on a megabyte (far past the guard), a cubic one years.

Then the whole scan, every rule, runs over files of every kind whose lines are 100 KB of
adversarial text ('a' * 100000, '=' * 100000, ' ,' * 50000, '${' * 50000, ...).

Both run in a subprocess under a generous timeout, a hang guard and not a speed assertion; the
subprocess prints what it starts, so a hang names its pattern or its input.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import policyscan

# The regular expression parser: re._parser from Python 3.11, sre_parse before.
try:
    sre_parse: Any = importlib.import_module("re._parser")
    sre_c: Any = importlib.import_module("re._constants")
except ImportError:
    sre_parse = importlib.import_module("sre_parse")
    sre_c = importlib.import_module("sre_constants")

ROOT = Path(__file__).resolve().parents[1]
PROBE_SIZE = 512 * 1024  # half a megabyte on one line: a file under the size limit can
LINE_SIZE = 100_000
# Hang guards, not speed assertions. One probe of a linear pattern takes well under a second;
# a quadratic one needs minutes on half a megabyte ((n/16K)**2 times what 16 KB takes), a
# cubic one longer than anyone waits. A probe with no end after PROBE_GUARD is a hang.
PROBE_GUARD = 30
SCAN_GUARD = 120  # one scan of files with 100 KB lines: seconds when every rule is linear
HANG_GUARD = 300
WORKERS = 2

GENERIC = ["a", " ", "=", " ,", "${", "-", "a-", ":", "\\", '"']


# ----------------------------------------------------------------------------- collecting


def package_patterns() -> dict[str, re.Pattern[str]]:
    """Module-level patterns of every module (and those one level inside a container)."""
    found: dict[str, re.Pattern[str]] = {}
    for info in pkgutil.walk_packages(policyscan.__path__, "policyscan."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            items = (
                value.values()
                if isinstance(value, dict)
                else (value if isinstance(value, list | tuple | frozenset | set) else [value])
            )
            for index, item in enumerate(items):
                if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
                    found[f"{info.name}.{name}" + (f"[{index}]" if item is not value else "")] = (
                        item
                    )
    return found


def _condition_patterns(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if node.get("op") in ("matches", "not_matches") and "value" in node:
            yield where, str(node["value"])
        args = node.get("args")
        if "predicate" in node and isinstance(args, dict):
            for key, value in args.items():
                if ("pattern" in key or "regex" in key) and isinstance(value, str):
                    yield f"{where}.args.{key}", value
        for key, value in node.items():
            yield from _condition_patterns(value, f"{where}.{key}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _condition_patterns(value, f"{where}[{index}]")


def policy_patterns() -> dict[str, re.Pattern[str]]:
    from policyscan.policy.loader import load_policies

    found: dict[str, re.Pattern[str]] = {}
    for rule in load_policies():
        for part, node in (("where", rule.model.where), ("assert", rule.model.assert_)):
            for where, pattern in _condition_patterns(node, f"{rule.id}.{part}"):
                # As the operators and predicates compile them.
                found[where] = re.compile(pattern, re.IGNORECASE)
    return found


# ----------------------------------------------------------------------------- adversarial input


def _in_class(char: str, items: list[tuple[Any, Any]]) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            hit |= char == chr(av)
        elif op is sre_c.RANGE:
            hit |= av[0] <= ord(char) <= av[1]
        elif op is sre_c.CATEGORY:
            name = str(av)
            test = {
                "DIGIT": char.isdigit(),
                "SPACE": char.isspace(),
                "WORD": char.isalnum() or char == "_",
                "LINEBREAK": char == "\n",
            }
            for key, value in test.items():
                if key in name:
                    hit |= (not value) if "NOT" in name else value
    return hit != negate


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


_CANDIDATES = "a0 -/:.,;=_@$\"'{}[]()xZ9\t<>!#%&*+?|~é"


def _class_char(items: list[tuple[Any, Any]]) -> str:
    extra = "".join(chr(av) for op, av in items if op is sre_c.LITERAL)
    for char in extra + _CANDIDATES:
        if _in_class(char, items):
            return char
    return "a"


def example(pattern: re.Pattern[str], choice: int) -> str:
    """A short string that (nearly) matches ``pattern``: branch ``choice`` at alternations,
    each repeat taken once (or its minimum), lookarounds and anchors skipped."""
    out: list[str] = []

    def emit(seq: Any, depth: int = 0) -> None:
        if depth > 50:
            return
        for op, av in seq:
            if op is sre_c.LITERAL:
                out.append(chr(av))
            elif op is sre_c.NOT_LITERAL:
                out.append("a" if av != ord("a") else "b")
            elif op is sre_c.ANY:
                out.append("a")
            elif op is sre_c.IN:
                out.append(_class_char(av))
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) or str(op) == "POSSESSIVE_REPEAT":
                low, high, sub = av
                for _ in range(min(max(low, 1), high, 3)):
                    emit(sub, depth + 1)
            elif op is sre_c.SUBPATTERN:
                emit(av[-1], depth + 1)
            elif op is sre_c.BRANCH:
                branches = av[1]
                emit(branches[choice % len(branches)], depth + 1)
            elif str(op) == "ATOMIC_GROUP":
                emit(av, depth + 1)
            elif op is sre_c.AT and av is sre_c.AT_BOUNDARY and out and _word(out[-1]):
                out.append(" ")  # \b after a word: end it, so what follows can start one
            # other anchors, ASSERT, ASSERT_NOT, GROUPREF...: nothing to write

    emit(sre_parse.parse(pattern.pattern, pattern.flags))
    return "".join(out)


def _branches(pattern: re.Pattern[str]) -> int:
    return max(
        (
            len(av[1])
            for op, av in _walk(sre_parse.parse(pattern.pattern, pattern.flags))
            if op is sre_c.BRANCH
        ),
        default=1,
    )


def _walk(seq: Any) -> Iterator[tuple[Any, Any]]:
    for op, av in seq:
        yield op, av
        if op is sre_c.BRANCH:
            for branch in av[1]:
                yield from _walk(branch)
        elif op is sre_c.SUBPATTERN:
            yield from _walk(av[-1])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) or str(op) == "POSSESSIVE_REPEAT":
            yield from _walk(av[2])


def _pump(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def probes(pattern: re.Pattern[str], size: int = PROBE_SIZE) -> Iterator[tuple[str, str]]:
    """(description, input) pairs for one pattern."""
    seen: set[str] = set()
    units: list[str] = list(GENERIC)
    for choice in range(min(_branches(pattern), 4)):
        # What nearly matches: the example without its last character, or its first half
        # (with and without a separator): the pattern starts a match everywhere and fails late.
        text = example(pattern, choice)
        units += [text[:-1], text[: len(text) // 2], text[: len(text) // 2] + " "]
    for unit in units:
        if unit and unit not in seen:
            seen.add(unit)
            yield f"{unit!r} * n", _pump(unit, size)


# ----------------------------------------------------------------------------- the subprocess


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def all_patterns() -> list[tuple[str, re.Pattern[str]]]:
    return sorted({**package_patterns(), **policy_patterns()}.items())


def run_probes(start: int = 0, stride: int = 1, offset: int = 0) -> None:
    """Probe patterns start, start+1, ... of those whose index is ``offset`` modulo ``stride``
    (two workers share the list); print each probe as it starts."""
    patterns = all_patterns()
    _say("PATTERNS", len(patterns))
    for index, (name, pattern) in enumerate(patterns):
        if index < start or index % stride != offset:
            continue
        for what, text in probes(pattern):
            _say("START", index, name, what[:60])
            for _ in pattern.finditer(text):
                pass
    _say("DONE")


def _adversarial_files(line: str) -> dict[str, str]:
    """Files of every kind with the 100 KB ``line`` where each parser and rule will meet it:
    values of secret-looking names, image names, commands, headers, names themselves."""
    quoted = line.replace('"', "'")
    # BuildKit refuses a physical line over 64 KB (and policyscan a Dockerfile over 64 KB):
    # the Dockerfile gets the longest line that is still parsed.
    short = line[:30_000]
    return {
        ".env": f"SECRET_KEY={line}\nCORS_ORIGINS={line}\nDEBUG={line}\nDATABASE_URL={line}\n{line}\n",
        "docker-compose.yml": (
            "services:\n  db:\n"
            f'    image: "postgres{quoted}"\n'
            f'    command: "{quoted}"\n'
            "    environment:\n"
            f'      POSTGRES_PASSWORD: "{quoted}"\n'
            f'      DEBUG: "{quoted}"\n'
        ),
        "Dockerfile": f"FROM python:3.12\nRUN apt-get install {short}\n",
        "cmd/Dockerfile": f"FROM python:3.12\nCMD {short}\n",
        "env/Dockerfile": f"FROM python:3.12\nENV A={short.replace(' ', '_').replace(chr(34), '_')}\n",
        "main.tf": (
            f'resource "aws_db_instance" "db" {{\n  password = "{quoted}"\n'
            f'  backup_retention_period = 1\n  engine = "{quoted}"\n}}\n'
        ),
        "nginx/nginx.conf": (
            "server {\n  listen 443 ssl;\n"
            f'  add_header Strict-Transport-Security "{quoted}" always;\n'
            f'  add_header Access-Control-Allow-Origin "{quoted}";\n'
            f"  server_name {line.replace(';', ',').replace('{', '(').replace('}', ')')};\n"
            "}\n"
        ),
    }


SCAN_LINES = {
    "'a' * 100000": "a" * LINE_SIZE,
    "'=' * 100000": "=" * LINE_SIZE,
    "' ,' * 50000": " ," * (LINE_SIZE // 2),
    "'${' * 50000": "${" * (LINE_SIZE // 2),
    "'apt ' * 25000": "apt " * (LINE_SIZE // 4),
    "'hypercorn ' * 10000": "hypercorn " * (LINE_SIZE // 10),
    "'gunicorn ' * 10000": "gunicorn " * (LINE_SIZE // 9),
    "'://a:' * 20000": "://a:" * (LINE_SIZE // 5),
    "'a-' * 50000": "a-" * (LINE_SIZE // 2),
    "'\"' * 100000": '"' * LINE_SIZE,
}


def run_scans(start: int = 0, stride: int = 1, offset: int = 0) -> None:
    from policyscan.policy.loader import load_policies
    from policyscan.report import FORMATS, Report, render
    from policyscan.scan import ScanOptions, scan

    rules = load_policies()
    _say("PATTERNS", len(SCAN_LINES))
    for index, (what, line) in enumerate(SCAN_LINES.items()):
        if index < start or index % stride != offset:
            continue
        _say("START", index, what)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / ".git").mkdir()
            for name, text in _adversarial_files(line).items():
                path = root / "prod" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            result = scan(rules, ScanOptions(paths=(str(root),), root=str(root)))
            for fmt in FORMATS:
                render(fmt, Report(result, {r.id: r for r in rules}))
            _say("SCANNED", index, len(result.findings), "findings")
    _say("DONE")


# ----------------------------------------------------------------------------- the tests


def test_the_probes_reach_every_pattern() -> None:
    # The collection must not be vacuous: the package's and the policies' patterns are there,
    # including the dynamic kinds (a predicate's pattern argument, a not_matches).
    package = package_patterns()
    policies = policy_patterns()
    assert "policyscan.discover._COMPOSE_RE" in package
    assert any(".args.pattern" in name for name in policies)
    assert any(name.startswith("PSD001.assert") for name in policies)
    # The example generator gets past the first character of what it describes.
    pattern = re.compile(r"\b(?:apt-get|apk)\b[^\n]*?\bgcc\b")
    assert pattern.search(example(pattern, 0)) and pattern.search(example(pattern, 1))
    url = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
    assert url.search(example(url, 0))


class _Worker:
    """A subprocess running ``function`` on every WORKERS-th item from ``start`` on."""

    def __init__(self, function: str, offset: int, start: int) -> None:
        self.function = function
        self.offset = offset
        code = f"import tests.test_regex_linear as t; t.{function}({start}, {WORKERS}, {offset})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,  # unbuffered: what select() says is ready is all there is
        )
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.partial = b""
        self.last_output = time.monotonic()
        self.current = ""  # the item running now: "index name what"
        self.done = False


def _supervise(function: str, guard: float) -> tuple[list[str], list[str], list[str]]:
    """Run ``function`` in WORKERS subprocesses; an item that prints nothing for ``guard``
    seconds is a hang: its worker is killed and a new one resumes after it. Returns (hangs,
    other output that is not progress, every line)."""
    hangs: list[str] = []
    errors: list[str] = []
    lines: list[str] = []
    workers = {w.fd: w for w in (_Worker(function, offset, 0) for offset in range(WORKERS))}
    selector = selectors.DefaultSelector()
    for fd, worker in workers.items():
        selector.register(fd, selectors.EVENT_READ, worker)
    deadline = time.monotonic() + 20 * HANG_GUARD  # the whole run, restarts included
    try:
        while selector.get_map():
            assert time.monotonic() < deadline, f"{function} never finished"
            for key, _ in selector.select(timeout=1):
                worker = key.data
                data = os.read(worker.fd, 65536)
                worker.last_output = time.monotonic()
                if not data:  # the worker ended
                    selector.unregister(worker.fd)
                    worker.proc.wait()
                    if not worker.done or worker.proc.returncode:
                        errors.append(
                            f"{function} worker {worker.offset} exited {worker.proc.returncode}"
                        )
                    worker.done = True
                    continue
                *complete, worker.partial = (worker.partial + data).split(b"\n")
                for raw in complete:
                    line = raw.decode("utf-8", "replace")
                    lines.append(line)
                    if line.startswith("START"):
                        worker.current = line.split(None, 1)[1].strip()
                    elif line.startswith("DONE"):
                        worker.done = True
                    elif not line.startswith(("PATTERNS", "SCANNED")):
                        errors.append(line)
            for key in list(selector.get_map().values()):
                w: _Worker = key.data
                if w.done or time.monotonic() - w.last_output < guard:
                    continue
                hangs.append(w.current)
                selector.unregister(w.fd)
                w.proc.kill()
                w.proc.wait()
                fresh = _Worker(function, w.offset, int(w.current.split()[0]) + 1)
                selector.register(fresh.fd, selectors.EVENT_READ, fresh)
                workers[fresh.fd] = fresh
    finally:
        for worker in workers.values():
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()
    return hangs, errors, lines


def test_every_regular_expression_is_linear_on_adversarial_input() -> None:
    hangs, errors, lines = _supervise("run_probes", PROBE_GUARD)
    assert not hangs, "patterns that do not finish on adversarial input:\n" + "\n".join(hangs)
    assert not errors, errors[-20:]
    counts = [int(line.split()[1]) for line in lines if line.startswith("PATTERNS")]
    assert counts and min(counts) >= 20, counts


def test_every_rule_survives_100_kb_adversarial_lines() -> None:
    hangs, errors, lines = _supervise("run_scans", SCAN_GUARD)
    assert not hangs, "scans that do not finish on adversarial lines:\n" + "\n".join(hangs)
    assert not errors, errors[-20:]
    assert sum(line.startswith("SCANNED") for line in lines) == len(SCAN_LINES)
