"""Secret redaction (issue 7): a secret written in a scanned file never reaches any output.

Distinctive secret values are planted in every kind of file, in the places a report is tempted
to show them: the value a finding is about, a URL's password, a value reused under two names,
a command line, a line that holds a secret beside the setting a finding is about (the snippet
shows that line), and a syntax error whose message quotes the offending word. Then every
output format is produced, and none may contain a secret or any six characters in a row of
one (so a "redacted" form that keeps a prefix or a suffix is caught too).

The formats are read at run time, so the test grows as formats land: every scan format in
``policyscan.report.FORMATS``, every format of the ``checklist`` command, and the file written
by ``baseline``, plus everything printed on stdout and stderr.
"""

from __future__ import annotations

import contextlib
import io
import random
import string
from pathlib import Path

import click
import pytest

from policyscan.cli import cli, main
from policyscan.report import FORMATS

WINDOW = 6  # no run of this many characters of a secret may appear


def _secret(rnd: random.Random) -> str:
    # Mixed case and digits, 20 characters: weak by the checklist's minimums (so findings point
    # at them) and shaped like nothing a report prints on its own (hex, words, paths).
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(rnd.choice(alphabet) for _ in range(20))
        if any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value


SITES = (
    "env_secret_key",
    "env_url_password",
    "env_reused",
    "env_token",
    "compose_mapping",
    "compose_list",
    "compose_one_line",
    "compose_command",
    "docker_env",
    "docker_arg",
    "docker_one_line",
    "docker_syntax_error",
    "tf_password",
    "tf_one_line",
    "tf_variable_default",
    "tfvars",
    "nginx_auth_header",
    "nginx_set",
)
_rnd = random.Random(20240607)
SECRETS: dict[str, str] = {site: _secret(_rnd) for site in SITES}


