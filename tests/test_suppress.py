"""Inline ignore comments in every kind, on the line, above it, and on a block's first line; how
silenced findings show in each format; counting ignores without a reason; unused ignores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policyscan.cli import main
from policyscan.suppress import find_ignores
from tests.conftest import write_tree

RULES = "PSE001,PSC002,PSC004,PST001,PST002,PSD001,PSN006,PSN007"


def _scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    code = main([str(tmp_path), "--select", RULES, "-f", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _where(items: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return sorted((f["rule_id"], f["location"]["path"], f["location"]["start_line"]) for f in items)


# -------------------------------------------------------------------------------- parsing


def test_comment_forms() -> None:
    text = (
        "A=1  # policyscan: ignore[PSE001] staging only\n"  # 1 trailing
        "# policyscan: ignore[PSE003, PSE004] -- rotated weekly\n"  # 2 above line 4...
        "# another comment\n"  # 3 ...other comments may sit between
        "B=2\n"  # 4
        "// policyscan: ignore[PST001]\n"  # 5 HCL comment style, no reason
        "C=3\n"  # 6
        "# policyscan: ignore reason but no ids\n"  # 7 malformed
        "D=4  # policyscan:ignore[PSE001]:  why\n"  # 8
    )
    ignores, problems = find_ignores("f", text)
    got = [(i.line, i.target, i.rules, i.reason) for i in ignores]
    assert got == [
        (1, 1, ("PSE001",), "staging only"),
        (2, 4, ("PSE003", "PSE004"), "rotated weekly"),
        (5, 6, ("PST001",), ""),
        (8, 8, ("PSE001",), "why"),
    ]
    assert [(p.span.start_line, p.code) for p in problems] == [(7, "ignore-comment")]


def test_lines_are_counted_as_the_parsers_count_them_and_stacks_stay_linear() -> None:
    # A form feed is not a line break for the parsers, so it is not one here either.
    ignores, _ = find_ignores("f", "A=1\x0cB=2\r\n# policyscan: ignore[PSE001] x\r\nC=3\r\n")
    assert [(i.line, i.target, i.reason) for i in ignores] == [(2, 3, "x")]
    # 50,000 stacked comments all point at the line after them (a quadratic search would not
    # finish in any reasonable time); one comment cannot name more than 64 rules.
    ignores, _ = find_ignores("f", "# policyscan: ignore[PSE001] r\n" * 50_000 + "A=1\n")
    assert len(ignores) == 50_000 and {i.target for i in ignores} == {50_001}
    wide = "A=1  # policyscan: ignore[" + ",".join(f"R{i}" for i in range(1000)) + "] r\n"
    assert len(find_ignores("f", wide)[0][0].rules) == 64


def test_no_comment_costs_nothing_and_finds_nothing() -> None:
    assert find_ignores("f", "A=1\n# policyscan is great\n") == ([], [])


# -------------------------------------------------------------------------------- every kind

TREE: dict[str, str | bytes] = {
    ".env": "DEBUG=true  # policyscan: ignore[PSE001] staging box\n",
    "docker-compose.yml": (
        "services:\n"
        "  # policyscan: ignore[PSC004] probed by the load balancer\n"  # 2: covers service web
        "  web:\n"
        "    image: nginx:1.27\n"
        "  db:\n"  # 5: PSC004 stays
        "    image: postgres:16\n"
        "    ports:\n"
        "      # policyscan: ignore[PSC002]\n"  # 8: no reason
        "      - '5432:5432'\n"
    ),
    "main.tf": (
        "# policyscan: ignore[PST002, rds-backup-retention-short] reviewed in SEC-12\n"
        'resource "aws_db_instance" "main" {\n'  # 2: block: PST001 here, PST002 on line 4
        '  engine              = "postgres"\n'
        "  publicly_accessible = true\n"
        "}\n"
        'resource "aws_db_instance" "other" {\n'  # 6: not covered
        "  publicly_accessible = true\n"
        "}\n"
    ),
    "Dockerfile": (
        "FROM python:3.12\n"
        "# policyscan: ignore[PSD001] the image is only a build cache\n"
        "RUN apt-get install -y gcc\n"
    ),
    "nginx/nginx.conf": (
        "events {}\n"
        "http {\n"
        "  # policyscan: ignore[PSN006] a public read-only API\n"  # 3: covers the whole server
        "  server {\n"
        "    listen 443 ssl;\n"
        "    server_name shop.example.com;\n"
        "    add_header Strict-Transport-Security 'max-age=63072000' always;\n"
        "    location /api {\n"  # 8: PSN007 (not named) stays
        "      add_header Access-Control-Allow-Origin *;\n"  # 9: PSN006 silenced by the server's
        "    }\n"
        "  }\n"
        "  server {\n"
        "    listen 443 ssl;\n"
        "    server_name admin.example.com;\n"
        "    add_header Strict-Transport-Security 'max-age=63072000' always;\n"
        "    # policyscan: ignore[PSN007]\n"
        "    location /x {\n"  # 17: location block
        "      add_header Access-Control-Allow-Origin *;\n"  # 18: PSN006 stays
        "    }\n"
        "  }\n"
        "}\n"
    ),
}


def test_ignores_in_every_kind_on_lines_and_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, TREE)
    code, payload = _scan(tmp_path, capsys)
    assert _where(payload["suppressed"]) == [
        ("PSC002", "docker-compose.yml", 9),
        ("PSC004", "docker-compose.yml", 3),
        ("PSD001", "Dockerfile", 3),
        ("PSE001", ".env", 1),
        ("PSN006", "nginx/nginx.conf", 9),
        ("PSN007", "nginx/nginx.conf", 17),
        ("PST001", "main.tf", 2),
        ("PST002", "main.tf", 4),
    ]
    assert _where(payload["findings"]) == [
        ("PSC004", "docker-compose.yml", 5),
        ("PSN006", "nginx/nginx.conf", 18),
        ("PSN007", "nginx/nginx.conf", 8),
        ("PST001", "main.tf", 6),
        ("PST002", "main.tf", 7),
    ]
    reasons = {f["rule_id"]: f["suppressed"] for f in payload["suppressed"]}
    assert reasons["PSE001"] == "staging box" and reasons["PSC002"] == ""
    assert code == 1
    assert payload["summary"]["suppressed"] == 8


def test_silenced_findings_leave_text_output_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(
        tmp_path, {".env": "DEBUG=true\nSECRET_KEY=changethis  # policyscan: ignore[PSE003]\n"}
    )
    assert main([str(tmp_path), "--select", "PSE001,PSE003", "--no-color"]) == 1
    captured = capsys.readouterr()
    assert "PSE001" in captured.out and "PSE003" not in captured.out.split("finding")[0]
    assert "1 suppressed" in captured.out
    # The ignore has no reason: accepted, and counted.
    assert "1 finding is ignored without a reason" in captured.err

    (tmp_path / ".env").write_text("# policyscan: ignore[PSE001] dev box\nDEBUG=true\n")
    assert main([str(tmp_path), "--select", "PSE001"]) == 0
    assert "without a reason" not in capsys.readouterr().err


SARIF_SCHEMA = Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json"


def test_sarif_leaves_silenced_out_unless_asked(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {".env": "DEBUG=true  # policyscan: ignore[PSE001] demo box\nLOG_LEVEL=debug\n"},
    )
    out = tmp_path / "r.sarif"
    assert main([str(repo), "--select", "PSE001,PSE006", "-f", "sarif", "-o", str(out)]) == 1
    results = json.loads(out.read_text())["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["PSE006"]

    assert (
        main(
            [
                str(repo),
                "--select",
                "PSE001,PSE006",
                "-f",
                "sarif",
                "-o",
                str(out),
                "--sarif-include-suppressed",
            ]
        )
        == 1
    )
    log = json.loads(out.read_text())
    schema = json.loads(SARIF_SCHEMA.read_bytes())
    assert hashlib.sha256(SARIF_SCHEMA.read_bytes()).hexdigest().startswith("c3b4bb2d")
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(log))
    assert not errors, [e.message for e in errors[:3]]
    by_rule = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    assert by_rule["PSE001"]["suppressions"] == [{"kind": "inSource", "justification": "demo box"}]
    assert "suppressions" not in by_rule["PSE006"]


def test_warn_unused_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(
        tmp_path,
        {
            ".env": (
                "DEBUG=true  # policyscan: ignore[PSE001] used\n"
                "LOG_LEVEL=info  # policyscan: ignore[PSE006] nothing to silence here\n"
                "A=1  # policyscan: ignore[NOPE123] typo\n"
                "B=2  # policyscan: ignore[PSN001] a rule that did not run is not judged\n"
            )
        },
    )
    code, payload = _scan(tmp_path, capsys, "--select", "PSE001,PSE006")
    assert code == 0 and payload["problems"] == []  # without the flag: silent
    code, payload = _scan(tmp_path, capsys, "--select", "PSE001,PSE006", "--warn-unused-ignores")
    assert code == 0  # a warning, not a failure
    assert [(p["line"], p["code"], p["message"]) for p in payload["problems"]] == [
        (2, "unused-ignore", "unused ignore: PSE006 reports nothing on line 2"),
        (3, "unused-ignore", "ignore comment names an unknown rule: NOPE123"),
    ]


def test_block_ignore_is_limited_to_its_block_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n"
                "  # policyscan: ignore[PSC002] only the healthcheck rule should stay\n"
                "  web:\n"
                "    image: nginx\n"
                "  db:\n"
                "    image: postgres:16\n"
                "    ports: ['5432:5432']\n"
            )
        },
    )
    _, payload = _scan(tmp_path, capsys, "--select", "PSC002,PSC004", "--warn-unused-ignores")
    assert _where(payload["findings"]) == [
        ("PSC002", "docker-compose.yml", 7),
        ("PSC004", "docker-compose.yml", 3),
        ("PSC004", "docker-compose.yml", 5),
    ]
    assert [p["code"] for p in payload["problems"]] == ["unused-ignore"]
