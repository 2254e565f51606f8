"""The Dockerfile and nginx predicates: stage inheritance, what nginx inherits and what it
cannot see, and the fixture repositories for the Dockerfile and nginx rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policyscan.model import Artifact, Environment, Kind
from policyscan.parsers.dockerfile import DockerfileDocument
from policyscan.parsers.dockerfile import parse as parse_dockerfile
from policyscan.policy.loader import load_policies
from policyscan.policy.predicates import dockerfile as dp
from policyscan.policy.predicates import nginx as npred
from policyscan.scan import ScanOptions, scan
from tests.conftest import FIXTURES, write_tree

MY_RULES = [r for r in load_policies() if r.id.startswith(("PSD", "PSN"))]


def _doc(text: str) -> DockerfileDocument:
    return parse_dockerfile(Artifact("Dockerfile", "/x/Dockerfile", Kind.DOCKERFILE), text)


def _findings(
    tmp_path: Path, files: dict[str, str | bytes], ids: tuple[str, ...]
) -> list[tuple[str, str, int]]:
    write_tree(tmp_path, files)
    rules = [r for r in MY_RULES if r.id in ids]
    result = scan(rules, ScanOptions(paths=(str(tmp_path),)))
    return sorted((f.rule_id, f.location.path, f.location.span.start_line) for f in result.findings)


# ------------------------------------------------------------------------------- Dockerfile


def test_stage_chain_follows_aliases_case_insensitively_and_stops_on_cycles() -> None:
    doc = _doc(
        "FROM python:3.12 AS Base\nUSER app\nFROM base AS mid\nFROM MID\nFROM final AS final\n"
    )
    base, mid, last, odd = doc.stages
    assert dp.chain(doc, last) == [last, mid, base]
    assert dp.base_image(doc, last) == "python:3.12"
    assert dp.chain(doc, odd) == [odd]  # FROM its own alias: an external image named "final"
    user = dp.effective(doc, last, "USER")
    assert user is not None and user.args == ("app",)


def test_entrypoint_in_a_stage_resets_the_inherited_cmd_but_not_its_own() -> None:
    doc = _doc(
        'FROM x:1 AS a\nCMD run-a\nFROM a AS b\nENTRYPOINT ["/e"]\nFROM a AS c\nCMD run-c\n'
        'ENTRYPOINT ["/e"]\n'
    )
    _, b, c = doc.stages
    assert dp.effective(doc, b, "CMD") is None
    assert dp.command_text(doc, b)[0] == "/e"
    assert dp.command_text(doc, c)[0] == "/e run-c"


def test_shell_form_entrypoint_ignores_cmd() -> None:
    doc = _doc("FROM x:1\nENTRYPOINT exec server\nCMD --reload\n")
    assert dp.command_text(doc, doc.stages[0])[0] == "exec server"


def test_expand_resolves_known_args_and_gives_up_on_unknown_ones() -> None:
    values = {"APP_USER": "app", "EMPTY": None}
    assert dp.expand("${APP_USER}:${APP_USER}", values) == "app:app"
    assert dp.expand("${NOPE:-root}", values) == "root"
    assert dp.expand("$EMPTY", values) is None
    assert dp.expand("$NOPE", values) is None


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.12-slim", True),
        ("python", False),
        ("python:latest", False),
        ("localhost:5000/app", False),
        ("localhost:5000/app:2.1", True),
        ("alpine@sha256:abc", True),
        ("python:${TAG}", None),
        ("php:%%PHP_VERSION%%-fpm", None),
        ("docker.io/postgres:{{ cookiecutter.postgresql_version }}", None),
    ],
)
def test_image_pinned(tmp_path: Path, image: str, pinned: bool | None) -> None:
    found = _findings(tmp_path, {"Dockerfile": f"FROM {image}\n"}, ("PSD004",))
    assert bool(found) is (pinned is False)


def test_user_from_an_arg_default_is_resolved(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM debian:12\nARG RUN_AS=root\nUSER ${RUN_AS}\n"}
    assert _findings(tmp_path, files, ("PSD002",)) == [("PSD002", "Dockerfile", 3)]
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nARG RUN_AS\nUSER ${RUN_AS}\n")
    assert _findings(tmp_path, {}, ("PSD002",)) == []  # a build argument nobody set: unknown


def test_official_database_images_drop_root_themselves(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM postgres:16.3\nCOPY init.sql /docker-entrypoint-initdb.d/\n"}
    assert _findings(tmp_path, files, ("PSD002",)) == []


def test_development_dockerfiles_are_not_judged(tmp_path: Path) -> None:
    files = {
        "Dockerfile.dev": "FROM python:latest\nCMD flask run --debug\n",
        "Dockerfile": 'FROM python:3.12-slim\nUSER app\nCMD ["gunicorn", "app:app"]\n',
    }
    ids = ("PSD002", "PSD004", "PSD005", "PSD006")
    assert _findings(tmp_path, files, ids) == []


def test_compose_builders_resolve_context_and_dockerfile(tmp_path: Path) -> None:
    from policyscan.project import Project
    from policyscan.scan import parse_artifact

    write_tree(
        tmp_path,
        {
            "svc/docker/Prod.Dockerfile": "FROM x:1\n",
            "docker-compose.yml": "services:\n  a:\n    build:\n      context: ./svc\n"
            "      dockerfile: docker/Prod.Dockerfile\n  b:\n    build: ./other\n",
        },
    )
    from policyscan.discover import discover

    found = discover((str(tmp_path),), str(tmp_path))
    docs = {a.path: parse_artifact(a, 1 << 20)[0] for a in found.artifacts}
    project = Project(found.root, found.artifacts, docs)
    builders = dp.compose_builders(project, "svc/docker/Prod.Dockerfile")
    assert [b.name for b in builders] == ["a"]


# ------------------------------------------------------------------------------- nginx


def test_unread_includes_stay_in_the_tree_so_rules_can_say_unknown(tmp_path: Path) -> None:
    files = {
        "nginx/nginx.conf": "http {\n  include /etc/nginx/extra/*.conf;\n  include mime.types;\n"
        "  server {\n    listen 80;\n    root /srv;\n  }\n}\n"
    }
    from policyscan.discover import discover
    from policyscan.project import Project
    from policyscan.scan import parse_artifact

    write_tree(tmp_path, files)
    found = discover((str(tmp_path),), str(tmp_path))
    docs = {a.path: parse_artifact(a, 1 << 20)[0] for a in found.artifacts}
    project = Project(found.root, found.artifacts, docs)
    (server,) = [c for k, c in project.nginx_contexts if k == "server"]
    http = npred.ancestor(server, "http")
    assert http is not None
    # the glob that matched nothing may hide settings; mime.types is a stock file and hides none
    assert [d.args[0] for d in npred.opaque(http.directive)] == ["/etc/nginx/extra/*.conf"]
    # an unread include makes server_tokens and compression unknown, not missing
    assert _findings(tmp_path, {}, ("PSN011", "PSN012")) == []


@pytest.mark.parametrize(
    ("listens", "plain80"),
    [
        ([], True),
        (["80"], True),
        (["[::]:80 default_server"], True),
        (["0.0.0.0:80"], True),
        (["127.0.0.1:80"], False),
        (["localhost:80"], False),
        (["8080"], False),
        (["443 ssl"], False),
        (["80 ssl"], False),
        (["unix:/run/nginx.sock"], False),
        (["443 ssl", "80"], True),
    ],
)
def test_plain_port_80(listens: list[str], plain80: bool) -> None:
    from policyscan.model import Span
    from policyscan.parsers.nginx import Directive

    block = [Directive("listen", tuple(x.split()), Span.line(2), "n.conf") for x in listens]
    server = Directive("server", (), Span.line(1), "n.conf", block)
    assert (npred._plain_port_80(server) is not None) is plain80


def test_http_level_settings_are_reported_once_per_http_block(tmp_path: Path) -> None:
    servers = "".join(
        f"  server {{\n    listen 443 ssl;\n    root /srv/s{i};\n  }}\n" for i in range(3)
    )
    conf = (
        "http {\n  ssl_protocols TLSv1 TLSv1.2;\n  ssl_certificate /c;\n  ssl_certificate_key /k;\n"
        + servers
        + "}\n"
    )
    assert _findings(tmp_path, {"nginx/nginx.conf": conf}, ("PSN009", "PSN011", "PSN012")) == [
        ("PSN009", "nginx/nginx.conf", 2),
        ("PSN011", "nginx/nginx.conf", 1),
        ("PSN012", "nginx/nginx.conf", 1),
    ]


def test_a_snippet_without_server_or_http_produces_no_missing_findings(tmp_path: Path) -> None:
    files = {
        "nginx/snippets/tls.conf": "ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_cache shared:SSL:10m;\n",
        "nginx/snippets/static.conf": "location /static/ {\n  alias /srv/static/;\n}\n",
    }
    ids = tuple(r.id for r in MY_RULES if r.id.startswith("PSN"))
    assert _findings(tmp_path, files, ids) == []


def test_header_values_computed_by_a_map_are_unknown_but_reflected_origin_is_not(
    tmp_path: Path,
) -> None:
    from policyscan.model import Span
    from policyscan.parsers.nginx import Directive
    from policyscan.project import _header_fact

    def header(*args: str) -> Directive:
        return Directive("add_header", args, Span.line(1), "n.conf")

    assert _header_fact(header("Content-Security-Policy", "$csp", "always")).known is False
    assert _header_fact(header("Access-Control-Allow-Origin", "$http_origin")).known is True
    assert _header_fact(header("X-Frame-Options", "DENY")).known is True


def test_cors_header_at_http_level_is_reported_once(tmp_path: Path) -> None:
    conf = (
        "http {\n  add_header Access-Control-Allow-Origin $http_origin;\n"
        "  add_header Access-Control-Allow-Credentials true;\n"
        "  server {\n    listen 443 ssl;\n    location / {\n    }\n    location /b {\n    }\n  }\n"
        "  server {\n    listen 8443 ssl;\n  }\n}\n"
    )
    assert _findings(tmp_path, {"nginx/nginx.conf": conf}, ("PSN006", "PSN015")) == [
        ("PSN006", "nginx/nginx.conf", 2),
        ("PSN015", "nginx/nginx.conf", 2),
    ]


# ------------------------------------------------------------------------------- fixtures

_KINDS = ("Dockerfile", "nginx/")
# ENV/ARG values in a Dockerfile (DEBUG, LOG_LEVEL, secrets) are the variable rules' findings.
_VARIABLE_ITEMS = ("app.env.debug-disabled", "app.env.log-level", "security.secrets.")


def _planted_for_my_rules() -> set[tuple[str, int, str]]:
    planted = yaml.safe_load((FIXTURES / "insecure-shop" / "PLANTED.yaml").read_text())
    mine = {c for r in MY_RULES for c in r.checklist}
    return {
        (e["file"], e["line"], e["checklist"])
        for e in planted["planted"]
        if any(k in e["file"] for k in _KINDS)
        and e["checklist"] in mine
        and not ("Dockerfile" in e["file"] and e["checklist"].startswith(_VARIABLE_ITEMS))
    }


def test_insecure_shop_dockerfile_and_nginx_problems_are_all_found() -> None:
    result = scan(MY_RULES, ScanOptions(paths=(str(FIXTURES / "insecure-shop"),)))
    found = {
        (f.location.path, f.location.span.start_line, c)
        for f in result.findings
        for c in f.checklist
    }
    missed = _planted_for_my_rules() - found
    assert not missed, missed
    planted_lines = {(f, line) for f, line, _ in _planted_for_my_rules()}
    extra = [
        (f.rule_id, f.location.path, f.location.span.start_line)
        for f in result.findings
        if (f.location.path, f.location.span.start_line) not in planted_lines
    ]
    assert not extra, extra


def test_hardened_shop_is_silent_for_dockerfile_and_nginx_rules() -> None:
    result = scan(MY_RULES, ScanOptions(paths=(str(FIXTURES / "hardened-shop"),)))
    assert [(f.rule_id, f.location.path, f.location.span.start_line) for f in result.findings] == []


def test_environment_enum_is_used_for_dockerfiles() -> None:
    # Guards the assumption the rules make: a Dockerfile.dev is a development artifact.
    from policyscan.discover import environment_of

    assert environment_of("Dockerfile.dev", Kind.DOCKERFILE) is Environment.DEVELOPMENT