def _tree(root: Path) -> None:
    s = SECRETS
    files = {
        ".git/HEAD": "",  # a repository boundary: no configuration above the tree applies
        "prod/.env": (
            f"SECRET_KEY={s['env_secret_key']}\n"
            f"DATABASE_URL=postgres://app:{s['env_url_password']}@db:5432/app\n"
            f"REDIS_PASSWORD={s['env_reused']}\n"
            f"CACHE_PASSWORD={s['env_reused']}\n"
            f"API_TOKEN={s['env_token']}\n"
            "DEBUG=true\n"
        ),
        "prod/docker-compose.yml": (
            "services:\n"
            "  db:\n"
            "    image: postgres:16\n"
            "    environment:\n"
            f"      POSTGRES_PASSWORD: {s['compose_mapping']}\n"
            "    volumes:\n"
            "      - data:/var/lib/postgresql/data\n"
            "  mysql:\n"
            "    image: mysql:8\n"
            "    environment:\n"
            f"      - MYSQL_ROOT_PASSWORD={s['compose_list']}\n"
            "  worker:\n"
            "    image: python:3.12\n"
            f'    environment: {{DEBUG: "true", SECRET_KEY: "{s["compose_one_line"]}"}}\n'
            "  cache:\n"
            "    image: redis:7\n"
            f'    command: ["redis-server", "--requirepass", "{s["compose_command"]}"]\n'
            "volumes:\n"
            "  data: {}\n"
        ),
        "prod/Dockerfile": (
            "FROM python:3.12\n"
            f"ARG GITHUB_TOKEN={s['docker_arg']}\n"
            f"ENV DJANGO_SECRET_KEY={s['docker_env']}\n"
            f"ENV DEBUG=true API_KEY={s['docker_one_line']}\n"
            "RUN apt-get install -y gcc\n"
        ),
        "broken/Dockerfile": f"FROM python:3.12\nENV A=1 {s['docker_syntax_error']}\n",
        "prod/main.tf": (
            'resource "aws_db_instance" "db" {\n'
            '  engine                  = "postgres"\n'
            f'  password                = "{s["tf_password"]}"\n'
            "  backup_retention_period = 1\n"
            "}\n"
            f'resource "aws_db_instance" "db2" {{ password = "{s["tf_one_line"]}"'
            " backup_retention_period = 1 }\n"
            'variable "db_password" {\n'
            f'  default = "{s["tf_variable_default"]}"\n'
            "}\n"
        ),
        "prod/prod.tfvars": f'db_password = "{s["tfvars"]}"\n',
        "prod/nginx/nginx.conf": (
            "server { listen 443 ssl; server_name example.com; "
            f'proxy_set_header Authorization "Bearer {s["nginx_auth_header"]}"; }}\n'
            f"server {{\n    listen 443 ssl;\n    set $api_key {s['nginx_set']};\n}}\n"
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _choices(command: str, option: str) -> tuple[str, ...]:
    cmd = cli.commands.get(command) if isinstance(cli, click.Group) else None
    if cmd is None:
        return ()
    for param in cmd.params:
        if param.name == option and isinstance(param.type, click.Choice):
            return tuple(str(c) for c in param.type.choices)
    return ()


def _leaks(text: str) -> list[tuple[str, str]]:
    found = []
    for site, secret in SECRETS.items():
        for i in range(len(secret) - WINDOW + 1):
            if secret[i : i + WINDOW] in text:
                found.append((site, secret[i : i + WINDOW]))
                break
    return found


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("redaction")
    repo = base / "repo"
    _tree(repo)
    out: dict[str, str] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        scan_args = [str(repo), "--no-color"]
        for fmt in FORMATS:
            scan_args += ["--format", fmt, "--output", str(base / f"scan.{fmt}")]
        out["exit:scan"] = str(main(scan_args))
        for fmt in FORMATS:
            out[f"scan {fmt}"] = (base / f"scan.{fmt}").read_text("utf-8")
        main([str(repo), "--no-color", "--statistics"])  # the default text, on stdout
        for fmt in _choices("checklist", "fmt") or _choices("checklist", "format"):
            target = base / f"checklist.{fmt}"
            args = ["checklist", str(repo), "--format", fmt, "--output", str(target)]
            out[f"exit:checklist {fmt}"] = str(main(args))
            out[f"checklist {fmt}"] = target.read_text("utf-8")
        if _choices("checklist", "fmt") or _choices("checklist", "format"):
            main(["checklist", str(repo)])
        if isinstance(cli, click.Group) and "baseline" in cli.commands:
            target = base / "baseline.json"
            out["exit:baseline"] = str(main(["baseline", str(repo), "--output", str(target)]))
            out["baseline"] = target.read_text("utf-8")
    out["stdout and stderr"] = printed.getvalue()
    return out


def test_every_format_was_produced(outputs: dict[str, str]) -> None:
    assert outputs["exit:scan"] == "1"  # there are findings: the secrets are found weak
    for fmt in FORMATS:
        assert outputs[f"scan {fmt}"].strip(), fmt
    assert {"json", "sarif", "text"} <= set(FORMATS)


def test_the_secrets_are_found(outputs: dict[str, str]) -> None:
    # Redaction is only meaningful if the secrets were read and reported on.
    text = outputs["scan text"]
    for path in ("prod/.env", "prod/docker-compose.yml", "prod/Dockerfile", "prod/main.tf"):
        assert path in text
    assert "********" in text  # a redacted value, as findings show them
    assert "broken/Dockerfile:2:" in text  # the syntax error, reported at its line


def test_no_output_contains_a_secret(outputs: dict[str, str]) -> None:
    leaks = {name: _leaks(text) for name, text in outputs.items() if not name.startswith("exit:")}
    leaks = {k: v for k, v in leaks.items() if v}
    assert not leaks, leaks


def test_the_leak_check_itself_sees_a_secret() -> None:
    # The detector must not be vacuous: each secret, and any six characters of it, is caught.
    for site, secret in SECRETS.items():
        assert _leaks(f"x {secret} y") and _leaks(f"..{secret[7:13]}..")[0][0] == site
