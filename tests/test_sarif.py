"""SARIF output validated against the official schema, with what GitHub code scanning reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from policyscan.cli import main
from tests.conftest import write_tree

SCHEMA_PATH = Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"

INSECURE = {
    ".env": "DEBUG=true\nSECRET_KEY=changethis\n",
    "docker-compose.yml": "services:\n  db:\n    image: postgres:16\n    volumes:\n      - d:/var/lib/postgresql/data\n",
    "nginx/nginx.conf": "http {\n  server {\n    listen 443 ssl;\n  }\n}\n",
    "main.tf": 'resource "aws_db_instance" "db" {\n  backup_retention_period = 1\n}\n',
    "broken/docker-compose.yml": "services: [\n",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    raw = SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, (
        "the vendored SARIF schema was modified"
    )
    schema = json.loads(raw)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _sarif(tmp_path: Path, files: dict[str, str], *extra: str) -> dict:
    repo = write_tree(tmp_path / "repo", files)
    out = tmp_path / "out.sarif"
    code = main([str(repo), "--format", "sarif", "-o", str(out), *extra])
    assert code == 1
    return json.loads(out.read_text("utf-8"))


def test_sarif_is_valid_and_has_what_github_reads(tmp_path: Path, validator) -> None:
    log = _sarif(tmp_path, INSECURE)
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, [e.message for e in errors[:5]]
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    run = log["runs"][0]
    assert run["automationDetails"]["id"] == "policyscan/"
    assert run["tool"]["driver"]["semanticVersion"]
    assert "%SRCROOT%" in run["originalUriBaseIds"]
    for rule in run["tool"]["driver"]["rules"]:
        props = rule["properties"]
        assert "security" in props["tags"] and len(props["tags"]) <= 20
        assert (
            isinstance(props["security-severity"], str)
            and 0 < float(props["security-severity"]) <= 10
        )
        assert props["checklist"] and set(props["checklist"]) <= set(props["tags"])
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["markdown"].startswith(f"# {rule['id']}")
        assert rule["helpUri"].endswith(f"{rule['id']}.md")
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"PSE001", "PSE003", "PSN001", "PST001", "PSC001"}
    for result in results:
        loc = result["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith("/")
        assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert loc["region"]["startLine"] >= 1
        assert len(result["partialFingerprints"]["policyscan/v1"]) == 32
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any(
        n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "broken/docker-compose.yml"
        and n["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
        for n in notes
    )


def test_sarif_never_contains_the_secret(tmp_path: Path) -> None:
    log = _sarif(tmp_path, {".env": "SECRET_KEY=hunter2-weak-secret-value\n"})
    assert "hunter2" not in json.dumps(log)


def test_fingerprints_survive_moved_lines_and_change_with_the_value(tmp_path: Path) -> None:
    before = _sarif(tmp_path / "a", {".env": "DEBUG=true\n"})
    moved = _sarif(tmp_path / "b", {".env": "# a comment\n\nLOG_LEVEL=info\nDEBUG=true\n"})
    changed = _sarif(tmp_path / "c", {".env": "DEBUG=yes\n"})

    def prints(log: dict) -> list[str]:
        return [r["partialFingerprints"]["policyscan/v1"] for r in log["runs"][0]["results"]]

    assert prints(before) == prints(moved)
    assert (
        moved["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"]
        == 4
    )
    assert prints(before) != prints(changed)


def test_same_tree_gives_byte_identical_sarif_and_json(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", INSECURE)
    outputs = []
    for fmt in ("sarif", "json", "sarif", "json"):
        out = tmp_path / f"out-{len(outputs)}"
        main([str(repo), "--format", fmt, "-o", str(out)])
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[2]
    assert outputs[1] == outputs[3]
