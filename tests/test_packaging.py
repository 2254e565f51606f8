"""The wheel carries everything an installed policyscan needs: policies, schema, checklist."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_policies_schema_and_checklist(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("policyscan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    policies = sorted(
        p.relative_to(ROOT / "policies").as_posix() for p in (ROOT / "policies").rglob("*.yaml")
    )
    assert policies
    missing = [p for p in policies if f"policyscan/_builtin_policies/{p}" not in names]
    assert not missing
    assert "policyscan/policy/policy.schema.json" in names
    assert "policyscan/data/checklist.yaml" in names
