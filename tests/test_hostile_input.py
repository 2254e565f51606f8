"""Hostile and broken input (issue 7): nothing a repository holds may crash policyscan, hang it,
or make it skip the files around the bad one.

Every bad file is generated here (nothing binary is checked in). The big test builds one tree
holding every case beside healthy "canary" files, scans it once through the real command line
in a subprocess, and checks three things for every case: the exact problems (file, line, code)
in the JSON, text and SARIF reports; the canaries' findings (every other file still scanned);
exit code 1 (there are findings) with no traceback. Exit codes are the documented ones: bad
files are problems, which never change the exit code (0 or 1 by findings, --fail-on); only a
bad policy or configuration file ends the run, with 2.

The subprocess timeout is a hang guard (a FIFO that blocks, a parser that never returns),
never a speed assertion: it is minutes, for work that takes seconds.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policyscan.checklist import items as checklist_items
from policyscan.config import load_config
from policyscan.discover import DEFAULT_MAX_BYTES, DiscoveryOptions
from policyscan.errors import ConfigError, PolicyError
from policyscan.model import Problem
from policyscan.policy.loader import Rule, load_policy_file
from policyscan.report import Report, render
from policyscan.scan import ScanOptions, scan

HANG_GUARD = 120  # seconds: only a run that hangs gets near this (the scans take seconds)
SARIF_SCHEMA = Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json"

# Healthy files with a known finding each: if a bad neighbour stopped the scan, these vanish.
CANARY_FILES: dict[str, str] = {
    ".env": "DEBUG=true\n",
    "docker-compose.yml": (
        'services:\n  web:\n    image: nginx:1.25.3\n    environment:\n      DEBUG: "true"\n'
    ),
    "Dockerfile": "FROM python:3.12\nRUN apt-get install -y gcc\n",
    "main.tf": (
        'resource "aws_db_instance" "db" {\n  engine                  = "postgres"\n'
        "  backup_retention_period = 1\n}\n"
    ),
    "nginx/nginx.conf": "server {\n    listen 443 ssl;\n    server_name example.com;\n}\n",
}
# (file, line, rule) each canary must produce wherever it sits.
CANARY_FINDINGS: dict[str, tuple[int, str]] = {
    ".env": (1, "PSE001"),
    "docker-compose.yml": (5, "PSE001"),
    "Dockerfile": (2, "PSD001"),
    "main.tf": (3, "PST001"),
    "nginx/nginx.conf": (1, "PSN001"),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad file: where it is (as reports show it), its bytes, and what must be reported."""

    path: str
    data: bytes
    problems: frozenset[tuple[int, str]] = frozenset()  # (line, code), exactly these
    findings: frozenset[tuple[int, str]] = frozenset()  # (line, rule), at least these
    raw_name: bytes | None = None  # the real file name when it is not UTF-8


def _p(*pairs: tuple[int, str]) -> frozenset[tuple[int, str]]:
    return frozenset(pairs)


def _endings(text: str, pattern: tuple[str, ...]) -> bytes:
    """``text`` with its line ends replaced by ``pattern``, cycled."""
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines[:-1]):
        out.append(line + pattern[index % len(pattern)])
    out.append(lines[-1])
    return "".join(out).encode()


def _binary(seed: int, size: int) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.randrange(256) for _ in range(size))


def _first_nul_line(data: bytes) -> int:
    return data.count(b"\n", 0, data.index(b"\0")) + 1


