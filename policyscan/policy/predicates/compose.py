"""Predicates for compose services, and the cross-file checks that start from them.

Everything here reads the merged, interpolated compose view (``subject.node`` is ``(view,
name)``) and, where a service is built, the Dockerfile of its build context. Nothing reads a
file. The rule of the house applies throughout: a value that cannot be known statically (a
``${VAR}`` nobody defines, a configuration file we cannot read, a service that ``extends``
another) gives None, never a finding.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policyscan.model import Environment, Kind, Location, Related, Span, Value
from policyscan.policy.conditions import TRUE, UNKNOWN, Outcome, Predicate

if TYPE_CHECKING:
    from policyscan.parsers.dockerfile import DockerfileDocument, Stage
    from policyscan.project import ComposeView, Project, Subject

_PRODUCTION_VIEWS = (Environment.PRODUCTION, Environment.UNKNOWN)

# ----------------------------------------------------------------------------- images

# Image families, recognised by the last path component of the repository (registry and
# namespace dropped), so ``prodrigestivill/postgres-backup-local`` and
# ``oliver006/redis_exporter`` are not mistaken for the datastores they serve.
_FAMILIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "postgres",
            "postgresql",
            "postgis",
            "pgvector",
            "timescaledb",
            "timescaledb-ha",
            "timescaledb-postgis",
        ),
        "postgres",
    ),
    **dict.fromkeys(("mysql", "mysql-server", "mariadb", "percona", "percona-server"), "mysql"),
    **dict.fromkeys(("redis", "redis-stack", "redis-stack-server", "valkey", "keydb"), "redis"),
    **dict.fromkeys(
        ("mongo", "mongodb", "mongodb-community-server", "mongodb-enterprise-server"), "mongo"
    ),
    **dict.fromkeys(("elasticsearch", "opensearch"), "elasticsearch"),
    "memcached": "memcached",
    "rabbitmq": "rabbitmq",
    "cassandra": "cassandra",
    "couchdb": "couchdb",
    "neo4j": "neo4j",
    **dict.fromkeys(("clickhouse-server", "clickhouse"), "clickhouse"),
    "influxdb": "influxdb",
    "cockroach": "cockroach",
}
# ``mcr.microsoft.com/mssql/server``: the last component alone ("server") says nothing.
_MSSQL = re.compile(r"(?:^|/)mssql/server$|(?:^|/)azure-sql-edge$")

DATASTORES = frozenset(_FAMILIES.values()) | {"mssql"}
# What "a database" means for depends_on: the stores an application opens (and migrates) at
# startup. Cache, queue and search clients (Redis, Memcached, RabbitMQ, Elasticsearch) connect
# lazily and retry, so waiting for them to be healthy is a choice, not a defect.
DATABASES = DATASTORES - {"redis", "memcached", "rabbitmq", "elasticsearch"}

# Ports that only a datastore listens on; a service publishing one of them is judged whatever
# its image (a locally built ``db``, pgbouncer on 5432...).
DATASTORE_PORTS: dict[int, str] = {
    5432: "PostgreSQL",
    6432: "PgBouncer",
    3306: "MySQL",
    33060: "MySQL X",
    6379: "Redis",
    27017: "MongoDB",
    27018: "MongoDB",
    9200: "Elasticsearch",
    9300: "Elasticsearch transport",
    11211: "Memcached",
    5672: "RabbitMQ",
    15672: "RabbitMQ management",
    1433: "SQL Server",
    9042: "Cassandra",
    5984: "CouchDB",
    7687: "Neo4j Bolt",
    26257: "CockroachDB",
}

# Images whose own Dockerfile declares a HEALTHCHECK, so compose need not repeat it.
_IMAGES_WITH_HEALTHCHECK = re.compile(
    r"(?:^|/)(?:vaultwarden/server|mattermost/mattermost-[\w-]+|pihole/pihole|"
    r"jc21/nginx-proxy-manager|louislam/uptime-kuma|containrrr/watchtower)$"
)
# Git servers publish 22 for Git over SSH (key-only, meant to be reachable): not admin SSH.
_GIT_SERVERS = re.compile(r"(?:^|/)(?:gitea|gogs|forgejo|gitlab-ce|gitlab-ee|onedev)$")
_SSH_SERVERS = re.compile(r"(?:^|/)(?:openssh-server|sshd|sftp)$")
# Socket proxies exist to mount the socket and expose a filtered API: the recommended fix.
_SOCKET_PROXIES = re.compile(r"(?:^|/)(?:docker-socket-proxy|socket-proxy)$")


@dataclass(frozen=True, slots=True)
class ImageRef:
    repository: str  # registry host dropped, ``library/`` dropped, lower case
    tag: str | None
    digest: str | None

    @property
    def last(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    @property
    def vendor(self) -> str:
        return self.repository.split("/", 1)[0] if "/" in self.repository else ""


# Cached: every image rule of every service parses the same few hundred references again.
@functools.lru_cache(maxsize=4096)
def parse_image(text: str) -> ImageRef:
    ref = text.strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        ref, tag = ref[:colon], ref[colon + 1 :]
    parts = ref.lower().split("/")
    # A first component with a dot, a port or "localhost" is a registry host.
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return ImageRef("/".join(parts), tag, digest)


def image_family(ref: ImageRef) -> str | None:
    if _MSSQL.search(ref.repository):
        return "mssql"
    return _FAMILIES.get(ref.last)


# ----------------------------------------------------------------------------- service access


def _view_of(subject: Subject) -> tuple[ComposeView, str] | None:
    node = subject.node
    if isinstance(node, tuple) and len(node) == 2:
        return node[0], node[1]
    return None


def _str(value: Value | None) -> str | None:
    """A known scalar as text; None when absent or unknown."""
    if value is None or not value.known:
        return None
    return value.as_str()


def _raw(value: Value) -> str:
    """The scalar as written, ``${VAR}`` kept when it could not be resolved."""
    if value.known:
        return value.as_str() or ""
    return value.text or ""


def _at(value: Value, span: Span | None = None, sensitive: bool = False) -> Value:
    """A blame Value on ``span`` (default: the value's own)."""
    return Value(
        value.data if not isinstance(value.data, dict | list) else None,
        value.path,
        span or value.span,
        known=value.known,
        text=value.text,
        sensitive=sensitive,
    )


def _key_line(value: Value) -> Value:
    """Blame the key of a mapping entry (``logging:``) rather than its first nested line."""
    return _at(value, value.key_span or value.span)


def _image(svc: Value) -> tuple[ImageRef | None, bool]:
    """The service's image, and whether it is known (absent counts as known: there is none)."""
    image = svc.get("image")
    if image is None:
        return None, True
    text = _str(image)
    if text is None:
        return None, False
    return parse_image(text), True


def _service_family(
    svc: Value, project: Project | None = None, view: ComposeView | None = None
) -> str | None:
    ref, _ = _image(svc)
    if ref is not None:
        return image_family(ref)
    if project is not None and view is not None:
        found = build_stage(project, view, svc)
        if isinstance(found, tuple):
            _, chain = found
            root = chain[-1].image
            if root and "$" not in root:
                return image_family(parse_image(root))
    return None


# ----------------------------------------------------------------------------- commands


@dataclass(slots=True)
class Command:
    """A compose ``command``/``entrypoint`` as one string and as argv, with the Value each
    character came from (to blame the list element that holds the match)."""

    text: str
    parts: list[tuple[int, int, Value]] = field(default_factory=list)
    known: bool = True
    literal: bool = True

    def blame(self, offset: int) -> Value | None:
        for start, end, value in self.parts:
            if start <= offset < end:
                return value
        return self.parts[-1][2] if self.parts else None

    def argv(self) -> list[str]:
        return split_words(self.text)


def split_words(text: str) -> list[str]:
    """Shell words; a ``sh -c "..."`` script is split again, so its words count too."""
    return list(_split_words(text))  # a fresh list: callers may change theirs


# Cached: shlex is slow, and several rules split the same commands of every service.
@functools.lru_cache(maxsize=4096)
def _split_words(text: str) -> tuple[str, ...]:
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError:
        words = text.split()
    out: list[str] = []
    for word in words:
        if any(ch.isspace() for ch in word) and len(out) >= 1 and out[-1] in ("-c", "-lc", "-ec"):
            out.extend(_split_words(word))
        else:
            out.append(word)
    return tuple(out)


def command_of(svc: Value, key: str = "command") -> Command | None:
    value = svc.get(key)
    if value is None or (value.known and value.data is None):
        return None
    cmd = Command("")
    items = value.data if isinstance(value.data, list) else [value]
    chunks: list[str] = []
    offset = 0
    for item in items:
        if isinstance(item.data, dict | list):
            continue
        text = _raw(item)
        if isinstance(value.data, list) and any(ch.isspace() for ch in text):
            text = shlex.quote(text)  # keeps an exec-form argument one word when re-split
        cmd.known &= item.known
        cmd.literal &= item.literal
        if chunks:
            offset += 1
        cmd.parts.append((offset, offset + len(text), item))
        chunks.append(text)
        offset += len(text)
    cmd.text = " ".join(chunks)
    return cmd


def full_command(svc: Value) -> Command | None:
    """entrypoint and command together, as the container would run them."""
    entry, command = command_of(svc, "entrypoint"), command_of(svc, "command")
    if entry is None:
        return command
    if command is None:
        return entry
    shift = len(entry.text) + 1
    parts = entry.parts + [(s + shift, e + shift, v) for s, e, v in command.parts]
    return Command(
        f"{entry.text} {command.text}",
        parts,
        entry.known and command.known,
        entry.literal and command.literal,
    )


def _full_command(project: Project, svc: Value) -> Command | None:
    """``full_command(svc)``, once per service: several rules read every service's command.
    Callers only read the Command."""
    return project.memo_for("compose_full_command", svc, lambda: full_command(svc))


# ----------------------------------------------------------------------------- environment


def service_env(
    project: Project, view: ComposeView, svc: Value
) -> tuple[dict[str, str | None], bool]:
    """The service's environment (env_file files first, ``environment`` over them), and
    whether it is complete: an env_file outside the scan leaves it open."""
    from policyscan.parsers.env import EnvDocument

    env: dict[str, str | None] = {}
    complete = True
    files = svc.get("env_file")
    entries = [] if files is None else (files.data if isinstance(files.data, list) else [files])
    for entry in entries:
        path_value = entry.get("path") if isinstance(entry.data, dict) else entry
        path = _str(path_value)
        if path is None:
            complete = False
            continue
        full = (
            posixpath.normpath(posixpath.join(view.directory, path))
            if view.directory
            else posixpath.normpath(path)
        )
        doc = project.documents.get(full)
        if not isinstance(doc, EnvDocument):
            required = entry.get("required") if isinstance(entry.data, dict) else None
            if required is None or _str(required) not in ("false", "False"):
                complete = False
            continue
        for e in doc.entries:
            env[e.name] = e.value
    mapping = svc.get("environment")
    if mapping is not None and isinstance(mapping.data, dict):
        for name, value in mapping.data.items():
            env[name] = _str(value) if value.known else "${?}"
    return env, complete


# ----------------------------------------------------------------------------- build context


class _Unknown:
    pass


_UNKNOWN_BUILD = _Unknown()


def build_stage(
    project: Project, view: ComposeView, svc: Value
) -> tuple[DockerfileDocument, list[Stage]] | _Unknown | None:
    """The Dockerfile stage a ``build:`` produces and its chain of parent stages (the stage
    first, the one FROM an external image last). None when the service is not built here;
    _UNKNOWN_BUILD when it is but the Dockerfile is not in the scan."""
    from policyscan.parsers.dockerfile import DockerfileDocument

    build = svc.get("build")
    if build is None:
        return None
    context: str | None
    dockerfile: str | None = "Dockerfile"
    target: str | None = None
    if isinstance(build.data, dict):
        context = _str(build.get("context")) if build.get("context") is not None else "."
        if build.get("dockerfile") is not None:
            dockerfile = _str(build.get("dockerfile"))
        if build.get("dockerfile_inline") is not None:
            return _UNKNOWN_BUILD
        if build.get("target") is not None:
            target = _str(build.get("target"))
            if target is None:
                return _UNKNOWN_BUILD
    else:
        context = _str(build)
    if context is None or dockerfile is None or "://" in context or context.startswith("git@"):
        return _UNKNOWN_BUILD
    base = posixpath.join(view.directory, context) if view.directory else context
    path = posixpath.normpath(posixpath.join(base, dockerfile))
    if path.startswith("../") or path == "..":
        return _UNKNOWN_BUILD
    doc = project.documents.get(path)
    if not isinstance(doc, DockerfileDocument) or not doc.stages:
        return _UNKNOWN_BUILD
    stage = doc.final
    if target is not None:
        named = [s for s in doc.stages if (s.alias or "").lower() == target.lower()]
        if not named:
            return _UNKNOWN_BUILD
        stage = named[0]
    assert stage is not None
    chain = [stage]
    aliases = {(s.alias or "").lower(): s for s in doc.stages if s.alias}
    while len(chain) < len(doc.stages):
        parent = aliases.get(chain[-1].image.lower())
        if parent is None or parent in chain:
            break
        chain.append(parent)
    return doc, chain


def _last_instruction(chain: list[Stage], cmd: str) -> tuple[Stage, Any] | None:
    for stage in chain:
        found = [i for i in stage.instructions if i.cmd == cmd]
        if found:
            return stage, found[-1]
    return None


# ----------------------------------------------------------------------------- one-shot services

_ONE_SHOT_NAME = re.compile(
    r"(?:^|[-_])(?:migrate|migrations?|init|setup|seed|prestart|bootstrap|createbuckets?|"
    r"collectstatic)(?:[-_]|$)",
    re.IGNORECASE,
)
_ONE_SHOT_COMMAND = re.compile(
    r"\b(?:manage\.py\s+(?:migrate|collectstatic|createsuperuser|loaddata)|alembic\s+upgrade|"
    r"(?:flask|rake|rails)\s+db[:\s]|prisma\s+migrate|knex\s+migrate|sequelize\s+db:migrate)\b",
    re.IGNORECASE,
)
# Programs that keep running: a command that mentions one is a server, even after a migration.
_SERVER_WORDS = re.compile(
    r"\b(?:gunicorn|uvicorn|hypercorn|daphne|runserver|celery|serve|server|start|npm|node|nginx|"
    r"supervisord|php-fpm|puma|unicorn|sleep\s+infinity|tail\s+-f)\b",
    re.IGNORECASE,
)
_SETUP_PROGRAMS = frozenset({"chown", "chmod", "mkdir", "cp", "echo", "true", "touch", "ln"})


_WEB_SERVERS = frozenset({"nginx", "httpd", "caddy", "traefik", "haproxy", "nginx-unprivileged"})


def _serves(view: ComposeView, name: str, svc: Value) -> bool:
    """Signs that a service is a server whatever its restart policy says: it publishes ports,
    has a healthcheck, is a datastore or web server image, or others wait for it to be healthy."""
    if svc.get("ports") is not None:
        return True
    health = svc.get("healthcheck")
    if (
        health is not None
        and isinstance(health.data, dict)
        and health.get("test") is not None
        and health.get("disable") is None
    ):
        return True
    ref, _ = _image(svc)
    if ref is not None and (image_family(ref) in DATASTORES or ref.last in _WEB_SERVERS):
        return True
    for other_name, other in view.services.items():
        deps = other.get("depends_on")
        if other_name != name and deps is not None and isinstance(deps.data, dict):
            dep = deps.data.get(name)
            if dep is not None and _str(dep.get("condition")) == "service_healthy":
                return True
    return False


def is_long_running(view: ComposeView, name: str, svc: Value) -> bool | None:
    """A service that stays up (a server, a worker), as opposed to a one-shot job: a migration,
    an init container, a job with ``restart: "no"`` (unless it plainly serves: ports, a
    healthcheck, a datastore image). None when the service ``extends`` another, whose keys we
    do not see."""
    if svc.get("extends") is not None:
        return None
    no_restart = (
        _str(svc.get("restart")) in ("no", "false", "False")
        or _str(svc.lookup("deploy.restart_policy.condition")) == "none"
    )
    if no_restart:
        return _serves(view, name, svc)
    for other_name, other in view.services.items():
        if other_name == name:
            continue
        deps = other.get("depends_on")
        if deps is not None and isinstance(deps.data, dict):
            dep = deps.data.get(name)
            if dep is not None and _str(dep.get("condition")) == "service_completed_successfully":
                return False
    if _ONE_SHOT_NAME.search(name):
        return False
    cmd = full_command(svc)
    if cmd is not None:
        if _ONE_SHOT_COMMAND.search(cmd.text) and not _SERVER_WORDS.search(cmd.text):
            return False
        words = cmd.argv()
        if words and posixpath.basename(words[0]) in ("sh", "bash", "ash") and "-c" in words:
            index = words.index("-c") + 1
            words = words[index:]
        if words and posixpath.basename(words[0]) in _SETUP_PROGRAMS:
            return False
    return True


def long_running(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    # Per service, not per call: several rules ask, and each answer splits the command.
    svc = view.services[name]
    return Outcome(
        project.memo_for(
            ("compose_long_running", name), view, lambda: is_long_running(view, name, svc)
        )
    )


def image_is(value: Value, subject: Subject, project: Project, args: Mapping[str, Any]) -> Outcome:
    """The service's image belongs to one of ``args.families`` (postgres, mysql, redis, ...);
    a built service is judged by its Dockerfile's base image."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]

    # Per service, not per call: most service rules ask, and a built service's family means
    # reading its Dockerfile's stages.
    def family_of() -> tuple[bool, str | None]:
        ref, known = _image(svc)
        unknown = ref is None and not known
        return unknown, None if unknown else _service_family(svc, project, view)

    unknown, family = project.memo_for(("compose_service_family", name), view, family_of)
    if unknown:
        return UNKNOWN
    return Outcome(family in set(args.get("families", ())))


# ----------------------------------------------------------------------------- ports


@dataclass(slots=True)
class Port:
    """One published port. ``host_ip`` None means every interface; unknown parts are None with
    ``known`` False."""

    value: Value
    host_ip: str | None
    published: tuple[int, int] | None  # a range; None when random or unknown
    target: tuple[int, int] | None
    protocol: str
    known: bool = True
    host_ip_known: bool = True
    published_known: bool = True  # False for ``${PORT}:80``: the host port is the deploy's

    def targets(self, port: int) -> bool:
        return self.target is not None and self.target[0] <= port <= self.target[1]

    def publishes(self, port: int) -> bool:
        return self.published is not None and self.published[0] <= port <= self.published[1]

    @property
    def public(self) -> bool | None:
        """Reachable from other hosts: every interface, or a public address."""
        if not self.host_ip_known:
            return None
        if self.host_ip is None:
            return True
        ip = self.host_ip.strip("[]")
        if ip in ("0.0.0.0", "::", ""):
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        # A loopback or private address is a deliberate restriction to this host or network.
        return address.is_global


def _range(text: str) -> tuple[int, int] | None:
    start, _, end = text.partition("-")
    try:
        low = int(start)
        high = int(end) if end else low
    except ValueError:
        return None
    return (low, high) if 0 < low <= high <= 65535 else None


def _split_short(text: str) -> list[str]:
    """``[HOST_IP:][PUBLISHED:]TARGET`` split on colons, IPv6 brackets and ``${...}`` kept."""
    if text.startswith("["):
        close = text.find("]")
        if close > 0 and text[close + 1 : close + 2] == ":":
            return [text[: close + 1], *text[close + 2 :].split(":")]
    parts = _split_colons(text)
    if len(parts) > 3:  # an IPv6 address without brackets: ::1:6000:6000
        parts = [":".join(parts[:-2]), parts[-2], parts[-1]]
    return parts


def _split_colons(text: str) -> list[str]:
    """Split on the colons outside ``${...}`` (whose ``:-default`` has its own)."""
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def parse_port(item: Value) -> Port | None:
    if isinstance(item.data, dict):
        target_v, published_v, ip_v = item.get("target"), item.get("published"), item.get("host_ip")
        proto = _str(item.get("protocol")) or "tcp"
        target = _range(_str(target_v) or "") if target_v is not None else None
        port = Port(item, None, None, target, proto.lower(), known=target is not None)
        if ip_v is not None:
            port.host_ip = _str(ip_v)
            port.host_ip_known = port.host_ip is not None
        if published_v is not None:
            text = _str(published_v)
            port.published = _range(text) if text else None
            port.published_known = text is not None
        return port
    text = _raw(item).strip()
    if not text:
        return None
    text, _, proto = text.partition("/")
    parts = _split_short(text)
    target_text = parts[-1]
    published_text = parts[-2] if len(parts) >= 2 else ""
    ip_text = parts[0] if len(parts) == 3 else None
    port = Port(item, ip_text or None, None, None, (proto or "tcp").lower())
    if "$" in target_text:
        port.known = False
    else:
        port.target = _range(target_text)
        port.known = port.target is not None
    if published_text and "$" not in published_text:
        port.published = _range(published_text)
    elif published_text:
        port.published_known = False
    if ip_text is not None and "$" in ip_text:
        port.host_ip_known = False
    return port


def ports_of(svc: Value) -> list[Port]:
    ports = svc.get("ports")
    if ports is None or not isinstance(ports.data, list):
        return []
    return [p for p in (parse_port(item) for item in ports.data) if p is not None]


def _describe(port: Port) -> str:
    return (
        _raw(port.value)
        if not isinstance(port.value.data, dict)
        else (
            f"target {port.target[0] if port.target else '?'}"
            + (f", published {port.published[0]}" if port.published else "")
        )
    )


def datastore_ports_private(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No datastore port is reachable from other hosts: a datastore image publishes nothing
    (or only on 127.0.0.1/::1 or a private address) and no service publishes a datastore port;
    ``network_mode: host`` on a datastore counts as publishing everything."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    family = _service_family(svc, project, view)
    network_mode = svc.get("network_mode")
    if family in DATASTORES and network_mode is not None and _str(network_mode) == "host":
        return Outcome(
            False,
            _at(network_mode),
            "network_mode",
            {"port": "every port (network_mode: host)", "what": family or "datastore"},
        )
    unknown: Outcome | None = None
    for port in ports_of(svc):
        public = port.public
        datastore_port = next((p for p in DATASTORE_PORTS if port.targets(p)), None)
        if family in DATASTORES or datastore_port is not None:
            if not port.known and family not in DATASTORES:
                continue
            if public is None:
                unknown = unknown or Outcome(None, port.value, "ports")
                continue
            if public:
                what = DATASTORE_PORTS.get(datastore_port or 0) or family or "datastore"
                return Outcome(
                    False, _at(port.value), "ports", {"port": _describe(port), "what": what}
                )
        elif not port.known:
            # ``${DB_PORT}:${DB_PORT}``: a datastore port could hide behind the variable, but
            # only a datastore image makes that likely enough to say "unknown" rather than pass.
            continue
    return unknown or TRUE


def ssh_not_published(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Port 22 (or an SSH server image's port) is not published to other hosts."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    ref, _ = _image(svc)
    if ref is not None and _GIT_SERVERS.search(ref.repository):
        return TRUE
    ssh_image = ref is not None and bool(_SSH_SERVERS.search(ref.repository))
    unknown: Outcome | None = None
    for port in ports_of(svc):
        if port.protocol != "tcp":
            continue
        if not (port.targets(22) or port.publishes(22) or ssh_image):
            continue
        public = port.public
        if public is None:
            unknown = unknown or Outcome(None, port.value, "ports")
        elif public:
            return Outcome(False, _at(port.value), "ports", {"port": _describe(port)})
    return unknown or TRUE


_WEB_PORTS = frozenset({80, 443})
# Ports whose protocol is the service itself and must be public for it to work at all: mail,
# DNS, TURN, VPN. Publishing them is the deployment's purpose, not an oversight.
_PROTOCOL_PORTS = frozenset({25, 53, 110, 143, 465, 587, 993, 995, 1194, 3478, 5349, 51820})


def only_web_ports_public(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Every port published to other hosts is 80 or 443. Datastore ports and 22 are left to
    their own rules (one finding per problem)."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    family = _service_family(svc, project, view)
    ref, _ = _image(svc)
    if family in DATASTORES:
        return TRUE
    if ref is not None and _SSH_SERVERS.search(ref.repository):
        return TRUE  # every port of an SSH server is PSC003's
    for port in ports_of(svc):
        if not port.known or not port.published_known or port.public is not True:
            continue
        # UDP is media, VPN, DNS or game traffic that has to be public to work; no web app
        # serves on it by accident.
        if port.protocol != "tcp":
            continue
        if any(port.targets(p) for p in DATASTORE_PORTS) or port.targets(22) or port.publishes(22):
            continue
        if any(port.publishes(p) or port.targets(p) for p in _PROTOCOL_PORTS):
            continue
        host = port.published or port.target
        if host is None:
            continue  # a random host port from a range we cannot read
        if port.published is not None and host[0] == host[1] and host[0] in _WEB_PORTS:
            continue
        # ``- "80"`` publishes a random host port: not 80/443 on the host either.
        return Outcome(False, _at(port.value), "ports", {"port": _describe(port)})
    return TRUE


# ----------------------------------------------------------------------------- healthcheck


def healthcheck_enabled(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The service has a healthcheck: its own, or the HEALTHCHECK of the Dockerfile it is built
    from, or one its image is known to ship; and it is not disabled."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    health = svc.get("healthcheck")
    if health is not None and isinstance(health.data, dict):
        disable = health.get("disable")
        if disable is not None:
            text = _str(disable)
            if text is None:
                return Outcome(None, disable, "healthcheck.disable")
            if text.lower() in ("true", "yes", "1", "on"):
                return Outcome(
                    False,
                    _at(disable),
                    "healthcheck.disable",
                    {"reason": "its healthcheck is disabled (disable: true)"},
                )
        test = health.get("test")
        if test is not None:
            words = test.data if isinstance(test.data, list) else [test]
            first = _str(words[0]) if words else None
            if first is not None and first.upper() == "NONE":
                return Outcome(
                    False,
                    _at(test),
                    "healthcheck.test",
                    {"reason": 'its healthcheck is disabled (test: ["NONE"])'},
                )
            return TRUE
    built = build_stage(project, view, svc)
    if isinstance(built, tuple):
        doc, chain = built
        last = _last_instruction(chain, "HEALTHCHECK")
        if last is not None:
            _, instruction = last
            if instruction.args and str(instruction.args[0]).upper() == "NONE":
                return Outcome(
                    False,
                    None,
                    "",
                    {
                        "reason": f"its Dockerfile disables the healthcheck (HEALTHCHECK NONE, "
                        f"{doc.artifact.path}:{instruction.span.start_line})"
                    },
                    (Related(Location(doc.artifact.path, instruction.span), "HEALTHCHECK NONE"),),
                )
            return Outcome(True, details={"evidence": f"HEALTHCHECK in {doc.artifact.path}"})
    elif built is _UNKNOWN_BUILD:
        return UNKNOWN
    ref, known = _image(svc)
    if not known:
        return UNKNOWN
    if ref is not None and _IMAGES_WITH_HEALTHCHECK.search(ref.repository):
        return TRUE
    if health is not None and not isinstance(health.data, dict):
        return UNKNOWN
    where = " nor in the Dockerfile it is built from" if isinstance(built, tuple) else ""
    return Outcome(False, None, "", {"reason": f"it has no healthcheck in compose{where}"})


# ----------------------------------------------------------------------------- depends_on


def depends_on_healthy(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Every database this service depends on is awaited with ``condition: service_healthy``
    (the short list form waits only for the container to start)."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    deps = svc.get("depends_on")
    if deps is None:
        return TRUE
    entries: list[tuple[str, Value, str | None]] = []
    if isinstance(deps.data, list):
        for item in deps.data:
            dep = _str(item)
            if dep is not None:
                entries.append((dep, item, None))
    elif isinstance(deps.data, dict):
        for dep, spec in deps.data.items():
            cond = spec.get("condition") if isinstance(spec.data, dict) else None
            condition = "service_started" if cond is None else _str(cond)
            if cond is not None and condition is None:
                continue  # ${VAR}: unknown
            entries.append((dep, _key_line(spec), condition))
    for dep, blame, condition in entries:
        target = view.services.get(dep)
        if target is None or condition == "service_healthy":
            continue
        family = _service_family(target, project, view)
        if family not in DATABASES:
            continue
        written = "the short list form" if condition is None else f"condition: {condition}"
        return Outcome(
            False,
            _at(blame),
            "depends_on",
            {"dependency": dep, "what": family or "database", "written": written},
            (
                Related(
                    target.location
                    if target.key_span is None
                    else Location(target.path, target.key_span),
                    f"{dep} service",
                ),
            ),
        )
    return TRUE


# ----------------------------------------------------------------------------- restart

_SWARM_KEYS = ("placement", "update_config", "rollback_config", "mode")


def restart_policy_set(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """``restart`` or ``deploy.restart_policy`` is set. In a swarm stack file (deploy
    placement/update_config/mode) swarm restarts services by default."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    restart = svc.get("restart")
    condition = svc.lookup("deploy.restart_policy.condition")
    # A server that says restart "no" (the long-running check let it through): still none.
    if restart is not None and _str(restart) in ("no", "false", "False"):
        return Outcome(False, _at(restart), "restart", {"found": 'restart: "no"'})
    if restart is None and condition is not None and _str(condition) == "none":
        return Outcome(
            False,
            _at(condition),
            "deploy.restart_policy.condition",
            {"found": "deploy.restart_policy.condition: none"},
        )
    if restart is not None or svc.lookup("deploy.restart_policy") is not None:
        return TRUE
    for other in view.services.values():
        deploy = other.get("deploy")
        if (
            deploy is not None
            and isinstance(deploy.data, dict)
            and any(k in deploy.data for k in _SWARM_KEYS)
        ):
            return TRUE
    return Outcome(False, None, "", {"found": "no restart policy"})


# ----------------------------------------------------------------------------- logging


def log_rotation(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Logs are bounded: the json-file driver (Docker's default) with ``max-size``, or the
    ``local`` driver (which rotates by default), or a driver that ships logs off the host."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    logging = svc.get("logging")
    if logging is None:
        return Outcome(
            False,
            None,
            "",
            {
                "reason": "no logging options, so Docker's default json-file driver keeps every "
                "log line on the host's disk"
            },
        )
    if not isinstance(logging.data, dict):
        return UNKNOWN
    driver_value = logging.get("driver")
    driver = "json-file" if driver_value is None else _str(driver_value)
    if driver is None:
        return UNKNOWN
    if driver.lower() != "json-file":
        return TRUE
    size = logging.lookup("options.max-size")
    if size is not None:
        text = _str(size)
        if text is None:
            return UNKNOWN
        if text.strip() not in ("", "-1"):
            return TRUE
    return Outcome(
        False,
        _key_line(logging),
        "logging",
        {
            "reason": "json-file logging without options.max-size, so every log line stays on "
            "the host's disk"
        },
    )


# ----------------------------------------------------------------------------- resources

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def memory_bytes(text: str) -> float | None:
    match = _MEMORY.match(text)
    if match is None:
        return None
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def backend_resources(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A backend service that is limited is limited to at least ``args.cpus`` CPUs and
    ``args.memory`` of memory (the seed: 4 vCPUs, 8 GB). Unlimited is another rule's."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    min_cpus = float(args.get("cpus", 4))
    min_memory = memory_bytes(str(args.get("memory", "8G"))) or 0.0
    # "8GB" as people write it: 8 * 10^9 bytes is close enough to 8 GiB to count.
    floor = min_memory * 0.93
    limits = svc.lookup("deploy.resources.limits")
    cpus_v = limits.get("cpus") if limits is not None else svc.get("cpus")
    mem_v = limits.get("memory") if limits is not None else svc.get("mem_limit")
    if limits is None and cpus_v is None and mem_v is None:
        return TRUE
    problems: list[str] = []
    blame: Value | None = None
    if cpus_v is not None:
        text = _str(cpus_v)
        if text is None:
            return UNKNOWN
        try:
            if float(text) < min_cpus:
                problems.append(f"{text} CPU")
                blame = cpus_v
        except ValueError:
            return UNKNOWN
    if mem_v is not None:
        text = _str(mem_v)
        size = memory_bytes(text) if text is not None else None
        if size is None:
            return UNKNOWN
        if size < floor:
            problems.append(f"{text} of memory")
            blame = blame or mem_v
    if not problems or blame is None:
        return TRUE
    return Outcome(False, _at(blame), "deploy.resources.limits", {"limits": " and ".join(problems)})


# ----------------------------------------------------------------------------- user


def not_root_user(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The service does not say ``user: root`` (or uid 0). Without ``user:`` the image decides,
    and the image's Dockerfile is judged on its own: no finding here."""
    user = value.get("user")
    if user is None:
        return TRUE
    text = _str(user)
    if text is None:
        return Outcome(None, user, "user")
    name = text.strip().split(":", 1)[0].strip()
    if name in ("root", "0"):
        return Outcome(False, _at(user), "user", {"user": text})
    return TRUE


# ----------------------------------------------------------------------------- images


def image_pinned(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The image names a version tag or a digest. A service that is built here names its own
    build output: only an explicit ``:latest`` is judged there."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    image = svc.get("image")
    if image is None:
        return TRUE
    text = _str(image)
    if text is None:
        return Outcome(None, image, "image")
    if not image.literal and _from_default(view, image):
        # ``${TAG:-latest}`` with TAG defined nowhere: the deploy sets TAG, we cannot know it.
        return Outcome(None, image, "image")
    ref = parse_image(text)
    if ref.digest:
        return TRUE
    built = svc.get("build") is not None
    if ref.tag is None and not built:
        return Outcome(False, _at(image), "image", {"reason": "has no tag (Docker pulls :latest)"})
    if ref.tag is not None and ref.tag.lower() == "latest":
        return Outcome(False, _at(image), "image", {"reason": "uses the :latest tag"})
    return TRUE


def _from_default(view: ComposeView, value: Value) -> bool:
    """The interpolated value used a ``${VAR:-default}`` for a variable the .env does not set."""
    for name, has_default, ref in view.references:
        if (
            ref.span == value.span
            and ref.path == value.path
            and has_default
            and name not in view.dotenv
        ):
            return True
    return False


# ----------------------------------------------------------------------------- commands

_DEV_SERVERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), label)
    for pattern, label in (
        (
            r"\b(?:uvicorn|hypercorn|gunicorn)\b[^;&|]*\s--reload\b",
            "an auto-reloading server (--reload)",
        ),
        (r"\bfastapi\s+dev\b", "fastapi dev (the development server)"),
        (
            r"\bflask\b(?:\s+--?[\w-]+(?:[= ][\w.:/][\w.:/-]*)?)*\s+run\b",
            "flask run (the development server)",
        ),
        (
            r"\bmanage\.py\s+runserver(?:_plus)?\b|\bdjango-admin\s+runserver\b",
            "manage.py runserver (Django's development server)",
        ),
        (
            r"\b(?:npm|pnpm|bun)\s+run\s+dev\b|\b(?:yarn|pnpm|bun)\s+dev\b",
            "npm run dev (a development server)",
        ),
        (
            r"\bnodemon\b|\bts-node-dev\b|\bnext\s+dev\b|\bnuxt\s+dev\b|\bng\s+serve\b|"
            r"\bwebpack-dev-server\b|\bwebpack\s+serve\b|\bphp\s+artisan\s+serve\b|\bwatchmedo\b",
            "a development server with file watching",
        ),
    )
)
_DEBUG_FLAG = re.compile(
    r"(?:^|\s)--debug(?:=(?:true|1|yes|on))?(?=\s|$)|(?:^|\s)--debugger\b", re.IGNORECASE
)


def no_dev_server(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The service's command/entrypoint does not start a development server."""
    cmd = _full_command(project, value)
    if cmd is None:
        return TRUE
    for pattern, label in _DEV_SERVERS:
        match = pattern.search(cmd.text)
        if match:
            blame = cmd.blame(match.end() - 1)
            return Outcome(False, _at(blame) if blame else None, "command", {"server": label})
    return TRUE


def no_debug_flag(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The service's command/entrypoint does not pass ``--debug``."""
    cmd = _full_command(project, value)
    if cmd is None:
        return TRUE
    match = _DEBUG_FLAG.search(cmd.text)
    if match is None:
        return TRUE
    blame = cmd.blame(match.end() - 1)
    return Outcome(
        False, _at(blame) if blame else None, "command", {"flag": match.group(0).strip()}
    )


_UVICORN = re.compile(r"(?:^|[\s/\"'])uvicorn\s", re.IGNORECASE)
_FASTAPI_RUN = re.compile(r"\bfastapi\s+run\b", re.IGNORECASE)
# Bounded gaps keep every pattern linear under re.search (tests/test_regex_linear.py).
_GUNICORN_UVICORN = re.compile(r"\bgunicorn\b.{0,1000}?\bUvicorn\w{0,40}Worker\b", re.IGNORECASE)
_WORKERS_FLAG = re.compile(r"(?:^|\s)--workers(?:[=\s]|$)")
_GUNICORN_WORKERS = re.compile(
    r"(?:^|\s)(?:-w|--workers)(?:[=\s]|\d|$)|(?:^|\s)(?:-c|--config)[=\s]"
)


def uvicorn_workers(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """uvicorn (or ``fastapi run``, or gunicorn with uvicorn workers) started from the compose
    command runs several worker processes: --workers / -w, or WEB_CONCURRENCY in the service's
    environment (both read it as their default)."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    cmd = _full_command(project, svc)
    if cmd is None:
        return TRUE
    match = _UVICORN.search(cmd.text) or _FASTAPI_RUN.search(cmd.text)
    program = "uvicorn"
    flags = _WORKERS_FLAG
    if match is None:
        match = _GUNICORN_UVICORN.search(cmd.text)
        program, flags = "gunicorn", _GUNICORN_WORKERS
        if match is None:
            return TRUE
        if " GUNICORN_CMD_ARGS" in f" {cmd.text}":
            return UNKNOWN
    elif "fastapi" in match.group(0).lower():
        program = "fastapi run"
    rest = cmd.text[match.start() :]
    if flags.search(rest):
        return TRUE
    env, complete = service_env(project, view, svc)
    for var in ("WEB_CONCURRENCY", "UVICORN_WORKERS", "GUNICORN_CMD_ARGS"):
        if env.get(var):
            return TRUE
    if not complete:
        return UNKNOWN
    reload = " and with --reload (a single reloading process)" if "--reload" in rest else ""
    blame = cmd.blame(match.start() + (1 if cmd.text[match.start()] in " /\"'" else 0))
    return Outcome(
        False, _at(blame) if blame else None, "command", {"program": program, "reload": reload}
    )


# ----------------------------------------------------------------------------- redis

_REDIS_BINARIES = frozenset({"redis-server", "valkey-server", "keydb-server", "redis-stack-server"})


@dataclass(slots=True)
class RedisConfig:
    """What a Redis service is started with. ``options`` maps an option (lower case, without
    ``--``) to its values; ``config_file`` says a configuration file we cannot read is loaded,
    so an option absent from the command line is unknown rather than default."""

    options: dict[str, list[str]]
    config_file: bool
    data_dir: str
    bitnami: bool
    env: dict[str, str | None]
    literal: bool

    def option(self, name: str) -> list[str] | _Unknown | None:
        if name in self.options:
            return self.options[name]
        return _UNKNOWN_BUILD if self.config_file else None


def _parse_redis_args(words: list[str]) -> tuple[dict[str, list[str]], bool]:
    options: dict[str, list[str]] = {}
    config_file = False
    current: str | None = None
    for word in words:
        if word in ("&&", ";", "||", "|"):
            break
        if word.startswith("--") and len(word) > 2:
            current = word[2:].lower().replace("_", "-")
            options[current] = []
            continue
        if current is None:
            config_file = True  # redis-server /etc/redis/redis.conf
            continue
        options[current].append(word)
    return options, config_file


def redis_config(project: Project, view: ComposeView, svc: Value) -> RedisConfig | None:
    """None when the service's startup cannot be read (a script, a custom-built image)."""
    ref, _ = _image(svc)
    bitnami = ref is not None and ref.vendor == "bitnami"
    stack = ref is not None and ref.last.startswith("redis-stack")
    env, _complete = service_env(project, view, svc)
    cmd = _full_command(project, svc)
    words: list[str] | None = None
    literal = True
    if cmd is not None:
        literal = cmd.literal
        argv = cmd.argv()
        for index, word in enumerate(argv):
            base = posixpath.basename(word)
            if base in _REDIS_BINARIES or (bitnami and base == "run.sh"):
                words = argv[index + 1 :]
                break
        else:
            # The official entrypoint prepends redis-server to arguments that start with "-"
            # or name a .conf file.
            if argv and (argv[0].startswith("-") or argv[0].endswith(".conf")):
                words = argv
        if words is None:
            return None
    else:
        if svc.get("build") is not None:
            return None
        words = []
    extra = env.get("REDIS_EXTRA_FLAGS") if bitnami else env.get("REDIS_ARGS") if stack else None
    if extra:
        words = words + split_words(extra)
    options, config_file = _parse_redis_args(words)
    config_file |= "include" in options  # --include loads a file we cannot read
    if stack and cmd is None:
        config_file = True  # redis-stack-server loads its own /redis-stack.conf
    data_dir = "/bitnami/redis/data" if bitnami else "/data"
    if options.get("dir"):
        data_dir = options["dir"][0]
    return RedisConfig(options, config_file, data_dir, bitnami, env, literal)


def _volume_target(item: Value) -> tuple[str | None, str | None, bool]:
    """(source, target, persistent) of a volumes entry; target None when unknown."""
    if isinstance(item.data, dict):
        kind = _str(item.get("type")) or "volume"
        source = _str(item.get("source"))
        target = _str(item.get("target"))
        return source, target, kind in ("volume", "bind") and bool(source)
    # ``${DATA_DIR}/redis:/data``: the source is the deploy's, the target is still readable.
    parts = _split_colons(_raw(item))
    if len(parts) == 1:
        return None, (None if "$" in parts[0] else parts[0]), False  # anonymous: dies with it
    source, target = parts[0], parts[1]
    return source, (None if "$" in target else target), bool(source)


def has_volume_for(svc: Value, directory: str) -> bool | None:
    volumes = svc.get("volumes")
    if volumes is None or not isinstance(volumes.data, list):
        return False
    unknown = False
    for item in volumes.data:
        _, target, persistent = _volume_target(item)
        if target is None:
            unknown = True
            continue
        target = target.rstrip("/") or "/"
        if persistent and (directory == target or directory.startswith(target + "/")):
            return True
    return None if unknown else False


def _yes(values: list[str]) -> bool | None:
    if not values:
        return True  # --appendonly alone reads as yes
    text = values[0].strip().lower()
    if "$" in text:
        return None
    return text in ("yes", "true", "1", "on")


@dataclass(slots=True)
class RedisState:
    aof: bool | None
    rdb: bool | None
    volume: bool | None

    @property
    def persistent(self) -> bool | None:
        if self.volume is False:
            return False
        if self.aof is True or self.rdb is True:
            return None if self.volume is None else True
        if self.aof is False and self.rdb is False:
            return False
        return None


def redis_state(config: RedisConfig, svc: Value) -> RedisState:
    appendonly = config.option("appendonly")
    if config.bitnami and "appendonly" not in config.options:
        flag = config.env.get("REDIS_AOF_ENABLED")
        aof: bool | None = (
            True
            if flag is None
            else (None if "$" in flag else flag.lower() in ("yes", "true", "1"))
        )
    elif isinstance(appendonly, _Unknown):
        aof = None
    else:
        aof = False if appendonly is None else _yes(appendonly)
    save = config.option("save")
    if config.bitnami and "save" not in config.options:
        disabled = config.env.get("REDIS_RDB_POLICY_DISABLED") or "no"
        rdb: bool | None = None if "$" in disabled else disabled.lower() not in ("yes", "true", "1")
    elif isinstance(save, _Unknown):
        rdb = None
    elif save is None:
        rdb = True  # Redis snapshots by default (save 3600 1 300 100 60 10000)
    else:
        rdb = not all(v.strip() in ("", '""', "''") for v in save) if save else False
    volume = has_volume_for(svc, config.data_dir)
    if (
        volume is False
        and config.config_file
        and "dir" not in config.options
        and any(_volume_target(item)[2] for item in _list(svc.get("volumes")))
    ):
        volume = None  # the unread configuration file may point ``dir`` at another volume
    return RedisState(aof, rdb, volume)


def _list(value: Value | None) -> list[Value]:
    return value.data if value is not None and isinstance(value.data, list) else []


def _redis_subject(
    subject: Subject, project: Project
) -> tuple[ComposeView, Value, RedisConfig] | None:
    found = _view_of(subject)
    if found is None:
        return None
    view, name = found
    svc = view.services[name]
    if _service_family(svc) != "redis":
        return None
    config = redis_config(project, view, svc)
    if config is None:
        return None
    return view, svc, config


def redis_aof(value: Value, subject: Subject, project: Project, args: Mapping[str, Any]) -> Outcome:
    """Redis runs with ``appendonly yes`` and keeps /data (or its --dir) on a volume."""
    found = _redis_subject(subject, project)
    if found is None:
        return UNKNOWN
    _, svc, config = found
    state = redis_state(config, svc)
    if state.aof is None:
        return UNKNOWN
    if state.aof and state.volume is True:
        return TRUE
    if state.aof:
        if state.volume is None:
            return UNKNOWN
        return Outcome(
            False,
            None,
            "",
            {
                "reason": f"appendonly is on but {config.data_dir} is not on a named or "
                "bind-mounted volume, so the AOF file goes with the container"
            },
        )
    appendonly = config.options.get("appendonly")
    reason = (
        "--appendonly is not set (Redis defaults to no)"
        if appendonly is None
        else "--appendonly is no"
    )
    if state.rdb is False:
        reason += ', and --save "" turns RDB snapshots off too: nothing survives a restart'
    return Outcome(False, None, "", {"reason": reason})


def redis_maxmemory(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Redis is started with a memory ceiling (--maxmemory), so its eviction policy applies."""
    found = _redis_subject(subject, project)
    if found is None:
        return UNKNOWN
    _, _, config = found
    maxmemory = config.option("maxmemory")
    policy = config.option("maxmemory-policy")
    if isinstance(maxmemory, _Unknown):
        return UNKNOWN
    if maxmemory is not None and maxmemory:
        text = maxmemory[0].strip().lower()
        if "$" in text:
            return UNKNOWN
        if text not in ("0", "0b", "0mb", "0gb"):
            return TRUE
        found_text = "--maxmemory 0 (no limit)"
    else:
        found_text = "no --maxmemory"
    has_policy = isinstance(policy, list) and bool(policy)
    extra = (
        " (--maxmemory-policy alone never applies without it)"
        if has_policy
        else " and no --maxmemory-policy"
    )
    return Outcome(False, None, "", {"found": found_text + extra})


_REDIS_PASSWORD_OPTIONS = ("requirepass", "aclfile", "user")


def redis_password(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Redis requires a password: --requirepass, an ACL file or ACL users on the command line,
    or REDIS_PASSWORD(_FILE) for the bitnami image. A literal --requirepass is judged for
    strength; one interpolated from .env is judged where it is written."""
    from policyscan.secretstrength import SecretClass, assess, is_reference

    found = _redis_subject(subject, project)
    if found is None:
        return UNKNOWN
    _, svc, config = found
    if config.bitnami:
        for var in ("REDIS_PASSWORD", "REDIS_PASSWORD_FILE"):
            if config.env.get(var):
                return TRUE
        allow = (config.env.get("ALLOW_EMPTY_PASSWORD") or "").lower()
        if "$" in allow:
            return UNKNOWN
        if allow not in ("yes", "true", "1"):
            return TRUE  # the bitnami image refuses to start without a password
        return Outcome(
            False,
            None,
            "",
            {
                "reason": "accepts clients without a password "
                "(ALLOW_EMPTY_PASSWORD=yes, no REDIS_PASSWORD)"
            },
        )
    for option in _REDIS_PASSWORD_OPTIONS:
        values = config.option(option)
        if isinstance(values, _Unknown):
            return UNKNOWN
        if values is None:
            continue
        if option != "requirepass":
            return TRUE
        secret = values[0] if values else ""
        if "$" in secret:
            return TRUE  # interpolated at run time; judged where it is defined
        if secret.strip() in ("", '""', "''"):
            return Outcome(
                False,
                None,
                "",
                {"reason": "accepts clients without a password (--requirepass is empty)"},
            )
        if not config.literal or is_reference(secret):
            return TRUE
        weakness = assess(secret, SecretClass.REDIS_PASSWORD)
        if weakness is None:
            return TRUE
        cmd = svc.get("command") or svc.get("entrypoint")
        blame = _at(cmd, sensitive=True) if cmd is not None else None
        return Outcome(
            False,
            blame,
            "command",
            {"reason": f"has a weak literal --requirepass ({weakness.reason})"},
        )
    return Outcome(
        False,
        None,
        "",
        {"reason": "accepts clients without a password (no --requirepass, ACL file or ACL user)"},
    )


# ----------------------------------------------------------------------------- postgres, mysql


def _database_command(project: Project, view: ComposeView, svc: Value) -> tuple[str, bool] | None:
    """The server command line (or image default) and whether configuration files we cannot
    read are in play. None when the startup cannot be read."""
    _, known = _image(svc)
    if not known or svc.get("build") is not None:
        return None
    cmd = _full_command(project, svc)
    # As the container gets it: quotes removed, ``sh -c`` scripts split.
    text = " ".join(cmd.argv()) if cmd is not None else ""
    volumes = svc.get("volumes")
    conf_mounted = False
    if volumes is not None and isinstance(volumes.data, list):
        for item in volumes.data:
            _, target, _ = _volume_target(item)
            if target is None:
                conf_mounted = True
                continue
            if target.endswith((".conf", ".cnf")) or target.startswith(
                ("/etc/postgresql", "/etc/mysql")
            ):
                conf_mounted = True
    if re.search(r"config[_-]file\s*=|--defaults(?:-extra)?-file", text) or re.search(
        r"\.(?:conf|cnf)\b", text
    ):
        conf_mounted = True
    server = re.search(r"(?:^|[\s/])(?:postgres|mysqld|mariadbd|mongod)(?:\s|$)", text)
    if cmd is not None and not server and not text.lstrip().startswith("-"):
        return None  # a wrapper script: we cannot see what it starts
    return text, conf_mounted


_SETTING = r"(?:^|[\s'\"])(?:-c\s*['\"]?|--){name}\s*=\s*['\"]?([^\s'\"]*)"


def _setting(text: str, name: str) -> str | None:
    pattern = _SETTING.format(name=name.replace("_", "[_-]"))
    found = re.findall(pattern, text, re.IGNORECASE)
    return found[-1] if found else None


def env_mentions(project: Project, needle: re.Pattern[str]) -> Related | None:
    """An env entry (any env file or compose environment) naming or containing ``needle``.
    Computed once per project and pattern: every database service asks the same question."""

    def build() -> Related | None:
        search = needle.search
        for other in project.subjects("variable"):
            name = other.facts.get("name")
            val = other.facts.get("value")
            # A loop over every variable of the project: no list or generator per variable.
            for text in (
                name.as_str() if name else None,
                val.as_str() if val and val.known else None,
            ):
                if text and search(text):
                    return Related(
                        other.facts.location if val is None else val.location, "set here"
                    )
        return None

    return project.memo(("compose_env_mentions", needle.pattern), build)


CLIENT_TIMEOUT = re.compile(r"statement[_-]?timeout|query[_-]?timeout", re.IGNORECASE)


def postgres_setting(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The postgres server is started with ``args.setting`` (``-c name=value``) at a value that
    enables it (not ``args.disabled``). A mounted postgresql.conf or ``config_file`` is unknown.
    With ``args.client_ok``, a client-side setting anywhere in the env counts too."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    if _service_family(svc) != "postgres":
        return UNKNOWN
    ref, _ = _image(svc)
    if ref is not None and (
        ref.vendor == "bitnami" or ref.last.endswith("-ha") or ref.vendor == "supabase"
    ):
        return UNKNOWN  # configured by its own scripts and files, not by the command line
    setting = str(args["setting"])
    read = _database_command(project, view, svc)
    if read is None:
        return UNKNOWN
    text, conf_mounted = read
    current = _setting(text, setting)
    if current is not None:
        if "$" in current:
            return UNKNOWN
        if current.strip() in {str(v) for v in args.get("disabled", ())}:
            return Outcome(False, None, "", {"found": f"{setting}={current} (disabled)"})
        return TRUE
    if args.get("client_ok"):
        related = env_mentions(project, CLIENT_TIMEOUT)
        if related is not None:
            return Outcome(
                True, details={"evidence": "client-side statement timeout"}, related=(related,)
            )
    if conf_mounted:
        return UNKNOWN
    return Outcome(False, None, "", {"found": f"no -c {setting}"})


def mysql_slow_log(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The MySQL/MariaDB server is started with the slow query log on."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    svc = view.services[name]
    if _service_family(svc) != "mysql":
        return UNKNOWN
    ref, _ = _image(svc)
    if ref is not None and ref.vendor == "bitnami":
        env, _ = service_env(project, view, svc)
        for var in ("MYSQL_ENABLE_SLOW_QUERY", "MARIADB_ENABLE_SLOW_QUERY"):
            flag = env.get(var)
            if flag and flag.lower() in ("1", "yes", "true"):
                return TRUE
        return UNKNOWN
    read = _database_command(project, view, svc)
    if read is None:
        return UNKNOWN
    text, conf_mounted = read
    match = re.search(
        r"--(?:slow[_-]query[_-]log|log[_-]slow[_-]query|log[_-]slow[_-]queries)"
        r"(?:\s*=\s*['\"]?(\w*))?",
        text,
        re.IGNORECASE,
    )
    if match is not None:
        flag = (match.group(1) or "1").lower()
        if flag in ("0", "off", "false", "no"):
            return Outcome(False, None, "", {"found": "the slow query log switched off"})
        return TRUE
    if conf_mounted:
        return UNKNOWN
    return Outcome(False, None, "", {"found": "no --slow_query_log"})


def database_slow_log(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """postgres: log_min_duration_statement set (not -1); MySQL/MariaDB: slow_query_log on."""
    found = _view_of(subject)
    if found is None:
        return UNKNOWN
    view, name = found
    family = _service_family(view.services[name])
    if family == "postgres":
        out = postgres_setting(
            value, subject, project, {"setting": "log_min_duration_statement", "disabled": ["-1"]}
        )
        if out.result is False:
            return Outcome(
                False,
                None,
                "",
                {"found": out.details["found"], "expected": "-c log_min_duration_statement=<ms>"},
            )
        return out
    if family == "mysql":
        out = mysql_slow_log(value, subject, project, args)
        if out.result is False:
            return Outcome(
                False,
                None,
                "",
                {
                    "found": out.details["found"],
                    "expected": "--slow_query_log=1 --long_query_time=<s>",
                },
            )
        return out
    return UNKNOWN


# ----------------------------------------------------------------------------- cross-file


def backup_anywhere(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """core's ``backup_in_project``, asked once per project: its answer does not depend on the
    database asking, and a monorepo has hundreds of them (it scans every service each time)."""
    from policyscan.policy.predicates.core import backup_in_project

    return project.memo(
        "compose_backup_anywhere", lambda: backup_in_project(value, subject, project, args)
    )


def _production_views(project: Project) -> Iterator[ComposeView]:
    for view in project.compose_views:
        if view.environment in _PRODUCTION_VIEWS:
            yield view


def _service_location(svc: Value) -> Location:
    return Location(svc.path, svc.key_span or svc.span)


_REDIS_RESOURCES = (
    "aws_elasticache_replication_group",
    "aws_elasticache_cluster",
    "aws_elasticache_serverless_cache",
    "aws_memorydb_cluster",
)


def _elasticache(project: Project) -> Iterable[tuple[Any, Value, bool | None]]:
    """ElastiCache/MemoryDB Redis resources and whether they keep snapshots."""
    for module, block in project.terraform_resources(_REDIS_RESOURCES):
        rtype = block.labels[0]
        body = module.resolved_body(block)
        engine = body.get("engine")
        engine_text = _str(engine) if engine is not None else "redis"
        if engine_text is not None and engine_text.lower() == "memcached":
            continue
        header = Value(
            None,
            block.path,
            Span(block.span.start_line, block.span.start_col, block.span.start_line, 0),
        )
        if rtype == "aws_memorydb_cluster":
            yield block, header, True  # MemoryDB keeps a durable transaction log
            continue
        limit = body.get("snapshot_retention_limit")
        if limit is None:
            yield block, header, False
            continue
        text = _str(limit)
        try:
            yield block, header, (None if text is None else float(text) > 0)
        except ValueError:
            yield block, header, None


def redis_persistence_anywhere(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Where the project runs Redis in compose, some Redis keeps its data: a compose Redis with
    AOF or RDB snapshots on a volume, or an ElastiCache group keeping snapshots (or MemoryDB)."""
    compose_redis: list[tuple[str, Value, RedisState | None]] = project.memo(
        "compose_redis_states", lambda: compose_redis_states(project)
    )
    if not compose_redis:
        return TRUE
    unknown = False
    for name, _svc, state in compose_redis:
        persistent = None if state is None else state.persistent
        if persistent:
            return Outcome(True, details={"evidence": f"redis service {name} persists to a volume"})
        unknown |= persistent is None
    cache_related: list[Related] = []
    for block, header, keeps in _elasticache(project):
        if keeps:
            return Outcome(True, details={"evidence": f"{block.address} keeps snapshots"})
        unknown |= keeps is None
        cache_related.append(Related(header.location, f"{block.address} keeps no snapshots"))
    if unknown:
        return UNKNOWN
    name, svc, state = compose_redis[0]
    assert state is not None
    if state.volume is False:
        reason = "has no named or bind-mounted volume for its data directory"
    else:
        reason = 'runs with --save "" and without appendonly, so it keeps nothing on disk'
    related = [
        Related(_service_location(s), f"redis service {n} does not persist either")
        for n, s, _ in compose_redis[1:4]
    ] + cache_related[:3]
    blame = Value(name, svc.path, svc.key_span or svc.span)
    where = " (the ElastiCache resources keep no snapshots)" if cache_related else ""
    return Outcome(
        False,
        blame,
        "services",
        {"service": name, "reason": reason, "where": where},
        tuple(related),
    )


def compose_redis_states(project: Project) -> list[tuple[str, Value, RedisState | None]]:
    """The Redis services of the production views, in order: each one's name, where it is (a
    value holding nothing but its place) and what it keeps (None: its startup is unread)."""
    out: list[tuple[str, Value, RedisState | None]] = []
    for view in _production_views(project):
        for name, svc in view.services.items():
            if _service_family(svc) != "redis":
                continue
            config = redis_config(project, view, svc)
            place = Value(None, svc.path, svc.span)
            place.key_span = svc.key_span
            out.append((name, place, None if config is None else redis_state(config, svc)))
    return out


_HTTP_PORTS = frozenset({80, 8000, 8080})
_TLS_IMAGES = re.compile(
    r"(?:^|/)(?:caddy|acme-companion|letsencrypt-nginx-proxy-companion|swag|"
    r"nginx-proxy-manager|certbot|haproxy)$"
)
_TLS_PORTS = (443, 8443)
_TRAEFIK_TLS = re.compile(
    r"certresolver|entrypoints\.[\w-]+\.address=:443\b|\.tls=true", re.IGNORECASE
)


def compose_tls(project: Project) -> tuple[Related | None, bool]:
    """TLS termination evidence in the compose files (443 published, a TLS proxy image, traefik
    with a certificate resolver), and whether something could not be read."""
    unknown = False
    for view in _production_views(project):
        for name, svc in view.services.items():
            ref, known = _image(svc)
            unknown |= not known
            cmd = full_command(svc)
            tunnel = (
                ref is not None
                and ref.last == "cloudflared"
                and cmd is not None
                and "tunnel" in cmd.text
            )  # a Cloudflare tunnel; cloudflared also proxies DoH
            if ref is not None and (_TLS_IMAGES.search(ref.repository) or tunnel):
                return Related(_service_location(svc), f"{name} terminates TLS"), unknown
            labels = svc.get("labels")
            texts = [cmd.text if cmd else ""]
            if labels is not None and isinstance(labels.data, dict):
                texts += [f"{k}={_raw(v)}" for k, v in labels.data.items()]
            traefik_tls = any(_TRAEFIK_TLS.search(t) for t in texts)
            if ref is not None and ref.last == "traefik" and traefik_tls:
                return Related(_service_location(svc), f"{name} terminates TLS"), unknown
            for port in ports_of(svc):
                https_var = not port.published_known and "https" in _raw(port.value).lower()
                if https_var or any(
                    port.publishes(p) or (port.published is None and port.targets(p))
                    for p in _TLS_PORTS
                ):
                    return Related(
                        Location(port.value.path, port.value.span),
                        f"{_describe(port)} published for HTTPS",
                    ), unknown
    return None, unknown


_TLS_FRONTS = ("aws_cloudfront_distribution", "aws_lb_listener", "aws_alb_listener")


def tls_termination_anywhere(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """When a production compose file publishes plain HTTP (80/8000/8080) to other hosts,
    something in the project terminates TLS: an nginx server listening with ssl, an HTTPS/TLS
    load balancer listener, a CloudFront distribution, or a TLS proxy in compose (443
    published, caddy, traefik with a certificate resolver...)."""
    http: list[tuple[str, str, Value]] = project.memo(
        "compose_http_ports", lambda: compose_http_ports(project)
    )
    if not http:
        return TRUE
    plain: list[Related] = []
    servers: list[tuple[bool, Location]] = project.memo(
        "nginx_server_tls", lambda: nginx_server_tls(project)
    )
    for tls, where in servers:
        if tls:
            return Outcome(True, details={"evidence": f"nginx TLS server in {where.path}"})
        plain.append(Related(where, "plain-HTTP nginx server"))
    unknown = False
    for module, block in project.terraform_resources(_TLS_FRONTS):
        rtype = block.labels[0]
        if rtype == "aws_cloudfront_distribution":
            return Outcome(True, details={"evidence": block.address})
        body = module.resolved_body(block)
        protocol_v = body.get("protocol")
        protocol = "HTTP" if protocol_v is None else _str(protocol_v)
        if protocol is None:
            unknown = True
        elif protocol.upper() in ("HTTPS", "TLS"):
            return Outcome(True, details={"evidence": block.address})
        else:
            plain.append(
                Related(
                    Location(block.path, Span.line(block.span.start_line)),
                    f"{protocol} listener {block.address}",
                )
            )
    evidence, compose_unknown = project.memo("compose_tls", lambda: compose_tls(project))
    if evidence is not None:
        return Outcome(True, details={"evidence": evidence.message}, related=(evidence,))
    if unknown or compose_unknown:
        return UNKNOWN
    name, described, port = http[0]
    related = [Related(p.location, f"{n} publishes {d}") for n, d, p in http[1:4]] + plain[:3]
    return Outcome(False, port, "ports", {"service": name, "port": described}, tuple(related))


def compose_http_ports(project: Project) -> list[tuple[str, str, Value]]:
    """The plain-HTTP ports (80, 8000, 8080 over TCP) that production services other than
    datastores publish to other hosts, in order: the service, the port as written, and the
    port's place as a blame value."""
    http: list[tuple[str, str, Value]] = []
    for view in _production_views(project):
        for name, svc in view.services.items():
            if _service_family(svc) in DATASTORES:
                continue
            for port in ports_of(svc):
                if port.public is not True or port.protocol != "tcp":
                    continue
                if any(port.publishes(p) for p in _HTTP_PORTS) or (
                    port.published is None and any(port.targets(p) for p in _HTTP_PORTS)
                ):
                    http.append((name, _describe(port), _at(port.value)))
    return http


def nginx_server_tls(project: Project) -> list[tuple[bool, Location]]:
    """Each nginx server, in order: whether it listens with TLS, and where it is."""
    out = []
    for server in project.subjects("nginx.server"):
        tls = server.facts.get("tls")
        out.append((tls is not None and tls.data is True, Location(server.path, server.span)))
    return out


PREDICATES: dict[str, Predicate] = {
    "backup_anywhere": backup_anywhere,
    "long_running": long_running,
    "image_is": image_is,
    "datastore_ports_private": datastore_ports_private,
    "ssh_not_published": ssh_not_published,
    "only_web_ports_public": only_web_ports_public,
    "healthcheck_enabled": healthcheck_enabled,
    "depends_on_healthy": depends_on_healthy,
    "restart_policy_set": restart_policy_set,
    "log_rotation": log_rotation,
    "backend_resources": backend_resources,
    "not_root_user": not_root_user,
    "image_pinned": image_pinned,
    "no_dev_server": no_dev_server,
    "no_debug_flag": no_debug_flag,
    "uvicorn_workers": uvicorn_workers,
    "redis_aof": redis_aof,
    "redis_maxmemory": redis_maxmemory,
    "redis_password": redis_password,
    "postgres_setting": postgres_setting,
    "database_slow_log": database_slow_log,
    "redis_persistence_anywhere": redis_persistence_anywhere,
    "tls_termination_anywhere": tls_termination_anywhere,
}

# The kinds of file a failing outcome of these project-wide predicates blames (the finding's
# place): a run that reports on other files alone (pre-commit) need not judge a rule that
# asks only one of them, and their questions read every compose view, nginx server and
# Terraform resource (Project.may_focus). tests/test_focus.py checks these against the rules'
# examples.
BLAMES: dict[str, frozenset[Kind]] = {
    "redis_persistence_anywhere": frozenset({Kind.COMPOSE}),
    "tls_termination_anywhere": frozenset({Kind.COMPOSE}),
}
