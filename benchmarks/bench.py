"""How fast policyscan scans a tree, phase by phase, against the issue's targets.

    /work/venv/bin/python benchmarks/bench.py /tmp/monorepo            # >= 10,000 files
    /work/venv/bin/python benchmarks/bench.py /work/shared/corpus --repeat 5
    /work/venv/bin/python benchmarks/bench.py DIR --json > figures.json

Prints, for the tree: files and bytes; the parse floor (benchmarks/parse_floor.py: the same
files parsed by the same libraries in a bare loop, one core); a full scan in this process
(start-up excluded) with the wall time of each phase (discover, parse per kind, project view,
rules, output), files/s, MB/s, and its ratio to the floor, with --jobs 1 and with the default
jobs (the number of cores); cold against cached (a re-scan of the unchanged tree), in process
and as the command a user runs; peak RSS of the command; the pre-commit case (five files changed
in a mid-sized repository, passed as arguments, the command timed as a subprocess) with and
without a warm cache; and `--version` / `--help` start-up. Each figure is the median of
--repeat runs (the machine may be busy: medians, and CPU seconds beside wall seconds).

Nothing here asserts: the last lines say which target is met. Timing assertions do not belong
in tests; this script is run by hand and its figures are copied into docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import parse_floor  # noqa: E402 - beside this script, not a package

from policyscan.cache import clear  # noqa: E402
from policyscan.plan import Settings, make_plan  # noqa: E402
from policyscan.scan import ScanOptions, default_jobs, scan  # noqa: E402

TARGETS = {
    "startup_ms": 150.0,  # --version and --help
    "precommit_ms": 400.0,  # five changed files, mid-sized repository
    "floor_ratio": 1.5,  # full scan / parse floor
    "jobs_speedup": 1.6,  # --jobs 2 against --jobs 1, large scan
    "cache_speedup": 5.0,  # cold / cached re-scan, large tree
    # Rules, project view and formatting together, against parsing, one process.
    "beside_parse": 0.5,
    # "Peak memory stays bounded": the issue gives no figure. Ours: the tree of 10x the files
    # may take at most twice the peak RSS of the small one (linear growth would be 10x).
    "memory_growth": 2.0,
}


def _command() -> list[str]:
    script = Path(sys.executable).with_name("policyscan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "policyscan"]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _command_env() -> dict[str, str]:
    """The command as installed: an installed package has its bytecode compiled (pip does it),
    so a run does not compile policyscan's modules again. PYTHONDONTWRITEBYTECODE, which some
    machines set (this one does), would make every run compile them from source (~60 ms)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_bytecode() -> None:
    import compileall

    import policyscan

    compileall.compile_dir(str(Path(policyscan.__file__).parent), quiet=1)


