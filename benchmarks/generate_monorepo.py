"""Generate a deterministic synthetic monorepo of deployment files for policyscan benchmarks.

Run (standard library only, Python >= 3.10):

    python benchmarks/generate_monorepo.py --services 1000 --out /tmp/monorepo
    python benchmarks/generate_monorepo.py --services 50 --out /tmp/small --seed 7
    python benchmarks/generate_monorepo.py --services 1000 --out /tmp/monorepo --force

Layout written under ``--out DIR``::

    DIR/.gitignore                    ignores node_modules/, .terraform/, *.tfstate, ...
    DIR/.generated-monorepo           marker (JSON parameters); ``--force`` only deletes
                                      an existing DIR that carries this marker
    DIR/planted-issues.json           every deliberately insecure value, by file
    DIR/node_modules/...              decoy deployment files that a scanner must skip
    DIR/services/svc-XXXX/
        docker-compose.yml            3-6 services, x-logging anchor, <<: merges
        docker-compose.prod.yml       ~40% of services
        .env, .env.example
        Dockerfile                    single- or multi-stage, some BuildKit heredocs
        nginx/nginx.conf
        nginx/conf.d/*.conf           1-3 files
        nginx/snippets/security-headers.conf
        terraform/main.tf, variables.tf, outputs.tf, versions.tf, ecs.tf, iam.tf,
                  monitoring.tf (~70%), terraform.tfvars
        README.md                     not a deployment file (walkers must skip it)

Output is byte-for-byte deterministic for a given ``--seed``; service ``i`` depends only on
the seed and ``i``, so ``--services 10`` is a prefix of ``--services 1000``. Each insecure
variant is planted independently with probability ``--insecure-rate`` (default 0.03), so most
values are fine and a few services are bad in several ways. ``planted-issues.json`` lists what
was planted on purpose; it is not exhaustive (e.g. random ``SECRET_KEY`` values in ``.env``
files are realistic but may also be reported by a secrets rule).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".generated-monorepo"

INSECURE_TAGS: tuple[str, ...] = (
    # docker-compose
    "compose.debug_true",
    "compose.db_port_published",
    "compose.privileged",
    "compose.latest_tag",
    "compose.docker_socket",
    "compose.inline_weak_db_password",
    # env files
    "env.debug_true",
    "env.weak_db_password",
    "env.weak_secret_key",
    # Dockerfile
    "dockerfile.runs_as_root",
    "dockerfile.latest_base_image",
    "dockerfile.curl_pipe_sh",
    "dockerfile.add_remote_url",
    "dockerfile.secret_in_env",
    # nginx
    "nginx.server_tokens_on",
    "nginx.weak_tls_protocols",
    "nginx.missing_hsts",
    "nginx.autoindex_on",
    # terraform
    "terraform.sg_ssh_open_world",
    "terraform.db_ingress_open_world",
    "terraform.db_backup_retention_1",
    "terraform.db_publicly_accessible",
    "terraform.db_unencrypted",
    "terraform.s3_public_access_allowed",
    "terraform.weak_db_password",
    "terraform.alb_http_forward",
    "terraform.alb_weak_tls_policy",
    "terraform.log_group_no_retention",
    "terraform.kms_rotation_disabled",
    "terraform.iam_wildcard_policy",
)

LANGS = ("python", "node", "go", "java")
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2")
TEAMS = ("payments", "identity", "search", "catalog", "growth", "platform", "billing", "data")
APP_PORTS = {"python": 8000, "node": 3000, "go": 8080, "java": 8080}
FEATURE_FLAGS = ("beta-ui", "new-billing", "fast-search", "audit-log", "sso")
CACHE_NODE_TYPES = ("cache.t4g.small", "cache.t4g.medium", "cache.r7g.large")
DB_INSTANCE_CLASSES = ("db.t4g.medium", "db.t4g.large", "db.r6g.large")
SECRET_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class Service:
    """Everything chosen for one synthetic service; the writers only format it."""

    name: str
    index: int
    rng: random.Random
    lang: str
    db: str  # "postgres" | "mysql"
    extras: list[str]  # subset of redis, worker, scheduler, nginx (compose services)
    port: int
    version: str
    env_style: str  # "mapping" | "list"
    region: str
    environment: str
    team: str
    cidr_octet: int
    insecure: frozenset[str]
    planted: list[tuple[str, str]] = field(default_factory=list)
    backup_literal: bool = False  # backup_retention_period = 1 written into main.tf

    def bad(self, tag: str, relpath: str) -> bool:
        """Return True when ``tag`` is planted, recording it against ``relpath``."""
        if tag in self.insecure:
            self.planted.append((relpath, tag))
            return True
        return False

    def secret(self, length: int) -> str:
        return "".join(self.rng.choices(SECRET_ALPHABET, k=length))

    def hexid(self, length: int) -> str:
        return f"{self.rng.getrandbits(4 * length):0{length}x}"

    @property
    def domain(self) -> str:
        return f"{self.name}.example.com"

    @property
    def db_port(self) -> int:
        return 5432 if self.db == "postgres" else 3306


def make_service(seed: int, index: int, width: int, insecure_rate: float) -> Service:
    rng = random.Random(f"policyscan-monorepo:{seed}:{index}")
    lang = rng.choice(LANGS)
    db = "postgres" if rng.random() < 0.7 else "mysql"
    pool = ["redis", "worker", "nginx", "scheduler"]
    extras = sorted(rng.sample(pool, rng.randint(1, 4)), key=pool.index)
    insecure = frozenset(t for t in INSECURE_TAGS if rng.random() < insecure_rate)
    return Service(
        name=f"svc-{index:0{width}d}",
        index=index,
        rng=rng,
        lang=lang,
        db=db,
        extras=extras,
        port=APP_PORTS[lang],
        version=f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}",
        env_style=rng.choice(("mapping", "list")),
        region=rng.choice(REGIONS),
        environment=rng.choice(("staging", "production", "production")),
        team=rng.choice(TEAMS),
        cidr_octet=index % 250 + 1,
        insecure=insecure,
    )


# --------------------------------------------------------------------------- compose


def _env_block(items: list[tuple[str, str]], style: str, indent: str) -> list[str]:
    out = [f"{indent}environment:"]
    for key, value in items:
        if style == "mapping":
            out.append(f'{indent}  {key}: "{value}"')
        else:
            out.append(f"{indent}  - {key}={value}")
    return out


def _healthcheck(test: str, indent: str, interval: str = "30s") -> list[str]:
    return [
        f"{indent}healthcheck:",
        f"{indent}  test: {test}",
        f"{indent}  interval: {interval}",
        f"{indent}  timeout: 5s",
        f"{indent}  retries: 5",
        f"{indent}  start_period: 20s",
    ]


def compose_file(s: Service, rel: str) -> str:
    rng = s.rng
    has_redis = "redis" in s.extras
    image_tag = "latest" if s.bad("compose.latest_tag", rel) else s.version
    image = f"registry.example.com/{s.team}/{s.name}:{image_tag}"
    db_url = (
        "postgres://app:${POSTGRES_PASSWORD}@db:5432/app"
        if s.db == "postgres"
        else "mysql://app:${MYSQL_PASSWORD}@db:3306/app"
    )
    lines = [
        f"# {s.name}: local and CI stack ({s.lang}, {s.db})",
        "name: " + s.name,
        "",
        "x-logging: &logging",
        "  driver: json-file",
        "  options:",
        '    max-size: "10m"',
        f'    max-file: "{rng.choice((3, 5, 10))}"',
        "",
        "x-app-defaults: &app-defaults",
        f"  image: {image}",
        "  restart: unless-stopped",
        "  env_file:",
        "    - .env",
        "  logging: *logging",
        "",
        "services:",
        "  app:",
        "    <<: *app-defaults",
        "    build:",
        "      context: .",
        "      dockerfile: Dockerfile",
        "      args:",
        f'        APP_VERSION: "{s.version}"',
    ]
    env = [
        ("APP_ENV", s.environment),
        ("DEBUG", "true" if s.bad("compose.debug_true", rel) else "false"),
        ("LOG_LEVEL", rng.choice(("info", "info", "warning", "debug"))),
        ("DATABASE_URL", db_url),
        ("PORT", str(s.port)),
    ]
    if has_redis:
        env.append(("REDIS_URL", "redis://:${REDIS_PASSWORD}@redis:6379/0"))
    if rng.random() < 0.5:
        env.append(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317"))
    lines += _env_block(env, s.env_style, "    ")
    published = "127.0.0.1:" if "nginx" in s.extras or rng.random() < 0.5 else ""
    lines += ["    ports:", f'      - "{published}{s.port}:{s.port}"']
    lines += ["    depends_on:", "      db:", "        condition: service_healthy"]
    if has_redis:
        lines += ["      redis:", "        condition: service_started"]
    lines += _healthcheck(f'["CMD", "curl", "-fsS", "http://localhost:{s.port}/healthz"]', "    ")
    if s.bad("compose.privileged", rel):
        lines.append("    privileged: true")
    else:
        lines += ["    security_opt:", "      - no-new-privileges:true"]
        if rng.random() < 0.4:
            lines += ["    read_only: true", "    tmpfs:", "      - /tmp"]
    volumes = ["./config:/app/config:ro"]
    if s.bad("compose.docker_socket", rel):
        volumes.append("/var/run/docker.sock:/var/run/docker.sock")
    lines += ["    volumes:"] + [f"      - {v}" for v in volumes]
    lines += ["    networks:", "      - backend"] + (
        ["      - frontend"] if "nginx" in s.extras else []
    )
    lines.append("")

    # database
    weak = s.bad("compose.inline_weak_db_password", rel)
    if s.db == "postgres":
        pw = "postgres" if weak else "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
        db_env = [("POSTGRES_DB", "app"), ("POSTGRES_USER", "app"), ("POSTGRES_PASSWORD", pw)]
        lines += [
            "  db:",
            f"    image: postgres:{rng.choice(('15.8', '16.4', '16.4-alpine', '17.0-alpine'))}",
            "    restart: unless-stopped",
        ]
        lines += _env_block(db_env, s.env_style, "    ")
        lines += ["    volumes:", "      - db-data:/var/lib/postgresql/data"]
        lines += _healthcheck('["CMD-SHELL", "pg_isready -U app -d app"]', "    ", "10s")
    else:
        pw = "root" if weak else "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set}"
        db_env = [
            ("MYSQL_DATABASE", "app"),
            ("MYSQL_USER", "app"),
            ("MYSQL_PASSWORD", "${MYSQL_PASSWORD}"),
            ("MYSQL_ROOT_PASSWORD", pw),
        ]
        lines += [
            "  db:",
            f"    image: mysql:{rng.choice(('8.0.39', '8.4', '8.4.2'))}",
            "    command: --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci",
            "    restart: unless-stopped",
        ]
        lines += _env_block(db_env, s.env_style, "    ")
        lines += ["    volumes:", "      - db-data:/var/lib/mysql"]
        lines += _healthcheck(
            '["CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"]', "    ", "10s"
        )
    if s.bad("compose.db_port_published", rel):
        lines += ["    ports:", f'      - "{s.db_port}:{s.db_port}"']
    else:
        lines += ["    expose:", f'      - "{s.db_port}"']
    lines += [
        "    networks:",
        "      - backend",
        "    logging:",
        "      <<: *logging",
        "      options:",
        '        max-size: "50m"',
        "",
    ]

    if has_redis:
        lines += [
            "  redis:",
            f"    image: redis:{rng.choice(('7.2-alpine', '7.4-alpine', '7.4.1'))}",
            '    command: ["redis-server", "--appendonly", "yes", "--requirepass", '
            '"${REDIS_PASSWORD}"]',
            "    restart: unless-stopped",
            "    volumes:",
            "      - redis-data:/data",
        ]
        lines += _healthcheck('["CMD", "redis-cli", "--no-auth-warning", "ping"]', "    ", "10s")
        lines += ["    networks:", "      - backend", "    logging: *logging", ""]

    commands = {
        "python": ("celery -A app worker --loglevel=info", "celery -A app beat --loglevel=info"),
        "node": ('["node", "dist/worker.js"]', '["node", "dist/scheduler.js"]'),
        "go": ('["/app/server", "worker"]', '["/app/server", "scheduler"]'),
        "java": (
            '["java", "-jar", "/app/app.jar", "--spring.profiles.active=worker"]',
            '["java", "-jar", "/app/app.jar", "--spring.profiles.active=scheduler"]',
        ),
    }[s.lang]
    for role, command in (("worker", commands[0]), ("scheduler", commands[1])):
        if role not in s.extras:
            continue
        lines += [f"  {role}:", "    <<: *app-defaults", f"    command: {command}"]
        lines += _env_block(env[:4], s.env_style, "    ")
        lines += ["    depends_on:", "      - db"] + (["      - redis"] if has_redis else [])
        if role == "worker":
            lines += [
                "    deploy:",
                f"      replicas: {rng.randint(1, 4)}",
                "      resources:",
                "        limits:",
                f'          cpus: "{rng.choice(("0.50", "1.0", "2.0"))}"',
                f"          memory: {rng.choice(('256M', '512M', '1G'))}",
            ]
        lines += ["    networks:", "      - backend", ""]

    if "nginx" in s.extras:
        lines += [
            "  nginx:",
            f"    image: nginx:{rng.choice(('1.26-alpine', '1.27-alpine', '1.27.2'))}",
            "    restart: unless-stopped",
            "    ports:",
            '      - "80:80"',
            '      - "443:443"',
            "    volumes:",
            "      - ./nginx/nginx.conf:/etc/nginx/nginx.conf:ro",
            "      - ./nginx/conf.d:/etc/nginx/conf.d:ro",
            "      - ./nginx/snippets:/etc/nginx/snippets:ro",
            "      - certs:/etc/nginx/certs:ro",
            "    depends_on:",
            "      app:",
            "        condition: service_healthy",
        ]
        lines += _healthcheck('["CMD", "wget", "-qO-", "http://127.0.0.1/healthz"]', "    ")
        lines += ["    networks:", "      - frontend", "    logging: *logging", ""]

    lines += ["volumes:", "  db-data:"]
    if has_redis:
        lines.append("  redis-data:")
    if "nginx" in s.extras:
        lines.append("  certs:")
    lines += ["", "networks:", "  backend:", "    internal: true"]
    if "nginx" in s.extras:
        lines.append("  frontend:")
    return "\n".join(lines) + "\n"


def compose_prod_file(s: Service, rel: str) -> str:
    rng = s.rng
    lines = [
        "# Production overrides: docker compose -f docker-compose.yml -f docker-compose.prod.yml",
        "services:",
        "  app:",
        f"    image: registry.example.com/{s.team}/{s.name}:${{APP_VERSION:-{s.version}}}",
        "    restart: always",
    ]
    lines += _env_block(
        [("APP_ENV", "production"), ("DEBUG", "false"), ("LOG_LEVEL", "warning")],
        s.env_style,
        "    ",
    )
    lines += [
        "    deploy:",
        f"      replicas: {rng.randint(2, 6)}",
        "      update_config:",
        "        parallelism: 1",
        "        delay: 10s",
        "        order: start-first",
        "      resources:",
        "        limits:",
        f'          cpus: "{rng.choice(("1.0", "2.0"))}"',
        f"          memory: {rng.choice(('512M', '1G', '2G'))}",
        "        reservations:",
        "          memory: 256M",
        "  db:",
        "    restart: always",
        "    deploy:",
        "      resources:",
        "        limits:",
        "          memory: 2G",
    ]
    if "worker" in s.extras:
        lines += ["  worker:", "    restart: always", "    deploy:", "      replicas: 4"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- env files


def env_file(s: Service, rel: str) -> str:
    rng = s.rng
    debug = "true" if s.bad("env.debug_true", rel) else "false"
    secret_key = "changeme" if s.bad("env.weak_secret_key", rel) else s.secret(50)
    db_pw = "password" if s.bad("env.weak_db_password", rel) else s.secret(24)
    lines = [
        f"# {s.name} runtime configuration ({s.environment})",
        f"APP_ENV={s.environment}",
        f"DEBUG={debug}",
        "LOG_LEVEL=info",
        f"SECRET_KEY={secret_key}",
        f"ALLOWED_HOSTS={s.domain},localhost",
        "",
        "# database",
    ]
    if s.db == "postgres":
        lines += [
            "POSTGRES_DB=app",
            "POSTGRES_USER=app",
            f"POSTGRES_PASSWORD={db_pw}",
            'DATABASE_URL="postgres://app:${POSTGRES_PASSWORD}@db:5432/app"',
        ]
    else:
        lines += [
            "MYSQL_DATABASE=app",
            "MYSQL_USER=app",
            f"MYSQL_PASSWORD={db_pw}",
            f"MYSQL_ROOT_PASSWORD={s.secret(24)}",
        ]
    if "redis" in s.extras:
        lines += [
            "",
            f"REDIS_PASSWORD={s.secret(32)}",
            "REDIS_URL=redis://:${REDIS_PASSWORD}@redis:6379/0",
        ]
    if rng.random() < 0.5:
        lines.append(
            f"export SENTRY_DSN=https://{s.hexid(32)}@o{rng.randint(1000, 99999)}"
            f".ingest.sentry.io/{rng.randint(1000, 9999999)}"
        )
    if rng.random() < 0.6:
        lines += [
            "",
            "SMTP_HOST=smtp.example.com",
            "SMTP_PORT=587",
            f"SMTP_USER={s.name}@example.com",
        ]
    lines.append(f"FEATURE_FLAGS='{','.join(rng.sample(FEATURE_FLAGS, 2))}'")
    return "\n".join(lines) + "\n"


def env_example_file(s: Service) -> str:
    lines = [
        f"# Copy to .env and fill in. {s.name} will not start without the required values.",
        "APP_ENV=development",
        "DEBUG=false",
        "LOG_LEVEL=info",
        "# required: 50 random characters",
        "SECRET_KEY=",
        "ALLOWED_HOSTS=localhost",
        "",
    ]
    if s.db == "postgres":
        lines += [
            "POSTGRES_DB=app",
            "POSTGRES_USER=app",
            "POSTGRES_PASSWORD=",
            'DATABASE_URL="postgres://app:${POSTGRES_PASSWORD}@db:5432/app"',
        ]
    else:
        lines += ["MYSQL_DATABASE=app", "MYSQL_USER=app", "MYSQL_PASSWORD=", "MYSQL_ROOT_PASSWORD="]
    if "redis" in s.extras:
        lines += ["REDIS_PASSWORD=", "REDIS_URL=redis://:${REDIS_PASSWORD}@redis:6379/0"]
    lines += ["# optional", "SENTRY_DSN=", "SMTP_HOST=smtp.example.com", "SMTP_PORT=587"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Dockerfile


def dockerfile(s: Service, rel: str) -> str:
    rng = s.rng
    heredoc = rng.random() < 0.35
    multi = s.lang in ("go", "java") or rng.random() < 0.5
    root = s.bad("dockerfile.runs_as_root", rel)
    latest = s.bad("dockerfile.latest_base_image", rel)
    lines = ["# syntax=docker/dockerfile:1.7"] if heredoc or rng.random() < 0.5 else []
    lines.append(f"# {s.name} ({s.lang}) image")

    def install(pkgs: str, alpine: bool = False) -> list[str]:
        if alpine:
            return [f"RUN apk add --no-cache {pkgs}"]
        if heredoc:
            return [
                "RUN <<EOF",
                "set -eux",
                "apt-get update",
                f"apt-get install -y --no-install-recommends {pkgs}",
                "rm -rf /var/lib/apt/lists/*",
                "EOF",
            ]
        return [
            "RUN apt-get update \\",
            f"    && apt-get install -y --no-install-recommends {pkgs} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]

    user_lines = (
        []
        if root
        else (
            [
                "RUN <<EOF",
                "groupadd --system --gid 10001 app",
                "useradd --system --uid 10001 --gid app --no-create-home app",
                "EOF",
                "USER app",
            ]
            if heredoc
            else [
                "RUN groupadd --system --gid 10001 app"
                " && useradd --system --uid 10001 --gid app app",
                "USER 10001:10001",
            ]
        )
    )
    extras: list[str] = []
    if s.bad("dockerfile.curl_pipe_sh", rel):
        extras.append("RUN curl -fsSL https://install.example.com/agent/install.sh | sh")
    if s.bad("dockerfile.add_remote_url", rel):
        extras.append(
            "ADD https://github.com/example/tools/releases/download/v1.2.3/tool.tar.gz /opt/"
        )
    if s.bad("dockerfile.secret_in_env", rel):
        extras.append(
            f"ENV AWS_ACCESS_KEY_ID=AKIA{s.secret(16).upper()} AWS_SECRET_ACCESS_KEY={s.secret(40)}"
        )
    health = (
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=20s"
        f" CMD curl -fsS http://localhost:{s.port}/healthz || exit 1"
    )

    if s.lang == "python":
        base = (
            "python:latest"
            if latest
            else f"python:{rng.choice(('3.11', '3.12', '3.13'))}-slim-bookworm"
        )
        env = [
            "ENV PYTHONDONTWRITEBYTECODE=1 \\",
            "    PYTHONUNBUFFERED=1 \\",
            "    PIP_NO_CACHE_DIR=1 \\",
            "    PIP_DISABLE_PIP_VERSION_CHECK=1",
        ]
        if multi:
            lines += [
                f"FROM {base} AS builder",
                "WORKDIR /build",
                *install("build-essential libpq-dev"),
                "COPY requirements.txt .",
                "RUN --mount=type=cache,target=/root/.cache/pip"
                " pip wheel --wheel-dir /wheels -r requirements.txt",
                "",
                f"FROM {base} AS runtime",
                *env,
                "WORKDIR /app",
                *install("curl libpq5"),
                "COPY --from=builder /wheels /wheels",
                "RUN pip install --no-index --find-links=/wheels /wheels/* && rm -rf /wheels",
            ]
        else:
            lines += [
                f"FROM {base}",
                *env,
                "WORKDIR /app",
                *install("curl libpq5"),
                "COPY requirements.txt .",
                "RUN pip install -r requirements.txt",
            ]
        lines += [
            *extras,
            "COPY . .",
            *user_lines,
            f"EXPOSE {s.port}",
            health,
            f'CMD ["gunicorn", "app.wsgi:application", "--bind", "0.0.0.0:{s.port}",'
            f' "--workers", "{rng.randint(2, 8)}", "--access-logfile", "-"]',
        ]
    elif s.lang == "node":
        base = "node:latest" if latest else f"node:{rng.choice(('18', '20', '22'))}-bookworm-slim"
        if multi:
            lines += [
                f"FROM {base} AS deps",
                "WORKDIR /app",
                "COPY package.json package-lock.json ./",
                "RUN --mount=type=cache,target=/root/.npm npm ci",
                "",
                f"FROM {base} AS build",
                "WORKDIR /app",
                "COPY --from=deps /app/node_modules ./node_modules",
                "COPY . .",
                "RUN npm run build && npm prune --omit=dev",
                "",
                f"FROM {base}",
                "ENV NODE_ENV=production",
                "WORKDIR /app",
                *install("curl tini"),
                "COPY --from=build /app/node_modules ./node_modules",
                "COPY --from=build /app/dist ./dist",
                "COPY package.json ./",
            ]
        else:
            lines += [
                f"FROM {base}",
                "ENV NODE_ENV=production",
                "WORKDIR /app",
                *install("curl tini"),
                "COPY package.json package-lock.json ./",
                "RUN npm ci --omit=dev",
                "COPY . .",
            ]
        node_user = [] if root else ["USER node"]
        lines += [
            *extras,
            *node_user,
            f"EXPOSE {s.port}",
            health,
            'ENTRYPOINT ["/usr/bin/tini", "--"]',
            'CMD ["node", "dist/server.js"]',
        ]
    elif s.lang == "go":
        builder = "golang:latest" if latest else f"golang:{rng.choice(('1.22', '1.23'))}-bookworm"
        lines += [
            f"FROM {builder} AS build",
            "WORKDIR /src",
            "COPY go.mod go.sum ./",
            "RUN --mount=type=cache,target=/go/pkg/mod go mod download",
            "COPY . .",
            "RUN --mount=type=cache,target=/root/.cache/go-build CGO_ENABLED=0 go build -trimpath"
            f' -ldflags="-s -w -X main.version={s.version}" -o /out/server ./cmd/server',
            "",
        ]
        if root:
            lines += [
                "FROM alpine:3.20",
                *install("ca-certificates curl", alpine=True),
                *extras,
                "COPY --from=build /out/server /app/server",
            ]
        else:
            lines += [
                "FROM gcr.io/distroless/static-debian12:nonroot",
                *extras,
                "COPY --from=build /out/server /app/server",
                "USER nonroot:nonroot",
            ]
        lines += [f"EXPOSE {s.port}", 'ENTRYPOINT ["/app/server"]', 'CMD ["serve"]']
    else:
        jdk = (
            "eclipse-temurin:latest"
            if latest
            else f"eclipse-temurin:{rng.choice(('17', '21'))}-jdk-jammy"
        )
        lines += [
            f"FROM {jdk} AS build",
            "WORKDIR /workspace",
            "COPY gradlew settings.gradle.kts build.gradle.kts ./",
            "COPY gradle gradle",
            "RUN --mount=type=cache,target=/root/.gradle ./gradlew dependencies --no-daemon",
            "COPY src src",
            "RUN --mount=type=cache,target=/root/.gradle ./gradlew bootJar --no-daemon -x test",
            "",
            f"FROM eclipse-temurin:{rng.choice(('17', '21'))}-jre-jammy",
            "WORKDIR /app",
            *install("curl"),
            *extras,
            "COPY --from=build /workspace/build/libs/*.jar /app/app.jar",
            *user_lines,
            f"EXPOSE {s.port}",
            health,
            'ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-jar", "/app/app.jar"]',
        ]
    if heredoc and rng.random() < 0.5:
        lines[-1:-1] = [
            "COPY <<EOF /etc/app/build-info.json",
            f'{{"service": "{s.name}", "version": "{s.version}"}}',
            "EOF",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- nginx


def nginx_conf(s: Service, rel: str) -> str:
    tokens = "on" if s.bad("nginx.server_tokens_on", rel) else "off"
    return f"""user nginx;
