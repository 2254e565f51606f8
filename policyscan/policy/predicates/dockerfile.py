"""Dockerfile checks that need the stage graph: what the image that runs actually inherits.

A stage that starts ``FROM builder`` carries over everything ``builder`` set (USER,
HEALTHCHECK, CMD, ENTRYPOINT, ENV), so every question about the final stage walks that chain.
What the chain cannot show (an ARG-templated base image, an entrypoint that drops
privileges) makes the answer unknown, never a finding. The Dockerfile is judged on its own, as
the image ``docker run`` would start; what a compose file changes is judged by compose rules.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyscan.model import Environment, Value
from policyscan.policy.conditions import TRUE, Outcome, Predicate

if TYPE_CHECKING:
    # Types only: loading policies must not import the parsers (see policyscan/scopes.py).
    from policyscan.parsers.dockerfile import DockerfileDocument, Instruction, Stage
    from policyscan.project import Project, Subject


# ------------------------------------------------------------------------------- stage graph


def _node(subject: Subject) -> tuple[DockerfileDocument, Stage] | None:
    node = subject.node
    if subject.scope == "dockerfile.stage" and isinstance(node, tuple) and len(node) == 2:
        return node[0], node[1]
    return None


def _parent(doc: DockerfileDocument, stage: Stage) -> Stage | None:
    """The earlier stage this one is built FROM (stage names are case-insensitive)."""
    name = stage.image.lower()
    found = None
    for earlier in doc.stages[: stage.index]:
        if earlier.alias is not None and earlier.alias.lower() == name:
            found = earlier  # the last definition before this FROM wins, as in BuildKit
    return found


def chain(doc: DockerfileDocument, stage: Stage) -> list[Stage]:
    """This stage, then the stage it is FROM, and so on up to the one FROM an external image."""
    out = [stage]
    current = stage
    while True:
        parent = _parent(doc, current)
        if parent is None or parent in out:
            return out
        out.append(parent)
        current = parent


def base_image(doc: DockerfileDocument, stage: Stage) -> str:
    return chain(doc, stage)[-1].image


def _last(stage: Stage, cmd: str) -> Instruction | None:
    found = [i for i in stage.instructions if i.cmd == cmd]
    return found[-1] if found else None


def effective(doc: DockerfileDocument, stage: Stage, cmd: str) -> Instruction | None:
    """The instruction in force in ``stage``: its own last one, else the parent stage's.

    A stage that sets ENTRYPOINT without CMD resets the inherited CMD (Docker's rule)."""
    for link in chain(doc, stage):
        own = _last(link, cmd)
        if own is not None:
            return own
        if cmd == "CMD" and _last(link, "ENTRYPOINT") is not None:
            return None
    return None


def environment(
    doc: DockerfileDocument, stage: Stage, runtime: bool = False
) -> dict[str, str | None]:
    """ENV and ARG values in force in the stage (global ARG defaults first, the stage's own
    last); with ``runtime``, only ENV, which is all the running container sees."""
    values: dict[str, str | None] = {} if runtime else {a.name: a.value for a in doc.global_args}
    for link in reversed(chain(doc, stage)):
        for assignment in link.assignments:
            if runtime and assignment.cmd != "ENV":
                continue
            if assignment.value is not None or assignment.name not in values:
                values[assignment.name] = assignment.value
    return values


_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}?")


def expand(text: str, values: Mapping[str, str | None]) -> str | None:
    """``$VAR`` / ``${VAR}`` / ``${VAR:-default}`` from the stage's ENV/ARG; None when one of
    them has no known value (a build argument passed on the command line)."""
    unknown = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unknown
        value = values.get(match.group(1))
        if value is None:
            if match.group(2) is not None:
                return match.group(2)
            unknown = True
            return ""
        return value

    out = _VAR.sub(replace, text)
    return None if unknown else out


_TEMPLATED = re.compile(r"\$|\{\{|\{%|%%")


def is_templated(text: str) -> bool:
    """An ARG reference or a template placeholder (Jinja, ``%%VARIANT%%``): not knowable."""
    return bool(_TEMPLATED.search(text))


def _value(doc: DockerfileDocument, instruction: Instruction, text: str | None = None) -> Value:
    shown = instruction.shell_text if text is None else text
    return Value(shown, doc.artifact.path, instruction.span, text=shown)


def _stage_value(doc: DockerfileDocument, stage: Stage) -> Value:
    return Value(stage.image, doc.artifact.path, stage.span, text=stage.image)


