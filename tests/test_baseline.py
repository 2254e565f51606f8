"""The baseline: record today's findings, then report only new ones. Identity is the fingerprint
(rule, file, logical key, what is wrong), never the line and never a value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyscan.cli import main
from tests.conftest import write_tree

SECRET = "Zq8!vR2#mK9$tL4wXy7pQ"  # distinctive, so any leak of it is unmistakable
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq83nD7Hs1"

COMPOSE = (
    "services:\n"
    "  web:\n"
    "    image: nginx:1.27\n"
    "    restart: always\n"
    "  db:\n"
    "    image: postgres:16\n"
    "    restart: always\n"
    "    ports:\n"
    "      - '5432:5432'\n"
)
# The same project with a service added first, the two old services swapped, and lines moved.
COMPOSE_MOVED = (
    "# reordered\n"
    "services:\n"
    "  cache:\n"
    "    image: redis:7\n"
    "    restart: always\n"
    "    command: ['redis-server', '--appendonly', 'yes']\n"
    "  db:\n"
    "    ports:\n"
    "      - '5432:5432'\n"
    "    image: postgres:16\n"
    "    restart: always\n"
    "  web:\n"
    "    restart: always\n"
    "    image: nginx:1.27\n"
)
ENV = f"DEBUG=true\nSECRET_KEY=changethis\nAPI_TOKEN={SECRET}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
RULES = ["--select", "PSE001,PSE003,PSE015,PSC002,PSC004"]


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "-f", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_adopt_with_a_baseline_then_only_new_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_tree(tmp_path / "repo", {".env": ENV, "docker-compose.yml": COMPOSE})
    baseline = repo / ".policyscan-baseline.json"
    code, before = _json(capsys, str(repo), *RULES)
    assert code == 1 and len(before["findings"]) >= 4
    assert main(["baseline", str(repo), "-o", str(baseline), *RULES]) == 0
    assert f"recorded {len(before['findings'])} findings" in capsys.readouterr().err

    code, after = _json(capsys, str(repo), *RULES, "--baseline", str(baseline))
    assert (code, after["findings"]) == (0, [])
    assert len(after["suppressed"]) == len(before["findings"])

    # Moving code keeps old findings old: lines added above, services reordered and rewritten.
    (repo / ".env").write_text("# settings\n\nLOG_LEVEL=info\n" + ENV)
    (repo / "docker-compose.yml").write_text(COMPOSE_MOVED)
    code, moved = _json(capsys, str(repo), *RULES, "--baseline", str(baseline))
    new = [(f["rule_id"], f["key"]) for f in moved["findings"]]
    assert new == [("PSC004", "service cache")], new  # only the service that is really new

    # Changing the offending value makes it new.
    (repo / ".env").write_text(ENV.replace("DEBUG=true", "DEBUG=1"))
    code, changed = _json(capsys, str(repo), "--select", "PSE001", "--baseline", str(baseline))
    assert code == 1 and [f["key"] for f in changed["findings"]] == ["env DEBUG"]


def test_baseline_file_is_sorted_stable_and_secret_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            ".env": ENV,
            "docker-compose.yml": COMPOSE,
            "b/.env": "DEBUG=yes\n",
            "a/.env": "DEBUG=on\n",
        },
    )
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["baseline", str(repo), "-o", str(first)]) == 0
    assert main(["baseline", str(repo), "-o", str(second)]) == 0
    text = first.read_text("utf-8")
    assert text == second.read_text("utf-8") and text.endswith("}\n")
    for secret in (SECRET, AWS_SECRET, "changethis"):
        assert secret not in text and secret[:8] not in text
    doc = json.loads(text)
    assert doc["tool"] == "policyscan" and doc["version"] == 1
    entries = doc["findings"]
    assert all(set(e) == {"count", "fingerprint", "key", "path", "rule"} for e in entries)
    keys = [(e["path"], e["rule"], e["key"], e["fingerprint"]) for e in entries]
    assert keys == sorted(keys)
    # One finding per line: two branches adding different findings touch different lines.
    body = text.splitlines()[2:-4]
    assert len(body) == len(entries) and all(line.lstrip().startswith('{"count"') for line in body)
    # Paths are relative to the baseline file (which sits outside the scanned directory here).
    assert {e["path"].split("/")[0] for e in entries} == {"repo"}
    capsys.readouterr()


def test_baseline_from_the_top_matches_a_subdirectory_scan_and_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "svc/.env": "DEBUG=true\n",
            ".policyscan.yaml": "baseline: ci/baseline.json\nselect: [PSE001]\n",
        },
    )
    (repo / "ci").mkdir()
    assert main(["baseline", str(repo)]) == 0  # writes the file the configuration names
    assert (
        json.loads((repo / "ci" / "baseline.json").read_text())["findings"][0]["path"]
        == "../svc/.env"
    )
    # A later scan of the sub-directory, or of the file alone as pre-commit does, uses it.
    assert main([str(repo / "svc")]) == 0
    assert main([str(repo / "svc" / ".env")]) == 0
    (repo / "svc" / ".env").write_text("DEBUG=true\nFLASK_DEBUG=1\n")
    assert main([str(repo / "svc" / ".env")]) == 1
    capsys.readouterr()


def test_more_occurrences_than_recorded_are_new(tmp_path: Path) -> None:
    from policyscan.model import Finding, Location, Severity, Span
    from policyscan.suppress import baseline_text, load_baseline

    def finding(line: int) -> Finding:
        return Finding(
            "PSE004", Severity.HIGH, "m", Location("svc/.env", Span(line)), "env A", "f" * 32, ()
        )

    path = tmp_path / "b.json"
    path.write_text(baseline_text([finding(1), finding(7)], str(tmp_path), str(path)))
    assert [e["count"] for e in json.loads(path.read_text())["findings"]] == [2]
    baseline = load_baseline(str(path))
    out = baseline.apply([finding(1), finding(2), finding(3)], str(tmp_path))
    assert [f.suppressed is None for f in out] == [False, False, True]


@pytest.mark.parametrize(
    "content,message",
    [
        ("{", "not valid JSON"),
        ("[]", "not a policyscan baseline"),
        ('{"tool": "policyscan", "version": 9, "findings": []}', "unsupported baseline version"),
        ('{"tool": "policyscan", "version": 1, "findings": [{"rule": 1}]}', "findings[0].rule"),
        (
            '{"tool": "policyscan", "version": 1, "findings": [{"rule": "A", "path": "p", '
            '"fingerprint": "f", "count": 0}]}',
            "findings[0].count",
        ),
    ],
)
def test_broken_baseline_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    write_tree(tmp_path, {".env": "DEBUG=true\n", "b.json": content})
    assert main([str(tmp_path), "--baseline", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "b.json" in err and message in err and "Traceback" not in err
    assert main([str(tmp_path), "--baseline", str(tmp_path / "missing.json")]) == 2
    assert "policyscan baseline" in capsys.readouterr().err
