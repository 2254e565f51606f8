"""What a scan's memory is made of: resident memory after each phase of one process, and the
documents of each kind of file parsed alone.

    python benchmarks/memory.py /tmp/mono650
    python benchmarks/memory.py /work/shared/corpus --kinds-only

Figures are the process's resident set (``VmRSS``) and its high-water mark (``VmHWM``) from
/proc/self/status (Linux), in MB; one process, no cache, no evidence, as ``policyscan scan``
runs. One process judges Terraform a few modules at a time first (terraform_parts.py), so
"Terraform, in parts" is that phase's own peak, and "parse" the other kinds' documents on top
of what it left. The part for each kind is a separate process that parses only that kind's
files and keeps them (document and text), so that each figure is that kind's own.
docs/performance.md ("Where the memory goes") quotes these.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from typing import Any


def _status() -> tuple[float, float]:
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                found[name] = int(value.split()[0]) / 1024
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def phases(root: str) -> None:
    from policyscan import scan as scanning
    from policyscan.policy.loader import load_policies

    rules = load_policies()
    lap = scanning._Clock.lap

    def measured(clock: Any, phase: str) -> None:
        lap(clock, phase)
        rss, peak = _status()
        print(f"  after {phase:<20} {rss:7.0f} MB  (peak {peak:.0f} MB)")

    scanning._Clock.lap = measured  # type: ignore[method-assign]
    from policyscan import terraform_parts

    in_parts = terraform_parts.judge_in_parts

    def parts(*args: Any, **kwargs: Any) -> Any:
        judged = in_parts(*args, **kwargs)
        rss, peak = _status()
        print(f"  after {'Terraform, in parts':<20} {rss:7.0f} MB  (peak {peak:.0f} MB)")
        return judged

    terraform_parts.judge_in_parts = parts  # type: ignore[assignment]
    rss, _ = _status()
    print(f"one process, phase by phase (start: {rss:.0f} MB, policies loaded):")
    options = scanning.ScanOptions(paths=(root,), jobs=1, evidence=False, timings={})
    result = scanning.scan(rules, options)
    print(f"  {len(result.findings)} findings")


def kind(root: str, name: str) -> None:
    from policyscan import scan as scanning
    from policyscan.discover import discover
    from policyscan.model import Kind

    gc.disable()  # as a scan runs
    found = discover([root], root)
    artifacts = [a for a in found.artifacts if a.kind is Kind(name)]
    if not artifacts:
        return
    scanning.parse_artifact(artifacts[0], 1 << 20)  # the parser's imports, not counted
    before, _ = _status()
    kept = [scanning.parse_artifact(a, 1 << 20) for a in artifacts]
    after, _ = _status()
    size = sum(os.path.getsize(a.abspath) for a in artifacts) / 1e6
    grown = after - before
    print(
        f"  {name:<11} {len(kept):6} files {size:7.2f} MB of source  {grown:6.0f} MB"
        f"  ({grown / size if size else 0:.1f}x)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--kinds-only", action="store_true", help="skip the phase-by-phase scan")
    parser.add_argument("--kind", help=argparse.SUPPRESS)  # one kind, in a child process
    args = parser.parse_args(argv)
    if args.kind:
        kind(args.root, args.kind)
        return 0
    if not args.kinds_only:
        phases(args.root)
    print("documents of each kind, parsed alone and kept (document and text):")
    for name in ("compose", "env", "nginx", "dockerfile", "terraform"):
        subprocess.run([sys.executable, __file__, args.root, "--kind", name], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