def command_text(doc: DockerfileDocument, stage: Stage) -> tuple[str, list[Instruction]]:
    """What the container runs by default (ENTRYPOINT then CMD), and the instructions it
    comes from. A shell-form ENTRYPOINT ignores CMD."""
    entry = effective(doc, stage, "ENTRYPOINT")
    cmd = effective(doc, stage, "CMD")
    parts: list[Instruction] = []
    if entry is not None:
        parts.append(entry)
    if cmd is not None and (entry is None or entry.json):
        parts.append(cmd)
    return " ".join(p.shell_text for p in parts), parts


# ------------------------------------------------------------------------------- compose


@dataclass(frozen=True, slots=True)
class _Builder:
    """A non-development compose service built from this Dockerfile."""

    name: str
    service: Value


def compose_builders(project: Project, dockerfile: str) -> list[_Builder]:
    """The non-development compose services built from this Dockerfile (indexed once per
    project: every Dockerfile asks)."""
    return project.memo("compose_builders", lambda: builders_by_dockerfile(project)).get(
        dockerfile, []
    )


def builders_by_dockerfile(project: Project) -> dict[str, list[_Builder]]:
    out: dict[str, list[_Builder]] = {}
    seen: set[tuple[str, str, str]] = set()
    for view in project.compose_views:
        if view.environment is Environment.DEVELOPMENT:
            continue
        for name, svc in view.services.items():
            build = svc.get("build")
            if build is None:
                continue
            context: str | None
            file = "Dockerfile"
            if isinstance(build.data, dict):
                ctx = build.get("context")
                context = ctx.as_str() if ctx is not None else "."
                df = build.get("dockerfile")
                if df is not None and df.as_str():
                    file = df.as_str() or file
            else:
                context = build.as_str()
            if not context or "://" in context or posixpath.isabs(file) or posixpath.isabs(context):
                continue
            path = posixpath.normpath(posixpath.join(view.directory or ".", context, file))
            if (path, view.directory, name) not in seen:
                seen.add((path, view.directory, name))
                out.setdefault(path, []).append(_Builder(name, svc))
    return out


# ------------------------------------------------------------------------------- predicates

# A stage named like this is declared a development image (awesome-compose's `dev-envs`).
_DEV_STAGE_WORDS = frozenset(
    {
        "dev",
        "devel",
        "develop",
        "development",
        "debug",
        "test",
        "tests",
        "testing",
        "local",
        "ci",
        "e2e",
    }
)


def _dev_named(stage: Stage) -> bool:
    if stage.alias is None:
        return False
    return bool(set(re.split(r"[^a-z0-9]+", stage.alias.lower())) & _DEV_STAGE_WORDS)