def _cases() -> list[Case]:
    cases: list[Case] = []
    add = cases.append

    # Encodings.
    add(Case("enc/bad-utf8/.env", b"A=1\nB=caf\xe9\n", _p((2, "encoding"))))
    for name, bom, codec in (
        ("utf16-le-bom", codecs.BOM_UTF16_LE, "utf-16-le"),
        ("utf16-be-bom", codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        # Decoded and scanned like UTF-8: the finding proves it.
        data = bom + "A=1\nDEBUG=true\n".encode(codec)
        add(Case(f"enc/prod-{name}/.env", data, findings=_p((2, "PSE001"))))
    add(Case("enc/utf16-no-bom/.env", "A=1\nDEBUG=true\n".encode("utf-16-le"), _p((1, "encoding"))))
    add(
        Case(
            "enc/prod-utf8-bom/.env", codecs.BOM_UTF8 + b"DEBUG=true\n", findings=_p((1, "PSE001"))
        )
    )
    nul = b"services:\n  web:\n    image: x\0y\n"
    add(Case("enc/nul/docker-compose.yml", nul, _p((3, "binary"))))
    bin_docker = b"FROM x\n" + _binary(1, 4096)
    add(Case("bin/Dockerfile", bin_docker, _p((_first_nul_line(bin_docker), "binary"))))
    bin_tf = b"\x7fELF\n\n" + _binary(2, 4096)
    add(Case("bin/main.tf", bin_tf, _p((_first_nul_line(bin_tf), "binary"))))

    # Empty and comment-only files: nothing to report, except that BuildKit (like
    # `docker build`) refuses a Dockerfile without instructions.
    for kind, comment in (
        (".env", b"# only a comment\n"),
        ("docker-compose.yml", b"# only a comment\n"),
        ("main.tf", b"# a\n// b\n/* c */\n"),
        ("nginx/nginx.conf", b"# only a comment\n"),
    ):
        add(Case(f"empty/{kind}", b""))
        add(Case(f"comments/{kind}", comment))
    add(Case("empty/Dockerfile", b"", _p((1, "parse-error"))))
    add(Case("comments/Dockerfile", b"# only a comment\n", _p((1, "parse-error"))))

    # Line ends and tabs: the canaries with CRLF, mixed and lone-CR line ends, and tabs, give
    # the same findings on the same lines.
    for variant, pattern in (
        ("crlf", ("\r\n",)),
        ("mixed", ("\r\n", "\n")),
        ("cr", ("\r",)),
    ):
        for name, text in CANARY_FILES.items():
            add(
                Case(
                    f"prod-{variant}/{name}",
                    _endings(text, pattern),
                    findings=_p(CANARY_FINDINGS[name]),
                )
            )
    for name in (".env", "Dockerfile", "main.tf", "nginx/nginx.conf"):
        tabbed = CANARY_FILES[name].replace("    ", "\t").replace(" ", "\t")
        add(Case(f"prod-tabs/{name}", tabbed.encode(), findings=_p(CANARY_FINDINGS[name])))
    add(
        Case(
            "syntax/tabs/docker-compose.yml",
            b"services:\n  web:\n\timage: x\n",
            _p((3, "parse-error")),
        )
    )

    # Very long lines (1 MB on one line): read and parsed; a Dockerfile that size is past
    # BuildKit's bounds and is reported instead (see README, "Limits and bad input").
    mega = "a" * (1 << 20)
    add(Case("long/.env", f"X={mega}\n".encode()))
    add(Case("long/docker-compose.yml", f"services:\n  web:\n    image: {mega}\n".encode()))
    add(Case("long/main.tf", f'locals {{\n  x = "{mega}"\n}}\n'.encode()))
    add(Case("long/nginx/nginx.conf", f"server_name {mega};\n".encode()))
    add(Case("long/Dockerfile", f"FROM x\nRUN {mega}\n".encode(), _p((1, "too-large"))))

    # Syntax errors in every kind, each at the line where the mistake is.
    syntax: list[tuple[str, bytes, frozenset[tuple[int, str]]]] = [
        ("flow/docker-compose.yml", b"services: {web: {image: x\n", _p((2, "parse-error"))),
        (
            "indent/docker-compose.yml",
            b"services:\n  web:\n    image: x\n   ports: ['80:80']\n",
            _p((4, "parse-error")),
        ),
        (
            "heredoc/main.tf",
            b'resource "aws_s3_bucket" "b" {\n  policy = <<EOF\n{"a": 1}\n',
            _p((1, "parse-error"), (2, "parse-error")),  # the block and the heredoc left open
        ),
        (
            "string/main.tf",
            b'resource "aws_s3_bucket" "b" {\n  bucket = "abc\n}\n',
            _p((1, "parse-error"), (2, "parse-error")),
        ),
        (
            "open/nginx/nginx.conf",
            b"http {\n  server {\n    listen 80;\n  }\n",
            _p((1, "parse-error")),
        ),
        ("close/nginx/nginx.conf", b"server {\n  listen 80;\n}\n}\n", _p((4, "parse-error"))),
        (
            "heredoc/Dockerfile",
            b"FROM python:3.12\nRUN echo a\nRUN <<EOF\necho hi\n",
            _p((3, "parse-error")),
        ),
        (
            "env-args/Dockerfile",
            b"FROM python:3.12\nRUN echo a\n# c\nENV ONLYNAME\nRUN echo b\n",
            _p((4, "parse-error")),
        ),
        (
            "envbad/.env",
            b"A=1\nthis is not an assignment\nB='unterminated\n",
            _p((2, "parse-error"), (3, "parse-error")),
        ),
    ]
    for path, data, problems in syntax:
        add(Case(f"syntax/{path}", data, problems))
    # A continuation at the very end is accepted by BuildKit (and by docker build).
    add(Case("syntax/continuation/Dockerfile", b"FROM python:3.12\nRUN echo hi \\\n"))

    # Expansion and depth: a billion laughs, and 10,000 levels in YAML, HCL and nginx.
    laughs = (
        "a: &a ["
        + ",".join(["lol"] * 9)
        + "]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
            for i in range(8)
        )
    )
    add(Case("deep/bomb/docker-compose.yml", laughs.encode(), _p((1, "too-complex"))))
    add(
        Case(
            "deep/yaml-flow/docker-compose.yml",
            ("services:\n  x: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(),
            _p((2, "parse-error")),
        )
    )
    add(
        Case(
            "deep/yaml-block/docker-compose.yml",
            ("- " * 10_000 + "x\n").encode(),
            _p((1, "parse-error")),
        )
    )
    add(
        Case(
            "deep/hcl-tuple/main.tf",
            ("locals {\n  x = " + "[" * 10_000 + "]" * 10_000 + "\n}\n").encode(),
            _p((2, "too-complex")),
        )
    )
    add(
        Case(
            "deep/hcl-blocks/main.tf",
            ("b {\n" * 10_000 + "}\n" * 10_000).encode(),
            _p((201, "too-complex")),
        )
    )
    add(
        Case(
            "deep/nginx/nginx.conf",
            ("http {\n" + "location / {\n" * 10_000 + "}\n" * 10_001).encode(),
            _p((101, "too-complex")),
        )
    )

    # File names that are not UTF-8: shown with \xNN escapes, scanned like any other.
    add(
        Case(
            "prod-names/.env.\\xff",
            b"DEBUG=true\n",
            findings=_p((1, "PSE001")),
            raw_name=b"prod-names/.env.\xff",
        )
    )
    add(
        Case(
            "prod-names/caf\\xe9.tf",
            CANARY_FILES["main.tf"].encode(),
            findings=_p((3, "PST001")),
            raw_name=b"prod-names/caf\xe9.tf",
        )
    )
    return cases


def _write(root: Path, case: Case) -> None:
    if case.raw_name is not None:
        target = os.path.join(os.fsencode(root), case.raw_name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(case.data)
        return
    path = root / case.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)


def _special_files(root: Path, outside: Path) -> dict[str, tuple[int, str]]:
    """Links, FIFOs and devices; returns the problem each must give: path -> (line, code)."""
    expected: dict[str, tuple[int, str]] = {}
    links = root / "links"
    links.mkdir()
    os.symlink("docker-compose.yml", links / "docker-compose.yml")  # a loop of one
    os.symlink(".env.loop", links / ".env")  # a loop of two
    os.symlink(".env", links / ".env.loop")
    os.symlink(".", links / "loopdir")  # a directory loop
    os.symlink(outside / "secret.env", links / ".env.production")  # out of the root
    os.symlink(outside, links / "nginx")  # a directory out of the root
    for name in ("docker-compose.yml", ".env", ".env.loop", "loopdir", ".env.production", "nginx"):
        expected[f"links/{name}"] = (1, "symlink")

    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "docker-compose.yml")  # opening it for reading would wait forever
    os.mkfifo(special / "site.conf")  # a .conf is sniffed: that read must not wait either
    expected["special/docker-compose.yml"] = (1, "not-a-file")
    try:
        # /dev/zero: a read never ends. Creating a device needs CAP_MKNOD; without it a Unix
        # socket stands in, which discovery meets through the same "not a regular file" path.
        os.mknod(special / "main.tf", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(special / "main.tf"))
    expected["special/main.tf"] = (1, "not-a-file")
    return expected


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "POLICYSCAN_DEBUG"}
    env["NO_COLOR"] = "1"
    try:
        return subprocess.run(
            [sys.executable, "-m", "policyscan", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"policyscan {' '.join(args)} did not finish in {HANG_GUARD}s: it hangs")


def _notifications(sarif: dict[str, Any]) -> set[tuple[str, int, str]]:
    out = set()
    for note in sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]:
        for loc in note["locations"]:
            phys = loc["physicalLocation"]
            out.add(
                (
                    phys["artifactLocation"]["uri"],
                    phys["region"]["startLine"],
                    note["descriptor"]["id"],
                )
            )
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "repo"
    outside = base / "outside"
    root.mkdir()
    (root / ".git").mkdir()  # a repository boundary: no configuration above it applies
    outside.mkdir()
    (outside / "secret.env").write_text("OUTSIDE_SECRET=leaked-from-outside-7f3a\n")
    (outside / "nginx.conf").write_text("server { listen 443 ssl; outside_marker_9c2e on; }\n")
    cases = _cases()
    for case in cases:
        _write(root, case)
    for name, text in CANARY_FILES.items():
        path = root / "prod" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    special = _special_files(root, outside)
    outputs = {fmt: base / f"report.{fmt}" for fmt in ("json", "sarif", "text")}
    args = [str(root), "--no-color"]
    for fmt, out in outputs.items():
        args += ["--format", fmt, "--output", str(out)]
    proc = _run(args, base)
    return {
        "root": root,
        "cases": cases,
        "special": special,
        "proc": proc,
        "json": json.loads(outputs["json"].read_text("utf-8")),
        "sarif": json.loads(outputs["sarif"].read_text("utf-8")),
        "text": outputs["text"].read_text("utf-8"),
    }


