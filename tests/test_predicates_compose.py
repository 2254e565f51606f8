"""The parsing behind the compose predicates: images, ports, commands, one-shot services, Redis
and postgres settings. The rules themselves are exercised by their examples
(tests/test_policy_examples.py); these pin the edge cases an example would not show."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyscan.model import Environment, Span, Value
from policyscan.policy.loader import load_policies
from policyscan.policy.predicates import compose as c
from policyscan.project import ComposeView
from policyscan.scan import ScanOptions, scan
from tests.conftest import write_tree


def _v(data: object) -> Value:
    """A located Value from plain data, the way the YAML loader builds one."""
    span = Span.line(1)
    if isinstance(data, dict):
        return Value({k: _v(x) for k, x in data.items()}, "c.yml", span)
    if isinstance(data, list):
        return Value([_v(x) for x in data], "c.yml", span)
    return Value(data, "c.yml", span, text=None if data is None else str(data))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("postgres", "postgres", None, None),
        ("postgres:16.3", "postgres", "16.3", None),
        ("docker.io/library/redis:7", "redis", "7", None),
        ("localhost:5000/shop", "shop", None, None),
        ("registry.acme.io:5000/team/shop:1.2", "team/shop", "1.2", None),
        ("nginx@sha256:abc", "nginx", None, "sha256:abc"),
        ("nginx:1.27@sha256:abc", "nginx", "1.27", "sha256:abc"),
        ("Bitnami/Redis:7.2", "bitnami/redis", "7.2", None),
    ],
)
def test_parse_image(text: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = c.parse_image(text)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("postgres:16", "postgres"),
        ("postgis/postgis:16-3.4", "postgres"),
        ("timescale/timescaledb-ha:pg16", "postgres"),
        ("bitnami/postgresql:16", "postgres"),
        ("mariadb:11", "mysql"),
        ("valkey/valkey:8.0-alpine", "redis"),
        ("redis/redis-stack-server:7.2.0-v10", "redis"),
        ("mcr.microsoft.com/mssql/server:2022-latest", "mssql"),
        ("docker.elastic.co/elasticsearch/elasticsearch:8.13.4", "elasticsearch"),
        # look-alikes: tools named after the datastore they serve
        ("prodrigestivill/postgres-backup-local:16", None),
        ("oliver006/redis_exporter:v1.61.0", None),
        ("rediscommander/redis-commander:latest", None),
        ("mongo-express:1.0", None),
        ("edoburu/pgbouncer:1.22", None),
    ],
)
def test_image_family(text: str, family: str | None) -> None:
    assert c.image_family(c.parse_image(text)) == family


# ----------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("entry", "host_ip", "published", "target", "protocol", "public"),
    [
        ("5432:5432", None, (5432, 5432), (5432, 5432), "tcp", True),
        ("5432", None, None, (5432, 5432), "tcp", True),
        (5432, None, None, (5432, 5432), "tcp", True),
        ("127.0.0.1:5432:5432", "127.0.0.1", (5432, 5432), (5432, 5432), "tcp", False),
        ("127.0.0.1::5432", "127.0.0.1", None, (5432, 5432), "tcp", False),
        ("0.0.0.0:6432:5432", "0.0.0.0", (6432, 6432), (5432, 5432), "tcp", True),
        ("[::1]:6379:6379", "[::1]", (6379, 6379), (6379, 6379), "tcp", False),
        ("::1:6000:6000", "::1", (6000, 6000), (6000, 6000), "tcp", False),
        ("10.0.1.15:22:22", "10.0.1.15", (22, 22), (22, 22), "tcp", False),
        ("52.18.4.9:22:22", "52.18.4.9", (22, 22), (22, 22), "tcp", True),
        ("9200-9201:9200-9201", None, (9200, 9201), (9200, 9201), "tcp", True),
        ("53:53/udp", None, (53, 53), (53, 53), "udp", True),
    ],
)
def test_parse_short_port(
    entry: object,
    host_ip: str | None,
    published: tuple[int, int] | None,
    target: tuple[int, int],
    protocol: str,
    public: bool,
) -> None:
    port = c.parse_port(_v(entry))
    assert port is not None
    assert (port.host_ip, port.published, port.target, port.protocol, port.public) == (
        host_ip,
        published,
        target,
        protocol,
        public,
    )


def test_parse_long_port() -> None:
    port = c.parse_port(
        _v(
            {
                "target": 5432,
                "published": "15432",
                "host_ip": "127.0.0.1",
                "protocol": "tcp",
                "mode": "host",
            }
        )
    )
    assert port is not None
    assert (port.target, port.published, port.public) == ((5432, 5432), (15432, 15432), False)
    bare = c.parse_port(_v({"target": 6379}))
    assert bare is not None and bare.published is None and bare.public is True


def test_port_with_variables() -> None:
    unresolved = Value(None, "c.yml", Span.line(1), known=False, text="${DB_BIND}:5432:5432")
    port = c.parse_port(unresolved)
    assert port is not None
    assert port.target == (5432, 5432) and port.public is None  # the address is unknown
    host_port = c.parse_port(Value(None, "c.yml", Span.line(1), known=False, text="${PORT}:8000"))
    assert host_port is not None
    assert host_port.public is True and not host_port.published_known
    assert host_port.target == (8000, 8000)


# ----------------------------------------------------------------------------- commands


def test_command_blame_points_at_the_list_element() -> None:
    svc = _v({"command": ["python", "manage.py", "runserver", "0.0.0.0:8000"]})
    cmd = c.command_of(svc)
    assert cmd is not None and cmd.text == "python manage.py runserver 0.0.0.0:8000"
    offset = cmd.text.index("runserver")
    assert cmd.blame(offset) is svc.lookup("command.2")


def test_split_words_follows_sh_c_scripts() -> None:
    words = c.split_words('sh -c \'exec redis-server --requirepass "$REDIS_PASSWORD" --save ""\'')
    assert words[:3] == ["sh", "-c", "exec"]
    assert words[-2:] == ["--save", ""]


def test_entrypoint_and_command_are_joined() -> None:
    cmd = c.full_command(_v({"entrypoint": ["uvicorn"], "command": ["app:app", "--reload"]}))
    assert cmd is not None and cmd.text == "uvicorn app:app --reload"


# ----------------------------------------------------------------------------- one-shot services


def _view(services: dict[str, object]) -> ComposeView:
    root = _v({"services": services})
    svcs = root.lookup("services")
    assert svcs is not None and isinstance(svcs.data, dict)
    return ComposeView(
        "", ["docker-compose.yml"], Environment.PRODUCTION, dict(svcs.data), root, {}
    )


@pytest.mark.parametrize(
    ("name", "service", "expected"),
    [
        ("app", {"image": "shop:1"}, True),
        ("seed", {"image": "shop:1", "restart": "no"}, False),
        ("db-migrate", {"image": "shop:1"}, False),
        ("app", {"image": "shop:1", "command": "alembic upgrade head"}, False),
        # a migration followed by the server keeps running
        (
            "app",
            {"image": "shop:1", "command": "sh -c 'alembic upgrade head && uvicorn app:app'"},
            True,
        ),
        ("perms", {"image": "busybox:1", "command": "chown -R 1000 /data"}, False),
        ("initializer", {"image": "shop:1"}, True),  # "init" must be a whole word
        ("child", {"extends": {"service": "app"}}, None),
    ],
)
def test_long_running(name: str, service: dict[str, object], expected: bool | None) -> None:
    view = _view({name: service})
    assert c.is_long_running(view, name, view.services[name]) is expected


def test_service_awaited_to_completion_is_one_shot() -> None:
    view = _view(
        {
            "prestart": {"image": "shop:1", "command": "bash scripts/prestart.sh"},
            "app": {
                "image": "shop:1",
                "depends_on": {"prestart": {"condition": "service_completed_successfully"}},
            },
        }
    )
    assert c.is_long_running(view, "prestart", view.services["prestart"]) is False
    assert c.is_long_running(view, "app", view.services["app"]) is True


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8G", 8 * 1024**3),
        ("8192M", 8 * 1024**3),
        ("512m", 512 * 1024**2),
        ("1.5g", 1.5 * 1024**3),
        ("8GB", 8 * 1024**3),
        ("1073741824", 1024**3),
        ("lots", None),
    ],
)
def test_memory_bytes(text: str, size: float | None) -> None:
    assert c.memory_bytes(text) == size


@pytest.mark.parametrize(
    ("command", "value"),
    [
        ("postgres -c statement_timeout=30000", "30000"),
        ("postgres -c statement-timeout=30s", "30s"),
        ("postgres --statement_timeout=5min", "5min"),
        ("postgres -c 'statement_timeout=0'", "0"),
        ("postgres -c idle_in_transaction_session_statement_timeout=1", None),
        ("postgres -c max_connections=200", None),
    ],
)
def test_postgres_setting(command: str, value: str | None) -> None:
    assert c._setting(command, "statement_timeout") == value


# ----------------------------------------------------------------------------- through a scan


def _scan(tmp_path: Path, files: dict[str, str], *ids: str) -> list[tuple[str, str, int, str]]:
    write_tree(tmp_path, dict(files))
    rules = [r for r in load_policies() if r.id in ids]
    result = scan(rules, ScanOptions(paths=(str(tmp_path),)))
    return [
        (f.rule_id, f.location.path, f.location.span.start_line, f.message) for f in result.findings
    ]


def test_redis_flags_merged_from_a_production_override(tmp_path: Path) -> None:
    files = {
        "docker-compose.yml": "services:\n  redis:\n    image: redis:7.2.4\n",
        "docker-compose.prod.yml": (
            "services:\n  redis:\n    command: redis-server --appendonly yes --maxmemory 256mb"
            " --requirepass ${REDIS_PASSWORD}\n    volumes:\n      - redis-data:/data\n"
        ),
    }
    assert _scan(tmp_path, files, "PSC017", "PSC018", "PSC019", "PSX001") == []


def test_weak_literal_redis_password_is_never_printed(tmp_path: Path) -> None:
    files = {
        "docker-compose.yml": "services:\n  redis:\n    image: redis:7.2.4\n"
        "    command: redis-server --requirepass hunter2hunter2\n"
    }
    write_tree(tmp_path, files)
    rules = [r for r in load_policies() if r.id == "PSC019"]
    result = scan(rules, ScanOptions(paths=(str(tmp_path),)))
    assert [f.location.span.start_line for f in result.findings] == [4]
    finding = result.findings[0]
    assert "hunter2" not in finding.message
    assert finding.sensitive and "hunter2" not in (finding.snippet or "")


def test_healthcheck_in_a_parent_stage_of_the_build_target(tmp_path: Path) -> None:
    files = {
        "docker-compose.yml": "services:\n  api:\n    build:\n      context: api\n      target: dev\n",
        "api/Dockerfile": 'FROM python:3.12-slim AS base\nFROM base AS dev\nCMD ["python"]\n'
        "FROM base AS prod\nHEALTHCHECK CMD curl -f http://127.0.0.1/\n",
    }
    # the dev target does not inherit the prod stage's HEALTHCHECK
    assert [(r, p, line) for r, p, line, _ in _scan(tmp_path, files, "PSC004")] == [
        ("PSC004", "docker-compose.yml", 2)
    ]


def test_tls_evidence_from_an_https_port_variable(tmp_path: Path) -> None:
    files = {
        "docker-compose.yml": "services:\n  web:\n    image: ghcr.io/jitsi/web:stable\n"
        "    ports:\n      - '${HTTP_PORT}:8000'\n"
        "      - '${HTTPS_PORT}:8443'\n"
    }
    assert _scan(tmp_path, files, "PSX002") == []


def test_project_rules_look_only_at_production_views(tmp_path: Path) -> None:
    files = {
        "docker-compose.yml": "services:\n  app:\n    image: shop:1.4.2\n",
        "docker-compose.override.yml": "services:\n  app:\n    ports:\n      - '8000:8000'\n"
        "  redis:\n    image: redis:7.2.4\n",
    }
    assert _scan(tmp_path, files, "PSX001", "PSX002") == []


@pytest.mark.parametrize(
    ("entry", "directory", "expected"),
    [
        (["redis-data:/data"], "/data", True),
        (["./redis:/data:rw"], "/data", True),
        (["/data"], "/data", False),  # anonymous: removed with the container
        (["cache:/var/lib/redis"], "/data", False),
        (["bitnami:/bitnami"], "/bitnami/redis/data", True),  # a parent directory counts
        ([{"type": "tmpfs", "target": "/data"}], "/data", False),
        (["${DATA_DIR:-./data}/redis:/data"], "/data", True),
        (["cache:${REDIS_DIR}"], "/data", None),
    ],
)
def test_volume_for_data_directory(
    entry: list[object], directory: str, expected: bool | None
) -> None:
    items = [
        _v(x)
        if not (isinstance(x, str) and "$" in x)
        else Value(None, "c.yml", Span.line(1), known=False, text=x)
        for x in entry
    ]
    svc = Value({"volumes": Value(items, "c.yml", Span.line(1))}, "c.yml", Span.line(1))
    assert c.has_volume_for(svc, directory) is expected