def runtime_stage(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The stage that runs: the final one, unless its name declares it a development image."""
    node = _node(subject)
    if node is None:
        return Outcome(False)
    doc, stage = node
    return Outcome(stage is doc.final and not _dev_named(stage))


def external_image(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The stage's FROM names a registry image: not ``scratch``, not an earlier stage."""
    node = _node(subject)
    if node is None:
        return Outcome(False)
    doc, stage = node
    image = stage.image.strip()
    return Outcome(bool(image) and image.lower() != "scratch" and _parent(doc, stage) is None)


def image_pinned(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """FROM names a version tag or a digest (``:latest`` and no tag at all are not pinned)."""
    node = _node(subject)
    if node is None:
        return TRUE
    doc, stage = node
    image = stage.image.strip()
    blame = _stage_value(doc, stage)
    if is_templated(image):
        return Outcome(None, blame, "image")
    if "@" in image:
        return Outcome(True, details={"evidence": f"{image} pinned by digest"})
    last = image.rsplit("/", 1)[-1]  # a registry's port (host:5000/x) is not a tag
    if ":" not in last:
        return Outcome(
            False, blame, "image", {"found": f"{image} has no tag (Docker pulls :latest)"}
        )
    tag = last.split(":", 1)[1]
    if tag == "latest":
        return Outcome(False, blame, "image", {"found": f"{image} uses the moving :latest tag"})
    return Outcome(True, details={"evidence": f"{image}"})


_ROOT_USERS = frozenset({"root", "0"})

# Base images that do not run as root by default, or whose entrypoint drops to a service user
# (gosu / su-exec): without a USER line the process still does not run as root.
_NON_ROOT_IMAGES = re.compile(
    r"(?:^|/)(?:nginx-unprivileged|postgres|postgis|timescaledb[\w-]*|redis|redis-stack[\w-]*|mysql|"
    r"mariadb|percona[\w-]*|mongo|rabbitmq|elasticsearch|opensearch|cassandra|couchdb|"
    r"zookeeper|memcached|influxdb|clickhouse[\w-]*|keycloak|grafana|prometheus|alertmanager|"
    r"jenkins|sonarqube)(?::|@|$)"
    r"|(?:^|/)bitnami/|^cgr\.dev/|^(?:[\w.-]+/)*distroless/[^:]*:(?:[\w.-]*-)?nonroot\b|rootless",
    re.IGNORECASE,
)
# The container starts as root on purpose and an entrypoint switches user.
_PRIVILEGE_DROP = re.compile(
    r"\b(?:gosu|su-exec|setpriv|s6-setuidgid|s6-overlay|chpst|runuser|setuser)\b|\bsu\s+-c\b|"
    r"\bsu\s+-s\b|\bsudo\s+(?:-\S+\s+)*-u\b",
    re.IGNORECASE,
)


def non_root_user(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The runtime stage runs as a user other than root (its USER, or one inherited from the
    stage it is built FROM). Judged on the Dockerfile alone: a compose ``user:`` is the compose
    rules' business, and ``docker run`` of the image still starts as root."""
    node = _node(subject)
    if node is None:
        return TRUE
    doc, stage = node
    user = effective(doc, stage, "USER")
    if user is not None:
        written = user.args[0] if user.args else ""
        name = expand(written, environment(doc, stage))
        if name is None or is_templated(name):
            return Outcome(None, _value(doc, user, written), "user")
        if name.split(":", 1)[0].strip() in _ROOT_USERS:
            return Outcome(False, _value(doc, user, written), "user", {"found": f"USER {written}"})
        return Outcome(True, details={"evidence": f"USER {written}"})
    base = base_image(doc, stage)
    if is_templated(base):
        return Outcome(None, _stage_value(doc, stage), "image")  # the base image may set USER
    if _NON_ROOT_IMAGES.search(base):
        return Outcome(
            None, details={"evidence": f"base image {base} does not run its service as root"}
        )
    texts = [
        i.shell_text
        for link in chain(doc, stage)
        for i in link.instructions
        if i.cmd in ("RUN", "ENTRYPOINT", "CMD", "COPY", "ADD")
    ]
    if any(_PRIVILEGE_DROP.search(t) for t in texts):
        return Outcome(
            None, details={"evidence": "the entrypoint switches user itself (gosu, su-exec, ...)"}
        )
    return Outcome(
        False,
        _stage_value(doc, stage),
        "user",
        {"found": f"no USER instruction, and {base} is not an image known to drop root"},
    )


# A container that serves something: what a health check is for. Tools and one-shot jobs
# (``ENTRYPOINT ["jq"]``, ``CMD ["pytest"]``) have nothing to check.
_SERVER_COMMAND = re.compile(
    r"\b(?:uvicorn|gunicorn|hypercorn|daphne|waitress-serve|uwsgi|fastapi\s+run|flask\s+run|runserver|"
    r"nginx|httpd|apache2|apache2-foreground|php-fpm\d*|caddy|traefik|node|npm\s+(?:run\s+)?start|"
    r"yarn\s+start|pnpm\s+start|next\s+start|java|dotnet|puma|unicorn|rails\s+s(?:erver)?|"
    r"supervisord|redis-server|postgres|mysqld|mongod)\b",
    re.IGNORECASE,
)
_SERVER_IMAGE = re.compile(
    r"(?:^|/)(?:nginx|nginx-unprivileged|httpd|caddy|traefik|haproxy|tomcat|jetty|wildfly|"
    r"openresty|php)(?::|@|$)",
    re.IGNORECASE,
)


def _serves(doc: DockerfileDocument, stage: Stage, builders: list[_Builder]) -> bool:
    if builders:
        return True
    links = chain(doc, stage)
    if any(i.cmd == "EXPOSE" for link in links for i in link.instructions):
        return True
    text, _ = command_text(doc, stage)
    if text:
        return bool(_SERVER_COMMAND.search(text))
    return bool(_SERVER_IMAGE.search(base_image(doc, stage)))


def healthcheck(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The runtime image of a long-running service declares a HEALTHCHECK (own or inherited)
    that is not NONE. Judged on the Dockerfile alone, like the image: a compose healthcheck
    is judged by the compose rules."""
    node = _node(subject)
    if node is None:
        return TRUE
    doc, stage = node
    found = effective(doc, stage, "HEALTHCHECK")
    if found is not None:
        if [a.upper() for a in found.args[:1]] == ["NONE"]:
            return Outcome(
                False,
                _value(doc, found, found.original),
                "healthcheck",
                {"found": "HEALTHCHECK NONE disables the check"},
            )
        return Outcome(True, details={"evidence": f"HEALTHCHECK line {found.span.start_line}"})
    builders = compose_builders(project, doc.artifact.path)
    if not _serves(doc, stage, builders):
        return Outcome(
            None, details={"evidence": "the image does not look like a long-running service"}
        )
    base = base_image(doc, stage)
    if is_templated(base):
        return Outcome(None, _stage_value(doc, stage), "image")  # the base image may declare one
    return Outcome(
        False,
        _stage_value(doc, stage),
        "healthcheck",
        {"found": "no HEALTHCHECK in the final stage or the stages it builds on"},
    )


def _matching(
    parts: list[Instruction], pattern: re.Pattern[str]
) -> tuple[Instruction, re.Match[str]] | None:
    for part in parts:
        found = pattern.search(part.shell_text)
        if found:
            return part, found
    return None


def command_not_matching(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The runtime command (ENTRYPOINT + CMD, inherited) does not match ``args.pattern``
    (case-insensitive). The finding points at the instruction that matched."""
    node = _node(subject)
    if node is None:
        return TRUE
    doc, stage = node
    text, parts = command_text(doc, stage)
    if not text:
        return TRUE
    pattern = re.compile(str(args["pattern"]), re.IGNORECASE)
    # Each part alone, and the two joined (ENTRYPOINT ["flask"] + CMD ["run"]).
    hit = _matching(parts, pattern)
    if hit is None:
        joined = pattern.search(text)
        if joined is None:
            return Outcome(True, details={"evidence": _short(text)})
        hit = (parts[-1], joined)
    part, found = hit
    return Outcome(False, _value(doc, part), "command", {"found": found.group(0).strip()})


_UVICORN = re.compile(r"(?:^|[\s/\"'=;&|(])(?:uvicorn|fastapi\s+run)(?![\w.-])", re.IGNORECASE)
_GUNICORN = re.compile(r"\bgunicorn\b", re.IGNORECASE)
_WORKERS = re.compile(r"(?:^|\s)--workers(?:[=\s]|$)", re.IGNORECASE)
_RELOAD = re.compile(r"(?:^|\s)--reload(?![\w-])", re.IGNORECASE)


def uvicorn_workers(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A uvicorn (or ``fastapi run``) started by the runtime command runs several worker
    processes and no auto-reloader: ``--workers`` or WEB_CONCURRENCY in the image's ENV, or
    gunicorn managing uvicorn workers."""
    node = _node(subject)
    if node is None:
        return TRUE
    doc, stage = node
    text, parts = command_text(doc, stage)
    if not _UVICORN.search(text) or _GUNICORN.search(text):
        return TRUE
    part = next((p for p in parts if _UVICORN.search(p.shell_text)), parts[-1])
    if _RELOAD.search(text):
        # --reload runs one auto-reloading process whatever --workers says.
        return Outcome(
            False,
            _value(doc, part),
            "command",
            {"found": "with --reload: " + _short(part.shell_text)},
        )
    if _WORKERS.search(text):
        return Outcome(True, details={"evidence": "uvicorn --workers"})
    if environment(doc, stage, runtime=True).get("WEB_CONCURRENCY"):
        return Outcome(True, details={"evidence": "WEB_CONCURRENCY set in the image"})
    return Outcome(
        False,
        _value(doc, part),
        "command",
        {"found": "without --workers: " + _short(part.shell_text)},
    )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


PREDICATES: dict[str, Predicate] = {
    "dockerfile_runtime_stage": runtime_stage,
    "dockerfile_external_image": external_image,
    "dockerfile_image_pinned": image_pinned,
    "dockerfile_non_root_user": non_root_user,
    "dockerfile_healthcheck": healthcheck,
    "dockerfile_command_not_matching": command_not_matching,
    "dockerfile_uvicorn_workers": uvicorn_workers,
}
