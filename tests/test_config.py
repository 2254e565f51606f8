"""Configuration: [tool.policyscan] in pyproject.toml and .policyscan.yaml, one schema, found
upward from the scanned root, --config overriding, and every mistake named by file and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyscan.cli import main
from policyscan.config import find_config, load_config
from policyscan.errors import ConfigError
from tests.conftest import write_tree

ENV = {".env": "DEBUG=true\nSECRET_KEY=changethis\n"}


def _scan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "-f", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _ids(payload: dict[str, Any]) -> set[str]:
    return {f["rule_id"] for f in payload["findings"]}


# The same settings in both syntaxes: the schema is one.
PYPROJECT = """\
[project]
name = "app"

[tool.policyscan]
select = ["PSE001", "weak-secret"]
fail-on = "critical"
exclude = ["legacy/*"]

[tool.policyscan.rules.PSE001]
severity = "critical"
"""
YAML = """\
select: [PSE001, weak-secret]
fail-on: critical
exclude: ["legacy/*"]
rules:
  PSE001:
    severity: critical
"""


@pytest.mark.parametrize("name,text", [("pyproject.toml", PYPROJECT), (".policyscan.yaml", YAML)])
def test_both_files_configure_the_same_way_and_are_found_from_a_subdirectory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    write_tree(
        tmp_path,
        {
            name: text,
            "app/.env": "DEBUG=true\nSECRET_KEY=changethis\nLOG_LEVEL=debug\n",
            "legacy/.env": "DEBUG=true\n",
        },
    )
    # Scanning the sub-directory still finds the file above it.
    code, payload = _scan_json(capsys, str(tmp_path / "app"))
    assert _ids(payload) == {"PSE001", "PSE003"}  # select (by id and by name), not PSE006
    debug = next(f for f in payload["findings"] if f["rule_id"] == "PSE001")
    assert debug["severity"] == "critical"  # the per-rule override
    # Paths are relative to the configuration file's directory, the project root.
    assert debug["location"]["path"] == "app/.env"
    assert code == 1  # PSE001 is critical now, and fail-on is critical

    code, payload = _scan_json(capsys, str(tmp_path))
    assert all(not f["location"]["path"].startswith("legacy/") for f in payload["findings"])


def test_command_line_wins_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, {".policyscan.yaml": "select: [PSE001]\nfail-on: never\n", **ENV})
    code, payload = _scan_json(capsys, str(tmp_path))
    assert (code, _ids(payload)) == (0, {"PSE001"})
    code, payload = _scan_json(capsys, str(tmp_path), "--select", "PSE003", "--fail-on", "low")
    assert (code, _ids(payload)) == (1, {"PSE003"})


def test_config_option_overrides_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(
        tmp_path,
        {
            "repo/.policyscan.yaml": "select: [PSE001]\n",
            "repo/.env": ENV[".env"],
            "other.yaml": "select: [PSE003]\n",
        },
    )
    _, payload = _scan_json(
        capsys, str(tmp_path / "repo"), "--config", str(tmp_path / "other.yaml")
    )
    assert _ids(payload) == {"PSE003"}


def test_environment_globs_rule_settings_and_per_path_ignores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files: dict[str, str | bytes] = {
        ".env.local": "DEBUG=true\n",
        "svc/.env": "DEBUG=true\nSECRET_KEY=changethis\n",
    }
    write_tree(tmp_path, files)
    _, payload = _scan_json(capsys, str(tmp_path), "--select", "PSE001")
    # .env.local is development by its name: PSE001 (production rule) leaves it alone.
    assert {f["location"]["path"] for f in payload["findings"]} == {"svc/.env"}

    (tmp_path / ".policyscan.yaml").write_text(
        "environments:\n  production: ['.env.local']\n"
        "per-path-ignores:\n  'svc/*': [weak-secret]\n",
        encoding="utf-8",
    )
    _, payload = _scan_json(capsys, str(tmp_path), "--select", "PSE001,PSE003")
    assert sorted((f["rule_id"], f["location"]["path"]) for f in payload["findings"]) == [
        ("PSE001", ".env.local"),
        ("PSE001", "svc/.env"),
    ]

    (tmp_path / ".policyscan.yaml").write_text(
        "rules:\n  PSE001:\n    environments: [development]\n", encoding="utf-8"
    )
    _, payload = _scan_json(capsys, str(tmp_path), "--select", "PSE001")
    assert [f["location"]["path"] for f in payload["findings"]] == [".env.local"]


def test_policies_directory_is_relative_to_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = (
        "id: ORG001\nname: maintenance-mode-on\nscope: variable\nartifacts: [env]\nseverity: low\n"
        "confidence: high\nchecklist: [app.env.no-dev-values]\nmessage: '{name} is on'\n"
        "docs: {what: w, why: y, fix: f}\n"
        "where: {attr: name, op: equals, value: MAINTENANCE}\n"
        "assert: {not: {attr: value, op: truthy}}\n"
        "examples: {fail: [{files: {.env: 'MAINTENANCE=1'}, expect: [{file: .env, line: 1}]}], "
        "pass: [{files: {.env: 'MAINTENANCE=0'}}]}\n"
    )
    write_tree(
        tmp_path,
        {
            "ci/policies/org.yaml": policy,
            ".policyscan.yaml": "policies: [ci/policies]\nselect: [ORG001]\n",
            ".env": "MAINTENANCE=on\n",
        },
    )
    code, payload = _scan_json(capsys, str(tmp_path))
    assert (code, _ids(payload)) == (1, {"ORG001"})


@pytest.mark.parametrize(
    "text,key,message",
    [
        ("selct: [PSE001]\n", "selct", "did you mean 'select'"),
        ("fail_on: high\n", "fail_on", "did you mean 'fail-on'"),
        ("fail-on: hgh\n", "fail-on", "'hgh' is not one of"),
        ("select: PSE001\nignore: 5\n", "ignore", "expected a list of strings"),
        ("exclude: [1]\n", "exclude[0]", "expected a non-empty string"),
        (
            "rules: {PSE001: {severity: urgent}}\n",
            "rules.PSE001.severity",
            "'urgent' is not one of",
        ),
        ("rules: {PSE001: {level: high}}\n", "rules.PSE001.level", "unknown key"),
        ("rules: {PSE001: high}\n", "rules.PSE001", "expected a table"),
        ("environments: {staging: ['*']}\n", "environments.staging", "unknown key"),
        ("select: [PSE999]\n", "select", "unknown rule id 'PSE999'"),
        ("rules: {NOPE1: {severity: low}}\n", "rules.NOPE1", "unknown rule id 'NOPE1'"),
        ("per-path-ignores: {'a/*': [XYZ]}\n", "per-path-ignores", "unknown rule id 'XYZ'"),
        ("max-file-size: -3\n", "max-file-size", "positive number"),
        ("warn-unused-ignores: 'yes'\n", "warn-unused-ignores", "expected true or false"),
        ("policies: [missing-dir]\n", "policies[0]", "directory not found"),
        ("- a\n- b\n", "", "expected a mapping"),
    ],
)
def test_bad_yaml_config_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, message: str
) -> None:
    write_tree(tmp_path, {".policyscan.yaml": text, **ENV})
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert ".policyscan.yaml" in err and f": {key}" in err and message in err, err
    assert "Traceback" not in err


def test_bad_pyproject_names_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"pyproject.toml": "[tool.policyscan]\nfail-on = 3\n", **ENV})
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml: [tool.policyscan] fail-on: 3 is not one of" in err


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("pyproject.toml", "[tool.policyscan\nselect = 1\n", "not valid TOML"),
        (".policyscan.yaml", "select: [PSE001\n", "not valid YAML"),
        (".policyscan.yaml", b"select: [\xff]\n", "not UTF-8"),
        # 10,000 nested flow sequences: a parser that recursed per level would crash.
        (".policyscan.yaml", "select: " + "[" * 10_000 + "]" * 10_000 + "\n", ".policyscan.yaml"),
        (".policyscan.yaml", "select: [" + ", ".join(["PSE001"] * 200_000) + "]\n", "larger than"),
        # An alias bomb (9**9 strings if expanded): every level refers to the one before 9 times.
        (
            ".policyscan.yaml",
            "select: [&a [x, x, x, x, x, x, x, x, x], "
            + ", ".join(f"&{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8))
            + "]\n",
            "select[0]: expected a non-empty string",
        ),
    ],
)
def test_malformed_and_hostile_config_files_are_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes,
    message: str,
) -> None:
    write_tree(tmp_path, {name: content, **ENV})
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert name in err and message in err, err
    assert "Traceback" not in err and "internal error" not in err


def test_search_stops_at_the_repository_top_and_skips_foreign_pyprojects(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".policyscan.yaml": "select: [PSE001]\n",  # outside the repository below
            "repo/.git/HEAD": "ref: refs/heads/main\n",
            "repo/pyproject.toml": "[tool.black]\nline-length = 100\n",
            "repo/app/.env": "DEBUG=true\n",
        },
    )
    assert find_config(str(tmp_path / "repo" / "app")) is None
    (tmp_path / "repo" / "pyproject.toml").write_text("[tool.policyscan]\nignore = ['PSE001']\n")
    assert find_config(str(tmp_path / "repo" / "app")) == str(tmp_path / "repo" / "pyproject.toml")


def test_two_config_files_in_one_directory_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {".policyscan.yaml": "{}\n", "pyproject.toml": "[tool.policyscan]\n"})
    with pytest.raises(ConfigError, match="both"):
        find_config(str(tmp_path))


def test_empty_files_mean_defaults(tmp_path: Path) -> None:
    write_tree(tmp_path, {".policyscan.yaml": "", "pyproject.toml": "[tool.policyscan]\n"})
    yaml_config = load_config(str(tmp_path / ".policyscan.yaml"))
    toml_config = load_config(str(tmp_path / "pyproject.toml"))
    assert (
        (yaml_config.select, yaml_config.fail_on)
        == (toml_config.select, toml_config.fail_on)
        == ((), None)
    )


def test_tomli_is_declared_for_python_310() -> None:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    root = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    assert any(
        d.replace(" ", "").startswith("tomli")
        and "python_version<'3.11'" in d.replace(" ", "").replace('"', "'")
        for d in deps
    ), deps
