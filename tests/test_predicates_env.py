"""The environment-variable predicates (policyscan/policy/predicates/env.py) and the two scopes
they brought (``env.file``, ``compose.reference``): host parsing, AWS key shapes, Dockerfile
stage inheritance, template targets, interpolation sources, and that no secret is ever shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyscan.discover import discover
from policyscan.policy.loader import builtin_policy_dir, load_policies
from policyscan.policy.predicates import env
from policyscan.project import Project, Subject
from policyscan.report import Report, render
from policyscan.scan import ScanOptions, _Failed, parse_artifact, scan
from tests.conftest import write_tree


def build(tmp_path: Path, files: dict[str, str]) -> Project:
    write_tree(tmp_path, dict(files))
    found = discover([str(tmp_path)], str(tmp_path))
    documents: dict[str, object] = {}
    for artifact in found.artifacts:
        doc, _ = parse_artifact(artifact, 1 << 20)
        if not isinstance(doc, _Failed):
            documents[artifact.path] = doc
    return Project(found.root, found.artifacts, documents)


def variable(project: Project, path: str, name: str) -> Subject:
    for subject in project.subjects("variable"):
        found = subject.facts.lookup("name")
        if subject.path == path and found is not None and found.as_str() == name:
            return subject
    raise AssertionError(f"no variable {name} in {path}")


def run(predicate: str, subject: Subject, project: Project) -> bool | None:
    return env.PREDICATES[predicate](subject.facts, subject, project, {}).result


# ----------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("localhost", "the local machine"),
        ("LOCALHOST.", "the local machine"),
        ("admin.localhost", "the local machine"),
        ("127.0.0.53", "the local machine"),
        ("::1", "the local machine"),
        ("[::1]", "the local machine"),
        ("0.0.0.0", "an unspecified address"),
        ("example.com", "a documentation placeholder domain"),
        ("shop.example.net", "a documentation placeholder domain"),
        ("mail.test", "a reserved test domain"),
        ("api.example", "a reserved test domain"),
        ("localhost-shop.acme.io", None),
        ("myexample.com", None),
        ("db.corp.local", None),  # mDNS, but also used for internal DNS: not judged
        ("10.0.0.5", None),
        ("postgres", None),
        ("test", None),
    ],
)
def test_dev_host_reason(host: str, reason: str | None) -> None:
    assert env.dev_host_reason(host) == reason


def test_url_hosts_reads_credentials_lists_jdbc_and_ipv6() -> None:
    text = (
        "postgres://shop:${DB_PASSWORD}@127.0.0.1:5432/shop,"
        "jdbc:mysql://db.acme.io:3306/x http://[::1]:3000/cb"
    )
    assert [host for _, host in env.url_hosts(text)] == ["127.0.0.1", "db.acme.io", "::1"]
    assert list(env.url_hosts("no url here, just@example.com")) == []


def test_bare_hosts_skips_urls_paths_and_references() -> None:
    assert list(env.bare_hosts("localhost:9092, kafka-2:9092;[::1]:9092")) == [
        "localhost",
        "kafka-2",
        "::1",
    ]
    assert list(env.bare_hosts("/var/run/postgresql ${DB_HOST} user@host")) == []


def test_dev_host_respects_the_host_network(tmp_path: Path) -> None:
    project = build(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n"
                "  exporter:\n    image: e:1\n    network_mode: host\n"
                "    environment:\n      DATA_URL: postgres://m@localhost/db\n"
                "  api:\n    image: a:1\n"
                "    environment:\n      DATA_URL: postgres://m@localhost/db\n"
                "  sidecar:\n    image: s:1\n    network_mode: service:api\n"
                "    environment:\n      PUBLIC_URL: https://shop.example.com\n"
            )
        },
    )
    by_service = {
        s.facts.lookup("service").as_str(): s  # type: ignore[union-attr]
        for s in project.subjects("variable")
    }
    assert run("dev_host", by_service["exporter"], project) is True
    assert run("dev_host", by_service["api"], project) is False
    # the host network explains localhost, not a placeholder domain
    assert run("dev_host", by_service["sidecar"], project) is False


# ----------------------------------------------------------------------------- AWS


def test_aws_key_id_shapes(tmp_path: Path) -> None:
    values = {
        "A": "AKIAQ7FAKESHOPENV2X4",  # planted fixture key: base32, not the documentation one
        "B": "key=ASIAY34FZKBOKMUTVV7A;",
        "C": "AKIAIOSFODNN7EXAMPLE",
        "D": "AKIAXXXXXXXXXXXXXXXX",
        "E": "AKIA0123456789ABCDEF",  # 0, 1, 8, 9 are not base32
        "F": "XAKIAQ7FAKESHOPENV2X4",
        "G": "akiaq7fakeshopenv2x4",
    }
    project = build(tmp_path, {".env": "".join(f"{k}={v}\n" for k, v in values.items())})
    got = {k: run("aws_credentials", variable(project, ".env", k), project) for k in values}
    assert got == {"A": False, "B": False, "C": True, "D": True, "E": True, "F": True, "G": True}


def test_aws_secret_key_needs_an_aws_name_and_the_generated_shape(tmp_path: Path) -> None:
    secret = "Zq8RvT2xLm4Nb6Vc1Kd3Jf5Hg7Ws9Ae0Py2Ut4Qi"
    assert len(secret) == 40
    project = build(
        tmp_path,
        {
            ".env": (
                f"AWS_SECRET_ACCESS_KEY={secret}\n"
                f"UPLOAD_TOKEN={secret}\n"  # a token: PSE003's, not an AWS key
                f"MINIO_SECRET_KEY={secret[:32]}\n"  # not the AWS shape
                "S3_SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
            )
        },
    )
    results = [
        run("aws_credentials", variable(project, ".env", name), project)
        for name in ("AWS_SECRET_ACCESS_KEY", "UPLOAD_TOKEN", "MINIO_SECRET_KEY", "S3_SECRET_KEY")
    ]
    assert results == [False, True, True, True]


# ----------------------------------------------------------------------------- Dockerfile


def test_in_runtime_follows_the_stage_chain(tmp_path: Path) -> None:
    project = build(
        tmp_path,
        {
            "Dockerfile": (
                "ARG BASE_TAG=3.12\n"
                "FROM python:3.12-slim AS base\nENV A=1\n"
                "FROM base AS deps\nENV B=1\n"
                "FROM node:20 AS assets\nENV C=1\n"
                "FROM deps\nARG D=1\nENV E=1\n"
            )
        },
    )
    got = {
        n: run("in_runtime", variable(project, "Dockerfile", n), project)
        for n in ("BASE_TAG", "A", "B", "C", "D", "E")
    }
    assert got == {"BASE_TAG": False, "A": True, "B": True, "C": False, "D": False, "E": True}


# ----------------------------------------------------------------------------- templates


def test_template_targets(tmp_path: Path) -> None:
    project = build(
        tmp_path,
        {
            ".env.example": "A=\n",
            ".env.production.example": "B=\n",
            ".env.development.example": "C=\n",
            ".env": "A=1\n",
            ".env.production": "A=1\nB=1\n",
            ".env.development": "",
            "sub/.env.example": "D=\n",
        },
    )
    targets = {
        t: sorted(d.artifact.path for d in env._deployed_env_files(project, t))
        for t in (".env.example", ".env.production.example", "sub/.env.example")
    }
    assert targets == {
        ".env.example": [".env", ".env.production"],
        ".env.production.example": [".env.production"],
        "sub/.env.example": [],
    }


def test_template_key_reports_missing_at_template_and_empty_at_deployed_line(
    tmp_path: Path,
) -> None:
    project = build(
        tmp_path, {".env.example": "A=\nB=\nC=x\n", ".env.prod": "B=\nC=${C}\n# A is gone\n"}
    )
    outcomes = {
        n: env.template_key_set(s.facts, s, project, {})
        for n in "ABC"
        for s in [variable(project, ".env.example", n)]
    }
    assert outcomes["A"].result is False
    assert outcomes["A"].blame is not None and outcomes["A"].blame.path == ".env.example"
    assert outcomes["A"].blame.span.start_line == 1
    assert outcomes["B"].result is False
    assert outcomes["B"].blame is not None and outcomes["B"].blame.path == ".env.prod"
    assert outcomes["B"].blame.span.start_line == 1
    assert outcomes["C"].result is True


# ----------------------------------------------------------------------------- compose references


def test_compose_reference_scope(tmp_path: Path) -> None:
    project = build(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n  api:\n    image: a:${TAG}\n"
                "    environment:\n      K: ${K:?set K}\n      L: ${L-x}\n      M: $M\n"
            ),
            "docker-compose.override.yml": "services:\n  api:\n    restart: always\n",
        },
    )
    refs = [
        (
            s.facts.lookup("name").as_str(),  # type: ignore[union-attr]
            s.facts.lookup("has_default").data,  # type: ignore[union-attr]
            s.facts.lookup("required").data,  # type: ignore[union-attr]
            s.environment.value,
        )
        for s in project.subjects("compose.reference")
    ]
    # once per environment: the base alone (unknown) and base + override (development)
    assert sorted(refs) == sorted(
        [
            ("TAG", False, False, "unknown"),
            ("K", False, True, "unknown"),
            ("L", True, False, "unknown"),
            ("M", False, False, "unknown"),
            ("TAG", False, False, "development"),
            ("K", False, True, "development"),
            ("L", True, False, "development"),
            ("M", False, False, "development"),
        ]
    )


def test_compose_variable_sources(tmp_path: Path) -> None:
    project = build(
        tmp_path,
        {
            "deploy/docker-compose.yml": (
                "services:\n  api:\n    image: a:1\n    env_file: ../config/api.env\n"
                "    environment:\n      A: ${A}\n      B: ${B}\n      C: ${C}\n      D: ${HOME}\n"
            ),
            "deploy/.env.production": "A=1\n",
            "config/api.env": "B=1\n",
        },
    )
    results = {
        s.facts.lookup("name").as_str(): s.facts  # type: ignore[union-attr]
        for s in project.subjects("compose.reference")
    }
    subjects = {
        s.facts.lookup("name").as_str(): s  # type: ignore[union-attr]
        for s in project.subjects("compose.reference")
    }
    assert set(results) == {"A", "B", "C", "HOME"}
    got = {n: run("compose_variable_defined", subjects[n], project) for n in subjects}
    assert got == {"A": True, "B": True, "C": False, "HOME": True}


def test_env_file_scope(tmp_path: Path) -> None:
    project = build(tmp_path, {".env.production": "A=1\nB=\nA=2\n", ".env.example": "A=\n"})
    files = {s.path: s for s in project.subjects("env.file")}
    assert set(files) == {".env.production", ".env.example"}
    prod = files[".env.production"].facts
    assert prod.lookup("count").data == 2  # type: ignore[union-attr]
    assert prod.lookup("keys.A").as_str() == "2"  # type: ignore[union-attr]
    assert files[".env.example"].template


# ----------------------------------------------------------------------------- pooling, sessions


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("DB_POOL_SIZE=20", True),
        ("DB_POOL_SIZE=0", None),
        ("DB_POOL_SIZE=${POOL}", None),
        ("CONN_MAX_AGE=60", True),
        ("DATABASE_URL=postgres://a@db/x?sslmode=require&pool_size=5", True),
        ("SQLALCHEMY_POOL_CLASS=sqlalchemy.pool.NullPool", False),
        ("DB_DISABLE_POOLING=false", None),
        ("POOL_NAME=shop", None),
    ],
)
def test_connection_pooling(tmp_path: Path, line: str, expected: bool | None) -> None:
    project = build(tmp_path, {".env.production": line + "\n"})
    name = line.split("=", 1)[0]
    assert (
        run("connection_pooling", variable(project, ".env.production", name), project) is expected
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("SESSION_DRIVER=redis", True),
        ("SESSION_ENGINE=redis_sessions.session", True),
        ("REDIS_URL=rediss://cache.acme.io:6380/0", True),
        ("SESSION_DRIVER=array", False),
        ("SESSION_ENGINE=django.contrib.sessions.backends.locmem", False),
        ("SESSION_DRIVER=database", None),
        ("SESSION_LIFETIME=120", None),
    ],
)
def test_session_store(tmp_path: Path, line: str, expected: bool | None) -> None:
    project = build(tmp_path, {".env.production": line + "\n"})
    name = line.split("=", 1)[0]
    assert run("session_store", variable(project, ".env.production", name), project) is expected


# ----------------------------------------------------------------------------- secrets stay secret


# Made up for this test only (rule examples hold other values: SARIF embeds them as help).
SECRETS = (
    "AKIAT3STKEYQW7RZ5MNB",
    "tEsTk3yOnLy/9fGh2Jk4Lm6Np8Qr0St2Uv4Wx6Yz",
    "sk_test_UnitTestOnlyValue9876543210",
    "whsec_UnitTestOnly9kTz9QmV2wX8yB5nR1",
    "npm_UnitTestOnlyZq8RvT2xLm4Nb6Vc1Kd3Jf",
)


def test_no_secret_in_any_output(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            ".env": (
                f"AWS_ACCESS_KEY_ID={SECRETS[0]}\nAWS_SECRET_ACCESS_KEY={SECRETS[1]}\n"
                f"PAYMENT_KEY={SECRETS[2]}\n"
            ),
            "docker-compose.yml": (
                "services:\n  api:\n    image: a:1\n    environment:\n"
                f"      - STRIPE_WEBHOOK_SECRET={SECRETS[3]}\n"
            ),
            "Dockerfile": f"FROM node:20-slim\nARG NPM_TOKEN={SECRETS[4]}\nUSER node\n",
        },
    )
    # Only this area's rules: another area's policy being edited must not break this test.
    rules = load_policies([builtin_policy_dir() / "env"], include_builtin=False)
    result = scan(rules, ScanOptions(paths=(str(tmp_path),)))
    fired = {(f.rule_id, f.location.path, f.location.span.start_line) for f in result.findings}
    assert {
        ("PSE015", ".env", 1),
        ("PSE015", ".env", 2),
        ("PSE009", ".env", 3),
        ("PSE017", "docker-compose.yml", 5),
        ("PSE016", "Dockerfile", 2),
    } <= fired
    report = Report(result, {r.id: r for r in rules})
    texts = [render(fmt, report) for fmt in ("text", "json", "sarif")]
    texts.append(json.dumps([f.message for f in result.findings]))
    texts += [f.snippet or "" for f in result.findings]
    texts += [e.note for e in result.evidence]
    for secret in SECRETS:
        assert all(secret not in text for text in texts), secret