worker_processes auto;
worker_rlimit_nofile 65535;
error_log /var/log/nginx/error.log warn;
pid /var/run/nginx.pid;

events {{
    worker_connections {s.rng.choice((1024, 2048, 4096))};
    multi_accept on;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for" rt=$request_time';
    access_log /var/log/nginx/access.log main;

    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    types_hash_max_size 2048;
    server_tokens {tokens};
    client_max_body_size {s.rng.choice(("1m", "10m", "25m", "100m"))};

    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 5;
    gzip_types text/plain text/css application/json application/javascript
               text/xml application/xml image/svg+xml;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    include /etc/nginx/conf.d/*.conf;
}}
"""


def nginx_site(s: Service, rel: str) -> str:
    rng = s.rng
    protocols = (
        "TLSv1 TLSv1.1 TLSv1.2" if s.bad("nginx.weak_tls_protocols", rel) else "TLSv1.2 TLSv1.3"
    )
    hsts = (
        ""
        if s.bad("nginx.missing_hsts", rel)
        else (
            "    add_header Strict-Transport-Security"
            ' "max-age=63072000; includeSubDomains; preload" always;\n'
        )
    )
    autoindex = "        autoindex on;\n" if s.bad("nginx.autoindex_on", rel) else ""
    upstream = "app" if "nginx" in s.extras else "127.0.0.1"
    return f"""# {s.name}: public site
upstream app_backend {{
    server {upstream}:{s.port} max_fails=3 fail_timeout=10s;
    keepalive 32;
}}

server {{
    listen 80;
    listen [::]:80;
    server_name {s.domain} www.{s.domain};

    location /.well-known/acme-challenge/ {{
        root /var/www/certbot;
    }}

    location / {{
        return 301 https://$host$request_uri;
    }}
}}

server {{
    listen 443 ssl;
    listen [::]:443 ssl;
    http2 on;
    server_name {s.domain};

    ssl_certificate /etc/nginx/certs/{s.domain}/fullchain.pem;
    ssl_certificate_key /etc/nginx/certs/{s.domain}/privkey.pem;
    ssl_protocols {protocols};
    ssl_prefer_server_ciphers off;
    ssl_session_timeout 1d;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets off;
{hsts}    include /etc/nginx/snippets/security-headers.conf;

    location / {{
        proxy_pass http://app_backend;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout {rng.choice((30, 60, 120))}s;
    }}

    location /static/ {{
        alias /var/www/static/;
{autoindex}        expires 30d;
        add_header Cache-Control "public, immutable";
    }}

    location = /healthz {{
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }}

    location /admin/ {{
        allow 10.0.0.0/8;
        allow 192.168.0.0/16;
        deny all;
        proxy_pass http://app_backend;
    }}
}}
"""


def nginx_status() -> str:
    return """server {
    listen 127.0.0.1:8081;
    server_name localhost;

    location = /nginx_status {
        stub_status;
        allow 127.0.0.1;
        deny all;
    }
}
"""


def nginx_ratelimit(s: Service) -> str:
    rate = s.rng.choice((5, 10, 20, 50))
    return f"""# Rate limiting zones, included at http level
limit_req_zone $binary_remote_addr zone=api:10m rate={rate}r/s;
limit_conn_zone $binary_remote_addr zone=addr:10m;
limit_req_status 429;

server {{
    listen 8443 ssl;
    server_name api.{s.domain};
    ssl_certificate /etc/nginx/certs/{s.domain}/fullchain.pem;
    ssl_certificate_key /etc/nginx/certs/{s.domain}/privkey.pem;
    include /etc/nginx/snippets/security-headers.conf;

    location /api/ {{
        limit_req zone=api burst={rate * 2} nodelay;
        limit_conn addr 20;
        proxy_pass http://app_backend;
    }}
}}
"""


def nginx_snippet(s: Service) -> str:
    return f"""# Shared security headers; include inside server blocks.
add_header X-Frame-Options "SAMEORIGIN" always;
add_header X-Content-Type-Options "nosniff" always;
add_header Referrer-Policy "strict-origin-when-cross-origin" always;
add_header Permissions-Policy "geolocation=(), microphone=(), camera=()" always;
add_header Content-Security-Policy
    "default-src 'self'; img-src 'self' data:; connect-src 'self' https://{s.domain}" always;
"""


# --------------------------------------------------------------------------- terraform


def tf_versions(s: Service) -> str:
    return f"""terraform {{
  required_version = ">= 1.5.7"

  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = ">= 5.46"
    }}
    random = {{
      source  = "hashicorp/random"
      version = ">= 3.6"
    }}
  }}

  backend "s3" {{
    bucket         = "acme-terraform-state"
    key            = "services/{s.name}/terraform.tfstate"
    region         = "{s.region}"
    encrypt        = true
    dynamodb_table = "terraform-locks"
  }}
}}

provider "aws" {{
  region = var.region

  default_tags {{
    tags = local.tags
  }}
}}
"""


def tf_main(s: Service, rel: str) -> str:
    rng = s.rng
    engine = s.db
    engine_version = (
        rng.choice(("15.7", "16.3", "16.4"))
        if engine == "postgres"
        else rng.choice(("8.0.36", "8.0.39"))
    )
    logs_export = '["postgresql", "upgrade"]' if engine == "postgres" else '["error", "slowquery"]'
    backup = "var.backup_retention_period"
    # Planted either as a literal here or (in tf_tfvars) as the variable's value.
    if "terraform.db_backup_retention_1" in s.insecure and rng.random() < 0.5:
        s.bad("terraform.db_backup_retention_1", rel)
        s.backup_literal = True
        backup = "1"
    public = "true" if s.bad("terraform.db_publicly_accessible", rel) else "false"
    encrypted = "false" if s.bad("terraform.db_unencrypted", rel) else "true"
    block = "false" if s.bad("terraform.s3_public_access_allowed", rel) else "true"
    rotation = "false" if s.bad("terraform.kms_rotation_disabled", rel) else "true"
    ssl_policy = (
        "ELBSecurityPolicy-2016-08"
        if s.bad("terraform.alb_weak_tls_policy", rel)
        else "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    retention = (
        ""
        if s.bad("terraform.log_group_no_retention", rel)
        else "  retention_in_days = var.log_retention_days\n"
    )
    ssh_cidr = '["0.0.0.0/0"]' if s.bad("terraform.sg_ssh_open_world", rel) else "var.admin_cidrs"
    if s.bad("terraform.alb_http_forward", rel):
        http_action = """  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }"""
    else:
        http_action = """  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }"""
    log_groups = ", ".join(f'"{g}"' for g in ["app", *[e for e in s.extras if e != "redis"]])
    bucket_suffix = s.hexid(8)

    parts = [
        f"""locals {{
  name    = "${{var.project}}-${{var.environment}}"
  service = "{s.name}"
  azs     = slice(data.aws_availability_zones.available.names, 0, 3)
  db_port = {s.db_port}

  tags = merge(var.tags, {{
    Service     = local.service
    Environment = var.environment
    Team        = "{s.team}"
    ManagedBy   = "terraform"
  }})

  log_groups = toset([{log_groups}])
}}

data "aws_availability_zones" "available" {{
  state = "available"
}}

data "aws_caller_identity" "current" {{}}

################################################################################
# Network
################################################################################

module "vpc" {{
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.13"

  name = local.name
  cidr = var.vpc_cidr

  azs              = local.azs
  private_subnets  = [for k, v in local.azs : cidrsubnet(var.vpc_cidr, 4, k)]
  public_subnets   = [for k, v in local.azs : cidrsubnet(var.vpc_cidr, 8, k + 48)]
  database_subnets = [for k, v in local.azs : cidrsubnet(var.vpc_cidr, 8, k + 52)]

  create_database_subnet_group = true
  enable_nat_gateway           = true
  single_nat_gateway           = var.environment != "production"
  enable_dns_hostnames         = true

  tags = local.tags
}}

resource "aws_kms_key" "this" {{
  description             = "${{local.name}} data encryption"
  deletion_window_in_days = {rng.choice((7, 14, 30))}
  enable_key_rotation     = {rotation}
}}

resource "aws_kms_alias" "this" {{
  name          = "alias/${{local.name}}"
  target_key_id = aws_kms_key.this.key_id
}}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "alb" {{
  name_prefix = "${{local.name}}-alb-"
  description = "Public load balancer for ${{local.name}}"
  vpc_id      = module.vpc.vpc_id

  dynamic "ingress" {{
    for_each = var.alb_ingress_ports
    content {{
      description = "HTTP(S) ${{ingress.value}}"
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = ["0.0.0.0/0"]
    }}
  }}

  egress {{
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }}

  lifecycle {{
    create_before_destroy = true
  }}

  tags = local.tags
}}

resource "aws_security_group" "db" {{
  name_prefix = "${{local.name}}-db-"
  description = "Database access for ${{local.name}}"
  vpc_id      = module.vpc.vpc_id
  tags        = local.tags
}}

resource "aws_vpc_security_group_ingress_rule" "db" {{
  for_each = toset(var.db_ingress_cidrs)

  security_group_id = aws_security_group.db.id
  description       = "{engine} from ${{each.value}}"
  cidr_ipv4         = each.value
  from_port         = local.db_port
  to_port           = local.db_port
  ip_protocol       = "tcp"
}}

resource "aws_security_group_rule" "bastion_ssh" {{
  count = var.enable_bastion ? 1 : 0

  type              = "ingress"
  description       = "SSH to bastion"
  security_group_id = aws_security_group.alb.id
  from_port         = 22
  to_port           = 22
  protocol          = "tcp"
  cidr_blocks       = {ssh_cidr}
}}

################################################################################
# Database
################################################################################

resource "aws_db_instance" "this" {{
  identifier     = "${{local.name}}-db"
  engine         = "{engine}"
  engine_version = "{engine_version}"
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_allocated_storage * 4
  storage_type          = "gp3"
  storage_encrypted     = {encrypted}
  kms_key_id            = {"aws_kms_key.this.arn" if encrypted == "true" else "null"}

  db_name  = "app"
  username = var.db_username
  password = var.db_password
  port     = local.db_port

  multi_az               = var.environment == "production"
  db_subnet_group_name   = module.vpc.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = {public}

  backup_retention_period   = {backup}
  backup_window             = "03:00-04:00"
  maintenance_window        = "Mon:04:30-Mon:05:30"
  deletion_protection       = var.environment == "production"
  skip_final_snapshot       = false
  final_snapshot_identifier = "${{local.name}}-final"
  copy_tags_to_snapshot     = true

  performance_insights_enabled    = true
  enabled_cloudwatch_logs_exports = {logs_export}

  tags = local.tags
}}

resource "aws_db_instance" "replica" {{
  count = var.create_read_replica ? {rng.randint(1, 2)} : 0

  identifier          = "${{local.name}}-db-replica-${{count.index}}"
  replicate_source_db = aws_db_instance.this.identifier
  instance_class      = var.db_instance_class
  storage_encrypted   = {encrypted}
  publicly_accessible = false
  skip_final_snapshot = true

  tags = merge(local.tags, {{ Role = "replica" }})
}}

################################################################################
# Storage
################################################################################

resource "aws_s3_bucket" "assets" {{
  bucket        = "${{local.name}}-assets-{bucket_suffix}"
  force_destroy = false
  tags          = local.tags
}}

resource "aws_s3_bucket_versioning" "assets" {{
  bucket = aws_s3_bucket.assets.id

  versioning_configuration {{
    status = "Enabled"
  }}
}}

resource "aws_s3_bucket_server_side_encryption_configuration" "assets" {{
  bucket = aws_s3_bucket.assets.id

  rule {{
    apply_server_side_encryption_by_default {{
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }}
    bucket_key_enabled = true
  }}
}}

resource "aws_s3_bucket_public_access_block" "assets" {{
  bucket = aws_s3_bucket.assets.id

  block_public_acls       = {block}
  block_public_policy     = {block}
  ignore_public_acls      = {block}
  restrict_public_buckets = {block}
}}

resource "aws_s3_bucket_lifecycle_configuration" "assets" {{
  bucket = aws_s3_bucket.assets.id

  rule {{
    id     = "expire-noncurrent"
    status = "Enabled"

    filter {{}}

    noncurrent_version_expiration {{
      noncurrent_days = {rng.choice((30, 90, 180))}
    }}

    abort_incomplete_multipart_upload {{
      days_after_initiation = 7
    }}
  }}
}}

resource "aws_s3_bucket_policy" "assets" {{
  bucket = aws_s3_bucket.assets.id
  policy = <<-EOT
    {{
      "Version": "2012-10-17",
      "Statement": [
        {{
          "Sid": "DenyInsecureTransport",
          "Effect": "Deny",
          "Principal": "*",
          "Action": "s3:*",
          "Resource": [
            "${{aws_s3_bucket.assets.arn}}",
            "${{aws_s3_bucket.assets.arn}}/*"
          ],
          "Condition": {{ "Bool": {{ "aws:SecureTransport": "false" }} }}
        }}
      ]
    }}
  EOT
}}

################################################################################
# Load balancer
################################################################################

resource "aws_lb" "this" {{
  name               = substr("${{local.name}}-alb", 0, 32)
  internal           = false
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = module.vpc.public_subnets

  drop_invalid_header_fields = true
  enable_deletion_protection = var.environment == "production"
  idle_timeout               = {rng.choice((60, 120, 300))}

  access_logs {{
    bucket  = aws_s3_bucket.assets.id
    prefix  = "alb"
    enabled = true
  }}

  tags = local.tags
}}

resource "aws_lb_target_group" "app" {{
  name_prefix = "app-"
  port        = {s.port}
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = module.vpc.vpc_id

  health_check {{
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }}

  tags = local.tags
}}

resource "aws_lb_listener" "http" {{
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

{http_action}
}}

resource "aws_lb_listener" "https" {{
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "{ssl_policy}"
  certificate_arn   = var.certificate_arn

  default_action {{
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }}
}}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {{
  for_each = local.log_groups

  name              = "/ecs/${{local.name}}/${{each.key}}"
{retention}  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}}
"""
    ]
    if "redis" in s.extras:
        parts.append(f"""
module "redis" {{
  source  = "terraform-aws-modules/elasticache/aws"
  version = "~> 1.2"

  replication_group_id       = "${{local.name}}-redis"
  engine_version             = "7.1"
  node_type                  = "{rng.choice(CACHE_NODE_TYPES)}"
  num_cache_clusters         = var.environment == "production" ? 2 : 1
  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  kms_key_arn                = aws_kms_key.this.arn

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets
  security_group_rules = {{
    ingress_vpc = {{
      description = "VPC traffic"
      cidr_ipv4   = var.vpc_cidr
    }}
  }}

  tags = local.tags
}}
""")
    if rng.random() < 0.4:
        parts.append(f"""
resource "aws_instance" "bastion" {{
  count = var.enable_bastion ? 1 : 0

  ami                    = "ami-{s.hexid(17)}"
  instance_type          = "t3.micro"
  subnet_id              = module.vpc.public_subnets[0]
  vpc_security_group_ids = [aws_security_group.alb.id]

  metadata_options {{
    http_tokens   = "required"
    http_endpoint = "enabled"
  }}

  root_block_device {{
    encrypted   = true
    volume_size = 20
  }}

  user_data = <<-EOF
    #!/bin/bash
    set -euo pipefail
    dnf -y update
    dnf -y install amazon-ssm-agent postgresql16
    systemctl enable --now amazon-ssm-agent
  EOF

  tags = merge(local.tags, {{ Name = "${{local.name}}-bastion" }})
}}
""")
    return "".join(parts)


def tf_ecs(s: Service) -> str:
    rng = s.rng
    cpu, memory = rng.choice(((256, 512), (512, 1024), (1024, 2048), (2048, 4096)))
    arch = rng.choice(("ARM64", "X86_64"))
    workers = [e for e in s.extras if e in ("worker", "scheduler")]
    parts = [
        f"""locals {{
  app_environment = {{
    APP_ENV       = var.environment
    LOG_LEVEL     = "info"
    PORT          = "{s.port}"
    DB_HOST       = aws_db_instance.this.address
    DB_NAME       = "app"
    ASSETS_BUCKET = aws_s3_bucket.assets.id
  }}

  container_defaults = {{
    essential              = true
    readonlyRootFilesystem = true
    linuxParameters        = {{ initProcessEnabled = true }}
    secrets = [
      {{ name = "DB_PASSWORD", valueFrom = "${{aws_secretsmanager_secret.db.arn}}:password::" }},
      {{ name = "SECRET_KEY", valueFrom = aws_secretsmanager_secret.app.arn }},
    ]
  }}
}}

resource "aws_ecs_cluster" "this" {{
  name = local.name

  setting {{
    name  = "containerInsights"
    value = "enabled"
  }}

  tags = local.tags
}}

resource "aws_security_group" "app" {{
  name_prefix = "${{local.name}}-app-"
  description = "ECS tasks of ${{local.name}}"
  vpc_id      = module.vpc.vpc_id

  ingress {{
    description     = "From the load balancer"
    from_port       = {s.port}
    to_port         = {s.port}
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }}

  egress {{
    description = "All outbound"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }}

  tags = local.tags
}}

resource "aws_ecs_task_definition" "app" {{
  family                   = "${{local.name}}-app"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = {cpu}
  memory                   = {memory}
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {{
    operating_system_family = "LINUX"
    cpu_architecture        = "{arch}"
  }}

  container_definitions = jsonencode([
    merge(local.container_defaults, {{
      name  = "app"
      image = "${{var.image_repository}}:${{var.image_tag}}"
      portMappings = [
        {{ containerPort = {s.port}, protocol = "tcp" }}
      ]
      environment = [for k, v in local.app_environment : {{ name = k, value = v }}]
      healthCheck = {{
        command  = ["CMD-SHELL", "curl -fsS http://localhost:{s.port}/healthz || exit 1"]
        interval = 30
        timeout  = 5
        retries  = 3
      }}
      logConfiguration = {{
        logDriver = "awslogs"
        options = {{
          awslogs-group         = aws_cloudwatch_log_group.this["app"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "app"
        }}
      }}
    }})
  ])

  tags = local.tags
}}

resource "aws_ecs_service" "app" {{
  name                   = "app"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.app.arn
  desired_count          = var.environment == "production" ? {rng.randint(2, 6)} : 1
  launch_type            = "FARGATE"
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {{
    subnets          = module.vpc.private_subnets
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }}

  load_balancer {{
    target_group_arn = aws_lb_target_group.app.arn
    container_name   = "app"
    container_port   = {s.port}
  }}

  deployment_circuit_breaker {{
    enable   = true
    rollback = true
  }}

  lifecycle {{
    ignore_changes = [desired_count]
  }}

  depends_on = [aws_lb_listener.https]
}}

resource "aws_appautoscaling_target" "app" {{
  service_namespace  = "ecs"
  resource_id        = "service/${{aws_ecs_cluster.this.name}}/${{aws_ecs_service.app.name}}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.environment == "production" ? 2 : 1
  max_capacity       = {rng.choice((4, 8, 12, 20))}
}}

resource "aws_appautoscaling_policy" "app_cpu" {{
  name               = "${{local.name}}-app-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app.service_namespace
  resource_id        = aws_appautoscaling_target.app.resource_id
  scalable_dimension = aws_appautoscaling_target.app.scalable_dimension

  target_tracking_scaling_policy_configuration {{
    target_value       = {rng.choice((50, 60, 70))}
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {{
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }}
  }}
}}
"""
    ]
    if workers:
        names = ", ".join(f'"{w}"' for w in workers)
        parts.append(f"""
resource "aws_ecs_task_definition" "background" {{
  for_each = toset([{names}])

  family                   = "${{local.name}}-${{each.key}}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = {cpu}
  memory                   = {memory}
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  container_definitions = jsonencode([
    merge(local.container_defaults, {{
      name        = each.key
      image       = "${{var.image_repository}}:${{var.image_tag}}"
      command     = ["run-${{each.key}}"]
      environment = [for k, v in local.app_environment : {{ name = k, value = v }}]
      logConfiguration = {{
        logDriver = "awslogs"
        options = {{
          awslogs-group         = aws_cloudwatch_log_group.this[each.key].name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }}
      }}
    }})
  ])

  tags = local.tags
}}

resource "aws_ecs_service" "background" {{
  for_each = aws_ecs_task_definition.background

  name            = each.key
  cluster         = aws_ecs_cluster.this.id
  task_definition = each.value.arn
  desired_count   = each.key == "scheduler" ? 1 : {rng.randint(1, 4)}
  launch_type     = "FARGATE"

  network_configuration {{
    subnets          = module.vpc.private_subnets
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }}
}}
""")
    return "".join(parts)


def tf_iam(s: Service, rel: str) -> str:
    if s.bad("terraform.iam_wildcard_policy", rel):
        statements = """      {
        Sid      = "Everything"
        Effect   = "Allow"
        Action   = "*"
        Resource = "*"
      },"""
    else:
        statements = """      {
        Sid      = "Assets"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${aws_s3_bucket.assets.arn}/*"]
      },
      {
        Sid      = "ListAssets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [aws_s3_bucket.assets.arn]
      },
      {
        Sid      = "Decrypt"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.this.arn]
      },"""
    return f"""data "aws_iam_policy_document" "ecs_assume" {{
  statement {{
    sid     = "EcsTasksAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {{
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }}

    condition {{
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }}
  }}
}}

resource "aws_iam_role" "execution" {{
  name_prefix        = "${{substr(local.name, 0, 20)}}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}}

resource "aws_iam_role_policy_attachment" "execution" {{
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}}

resource "aws_iam_role_policy" "execution_secrets" {{
  name = "read-secrets"
  role = aws_iam_role.execution.id

  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [aws_secretsmanager_secret.db.arn, aws_secretsmanager_secret.app.arn]
      }},
    ]
  }})
}}

resource "aws_iam_role" "task" {{
  name_prefix        = "${{substr(local.name, 0, 20)}}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}}

resource "aws_iam_policy" "task" {{
  name_prefix = "${{substr(local.name, 0, 20)}}-task-"
  description = "Runtime permissions of {s.name}"

  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
{statements}
    ]
  }})
}}

resource "aws_iam_role_policy_attachment" "task" {{
  role       = aws_iam_role.task.name
  policy_arn = aws_iam_policy.task.arn
}}

resource "aws_secretsmanager_secret" "db" {{
  name_prefix             = "${{local.name}}/db-"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}}

resource "aws_secretsmanager_secret_version" "db" {{
  secret_id = aws_secretsmanager_secret.db.id
  secret_string = jsonencode({{
    username = var.db_username
    password = var.db_password
    host     = aws_db_instance.this.address
    port     = local.db_port
  }})
}}

resource "aws_secretsmanager_secret" "app" {{
  name_prefix             = "${{local.name}}/app-"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}}
"""


def tf_monitoring(s: Service) -> str:
    period = s.rng.choice((60, 300))
    db_dim = "{ DBInstanceIdentifier = aws_db_instance.this.identifier }"
    lb_dim = "{ LoadBalancer = aws_lb.this.arn_suffix }"
    return f"""locals {{
  alarms = {{
    db_cpu = {{
      namespace  = "AWS/RDS"
      metric     = "CPUUtilization"
      statistic  = "Average"
      comparison = "GreaterThanThreshold"
      threshold  = var.alarm_thresholds.cpu_percent
      dimensions = {db_dim}
    }}
    db_free_storage = {{
      namespace  = "AWS/RDS"
      metric     = "FreeStorageSpace"
      statistic  = "Minimum"
      comparison = "LessThanThreshold"
      threshold  = var.alarm_thresholds.free_storage_gb * 1024 * 1024 * 1024
      dimensions = {db_dim}
    }}
    alb_5xx = {{
      namespace  = "AWS/ApplicationELB"
      metric     = "HTTPCode_Target_5XX_Count"
      statistic  = "Sum"
      comparison = "GreaterThanThreshold"
      threshold  = 10
      dimensions = {lb_dim}
    }}
    alb_latency = {{
      namespace  = "AWS/ApplicationELB"
      metric     = "TargetResponseTime"
      statistic  = "Maximum"
      comparison = "GreaterThanThreshold"
      threshold  = var.alarm_thresholds.latency_p99_ms / 1000
      dimensions = {lb_dim}
    }}
  }}
}}

resource "aws_sns_topic" "alerts" {{
  name              = "${{local.name}}-alerts"
  kms_master_key_id = aws_kms_key.this.id
  tags              = local.tags
}}

resource "aws_sns_topic_subscription" "email" {{
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}}

resource "aws_cloudwatch_metric_alarm" "this" {{
  for_each = local.alarms

  alarm_name          = "${{local.name}}-${{each.key}}"
  alarm_description   = "${{each.key}}: ${{each.value.metric}} vs ${{each.value.threshold}}"
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  period              = {period}
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  dimensions          = each.value.dimensions

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]
  tags          = local.tags
}}

resource "aws_cloudwatch_dashboard" "this" {{
  dashboard_name = local.name
  dashboard_body = <<-JSON
    {{
      "widgets": [
        {{
          "type": "metric",
          "width": 12,
          "height": 6,
          "properties": {{
            "title": "Requests",
            "region": "${{var.region}}",
            "metrics": [
              ["AWS/ApplicationELB", "RequestCount",
               "LoadBalancer", "${{aws_lb.this.arn_suffix}}"]
            ],
            "period": {period},
            "stat": "Sum"
          }}
        }},
        {{
          "type": "metric",
          "width": 12,
          "height": 6,
          "properties": {{
            "title": "Database CPU",
            "region": "${{var.region}}",
            "metrics": [
              ["AWS/RDS", "CPUUtilization",
               "DBInstanceIdentifier", "${{aws_db_instance.this.identifier}}"]
            ],
            "period": {period},
            "stat": "Average"
          }}
        }}
      ]
    }}
  JSON
}}
"""


def tf_variables(s: Service) -> str:
    return f"""variable "project" {{
  description = "Project name used as a prefix for every resource"
  type        = string
  default     = "{s.name}"
}}

variable "environment" {{
  description = "Deployment environment"
  type        = string

  validation {{
    condition     = contains(["staging", "production"], var.environment)
    error_message = "The environment must be staging or production."
  }}
}}

variable "region" {{
  description = "AWS region"
  type        = string
  default     = "{s.region}"
}}

variable "tags" {{
  description = "Extra tags merged into every resource"
  type        = map(string)
  default     = {{}}
}}

variable "vpc_cidr" {{
  description = "CIDR block of the service VPC"
  type        = string
  default     = "10.{s.cidr_octet}.0.0/16"
}}

variable "alb_ingress_ports" {{
  description = "Ports the public load balancer listens on"
  type        = set(number)
  default     = [80, 443]
}}

variable "admin_cidrs" {{
  description = "CIDR blocks allowed to reach the bastion over SSH"
  type        = list(string)
  default     = []
}}

variable "db_ingress_cidrs" {{
  description = "CIDR blocks allowed to connect to the database"
  type        = list(string)
  default     = []
}}

variable "db_instance_class" {{
  description = "RDS instance class"
  type        = string
  default     = "db.t4g.medium"
}}

variable "db_allocated_storage" {{
  description = "Initial storage in GiB"
  type        = number
  default     = 50

  validation {{
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 2000
    error_message = "Allocated storage must be between 20 and 2000 GiB."
  }}
}}

variable "db_username" {{
  description = "Master user name"
  type        = string
  default     = "app_admin"
}}

variable "db_password" {{
  description = "Master password; set through TF_VAR_db_password or a secrets manager"
  type        = string
  sensitive   = true
}}

variable "backup_retention_period" {{
  description = "Days to keep automated backups"
  type        = number
  default     = 7
}}

variable "create_read_replica" {{
  description = "Create read replicas of the primary database"
  type        = bool
  default     = false
}}

variable "enable_bastion" {{
  description = "Create an SSH bastion host"
  type        = bool
  default     = false
}}

variable "certificate_arn" {{
  description = "ACM certificate for the HTTPS listener"
  type        = string
}}

variable "log_retention_days" {{
  description = "CloudWatch log retention"
  type        = number
  default     = 90
}}

variable "alarm_thresholds" {{
  description = "Alarm thresholds per metric"
  type = object({{
    cpu_percent     = optional(number, 80)
    free_storage_gb = optional(number, 10)
    latency_p99_ms  = optional(number, 500)
  }})
  default = {{}}
}}

variable "alert_emails" {{
  description = "Addresses subscribed to the alarm topic"
  type        = list(string)
  default     = []
}}

variable "image_repository" {{
  description = "Container image repository"
  type        = string
  default     = "registry.example.com/{s.team}/{s.name}"
}}

variable "image_tag" {{
  description = "Container image tag to deploy"
  type        = string
  default     = "{s.version}"
}}
"""


def tf_outputs(s: Service) -> str:
    redis = (
        """
output "redis_primary_endpoint" {
  description = "Primary endpoint of the Redis replication group"
  value       = module.redis.replication_group_primary_endpoint_address
}
"""
        if "redis" in s.extras
        else ""
    )
    return f"""output "vpc_id" {{
  description = "ID of the service VPC"
  value       = module.vpc.vpc_id
}}

output "db_endpoint" {{
  description = "Connection endpoint of the primary database"
  value       = aws_db_instance.this.endpoint
}}

output "db_replica_endpoints" {{
  description = "Endpoints of the read replicas"
  value       = aws_db_instance.replica[*].endpoint
}}

output "db_password" {{
  description = "Master password (for the migration job)"
  value       = var.db_password
  sensitive   = true
}}

output "assets_bucket_arn" {{
  description = "ARN of the assets bucket"
  value       = aws_s3_bucket.assets.arn
}}

output "alb_dns_name" {{
  description = "Public DNS name of the load balancer"
  value       = aws_lb.this.dns_name
}}

output "log_group_names" {{
  description = "CloudWatch log groups by component"
  value       = {{ for k, g in aws_cloudwatch_log_group.this : k => g.name }}
}}
{redis}"""


def tf_tfvars(s: Service, rel: str) -> str:
    rng = s.rng
    planted_backup = not s.backup_literal and s.bad("terraform.db_backup_retention_1", rel)
    backup = 1 if planted_backup else rng.choice((7, 7, 14, 30))
    account = rng.randint(10**11, 10**12 - 1)
    cert_id = f"{s.hexid(8)}-{s.hexid(4)}-{s.hexid(4)}-{s.hexid(4)}-{s.hexid(12)}"
    db_cidrs = (
        '["0.0.0.0/0"]'
        if s.bad("terraform.db_ingress_open_world", rel)
        else f'["10.{s.cidr_octet}.0.0/16"]'
    )
    lines = [
        f'project     = "{s.name}"',
        f'environment = "{s.environment}"',
        f'region      = "{s.region}"',
        f'vpc_cidr    = "10.{s.cidr_octet}.0.0/16"',
        "",
        f'db_instance_class       = "{rng.choice(DB_INSTANCE_CLASSES)}"',
        f"db_allocated_storage    = {rng.choice((20, 50, 100, 200))}",
        f"backup_retention_period = {backup}",
        f"create_read_replica     = {str(s.environment == 'production').lower()}",
        f"db_ingress_cidrs        = {db_cidrs}",
    ]
    if s.bad("terraform.weak_db_password", rel):
        lines.append('db_password             = "password123"')
    lines += [
        "",
        f"enable_bastion = {str(rng.random() < 0.3).lower()}",
        f'admin_cidrs    = ["203.0.113.{rng.randint(0, 255)}/32"]',
        "",
        f'certificate_arn    = "arn:aws:acm:{s.region}:{account}:certificate/{cert_id}"',
        f"log_retention_days = {rng.choice((30, 90, 365))}",
        "",
        "tags = {",
        f'  Team       = "{s.team}"',
        f'  CostCenter = "cc-{rng.randint(1000, 9999)}"',
        "}",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- tree


def service_files(s: Service) -> dict[str, str]:
    """Return ``{relative path: text}`` for one service, relative to the monorepo root."""
    base = f"services/{s.name}"
    files: dict[str, str] = {}

    def rel(name: str) -> str:
        return f"{base}/{name}"

    files[rel("docker-compose.yml")] = compose_file(s, rel("docker-compose.yml"))
    if s.rng.random() < 0.4:
        files[rel("docker-compose.prod.yml")] = compose_prod_file(s, rel("docker-compose.prod.yml"))
    files[rel(".env")] = env_file(s, rel(".env"))
    files[rel(".env.example")] = env_example_file(s)
    files[rel("Dockerfile")] = dockerfile(s, rel("Dockerfile"))
    files[rel("nginx/nginx.conf")] = nginx_conf(s, rel("nginx/nginx.conf"))
    site = rel(f"nginx/conf.d/{s.rng.choice(('default', 'app', s.name))}.conf")
    files[site] = nginx_site(s, site)
    if s.rng.random() < 0.5:
        files[rel("nginx/conf.d/status.conf")] = nginx_status()
    if s.rng.random() < 0.3:
        files[rel("nginx/conf.d/ratelimit.conf")] = nginx_ratelimit(s)
    files[rel("nginx/snippets/security-headers.conf")] = nginx_snippet(s)
    tfvars = rel("terraform/terraform.tfvars")
    files[rel("terraform/main.tf")] = tf_main(s, rel("terraform/main.tf"))
    files[rel("terraform/variables.tf")] = tf_variables(s)
    files[rel("terraform/outputs.tf")] = tf_outputs(s)
    files[rel("terraform/versions.tf")] = tf_versions(s)
    files[rel("terraform/ecs.tf")] = tf_ecs(s)
    files[rel("terraform/iam.tf")] = tf_iam(s, rel("terraform/iam.tf"))
    if s.rng.random() < 0.7:
        files[rel("terraform/monitoring.tf")] = tf_monitoring(s)
    files[tfvars] = tf_tfvars(s, tfvars)
    files[rel("README.md")] = (
        f"# {s.name}\n\nOwned by team {s.team}. Stack: {s.lang} + {s.db}"
        f" ({', '.join(s.extras)}).\n\n    docker compose up --build\n"
    )
    return files


GITIGNORE = """# dependencies and tool caches
node_modules/
.terraform/
*.tfstate
*.tfstate.*
__pycache__/
.venv/
"""

# Files under ignored directories: a scanner that reads them reports parse errors and
# planted findings that do not belong to the repository.
DECOY_FILES: dict[str, str] = {
    "node_modules/@acme/dev-stack/docker-compose.yml": (
        "services:\n  db:\n    image: postgres:latest\n    privileged: true\n"
        '    ports: ["5432:5432"\n'  # unterminated flow sequence: a YAML error
    ),
    "node_modules/@acme/dev-stack/.env": (
        "DEBUG=true\nPOSTGRES_PASSWORD=postgres\nthis line is not an assignment\n"
    ),
    "node_modules/@acme/dev-stack/Dockerfile": (
        "FROM node:latest\nUSER root\nRUN curl -fsSL https://example.com/x.sh | sh\n"
    ),
    "node_modules/nginx-dev-proxy/conf/nginx.conf": (
        "http {\n    server_tokens on;\n    server {\n        listen 80;\n"  # unclosed blocks
    ),
    "node_modules/terraform-fixtures/main.tf": (
        'resource "aws_security_group_rule" "open" {\n  cidr_blocks = ["0.0.0.0/0"\n'
    ),
    "services/{first}/frontend/node_modules/local-db/compose.yaml": (
        "services:\n  db:\n    image: mysql:latest\n"
        "    environment:\n      MYSQL_ROOT_PASSWORD: root\n"
    ),
    "services/{first}/terraform/.terraform/modules/vpc/main.tf": (
        'resource "aws_vpc" "this" {\n  cidr_block = var.cidr\n}\n'
    ),
}


def write_tree(out: Path, files: dict[str, str], created_dirs: set[Path]) -> None:
    for relpath, text in files.items():
        path = out / relpath
        parent = path.parent
        if parent not in created_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            created_dirs.add(parent)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)


def prepare_out(out: Path, force: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise SystemExit(f"error: {out} exists and is not a directory")
        if any(out.iterdir()):
            if not force:
                raise SystemExit(f"error: {out} is not empty (use --force to regenerate)")
            if not (out / MARKER).is_file():
                raise SystemExit(
                    f"error: {out} is not empty and has no {MARKER} marker; refusing to delete it"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--services", type=int, required=True, help="number of services (>= 1)")
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory (created; must be empty)"
    )
    parser.add_argument("--seed", type=int, default=0, help="RNG seed (default 0)")
    parser.add_argument(
        "--insecure-rate",
        type=float,
        default=0.03,
        help="probability of planting each insecure variant in a service (default 0.03)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an earlier generated tree at --out"
    )
    args = parser.parse_args(argv)
    if args.services < 1:
        parser.error("--services must be >= 1")
    if not 0.0 <= args.insecure_rate <= 1.0:
        parser.error("--insecure-rate must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    started = time.perf_counter()
    prepare_out(out, args.force)
    width = max(4, len(str(args.services - 1)))
    created: set[Path] = set()
    planted: dict[str, list[str]] = {}
    n_files = 0
    n_bytes = 0
    for index in range(args.services):
        svc = make_service(args.seed, index, width, args.insecure_rate)
        files = service_files(svc)
        write_tree(out, files, created)
        n_files += len(files)
        n_bytes += sum(len(t.encode("utf-8")) for t in files.values())
        for relpath, tag in svc.planted:
            planted.setdefault(relpath, []).append(tag)

    first = f"svc-{0:0{width}d}"
    decoys = {k.replace("{first}", first): v for k, v in DECOY_FILES.items()}
    root_files = {
        ".gitignore": GITIGNORE,
        "README.md": (
            "# Synthetic monorepo\n\nGenerated by benchmarks/generate_monorepo.py for policyscan"
            " benchmarks. Do not edit by hand.\n"
        ),
        "planted-issues.json": json.dumps(
            {path: sorted(tags) for path, tags in sorted(planted.items())}, indent=2
        )
        + "\n",
        MARKER: json.dumps(
            {
                "generator": "benchmarks/generate_monorepo.py",
                "services": args.services,
                "seed": args.seed,
                "insecure_rate": args.insecure_rate,
            },
            sort_keys=True,
        )
        + "\n",
    }
    write_tree(out, {**root_files, **decoys}, created)
    n_files += len(root_files) + len(decoys)
    n_bytes += sum(len(t.encode("utf-8")) for t in (*root_files.values(), *decoys.values()))
    elapsed = time.perf_counter() - started
    n_planted = sum(len(v) for v in planted.values())
    print(
        f"wrote {n_files} files ({n_bytes / 1e6:.1f} MB) for {args.services} services to {out}"
        f" in {elapsed:.2f} s; {n_planted} planted issues in {len(planted)} files;"
        f" {len(decoys)} decoy files under ignored directories",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
