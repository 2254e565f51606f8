from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from policyscan.policy.loader import Rule, load_policies

if TYPE_CHECKING:
    from policyscan.model import ScanResult
    from policyscan.project import Project
    from policyscan.scan import ScanOptions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def rules() -> list[Rule]:
    return load_policies()


def write_tree(base: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return base


def scan_options(root: Path, **changes: Any) -> tuple[list[Rule], ScanOptions]:
    """The rules and options `policyscan ROOT` would use, with ``changes``."""
    from policyscan.plan import Settings, make_plan

    plan = make_plan(Settings(paths=(str(root),)))
    return plan.rules, dataclasses.replace(plan.scan_options(None), **changes)


def scan_tree(root: Path, **changes: Any) -> ScanResult:
    from policyscan.scan import scan

    rules, options = scan_options(root, **changes)
    return scan(rules, options)


def record_returns(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """What each call of ``owner.name`` returns from now on, in a list."""
    returned: list[Any] = []
    real = getattr(owner, name)

    def recorded(*args: Any) -> Any:
        returned.append(real(*args))
        return returned[-1]

    monkeypatch.setattr(owner, name, recorded)
    return returned


def project_of(root: Path) -> Project:
    """The project view of the tree at ``root``, every file parsed, no rule judged."""
    from policyscan.discover import discover
    from policyscan.project import Project
    from policyscan.scan import parse_artifact

    found = discover([str(root)], str(root))
    docs = {a.path: parse_artifact(a, 1 << 20)[0] for a in found.artifacts}
    return Project(found.root, found.artifacts, docs)


def assert_same_result(a: ScanResult, b: ScanResult) -> None:
    """Field by field first, for a readable failure."""
    assert a.findings == b.findings
    assert a.evidence == b.evidence
    assert a.problems == b.problems
    assert a.artifacts == b.artifacts
    assert a == b


def terraform_fixture_files() -> list[Any]:
    """Each ``.tf`` file of the fixtures, as a pytest parameter named by its path."""
    return [
        pytest.param(path.read_text(encoding="utf-8"), id=str(path.relative_to(ROOT)))
        for path in sorted(FIXTURES.rglob("*.tf"))
    ]


def terraform_example_files() -> list[Any]:
    """Each ``.tf`` file of the built-in rules' examples, as a pytest parameter."""
    out = []
    for rule in load_policies():
        examples: list[Any] = [*rule.model.examples.fail, *rule.model.examples.pass_]
        for index, example in enumerate(examples):
            for name, text in example.files.items():
                if name.endswith(".tf"):
                    out.append(pytest.param(text, id=f"{rule.id}-{index}-{name}"))
    return out


def generate_monorepo(out: Path, services: int, seed: int, insecure_rate: float) -> Path:
    """A tree from benchmarks/generate_monorepo.py, run as a user runs it."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "generate_monorepo.py"),
            *("--services", str(services), "--seed", str(seed)),
            *("--insecure-rate", str(insecure_rate), "--out", str(out)),
        ],
        check=True,
        capture_output=True,
    )
    return out
