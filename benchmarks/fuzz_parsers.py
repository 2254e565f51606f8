"""Fuzz every parser adapter, and the whole scan, with random and mutated files.

A standalone script for a person to run as long as they like (the test suite runs the same
kinds of input for a few seconds, in tests/test_properties.py):

    /work/venv/bin/python benchmarks/fuzz_parsers.py --seconds 600
    /work/venv/bin/python benchmarks/fuzz_parsers.py --seconds 3600 --corpus /work/shared/corpus
    /work/venv/bin/python benchmarks/fuzz_parsers.py --seconds 60 --seed 7 --out /tmp/fuzz

Seeds are the deployment files under ``fixtures/`` (and under each ``--corpus`` directory),
by kind. Each round takes one seed (or nothing), mutates its bytes (bit flips, cuts, doubled
chunks, splices with another seed of the kind, the kind's own tokens, other line ends, UTF-16,
NUL bytes, nesting ten thousand deep, a chunk repeated to a megabyte) and feeds it through
what a scan does to a file: ``source.decode`` (a refusal is a Problem, fine) and the kind's
parser adapter, which must return a document, never raise, and put every Span inside the file.
Every ``--scan-every`` rounds the mutated file, with a few seeds around it, is scanned with
every rule: the scan must not raise, and no problem may say a parser or a rule crashed
(``parser-error`` / ``rule-error``: caught, but bugs).

What breaks a rule is written to ``--out`` (default: a temporary directory) as the input that
did it plus a .txt with the traceback, and counted; the script exits 1 if anything was found.
An input slower than ``--slow`` seconds is kept too (``slow-*``), not counted as a failure.
A hang cannot be caught from inside: the input being tried is always in ``OUT/current.bin``
(and its kind in ``current.txt``), and after ``--hang`` seconds on one input the script dumps
its stack and exits 2, leaving that file as the reproducer.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import faulthandler
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policyscan import parsers  # noqa: E402 - after the path is set, for a source checkout
from policyscan.discover import classify  # noqa: E402
from policyscan.model import Artifact, Kind, Span  # noqa: E402
from policyscan.source import Unreadable, decode  # noqa: E402

# A name per adapter (Terraform has three dialects): what the mutated file is called.
NAMES: dict[str, Kind] = {
    "docker-compose.yml": Kind.COMPOSE,
    ".env": Kind.ENV,
    "main.tf": Kind.TERRAFORM,
    "main.tf.json": Kind.TERRAFORM,
    "prod.tfvars": Kind.TERRAFORM,
    "Dockerfile": Kind.DOCKERFILE,
    "nginx.conf": Kind.NGINX,
}

TOKENS: dict[Kind, list[bytes]] = {
    Kind.COMPOSE: [
        b"services:",
        b"- ",
        b"&a ",
        b"*a",
        b"<<: *a",
        b"[",
        b"]",
        b"{",
        b"}",
        b": ",
        b"'",
        b'"',
        b"|",
        b">-",
        b"? ",
        b"---",
        b"!!binary ",
        b"${X:-d}",
        b"$$",
        b"\t",
        b"9" * 400,
        b"0x" + b"f" * 300,
        b"\xc2\x85",
        b"\xe2\x80\xa8",
    ],
    Kind.ENV: [
        b"=",
        b"export ",
        b"'",
        b'"',
        b"\\",
        b"#",
        b"${A}",
        b"\r",
        b"\r\n",
        b"\x0c",
        b"SECRET_KEY=",
        b"DEBUG=1",
        b"'''",
        b"\xef\xbb\xbf",
    ],
    Kind.TERRAFORM: [
        b"{",
        b"}",
        b"[",
        b"]",
        b"(",
        b")",
        b'"',
        b"${",
        b"%{",
        b"<<EOF\n",
        b"EOF\n",
        b"<<-EOF\n",
        b"=",
        b"#",
        b"//",
        b"/*",
        b"*/",
        b"var.x",
        b'dynamic "d" {',
        b"9" * 400,
        b" " * 200,
        b"\\",
    ],
    Kind.DOCKERFILE: [
        b"FROM x\n",
        b"RUN ",
        b"ENV ",
        b"ARG ",
        b"<<EOF\n",
        b"EOF\n",
        b"\\\n",
        b"# escape=`\n",
        b"`\n",
        b"COPY --from=a ",
        b'["a"',
        b"=",
        b"$A",
        b"${A:-",
    ],
    Kind.NGINX: [
        b"{",
        b"}",
        b";",
        b'"',
        b"'",
        b"\\",
        b"#",
        b"include ",
        b"../../x;",
        b"/etc/nginx/",
        b"*.conf;",
        b"add_header ",
        b"location ",
        b"server ",
        b"${",
        b"lua_block {",
    ],
}


@dataclasses.dataclass
class Stats:
    rounds: int = 0
    scans: int = 0
    failures: int = 0
    slow: int = 0


def seeds(directories: list[Path]) -> dict[Kind, list[bytes]]:
    out: dict[Kind, list[bytes]] = {kind: [] for kind in Kind}
    for directory in directories:
        for path in sorted(directory.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
                continue
            data = path.read_bytes()
            found = classify(path.relative_to(directory).as_posix(), data[:4096])
            if found is not None:
                out[found[0]].append(data)
    return out


def _chunk(rnd: random.Random, data: bytes) -> tuple[int, int]:
    i = rnd.randrange(len(data) + 1)
    return i, min(len(data), i + rnd.randrange(1, 200))


def mutate(rnd: random.Random, kind: Kind, pool: dict[Kind, list[bytes]]) -> bytes:
    data = rnd.choice(pool[kind]) if pool[kind] and rnd.random() < 0.9 else b""
    for _ in range(rnd.randrange(1, 8)):
        op = rnd.randrange(13)
        i, j = _chunk(rnd, data)
        if op == 0 and data:  # flip bits
            buf = bytearray(data)
            for _ in range(rnd.randrange(1, 8)):
                buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
            data = bytes(buf)
        elif op == 1:
            data = data[:i] + data[j:]
        elif op == 2:
            data = data[:j] + data[i:j] + data[i:]
        elif op == 3 and pool[kind]:
            other = rnd.choice(pool[kind])
            k, m = _chunk(rnd, other)
            data = data[:i] + other[k:m] + data[j:]
        elif op in (4, 5):
            data = data[:i] + rnd.choice(TOKENS[kind]) + data[i:]
        elif op == 6:
            ending = rnd.choice([b"\r\n", b"\r", b"\n\n", b"\xe2\x80\xa8"])
            data = data.replace(b"\n", ending)
        elif op == 7:
            data = codecs.BOM_UTF16_LE + data.decode("utf-8", "replace").encode("utf-16-le")
        elif op == 8:
            data = data[:i] + b"\0" + data[i:]
        elif op == 9:
            depth = rnd.choice([100, 1000, 10_000])
            pairs = [(b"[", b"]"), (b"{", b"}"), (b"(", b")"), (b"a {\n", b"}\n"), (b"- ", b"")]
            opener, closer = rnd.choice(pairs)
            data = data[:i] + opener * depth + closer * rnd.choice([0, depth]) + data[i:]
        elif op == 10 and j > i:
            times = rnd.choice([1 << 10, 1 << 14, 1 << 20]) // (j - i)
            data = data[:i] + data[i:j] * times + data[j:]
        elif op == 11:
            noise = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64)))
            data = data[:i] + noise + data[i:]
        else:
            lines = data.split(b"\n")
            rnd.shuffle(lines)
            data = b"\n".join(lines)
    return data[: 4 << 20]


def spans(node: object) -> Iterator[tuple[str, Span]]:
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("doc", node)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, Span):
            yield where, item
        elif isinstance(item, str | bytes | int | float | bool) or item is None or id(item) in seen:
            continue
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            seen.add(id(item))
            stack.extend(
                (f"{where}.{f.name}", getattr(item, f.name))
                for f in dataclasses.fields(item)
                if f.name != "artifact"
            )
        elif isinstance(item, dict):
            seen.add(id(item))
            stack.extend((f"{where}[{k!r}]", v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            seen.add(id(item))
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))


def check_adapter(name: str, data: bytes) -> None:
    """Raises AssertionError (or whatever the adapter raised) when a rule is broken."""
    artifact = Artifact(name, "/nonexistent/" + name, NAMES[name])
    try:
        text = decode(artifact, data)
    except Unreadable as exc:
        line = exc.problem.span.start_line
        assert 1 <= line <= data.count(b"\n") + 1, f"refusal at line {line}"
        return
    document = parsers.parse(artifact, text)
    lines = text.count("\n") + 1
    for where, span in spans(document):
        assert 1 <= span.start_line <= span.end_line <= lines + 1, (where, span, lines)
        assert span.start_col >= 1 and (span.end_col == 0 or span.end_col >= 1), (where, span)


def check_scan(
    name: str, data: bytes, pool: dict[Kind, list[bytes]], rnd: random.Random, rules: list[object]
) -> None:
    from policyscan.scan import ScanOptions, scan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        (root / "prod").mkdir()
        (root / "prod" / name).write_bytes(data)
        for other, kind in _names_by_kind():
            if pool[kind] and rnd.random() < 0.5:
                (root / "ctx" / kind.value).mkdir(parents=True, exist_ok=True)
                (root / "ctx" / kind.value / other).write_bytes(rnd.choice(pool[kind]))
        result = scan(rules, ScanOptions(paths=(str(root),), root=str(root)))  # type: ignore[arg-type]
    crashed = [p for p in result.problems if p.code in ("parser-error", "rule-error")]
    assert not crashed, [f"{p.path}:{p.span.start_line} {p.message}" for p in crashed]


def _names_by_kind() -> list[tuple[str, Kind]]:
    first: dict[Kind, str] = {}
    for name, kind in NAMES.items():
        first.setdefault(kind, name)
    return [(first[kind], kind) for kind in Kind]


def record(out: Path, label: str, data: bytes, detail: str, counter: int) -> Path:
    stem = out / f"{label}-{counter:05}"
    stem.with_suffix(".bin").write_bytes(data)
    stem.with_suffix(".txt").write_text(detail)
    return stem


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    ap.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        help="more directories of seed files (repeatable)",
    )
    ap.add_argument("--out", type=Path, default=None, help="where failing inputs are written")
    ap.add_argument(
        "--scan-every",
        type=int,
        default=25,
        help="scan the whole mutated tree every N rounds (0: never)",
    )
    ap.add_argument("--slow", type=float, default=10.0, help="keep inputs slower than this")
    ap.add_argument(
        "--hang",
        type=float,
        default=300.0,
        help="seconds on one input before dumping the stack and exiting 2",
    )
    args = ap.parse_args(argv)

    seed = args.seed if args.seed is not None else int(time.time())
    rnd = random.Random(seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="policyscan-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    pool = seeds([ROOT / "fixtures", *args.corpus])
    rules: list[object] = []
    if args.scan_every:
        from policyscan.policy.loader import load_policies

        rules = list(load_policies())
    print(
        f"seed {seed}; seeds per kind: "
        + ", ".join(f"{k.value} {len(v)}" for k, v in pool.items())
        + f"; out {out}",
        flush=True,
    )

    stats = Stats()
    names = sorted(NAMES)
    deadline = time.monotonic() + args.seconds
    current = out / "current.bin"
    while time.monotonic() < deadline:
        name = rnd.choice(names)
        data = mutate(rnd, NAMES[name], pool)
        current.write_bytes(data)
        (out / "current.txt").write_text(f"{name}\n")
        faulthandler.dump_traceback_later(args.hang, exit=True)
        stats.rounds += 1
        try:
            seconds = timed(lambda: check_adapter(name, data))  # noqa: B023 - called at once
            if args.scan_every and stats.rounds % args.scan_every == 0:
                stats.scans += 1
                seconds += timed(lambda: check_scan(name, data, pool, rnd, rules))  # noqa: B023
        except Exception:  # anything: an assertion of ours or an exception of the code
            stats.failures += 1
            where = record(out, "fail", data, f"{name}\n{traceback.format_exc()}", stats.failures)
            last = traceback.format_exc().splitlines()[-1]
            print(f"FAIL {name}: {last} -> {where}.bin", flush=True)
            continue
        finally:
            faulthandler.cancel_dump_traceback_later()
        if seconds > args.slow:
            stats.slow += 1
            where = record(out, "slow", data, f"{name}\n{seconds:.1f}s\n", stats.slow)
            print(f"SLOW {name}: {seconds:.1f}s ({len(data)} bytes) -> {where}.bin", flush=True)
        if stats.rounds % 500 == 0:
            print(
                f"{stats.rounds} rounds, {stats.scans} scans, {stats.failures} failures, "
                f"{stats.slow} slow",
                flush=True,
            )
    current.unlink(missing_ok=True)
    (out / "current.txt").unlink(missing_ok=True)
    print(
        f"done: {stats.rounds} rounds, {stats.scans} scans, {stats.failures} failures, "
        f"{stats.slow} slow (seed {seed})",
        flush=True,
    )
    return 1 if stats.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