def test_no_traceback_and_exit_code_1(hostile: dict[str, Any]) -> None:
    proc = hostile["proc"]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # findings (the canaries); problems do not count


def test_every_case_reports_its_problems_at_the_right_line(hostile: dict[str, Any]) -> None:
    problems: dict[str, set[tuple[int, str]]] = {}
    for p in hostile["json"]["problems"]:
        problems.setdefault(p["path"], set()).add((p["line"], p["code"]))
    wrong = {}
    for case in hostile["cases"]:
        got = problems.get(case.path, set())
        if got != set(case.problems):
            wrong[case.path] = (sorted(case.problems), sorted(got))
    for path, expected in hostile["special"].items():
        got = problems.get(path, set())
        if got != {expected}:
            wrong[path] = ([expected], sorted(got))
    assert not wrong, "path: (expected, reported)\n" + "\n".join(
        f"{k}: {v}" for k, v in wrong.items()
    )
    # Nothing else is reported: a problem on an unexpected file would mean a stray read.
    known = {c.path for c in hostile["cases"]} | set(hostile["special"])
    assert set(problems) <= known, sorted(set(problems) - known)


def test_every_problem_is_in_text_and_sarif_too(hostile: dict[str, Any]) -> None:
    text = hostile["text"]
    notes = _notifications(hostile["sarif"])
    for p in hostile["json"]["problems"]:
        assert f"{p['path']}:{p['line']}:" in text, p
        assert (p["path"], p["line"], p["code"]) in notes, p