# Runs the command and writes its wall seconds, CPU seconds and peak RSS (KiB) to argv[1]. A
# process forked from this one would report this one's size as its own peak (the high-water mark
# of the memory it was forked with survives exec), and this one holds whole scans: the command
# is forked from this small launcher instead. Its own start is outside the figures.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, _, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
"""


def run_command(args: Sequence[str], cwd: str | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the command and its workers) and peak RSS in KiB."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as figures:
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, figures.name, *_command(), *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_command_env(),
            check=False,
        )
        wall, cpu, peak = figures.read().split()
    return float(wall), float(cpu), int(peak)


def timed_commands(
    args: Sequence[str],
    repeat: int,
    cwd: str | None = None,
    before: Callable[[], None] | None = None,
) -> dict[str, float]:
    walls, cpus, rss = [], [], []
    for _ in range(repeat):
        if before is not None:
            before()
        wall, cpu, peak = run_command(args, cwd)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
    return {
        "wall": _median(walls),
        "cpu": _median(cpus),
        "min_wall": min(walls),
        "peak_rss_mb": max(rss) / 1024,
    }


# ------------------------------------------------------------------------------- in process


@dataclasses.dataclass
class Scanner:
    root: str
    rules: list[Any]
    options: ScanOptions

    @classmethod
    def load(cls, root: str, ignore: Sequence[str] = ()) -> Scanner:
        plan = make_plan(Settings(paths=(root,), ignore=tuple(ignore)))
        # As `policyscan scan` runs: no evidence (only the checklist report shows it).
        return cls(root, plan.rules, dataclasses.replace(plan.scan_options(None), evidence=False))

    def once(self, **changes: Any) -> dict[str, float]:
        """One scan and its rendering; seconds per phase, and the scan's wall and CPU."""
        from policyscan.report import Report, render

        timings: dict[str, float] = {}
        options = dataclasses.replace(self.options, timings=timings, **changes)
        # As the command runs (cli.console): no cyclic collector for the process's life. With
        # it on, the first collection after the scan walks every object the scan kept.
        gc.disable()
        wall, cpu, before = time.perf_counter(), time.process_time(), os.times()
        result = scan(self.rules, options)
        after = os.times()
        workers = (
            after.children_user
            + after.children_system
            - before.children_user
            - before.children_system
        )
        rules_by_id = {r.id: r for r in self.rules}
        started = time.perf_counter()
        for fmt in ("text", "json"):
            render(
                fmt, Report(result, rules_by_id, color=False, quiet=False, include_suppressed=False)
            )
        timings["output"] = time.perf_counter() - started
        timings["total"] = time.perf_counter() - wall
        timings["cpu"] = time.process_time() - cpu
        timings["cpu.workers"] = workers
        timings["findings"] = len(result.findings)
        del result
        gc.enable()
        gc.collect()
        return timings

    def median(
        self, repeat: int, before: Callable[[], None] | None = None, **changes: Any
    ) -> dict[str, float]:
        runs = []
        for _ in range(repeat):
            if before is not None:
                before()
            runs.append(self.once(**changes))
        keys = sorted({k for run in runs for k in run})
        return {k: _median([run.get(k, 0.0) for run in runs]) for k in keys}


# ------------------------------------------------------------------------------- pre-commit


def generate(services: int, out: Path) -> None:
    """A tree of ``services`` services at ``out`` (benchmarks/generate_monorepo.py)."""
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate_monorepo.py"),
            "--services",
            str(services),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )


def precommit_case(services: int, repeat: int) -> dict[str, Any]:
    """A generated repository of ``services`` services under git; five of its files changed and
    passed as arguments, as pre-commit does; the command timed with the cache of the previous
    commit's scan, and without any cache."""
    work = Path(tempfile.mkdtemp(prefix="policyscan-precommit-"))
    try:
        repo = work / "repo"
        generate(services, repo)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        files = sorted(p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
        changed = [
            repo / "services" / "svc-0001" / ".env",
            repo / "services" / "svc-0001" / "docker-compose.yml",
            repo / "services" / "svc-0002" / "Dockerfile",
            repo / "services" / "svc-0002" / "terraform" / "main.tf",
            repo / "services" / "svc-0003" / "nginx" / "nginx.conf",
        ]
        changed = [p for p in changed if p.exists()]
        originals = {p: p.read_bytes() for p in changed}
        args = [str(p.relative_to(repo)) for p in changed] + ["--fail-on", "never"]
        counter = [0]

        def edit() -> None:
            # A new edit each time: the run sees five files it has not cached yet.
            counter[0] += 1
            for path, data in originals.items():
                mark = b"\n# edit %d\n" % counter[0]
                path.write_bytes(data + (mark if path.suffix != ".json" else b""))

        def warm() -> None:
            for path, data in originals.items():
                path.write_bytes(data)
            run_command(["--fail-on", "never", "."], cwd=str(repo))  # the previous commit
            edit()

        def cold() -> None:
            clear(str(repo))
            edit()

        deployment = sum(1 for p in files if parse_floor.kind_of(p.name))
        return {
            "services": services,
            "files": deployment,
            "changed": len(changed),
            "warm": timed_commands(args, repeat, cwd=str(repo), before=warm),
            "cold": timed_commands([*args, "--no-cache"], repeat, cwd=str(repo), before=cold),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _terraform_alone(tree: Path) -> int:
    """Deletes every file of ``tree`` that is not Terraform; returns how many are left."""
    from policyscan.discover import discover
    from policyscan.model import Kind

    found = discover([str(tree)], str(tree))
    for artifact in found.artifacts:
        if artifact.kind is not Kind.TERRAFORM:
            os.unlink(artifact.abspath)
    return sum(1 for a in found.artifacts if a.kind is Kind.TERRAFORM)


def scaling_case(services: int, repeat: int) -> dict[str, Any]:
    """Two generated trees, of ``services // 10`` and ``services`` services: the command (no
    cache, default jobs) timed on each, start-up (``--version``) taken off. Linear growth is a
    time ratio no larger than the files ratio. Then the same with only their Terraform files:
    the monorepo of Terraform modules the issue speaks of."""
    work = Path(tempfile.mkdtemp(prefix="policyscan-scaling-"))
    try:
        startup = timed_commands(["--version"], max(repeat, 5))["wall"]
        out: dict[str, Any] = {"startup": startup}
        for label, count in (("small", max(1, services // 10)), ("large", services)):
            tree = work / label
            generate(count, tree)
            found, _ = parse_floor.discover(str(tree), True)
            files = sum(len(paths) for paths in found.files.values())
            command = [str(tree), "--no-cache", "--fail-on", "never"]
            run = timed_commands(command, repeat)
            out[label] = {"services": count, "files": files, **run}
            files = _terraform_alone(tree)
            out[f"terraform_{label}"] = {"files": files, **timed_commands(command, repeat)}
            shutil.rmtree(tree, ignore_errors=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------- machine


def _busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def parallelism(jobs: int) -> float:
    """How many cores this machine gives us now: the same pure-Python work run ``jobs`` times
    in a row, over ``jobs`` processes at once (2.0 on two idle cores; ~1.0 when other work
    already fills them, and then no --jobs can be faster)."""
    import multiprocessing

    n = 5_000_000
    started = time.perf_counter()
    for _ in range(jobs):
        _busy(n)
    serial = time.perf_counter() - started
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        started = time.perf_counter()
        pool.map(_busy, [n] * jobs)
        parallel = time.perf_counter() - started
    return serial / parallel


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


# ------------------------------------------------------------------------------- report


def measure(
    root: str,
    repeat: int,
    precommit_services: int,
    ignore: Sequence[str] = (),
    scaling_services: int = 0,
) -> dict[str, Any]:
    root = os.path.abspath(root)
    compile_bytecode()
    floor = parse_floor.measure(root, True, repeat)
    scanner = Scanner.load(root, ignore)
    cores = default_jobs()
    out: dict[str, Any] = {
        "root": root,
        "cores": cores,
        "repeat": repeat,
        "floor": floor,
        "ignore": list(ignore),
        "parallelism_before": parallelism(2),
        "load_before": load_average(),
    }
    cache_dir = tempfile.mkdtemp(prefix="policyscan-bench-cache-")

    def drop_cache() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    try:
        out["jobs1"] = scanner.median(repeat, jobs=1)
        out["jobs2"] = scanner.median(repeat, jobs=2)
        out["default"] = out["jobs2"] if cores == 2 else scanner.median(repeat, jobs=cores)
        out["cache_cold"] = scanner.median(
            repeat, before=drop_cache, jobs=cores, cache=True, cache_dir=cache_dir
        )
        out["cache_warm"] = scanner.median(repeat, jobs=cores, cache=True, cache_dir=cache_dir)
    finally:
        drop_cache()

    def clear_tree_cache() -> None:
        clear(root)

    args = [root, "--fail-on", "never", *(f"--ignore={i}" for i in ignore)]
    out["cli_cold"] = timed_commands(args, repeat, before=clear_tree_cache)
    out["cli_warm"] = timed_commands(args, repeat)
    clear(root)
    out["cli_jobs1_nocache"] = timed_commands([*args, "--jobs", "1", "--no-cache"], repeat)
    out["cli_nocache"] = timed_commands([*args, "--no-cache"], repeat)
    out["startup"] = {
        "version": timed_commands(["--version"], max(repeat, 9)),
        "help": timed_commands(["--help"], max(repeat, 9)),
    }
    if precommit_services:
        out["precommit"] = precommit_case(precommit_services, repeat)
    if scaling_services:
        out["scaling"] = scaling_case(scaling_services, repeat)
    out["parallelism_after"] = parallelism(2)
    out["load_after"] = load_average()
    return out


def format_report(m: dict[str, Any]) -> str:
    floor = m["floor"]
    total = floor["total"]
    files, size = total["files"], total["bytes"]
    j1, jd = m["jobs1"], m["default"]
    lines = [
        f"tree: {m['root']}",
        f"{files} files, {size:,} bytes; {m['cores']} cores; medians of {m['repeat']} runs "
        "(wall seconds unless said)"
        + (f"; rules left out: {', '.join(m['ignore'])}" if m["ignore"] else ""),
        "machine: 2 processes did {:.2f}x the work of one before the runs, {:.2f}x after "
        "(2.0: two free cores); load average {} before, {} after".format(
            m["parallelism_before"], m["parallelism_after"], m["load_before"], m["load_after"]
        ),
        "",
        f"parse floor (benchmarks/parse_floor.py, best of {m['repeat']}): "
        f"{total['seconds']:.3f} s  ({files / total['seconds']:.0f} files/s, "
        f"{size / 1e6 / total['seconds']:.2f} MB/s)",
        "  " + "  ".join(f"{k} {v['seconds']:.3f}" for k, v in floor["kinds"].items()),
        "",
        "full scan in process (start-up excluded), no cache:",
        f"{'phase':<22}{'--jobs 1':>10}{'--jobs ' + str(m['cores']):>10}",
    ]
    kinds = sorted(k for k in j1 if k.startswith("parse."))
    phases = [
        "discover",
        "parse",
        *kinds,
        "project",
        "rules",
        "report",
        "output",
        "total",
        "cpu",
        "cpu.workers",
    ]
    for phase in phases:
        a, b = j1.get(phase), jd.get(phase)
        lines.append(f"  {phase:<20}{_fmt(a):>10}{_fmt(b):>10}")
    costly = sorted(((v, k[5:]) for k, v in j1.items() if k.startswith("rule ")), reverse=True)
    lines.append(
        "  costliest rules (--jobs 1): "
        + ", ".join(f"{rule} {seconds:.3f}" for seconds, rule in costly[:6])
    )
    for label, run in (("--jobs 1", j1), (f"--jobs {m['cores']}", jd)):
        lines.append(
            f"  {label}: {files / run['total']:.0f} files/s, {size / 1e6 / run['total']:.2f} MB/s,"
            f" {run['total'] / total['seconds']:.2f}x the parse floor"
        )
    cold, warm = m["cache_cold"], m["cache_warm"]
    cli_cold, cli_warm = m["cli_cold"], m["cli_warm"]
    lines += [
        "",
        "cache, in process:  cold {:.3f} s, unchanged re-scan {:.3f} s: {:.1f}x".format(
            cold["total"], warm["total"], cold["total"] / warm["total"]
        ),
        "cache, command:     cold {:.3f} s, unchanged re-scan {:.3f} s: {:.1f}x".format(
            cli_cold["wall"], cli_warm["wall"], cli_cold["wall"] / cli_warm["wall"]
        ),
        "command, no cache:  --jobs 1 {:.3f} s (cpu {:.3f}), default {:.3f} s (cpu {:.3f})".format(
            m["cli_jobs1_nocache"]["wall"],
            m["cli_jobs1_nocache"]["cpu"],
            m["cli_nocache"]["wall"],
            m["cli_nocache"]["cpu"],
        ),
        "peak RSS of the command: {:.0f} MB (--jobs 1, no cache), {:.0f} MB (default, cold "
        "cache; the largest process)".format(
            m["cli_jobs1_nocache"]["peak_rss_mb"], m["cli_cold"]["peak_rss_mb"]
        ),
        "start-up: --version {:.0f} ms, --help {:.0f} ms".format(
            m["startup"]["version"]["wall"] * 1e3, m["startup"]["help"]["wall"] * 1e3
        ),
    ]
    pre = m.get("precommit")
    if pre:
        lines.append(
            "pre-commit ({} changed files of a generated repository of {} services, {} files): "
            "{:.0f} ms with the previous commit's cache, {:.0f} ms without".format(
                pre["changed"],
                pre["services"],
                pre["files"],
                pre["warm"]["wall"] * 1e3,
                pre["cold"]["wall"] * 1e3,
            )
        )
    scale = m.get("scaling")
    if scale:
        small, large = scale["small"], scale["large"]
        time_ratio = (large["wall"] - scale["startup"]) / (small["wall"] - scale["startup"])
        lines.append(
            "scaling (the command, no cache, start-up {:.0f} ms taken off): {} files {:.2f} s, "
            "{} files {:.2f} s: {:.1f}x the files in {:.1f}x the time; peak RSS {:.0f} MB "
            "and {:.0f} MB".format(
                scale["startup"] * 1e3,
                small["files"],
                small["wall"] - scale["startup"],
                large["files"],
                large["wall"] - scale["startup"],
                large["files"] / small["files"],
                time_ratio,
                small["peak_rss_mb"],
                large["peak_rss_mb"],
            )
        )
        if "terraform_small" in scale:
            small, large = scale["terraform_small"], scale["terraform_large"]
            lines.append(
                "  the same trees' Terraform files alone: {} files {:.2f} s, {} files {:.2f} s; "
                "peak RSS {:.0f} MB and {:.0f} MB".format(
                    small["files"],
                    small["wall"] - scale["startup"],
                    large["files"],
                    large["wall"] - scale["startup"],
                    small["peak_rss_mb"],
                    large["peak_rss_mb"],
                )
            )
    lines += ["", "targets:"]
    startup = max(m["startup"]["version"]["wall"], m["startup"]["help"]["wall"]) * 1e3
    # The command's own figure: its wall time less what `--version` costs (interpreter, click).
    command_scan = m["cli_nocache"]["wall"] - m["startup"]["version"]["wall"]
    checks = [
        ("start-up <= 150 ms", startup <= TARGETS["startup_ms"], f"{startup:.0f} ms"),
        (
            "full scan <= 1.5x parse floor (default jobs)",
            jd["total"] / total["seconds"] <= TARGETS["floor_ratio"],
            f"{jd['total'] / total['seconds']:.2f}x",
        ),
        (
            "full scan <= 1.5x parse floor (the command, default jobs, less start-up)",
            command_scan / total["seconds"] <= TARGETS["floor_ratio"],
            f"{command_scan / total['seconds']:.2f}x",
        ),
        (
            "full scan <= 1.5x parse floor (--jobs 1)",
            j1["total"] / total["seconds"] <= TARGETS["floor_ratio"],
            f"{j1['total'] / total['seconds']:.2f}x",
        ),
        (
            "--jobs 2 >= 1.6x faster than --jobs 1 (in process)",
            m["jobs1"]["total"] / m["jobs2"]["total"] >= TARGETS["jobs_speedup"],
            f"{m['jobs1']['total'] / m['jobs2']['total']:.2f}x",
        ),
        (
            "--jobs 2 >= 1.6x faster than --jobs 1 (the command)",
            m["cli_jobs1_nocache"]["wall"] / m["cli_nocache"]["wall"] >= TARGETS["jobs_speedup"],
            f"{m['cli_jobs1_nocache']['wall'] / m['cli_nocache']['wall']:.2f}x",
        ),
        (
            "unchanged re-scan >= 5x faster than cold (command)",
            cli_cold["wall"] / cli_warm["wall"] >= TARGETS["cache_speedup"],
            f"{cli_cold['wall'] / cli_warm['wall']:.1f}x",
        ),
    ]
    if pre:
        checks.append(
            (
                "pre-commit <= 400 ms (warm cache)",
                pre["warm"]["wall"] * 1e3 <= TARGETS["precommit_ms"],
                f"{pre['warm']['wall'] * 1e3:.0f} ms",
            )
        )
        checks.append(
            (
                "pre-commit <= 400 ms (no cache)",
                pre["cold"]["wall"] * 1e3 <= TARGETS["precommit_ms"],
                f"{pre['cold']['wall'] * 1e3:.0f} ms",
            )
        )
    if scale:
        files_ratio = scale["large"]["files"] / scale["small"]["files"]
        checks.append(
            (
                "time grows linearly (time ratio <= files ratio)",
                time_ratio <= files_ratio,
                f"{time_ratio:.1f}x for {files_ratio:.1f}x the files",
            )
        )
    beside = sum(j1.get(k, 0.0) for k in ("project", "rules", "report", "output"))
    checks.insert(
        4,
        (
            "rules, project view and formatting < half of parsing (--jobs 1)",
            beside / j1["parse"] < TARGETS["beside_parse"],
            f"{beside:.2f} s against {j1['parse']:.2f} s: {beside / j1['parse']:.2f}",
        ),
    )
    if scale:
        growth = scale["large"]["peak_rss_mb"] / scale["small"]["peak_rss_mb"]
        checks.append(
            (
                "peak memory bounded (10x the files in <= 2x the peak RSS)",
                growth <= TARGETS["memory_growth"],
                "{:.0f} MB and {:.0f} MB: {:.1f}x for {:.1f}x the files".format(
                    scale["small"]["peak_rss_mb"],
                    scale["large"]["peak_rss_mb"],
                    growth,
                    files_ratio,
                ),
            )
        )
    if scale and "terraform_small" in scale:
        small, large = scale["terraform_small"], scale["terraform_large"]
        growth = large["peak_rss_mb"] / small["peak_rss_mb"]
        checks.append(
            (
                "the same for a tree of Terraform alone",
                growth <= TARGETS["memory_growth"],
                "{:.0f} MB and {:.0f} MB: {:.1f}x for {:.1f}x the files".format(
                    small["peak_rss_mb"],
                    large["peak_rss_mb"],
                    growth,
                    large["files"] / small["files"],
                ),
            )
        )
    for name, met, figure in checks:
        lines.append(f"  [{'met' if met else 'NOT met':>7}] {name}: {figure}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", metavar="DIR", help="the tree to scan")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--precommit-services",
        type=int,
        default=20,
        metavar="N",
        help="services in the generated pre-commit repository (0: skip)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="RULE",
        help="leave a rule out (repeatable): to measure around a rule whose "
        "cost is not linear in the tree",
    )
    parser.add_argument(
        "--scaling-services",
        type=int,
        default=0,
        metavar="N",
        help="also time the command on generated trees of N/10 and N services (0: skip)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        parser.error(f"not a directory: {args.dir}")
    measured = measure(
        args.dir,
        max(1, args.repeat),
        args.precommit_services,
        args.ignore,
        args.scaling_services,
    )
    print(json.dumps(measured, indent=2) if args.json else format_report(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