def test_sarif_stays_valid(hostile: dict[str, Any]) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text("utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [e.message for e in validator.iter_errors(hostile["sarif"])]
    assert not errors, errors[:5]


def test_every_other_file_is_still_scanned(hostile: dict[str, Any]) -> None:
    found = {
        (f["location"]["path"], f["location"]["start_line"], f["rule_id"])
        for f in hostile["json"]["findings"]
    }
    expected = {(f"prod/{name}", line, rule) for name, (line, rule) in CANARY_FINDINGS.items()}
    for case in hostile["cases"]:
        expected |= {(case.path, line, rule) for line, rule in case.findings}
    assert expected <= found, sorted(expected - found)


def test_nothing_outside_the_root_is_read(hostile: dict[str, Any]) -> None:
    everything = hostile["text"] + json.dumps(hostile["json"]) + json.dumps(hostile["sarif"])
    everything += hostile["proc"].stdout + hostile["proc"].stderr
    assert "leaked-from-outside-7f3a" not in everything
    assert "OUTSIDE_SECRET" not in everything
    assert "outside_marker_9c2e" not in everything


def test_a_fifo_given_on_the_command_line_does_not_block(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / "docker-compose.yml")
    (tmp_path / "prod.env").write_text("DEBUG=true\n")
    proc = _run(["docker-compose.yml", "prod.env", "--format", "json"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert [(p["path"], p["line"], p["code"]) for p in report["problems"]] == [
        ("docker-compose.yml", 1, "not-a-file")
    ]
    assert [(f["location"]["path"], f["rule_id"]) for f in report["findings"]] == [
        ("prod.env", "PSE001")
    ]


def test_a_planted_cache_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    # The cache lives in the scanned tree (.policyscan_cache/), so a repository can plant it:
    # FIFOs there must not make the default scan (cache on) wait forever.
    from policyscan.cache import CACHE_DIRNAME

    (tmp_path / ".git").mkdir()
    (tmp_path / "prod.env").write_text("DEBUG=true\n")
    planted = tmp_path / CACHE_DIRNAME
    planted.mkdir()
    for name in ("documents.bin", "documents-terraform.bin", "results.bin"):
        os.mkfifo(planted / name)
    proc = _run([str(tmp_path), "--format", "json"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["location"]["path"], f["rule_id"]) for f in findings] == [("prod.env", "PSE001")]


# ----------------------------------------------------------------------------- in-process cases


def _scan(rules: list[Rule], root: Path, **discovery: Any) -> Any:
    options = ScanOptions(
        paths=(str(root),), root=str(root), discovery=DiscoveryOptions(**discovery)
    )
    return scan(rules, options)


def _where(problems: list[Problem]) -> set[tuple[str, int, str]]:
    return {(p.path, p.span.start_line, p.code) for p in problems}


def test_files_over_the_size_limit_are_skipped_and_reported(
    rules: list[Rule], tmp_path: Path
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / ".env").write_bytes(b"DEBUG=true\n" + b"#" * DEFAULT_MAX_BYTES)
    (tmp_path / "prod.env").write_text("DEBUG=true\n")
    result = _scan(rules, tmp_path)
    assert _where(result.problems) == {("big/.env", 1, "too-large")}
    assert {(f.location.path, f.rule_id) for f in result.findings} == {("prod.env", "PSE001")}

    # --max-file-size moves the limit: the small file is now over it, and says so in the CLI.
    proc = _run([str(tmp_path), "--max-file-size", "5", "--format", "json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {(p["path"], p["code"]) for p in report["problems"]} == {
        ("big/.env", "too-large"),
        ("prod.env", "too-large"),
    }
    assert report["findings"] == []


_UNPRIVILEGED_SCAN = textwrap.dedent(
    """
    import ctypes, os, sys

    # Root reads everything: drop every capability (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH...)
    # so that mode 000 means "permission denied" even for uid 0. Without root this is a no-op.
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)())
    # The precondition, checked rather than assumed: these really are unreadable now.
    for path in (sys.argv[2], sys.argv[3]):
        try:
            os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
        except PermissionError:
            pass
        else:
            sys.exit(f"precondition failed: {path} is readable")
    from policyscan.cli import main
    sys.exit(main([sys.argv[1], "--format", "json", "--output", sys.argv[4]]))
    """
)


def test_unreadable_files_and_directories_are_reported(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "prod.env").write_text("DEBUG=true\n")
    locked_file = repo / "locked" / ".env"
    locked_file.parent.mkdir()
    locked_file.write_text("DEBUG=true\n")
    locked_dir = repo / "sealed"
    locked_dir.mkdir()
    (locked_dir / "docker-compose.yml").write_text("services: {}\n")
    out = tmp_path / "report.json"
    os.chmod(locked_file, 0)
    os.chmod(locked_dir, 0)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _UNPRIVILEGED_SCAN,
                str(repo),
                str(locked_file),
                str(locked_dir),
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
    finally:
        os.chmod(locked_file, 0o644)
        os.chmod(locked_dir, 0o755)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text("utf-8"))
    assert {(p["path"], p["line"], p["code"]) for p in report["problems"]} == {
        ("locked/.env", 1, "unreadable"),
        ("sealed", 1, "unreadable"),
    }
    assert all("Permission denied" in p["message"] for p in report["problems"])
    assert [(f["location"]["path"], f["rule_id"]) for f in report["findings"]] == [
        ("prod.env", "PSE001")
    ]


def test_gitignore_that_is_a_fifo_or_pathological_does_not_stall(
    rules: list[Rule], tmp_path: Path
) -> None:
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / ".gitignore")  # reading it would wait for a writer forever
    sub = tmp_path / "deep"
    sub.mkdir()
    # One * per path segment costs pathspec's regex O(len(path) ** k): not applied, reported.
    (sub / ".gitignore").write_text("# a comment with * * * stars\n*.log\n*a*a*a*a*a*a*ab\n")
    (sub / "prod.env").write_text("DEBUG=true\n")
    (sub / "x.log").write_text("")
    result = _scan(rules, tmp_path)
    assert _where(result.problems) == {("deep/.gitignore", 3, "gitignore")}
    assert {(f.location.path, f.rule_id) for f in result.findings} == {("deep/prod.env", "PSE001")}


def test_a_rule_that_fails_on_one_file_is_reported_there_and_the_rest_still_runs(
    rules: list[Rule], tmp_path: Path
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "prod.env").write_text("DEBUG=true\n")
    (tmp_path / "b" / "prod.env").write_text("DEBUG=true\n")
    (tmp_path / "Dockerfile").write_text(CANARY_FILES["Dockerfile"])
    target = next(r for r in rules if r.id == "PSE001")

    def exploding(value: Any, subject: Any, project: Any) -> Any:
        if subject.path == "a/prod.env":
            raise ZeroDivisionError("boom")
        return target.check(value, subject, project)

    broken = [dataclasses.replace(r, check=exploding) if r is target else r for r in rules]
    result = _scan(broken, tmp_path)
    failures = [p for p in result.problems if p.code == "rule-error"]
    assert [(p.path, p.span.start_line) for p in failures] == [("a/prod.env", 1)]
    assert "PSE001" in failures[0].message  # which policy, which file
    found = {(f.location.path, f.rule_id) for f in result.findings}
    assert ("b/prod.env", "PSE001") in found  # the same rule on the other file
    assert ("Dockerfile", "PSD001") in found  # the other rules
    sarif = json.loads(render("sarif", Report(result, {r.id: r for r in broken})))
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert ("a/prod.env", 1, "rule-error") in _notifications(sarif)


# ----------------------------------------------------------------------------- policies and configuration


def _policy_bomb() -> bytes:
    """A valid policy whose condition is a DAG of 2**40 nodes through YAML aliases."""
    lines = ["    - &a0 {any: [{attr: name, op: truthy}, {attr: name, op: truthy}]}"]
    lines += [f"    - &a{i} {{any: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 40)]
    body = "\n".join(lines)
    return (
        "id: ORG900\nname: org-bomb\nscope: variable\nartifacts: [env]\nseverity: low\n"
        "confidence: high\nchecklist: [app.env.debug-disabled]\nmessage: m\n"
        "docs: {what: w, why: y, fix: f}\n"
        f"assert:\n  all:\n{body}\n"
        "examples: {fail: [{files: {.env: 'A=1'}, expect: [{file: .env, line: 1}]}], "
        "pass: [{files: {.env: ''}}]}\n"
    ).encode()


BAD_POLICIES: dict[str, bytes] = {
    "malformed.yaml": b"id: [unclosed\n",
    "a-list.yaml": b"- id: ORG001\n- name: x\n",
    "a-scalar.yaml": b"just some text\n",
    "empty.yaml": b"",
    "wrong-types.yaml": b"id: 5\nname: [1]\nscope: {}\nartifacts: env\nseverity: 7\n",
    "huge.yaml": b"id: ORG001\n# " + b"x" * (1 << 20) + b"\n",
    "binary.yaml": _binary(3, 2048),
    "latin1.yaml": "id: caf\xe9\n".encode("latin-1"),
    "deep-list.yaml": b"id: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
    "deep-map.yaml": b"id: " + b"{a: " * 10_000 + b"1" + b"}" * 10_000 + b"\n",
    "alias-bomb.yaml": _policy_bomb(),
}


class Hang(BaseException):
    """Raised by the hang guard; a BaseException so that no ``except Exception`` (or OSError,
    which TimeoutError is) in the code under test can turn it into an ordinary error."""


@contextlib.contextmanager
def _hang_guard(seconds: int) -> Iterator[None]:
    """SIGALRM as a hang guard for in-process work (pure Python, so the signal is seen)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no end after {seconds}s: it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", sorted(BAD_POLICIES))
def test_bad_policy_files_are_policy_errors_naming_the_file(tmp_path: Path, name: str) -> None:
    # In process, one file at a time (the CLI maps PolicyError to exit 2: checked below).
    path = tmp_path / name
    path.write_bytes(BAD_POLICIES[name])
    with _hang_guard(HANG_GUARD), pytest.raises(PolicyError) as raised:
        load_policy_file(path, builtin=False, checklist_ids=frozenset(checklist_items()))
    assert str(path) in str(raised.value)


def test_a_policy_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    # A *.yaml FIFO in a --policies directory: opening it for reading would wait forever.
    path = tmp_path / "waits.yaml"
    os.mkfifo(path)
    with _hang_guard(30), pytest.raises(PolicyError) as raised:
        load_policy_file(path, builtin=False, checklist_ids=frozenset(checklist_items()))
    assert str(path) in str(raised.value)


def test_a_bad_policy_exits_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".env").write_text("A=1\n")
    policies = tmp_path / "my-policies"
    policies.mkdir()
    (policies / "deep-map.yaml").write_bytes(BAD_POLICIES["deep-map.yaml"])
    proc = _run([str(tmp_path), "--policies", str(policies)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(policies / "deep-map.yaml") in proc.stderr, proc.stderr


BAD_CONFIGS: dict[str, bytes] = {
    ".policyscan.yaml/malformed": b"select: [unclosed\n",
    ".policyscan.yaml/a-list": b"- select\n",
    ".policyscan.yaml/wrong-type": b"fail-on: 7\nexclude: 5\n",
    ".policyscan.yaml/huge": b"# " + b"x" * (2 << 20) + b"\n",
    ".policyscan.yaml/binary": _binary(4, 2048),
    ".policyscan.yaml/deep": b"exclude: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
    ".policyscan.yaml/alias-bomb": b"exclude:\n  - &a0 [a, b]\n"
    + b"".join(f"  - &a{i} [*a{i - 1}, *a{i - 1}]\n".encode() for i in range(1, 40)),
    "pyproject.toml/malformed": b"[tool.policyscan\nselect = [\n",
    "pyproject.toml/deep": b"[tool.policyscan]\nexclude = " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
    "pyproject.toml/wrong-type": b"[tool.policyscan]\nselect = 5\n",
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configuration_files_are_config_errors_naming_the_file(
    tmp_path: Path, case: str
) -> None:
    name = case.split("/")[0]
    path = tmp_path / name
    path.write_bytes(BAD_CONFIGS[case])
    with _hang_guard(HANG_GUARD), pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert str(path) in str(raised.value)


def test_a_bad_configuration_in_the_tree_exits_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / ".policyscan.yaml").write_bytes(BAD_CONFIGS[".policyscan.yaml/deep"])
    proc = _run([str(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(tmp_path / ".policyscan.yaml") in proc.stderr, proc.stderr


def test_a_terraform_parse_that_never_ends_is_abandoned_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tree-sitter-hcl is quadratic on lines that each hold a stray quote: 40,000 of them take
    # it about 20 s, 400,000 (a 1 MB file) an hour. The parser's own budget (20 s) is lowered
    # here so the test need not wait for it; what is checked is what happens then.
    from policyscan.model import Artifact, Kind
    from policyscan.parsers import terraform

    monkeypatch.setattr(terraform, "PARSE_SECONDS", 0.2)
    artifact = Artifact("main.tf", "/nonexistent/main.tf", Kind.TERRAFORM)
    with _hang_guard(HANG_GUARD):
        document = terraform.parse(artifact, '""\n' * 40_000)
    assert [(p.span.start_line, p.code) for p in document.problems] == [(1, "too-complex")]
    # The abandoned parse leaves nothing behind: the next file parses from its own start.
    after = terraform.parse(artifact, 'locals {\n  x = "y"\n}\n')
    assert after.problems == [] and [b.type for b in after.blocks] == ["locals"]


def test_a_dockerfile_flag_the_parser_returns_broken_is_a_problem_at_its_line() -> None:
    # Found by benchmarks/fuzz_parsers.py: BuildKit's binding returns a --flag holding a
    # three-byte character cut in two, which Python cannot decode.
    from policyscan.model import Artifact, Kind
    from policyscan.parsers import dockerfile

    artifact = Artifact("Dockerfile", "/nonexistent/Dockerfile", Kind.DOCKERFILE)
    document = dockerfile.parse(artifact, "FROM x\nRUN a\nCOPY --s\u6800 a b\nRUN b\n")
    assert [(p.span.start_line, p.code) for p in document.problems] == [(3, "parse-error")]
