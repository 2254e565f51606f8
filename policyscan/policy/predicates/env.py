"""Predicates for environment variables: development values that leak into production,
credentials, required settings, and the evidence-only items (workers, pooling, sessions, error
tracking).

Everything here reads located Values; nothing reopens a file. A value that cannot be known
statically (``${VAR}`` nobody defines, a compose ``- NAME`` passed through from the shell) never
makes a finding. No secret ever reaches ``details``: a blame that holds one is marked
``sensitive`` so reports mask its line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from policyscan.model import Environment, Kind, Related, Value
from policyscan.policy.conditions import TRUE, UNKNOWN, Outcome, Predicate

if TYPE_CHECKING:
    from policyscan.parsers.dockerfile import DockerfileDocument, Stage
    from policyscan.parsers.env import EnvDocument
    from policyscan.project import ComposeView, Project, Subject

_MAX_VALUE = 8192  # longer values are certificates or blobs, not URLs or settings


# ----------------------------------------------------------------------------- helpers


def _fact_str(facts: Value, path: str) -> str | None:
    found = facts.lookup(path)
    return found.as_str() if found is not None else None


def _known_text(value: Value | None) -> str | None:
    """The value as a program would see it, or None when it is unknown or passed through."""
    if value is None or not value.known or value.data is None:
        return None
    text = value.as_str()
    if text is None or len(text) > _MAX_VALUE:
        return None
    return text


def _literal_text(facts: Value) -> str | None:
    """The subject's value when it is written here (not interpolated from elsewhere)."""
    literal = facts.lookup("literal")
    if literal is not None and literal.data is False:
        return None
    return _known_text(facts.lookup("value"))


def _masked(value: Value) -> Value:
    """The same node, flagged as holding a secret, so its line is masked in every report."""
    return dataclasses.replace(value, sensitive=True)


def _segments(name: str) -> list[str]:
    return [s for s in name.lower().replace("-", "_").replace(".", "_").split("_") if s]


def secret_name(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The variable's name holds a secret (``secretstrength.classify_name``)."""
    from policyscan.secretstrength import classify_name

    return Outcome(classify_name(_fact_str(value, "name") or "") is not None)


# ----------------------------------------------------------------------------- Dockerfile


def in_runtime(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The assignment reaches the running container's environment: always for env files and
    compose; for a Dockerfile, an ENV of the final stage or of a stage the final one is built
    ``FROM`` (a builder's ``ENV NODE_ENV=development`` for devDependencies never ships, and ARG
    values end with the build)."""
    if subject.kind is not Kind.DOCKERFILE:
        return TRUE
    assignment = subject.node
    if getattr(assignment, "cmd", "") != "ENV":
        return Outcome(False)
    doc: DockerfileDocument | None = project.documents.get(subject.path)
    if doc is None or doc.final is None:
        return Outcome(False)
    by_alias = {s.alias.lower(): s for s in doc.stages if s.alias}
    stage: Stage | None = doc.final
    visited: set[int] = set()
    while stage is not None and stage.index not in visited:
        visited.add(stage.index)
        if any(a is assignment for a in stage.assignments):
            return TRUE
        parent = by_alias.get(stage.image.lower())
        stage = parent if parent is not None and parent.index < stage.index else None
    return Outcome(False)


# ----------------------------------------------------------------------------- hosts

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
_PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net")
# RFC 2606 / 6761 names that never resolve on the internet. ".local" (mDNS) is left out: some
# companies still name internal hosts that way.
_RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost"})


def dev_host_reason(host: str) -> str | None:
    """Why ``host`` is a development or placeholder host, or None for a real one."""
    h = host.strip().strip("[]").rstrip(".").lower()
    if not h:
        return None
    if h in _LOOPBACK_NAMES or h.endswith(".localhost"):
        return "the local machine"
    try:
        address = ipaddress.ip_address(h)
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback:
            return "the local machine"
        if address.is_unspecified:
            return "an unspecified address"
        return None
    if h in _PLACEHOLDER_DOMAINS or h.endswith(tuple("." + d for d in _PLACEHOLDER_DOMAINS)):
        return "a documentation placeholder domain"
    if "." in h and h.rsplit(".", 1)[1] in _RESERVED_TLDS:
        return "a reserved test domain"
    return None


# scheme://rest, up to a separator; linear (one character class, no nesting)
_URL = re.compile(
    r"[a-z][a-z0-9+.\-]{0,30}://[^\s,;'\"\]\[)(<>]*(?:\[[0-9a-f:.]+\][^\s,;'\"\]<>]*)?",
    re.IGNORECASE,
)


def url_hosts(text: str) -> Iterator[tuple[str, str]]:
    """(url, host) of every URL in ``text``: a single URL, a list, or a JDBC string."""
    for match in _URL.finditer(text[:_MAX_VALUE]):
        url = match.group(0)
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host:
            yield url, host


def bare_hosts(text: str) -> Iterator[str]:
    """Hosts of ``host``, ``host:port`` or a comma/space separated list of them."""
    for item in re.split(r"[\s,;]+", text[:_MAX_VALUE].strip().strip("'\"[]")):
        item = item.strip("'\"")
        if not item or "://" in item or "/" in item or "@" in item or "$" in item:
            continue
        try:
            host = urlsplit("//" + item).hostname
        except ValueError:
            continue
        if host:
            yield host


# Names that configure what a server binds to or lists as allowed, not where it connects:
# 0.0.0.0 and 127.0.0.1 are right there. Telemetry agents and proxies run beside the process
# (a sidecar, a daemonset), so localhost is their normal address.
_NOT_A_DESTINATION = re.compile(
    r"^(?:HOST|HOSTNAME|ADDRESS|ADDR|BIND|IP)$"
    r"|(?:^|_)(?:BIND|LISTEN|LISTENERS|LISTEN_ADDR|INTERFACE|RUN_HOST)(?:_|$)"
    r"|(?:^|_)(?:NO_PROXY|HTTP_PROXY|HTTPS_PROXY|ALL_PROXY|PROXY)$"
    r"|ALLOWED_HOSTS|TRUSTED_HOSTS|TRUSTED_ORIGINS|TRUSTED_PROXIES|INTERNAL_IPS|ALLOWED_IPS|ALLOWEDIPS"
    r"|(?:^|_)(?:HEALTH|HEALTHCHECK|LIVENESS|READINESS|PROBE|PING)(?:_|$)"
    r"|(?:^|_)(?:STATSD|DOGSTATSD|OTEL|OTLP|JAEGER|ZIPKIN|AGENT|COLLECTOR)(?:_|$)"
    r"|CORS|ORIGINS?$"
    r"|_EXAMPLE$|^EXAMPLE_",
    re.IGNORECASE,
)

# A bare host (no scheme) is judged only for names that say "the host of this dependency";
# APP_HOST, API_HOST, SERVER_HOST are as often the address a server binds to.
_DEPENDENCIES = frozenset(
    {
        "db",
        "database",
        "postgres",
        "postgresql",
        "pg",
        "psql",
        "mysql",
        "mariadb",
        "mongo",
        "mongodb",
        "redis",
        "valkey",
        "cache",
        "memcache",
        "memcached",
        "rabbitmq",
        "rabbit",
        "amqp",
        "broker",
        "kafka",
        "nats",
        "elasticsearch",
        "elastic",
        "es",
        "opensearch",
        "meilisearch",
        "typesense",
        "solr",
        "clickhouse",
        "influxdb",
        "smtp",
        "mail",
        "email",
        "imap",
        "s3",
        "minio",
        "storage",
        "ldap",
        "keycloak",
        "sentry",
    }
)
_HOST_NOUNS = frozenset({"host", "hostname", "server", "servers", "hosts", "brokers"})
# Names whose value is the public name of the site (nginx-proxy, Traefik labels, app settings).
_PUBLIC_NAME = re.compile(
    r"(?:^|_)DOMAINS?$|^(?:VIRTUAL_HOST|LETSENCRYPT_HOST|SERVER_NAME)$|(?:^|_)PUBLIC_HOST(?:NAME)?$",
    re.IGNORECASE,
)


def _is_dependency_host_name(name: str) -> bool:
    parts = _segments(name)
    return (
        len(parts) >= 2 and parts[-1] in _HOST_NOUNS and any(p in _DEPENDENCIES for p in parts[:-1])
    )


def _compose_service(subject: Subject, project: Project) -> tuple[ComposeView, Value] | None:
    """The compose view and service whose ``environment`` holds this subject's value."""
    if subject.kind is not Kind.COMPOSE:
        return None
    # Indexed once per project by the environment value's identity: asked for every compose
    # variable, a walk over every view each time made large trees quadratic.

    def build() -> dict[int, tuple[ComposeView, Value]]:
        owners: dict[int, tuple[ComposeView, Value]] = {}
        for view in project.compose_views:
            for svc in view.services.values():
                env = svc.get("environment")
                if env is not None and isinstance(env.data, dict):
                    for v in env.data.values():
                        owners.setdefault(id(v), (view, svc))
        return owners

    return project.memo("env_owner", build).get(id(subject.node))


def _shares_host_network(subject: Subject, project: Project) -> bool:
    """A compose service on the host's (or another container's) network: localhost is right."""
    found = _compose_service(subject, project)
    if found is None:
        return False
    mode = found[1].get("network_mode")
    text = (mode.as_str() or "") if mode is not None else ""
    return text == "host" or text.startswith(("service:", "container:"))


def _judged_text(value: Value, subject: Subject, project: Project) -> tuple[str | None, list[str]]:
    """The value to judge, and the values it may have been interpolated from.

    A value is reported where it is written. A compose value built by interpolation
    (``postgres://u:${PW}@localhost/db``) is judged too, but what it took from the ``.env``
    beside the compose file is that file's finding; the caller skips a problem that appears in
    one of those values."""
    text = _literal_text(value)
    if text is not None:
        return text, []
    target = value.lookup("value")
    found = _compose_service(subject, project)
    if found is None or target is None:
        return None, []
    return _known_text(target), list(found[0].dotenv.values())


def dev_host(value: Value, subject: Subject, project: Project, args: Mapping[str, Any]) -> Outcome:
    """The variable does not point at localhost, 0.0.0.0, example.com or a reserved test
    domain: in a URL (any name), or as a bare host of a dependency (DB_HOST, SMTP_SERVER) or of
    the site itself (DOMAIN, VIRTUAL_HOST)."""
    name = _fact_str(value, "name") or ""
    text, sources = _judged_text(value, subject, project)
    target = value.lookup("value")
    if text is None or target is None or _NOT_A_DESTINATION.search(name):
        return TRUE
    found: list[tuple[str, str]] = [
        (host, reason)
        for _, host in url_hosts(text)
        if (reason := dev_host_reason(host)) is not None
    ]
    if not found and (_is_dependency_host_name(name) or _PUBLIC_NAME.search(name)):
        found = [
            (host, reason)
            for host in bare_hosts(text)
            if (reason := dev_host_reason(host)) is not None
            and not reason.startswith("an unspecified")
        ]  # a bare 0.0.0.0 is a bind address
    found = [(h, r) for h, r in found if not any(h in source for source in sources)]
    if not found:
        return TRUE
    if all(r == "the local machine" for _, r in found) and _shares_host_network(subject, project):
        return TRUE
    host, reason = found[0]
    return Outcome(False, target, "value", {"host": host, "reason": reason})


# ----------------------------------------------------------------------------- CORS


def insecure_cors_origin(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Every listed origin is https and not a local one (``*`` and ``null`` are PSE002's)."""
    text, sources = _judged_text(value, subject, project)
    target = value.lookup("value")
    if text is None or target is None:
        return TRUE
    origins = [(u, h) for u, h in url_hosts(text) if not any(u in source for source in sources)]
    for url, host in origins:
        reason = dev_host_reason(host)
        if reason is not None and not reason.startswith("a documentation"):
            return Outcome(False, target, "value", {"origin": url, "reason": f"points at {reason}"})
    for url, _ in origins:
        if url.lower().startswith("http://"):
            return Outcome(False, target, "value", {"origin": url, "reason": "is plain http"})
    return TRUE


# ----------------------------------------------------------------------------- test keys


_TEST_KEYS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(r"(?:^|[^A-Za-z0-9_])" + pattern), label)
    for pattern, label in (
        (r"sk_test_\w", "a test-mode secret key (sk_test_, Stripe/Paystack)"),
        (r"rk_test_\w", "a test-mode restricted key (rk_test_, Stripe)"),
        (r"pk_test_\w", "a test-mode publishable key (pk_test_, Stripe/Paystack)"),
        (r"rzp_test_\w", "a test-mode key (rzp_test_, Razorpay)"),
        (r"FLWSECK_TEST-\w", "a test-mode secret key (FLWSECK_TEST-, Flutterwave)"),
        (r"FLWPUBK_TEST-\w", "a test-mode public key (FLWPUBK_TEST-, Flutterwave)"),
        (r"sandbox-sq0[a-z]{3}-", "a sandbox credential (sandbox-sq0, Square)"),
    )
)


def test_credential(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The value is not a payment provider's test-mode or sandbox key."""
    text = _literal_text(value)
    target = value.lookup("value")
    if text is None or target is None:
        return TRUE
    for pattern, label in _TEST_KEYS:
        if pattern.search(text):
            # Test keys are still credentials: the line is masked, only the prefix is named.
            return Outcome(False, _masked(target), "value", {"kind": label, "reason": label})
    return TRUE


# ----------------------------------------------------------------------------- sandbox


_MAILTRAP = ("mailtrap.io", "mailtrap.live")


def _sandbox_host(host: str) -> bool:
    h = host.lower().rstrip(".")
    if "." not in h:
        return False  # a compose service called "sandbox" is the deployment's own
    if h.endswith(_MAILTRAP) or any(h == m or h.endswith("." + m) for m in _MAILTRAP):
        return True
    return any("sandbox" in label.split("-") for label in h.split(".")[:-1])


def sandbox_endpoint(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The variable does not point at a provider's sandbox (``api-m.sandbox.paypal.com``,
    ``sandbox.plaid.com``, Mailtrap) nor select its sandbox mode (``PAYPAL_MODE=sandbox``)."""
    name = _fact_str(value, "name") or ""
    text = _literal_text(value)
    target = value.lookup("value")
    if text is None or target is None or "sandbox" in name.lower():
        return TRUE  # APPLE_SANDBOX_VERIFY_URL names the sandbox on purpose
    for _, host in url_hosts(text):
        if _sandbox_host(host):
            return Outcome(False, target, "value", {"what": f"the sandbox host {host}"})
    if not _sandbox_mode_name(name) or text.strip().strip("'\"").lower() != "sandbox":
        return TRUE
    return Outcome(False, target, "value", {"what": "sandbox mode"})


def _sandbox_mode_name(name: str) -> bool:
    parts = _segments(name)
    return bool(parts) and parts[-1] in {"mode", "env", "environment"}


# ----------------------------------------------------------------------------- AWS keys


# AWS access key ids are AKIA (long-term) or ASIA (temporary) and 16 base32 characters.
_AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Z0-9])")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _placeholder_key_id(key: str) -> bool:
    body = key[4:]
    if "EXAMPLE" in body:  # AKIAIOSFODNN7EXAMPLE, from the AWS documentation
        return True
    return any(body[i] == body[i + 1] == body[i + 2] == body[i + 3] for i in range(len(body) - 3))


def _aws_secret_shape(text: str) -> bool:
    """40 characters of base64 with upper, lower and digits: how AWS generates them."""
    return (
        len(text) == 40
        and set(text) <= _BASE64
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )


def aws_credentials(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No AWS access key id anywhere in the value, and no real-looking secret access key in an
    AWS secret variable (placeholders and defaults are PSE003's)."""
    from policyscan.secretstrength import SecretClass, assess, classify_name, is_reference

    text = _literal_text(value)
    target = value.lookup("value")
    if text is None or target is None:
        return TRUE
    for match in _AWS_KEY_ID.finditer(text):
        if not _placeholder_key_id(match.group(0)):
            kind = (
                "a long-term access key id (AKIA...)"
                if match.group(0).startswith("AKIA")
                else "a temporary access key id (ASIA...)"
            )
            return Outcome(False, _masked(target), "value", {"what": kind, "reason": kind})
    name = _fact_str(value, "name") or ""
    stripped = text.strip()
    if (
        classify_name(name) is SecretClass.AWS_SECRET
        and not is_reference(stripped)
        and _aws_secret_shape(stripped)
        and assess(stripped, SecretClass.AWS_SECRET) is None
    ):
        what = "a secret access key (40 characters)"
        return Outcome(False, _masked(target), "value", {"what": what, "reason": what})
    return TRUE


# ----------------------------------------------------------------------------- literal secrets


def url_password(text: str) -> str | None:
    """The literal password of the first URL in ``text`` that carries one
    (``postgres://app:s3cret@db/app``), or None; ``${DB_PASSWORD}`` is no literal."""
    for url, _ in url_hosts(text):
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password and "$" not in password and "{" not in password:
            return password
    return None


def _literal_secret(value: Value) -> tuple[Value, str] | None:
    """(the value node, its redacted form) when the subject's value is a literal secret: a
    secret-named variable's value that is not empty, not a reference, not a known default or
    placeholder (those are PSE003's weak secrets: reporting them twice says nothing new), or a
    password written into a URL (DATABASE_URL, REDIS_URL; no other rule judges those)."""
    from policyscan.secretstrength import assess, classify_name, is_reference, redact

    name = _fact_str(value, "name") or ""
    cls = classify_name(name)
    text = _literal_text(value)
    target = value.lookup("value")
    if text is None or target is None:
        return None
    stripped = text.strip()
    if cls is None:
        password = url_password(stripped)
        return (_masked(target), f"a password in a URL, {redact(password)}") if password else None
    if not stripped or is_reference(stripped):
        return None
    weakness = assess(stripped, cls)
    if weakness is not None and weakness.code in ("default", "placeholder"):
        return None
    return _masked(target), redact(stripped)


def dockerfile_secret(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No secret in a Dockerfile ENV/ARG: neither a literal (it is in the repository and the
    image history) nor, for an ENV of the shipped image, a build argument copied into the
    image's environment (``docker inspect`` shows it)."""
    from policyscan.secretstrength import classify_name, is_reference

    found = _literal_secret(value)
    if found is not None:
        masked, redacted = found
        return Outcome(
            False, masked, "value", {"how": f"a literal value ({redacted})", "reason": "literal"}
        )
    name = _fact_str(value, "name") or ""
    text = _known_text(value.lookup("value"))
    target = value.lookup("value")
    if (
        classify_name(name) is None
        or text is None
        or target is None
        or not is_reference(text.strip())
    ):
        return TRUE
    if in_runtime(value, subject, project, args).result is not True:
        return TRUE
    doc: DockerfileDocument | None = project.documents.get(subject.path)
    arg_names: set[str] = set()
    if doc is not None:
        arg_names = {a.name for a in doc.global_args} | {
            a.name for s in doc.stages for a in s.assignments if a.cmd == "ARG"
        }
    referenced = text.strip().lstrip("$").strip("{}").split(":", 1)[0]
    if referenced not in arg_names:
        return TRUE
    return Outcome(
        False,
        target,
        "value",
        {
            "how": f"the build argument {referenced} copied into the image's environment",
            "reason": "from-arg",
        },
    )


def literal_secret(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A secret (by its name, or a password in a URL) is not written as a literal: a compose
    ``environment`` entry is a reference (``${VAR}``, ``*_FILE`` with compose ``secrets:``), a
    tfvars assignment comes from the environment at apply time (``TF_VAR_...``)."""
    found = _literal_secret(value)
    if found is None:
        return TRUE
    target, redacted = found
    return Outcome(False, target, "value", {"redacted": redacted, "reason": "literal"})


# ----------------------------------------------------------------------------- required variables


def _env_docs_by_dir(project: Project) -> dict[str, list[EnvDocument]]:
    """Env documents by directory, built once per project: the template and interpolation
    checks ask for every key of every file, and a monorepo has thousands of env files."""

    def build() -> dict[str, list[EnvDocument]]:
        by_dir: dict[str, list[EnvDocument]] = {}
        for doc in project.docs(Kind.ENV):
            by_dir.setdefault(posixpath.dirname(doc.artifact.path), []).append(doc)
        return by_dir

    return project.memo("env_docs_by_dir", build)


def _deployed_env_files(project: Project, template_path: str) -> list[EnvDocument]:
    """The env files a template describes: in its directory, not templates, and either
    production files or the template's own base (``.env`` for ``.env.example``) when that one
    is not a development file."""
    base = template_path.rsplit(".", 1)[0]
    return [
        doc
        for doc in _env_docs_by_dir(project).get(posixpath.dirname(template_path), [])
        if not doc.artifact.template
        and (
            doc.artifact.environment is Environment.PRODUCTION
            or (doc.artifact.path == base and doc.artifact.environment is Environment.UNKNOWN)
        )
    ]


def has_deployed_env(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The subject is an env template with a deployed (production) env file beside it."""
    if not subject.template or subject.kind is not Kind.ENV:
        return Outcome(False)
    return Outcome(bool(_deployed_env_files(project, subject.path)))


def _set_in_compose(project: Project, directory: str, name: str) -> bool:
    for view in _deployed_views_by_dir(project).get(directory, ()):
        for svc in view.services.values():
            env = svc.get("environment")
            entry = env.get(name) if env is not None else None
            if entry is not None and (not entry.known or entry.data is None or entry.as_str()):
                return True
    return False


def _deployed_views_by_dir(project: Project) -> dict[str, list[ComposeView]]:
    """Non-development compose views by directory, in project order: asked per template key,
    a pass over every view made a monorepo quadratic."""

    def build() -> dict[str, list[ComposeView]]:
        views: dict[str, list[ComposeView]] = {}
        for view in project.compose_views:
            if view.environment is not Environment.DEVELOPMENT:
                views.setdefault(view.directory, []).append(view)
        return views

    return project.memo("env_deployed_views_by_dir", build)


def template_key_set(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The template's key is present and non-empty in every deployed env file beside it (or set
    by a production compose service of that directory). A missing key is reported at the
    template's line (the only line there is); an empty one at the deployed file's line."""
    name = _fact_str(value, "name") or ""
    name_node = value.lookup("name")
    template = posixpath.basename(subject.path)
    # A key the template leaves empty is one to fill in; a key with a value documents a
    # default the application falls back to, so leaving it out is not a finding (an explicit
    # empty value in the deployed file still is).
    has_default = bool((_known_text(value.lookup("value")) or "").strip())
    targets = _deployed_env_files(project, subject.path)
    checked: list[str] = []
    for doc in targets:
        entry = doc.get(name)
        target_name = posixpath.basename(doc.artifact.path)
        if entry is None:
            if has_default or _set_in_compose(project, posixpath.dirname(subject.path), name):
                continue
            return Outcome(
                False,
                name_node,
                "name",
                {
                    "problem": f"listed in {template} but missing from {target_name}",
                    "reason": "missing",
                },
            )
        if entry.value is not None and not entry.value.strip():
            blame = Value(entry.value, doc.artifact.path, entry.value_span)
            related = (
                (Related(name_node.location, f"{template} lists {name}"),) if name_node else ()
            )
            return Outcome(
                False,
                blame,
                "value",
                {"problem": f"empty in {target_name} ({template} lists it)", "reason": "empty"},
                related,
            )
        checked.append(target_name)
    if not checked:
        return TRUE
    return Outcome(True, details={"evidence": f"{name} set in {', '.join(checked)}"})


# Variables every shell has; compose users rely on them (``${PWD}/data``).
_SHELL_VARIABLES = frozenset(
    {"HOME", "PWD", "USER", "UID", "GID", "HOSTNAME", "PATH", "SHELL", "LOGNAME"}
)


def _env_files_for(project: Project, view: ComposeView) -> list[EnvDocument]:
    """Env files that can feed a view's interpolation: every env file in its directory (``.env``
    is read by compose, others through ``--env-file``; a template lists what the deployment
    sets) and the files its services name in ``env_file``."""
    wanted = env_file_targets(view)
    by_dir = _env_docs_by_dir(project)
    out = list(by_dir.get(view.directory, []))
    for wanted_path in sorted(wanted):
        out.extend(
            d
            for d in by_dir.get(posixpath.dirname(wanted_path), [])
            if d.artifact.path == wanted_path and d not in out
        )
    return out


def env_file_targets(view: ComposeView) -> set[str]:
    """The paths the view's services name in ``env_file``, from the root."""
    wanted: set[str] = set()
    for svc in view.services.values():
        env_file = svc.get("env_file")
        if env_file is None:
            continue
        items = env_file.data if isinstance(env_file.data, list) else [env_file]
        for item in items:
            node = item.get("path") if isinstance(item.data, dict) else item
            text = node.as_str() if node is not None else None
            if text:
                wanted.add(posixpath.normpath(posixpath.join(view.directory, text)))
    return wanted


def compose_variable_defined(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A ``${VAR}`` without default is defined by an env file beside the compose file. With no
    env file at all, the variables come from the deployment's shell: not determinable."""
    view, _ = subject.node
    name = _fact_str(value, "name") or ""
    if name in view.dotenv or name in _SHELL_VARIABLES or not name.isidentifier():
        return TRUE  # "$1" is no variable compose could define
    files = _env_files_for(project, view)
    if not files:
        return Outcome(
            None,
            details={
                "evidence": f"no env file beside {view.name}: ${{{name}}} must come from the shell"
            },
        )
    if any(doc.get(name) is not None for doc in files):
        return TRUE
    searched = ", ".join(sorted(posixpath.basename(d.artifact.path) for d in files)[:4])
    return Outcome(
        False, value.lookup("name"), "name", {"searched": searched, "ref": f"${{{name}}}"}
    )


# ----------------------------------------------------------------------------- error tracking


ERROR_TRACKERS = re.compile(
    r"(?:^|_)SENTRY_DSN$|^ROLLBAR_(?:ACCESS_TOKEN|SERVER_TOKEN|POST_SERVER_ITEM_ACCESS_TOKEN)$"
    r"|^NEW_?RELIC_LICENSE_KEY$|^(?:DD|DATADOG)_API_KEY$|^BUGSNAG_(?:API_KEY|KEY)$"
    r"|^HONEYBADGER_API_KEY$|^AIRBRAKE_PROJECT_KEY$|^APPSIGNAL_PUSH_API_KEY$|^RAYGUN_API_KEY$"
    r"|^ELASTIC_APM_SERVER_URL$",
    re.IGNORECASE,
)


def tracker_variables(project: Project) -> list[Subject]:
    """Error-tracker variables of env files and non-development compose services, found once
    per project (every env file asks)."""
    return project.memo(
        "env_trackers",
        lambda: [
            other
            for other in project.subjects("variable")
            if not other.template
            and other.kind is not Kind.DOCKERFILE
            and other.environment is not Environment.DEVELOPMENT
            and ERROR_TRACKERS.search(_fact_str(other.facts, "name") or "")
        ],
    )


# Keys only an application's own configuration has: a file with none of them configures
# images (a datastore's password, a tool's options), where error tracking has no meaning.
_APPLICATION_KEYS = re.compile(
    r"^(?:[A-Z0-9]+_)?DEBUG$|^(?:ENV|ENVIRONMENT|APP_ENV|APP_ENVIRONMENT|NODE_ENV|FLASK_ENV|RAILS_ENV"
    r"|RACK_ENV|DJANGO_ENV|DJANGO_SETTINGS_MODULE|ASPNETCORE_ENVIRONMENT)$|(?:^|_)LOG_?LEVEL$"
    r"|^(?:DATABASE|DB)_URL$|ALLOWED_HOSTS$|CORS_",
    re.IGNORECASE,
)


def configures_application(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The env file configures an application, not only images: it has a signing key
    (SECRET_KEY, JWT_SECRET, APP_KEY...) or an application switch (DEBUG, ENVIRONMENT,
    LOG_LEVEL, DATABASE_URL, ALLOWED_HOSTS, CORS_*)."""
    from policyscan.secretstrength import SecretClass, classify_name

    keys = value.lookup("keys")
    names = [k for k, _ in keys.items()] if keys is not None else []
    return Outcome(
        any(
            _APPLICATION_KEYS.search(n) or classify_name(n) is SecretClass.SIGNING_KEY
            for n in names
        )
    )


def error_tracking_configured(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """An env file or non-development compose service in this env file's directory (or one
    above or below it) names an error tracker (SENTRY_DSN, ROLLBAR_ACCESS_TOKEN,
    NEW_RELIC_LICENSE_KEY, DD_API_KEY, ...). An empty one counts too: PSE014 reports it where
    it is."""
    other = _first_related_tracker(project, posixpath.dirname(subject.path))
    if other is not None:
        name = _fact_str(other.facts, "name") or ""
        return Outcome(True, details={"evidence": f"{name} in {other.path}"})
    return Outcome(False, details={"searched": "env files and compose environment"})


def _first_related_tracker(project: Project, directory: str) -> Subject | None:
    """The first tracker variable (in tracker_variables' order) in ``directory``, above it or
    below it: a root compose file configures the services whose env files sit below it, while
    sibling services of a monorepo are unrelated. Looked up by the directory's ancestors and in
    an index of what lies below each directory, built once: a walk over every tracker for every
    env file was quadratic."""
    trackers = tracker_variables(project)

    def build() -> tuple[dict[str, int], dict[str, int]]:
        first_in: dict[str, int] = {}  # directory -> first tracker there
        first_below: dict[str, int] = {}  # directory -> first tracker strictly below it
        for position, other in enumerate(trackers):
            where = posixpath.dirname(other.path)
            first_in.setdefault(where, position)
            while where:
                where = posixpath.dirname(where)
                first_below.setdefault(where, position)
        return first_in, first_below

    first_in, first_below = project.memo("env_trackers_by_dir", build)
    if not trackers or not directory:
        return trackers[0] if trackers else None  # the root is related to every directory
    found = [first_in[directory]] if directory in first_in else []
    if directory in first_below:
        found.append(first_below[directory])
    above = directory
    while above:  # ancestors, up to the root ("")
        above = posixpath.dirname(above)
        if above in first_in:
            found.append(first_in[above])
    return trackers[min(found)] if found else None


# ----------------------------------------------------------------------------- pooling, sessions


_POOL_SIZE = re.compile(
    r"(?:^|_)(?:POOL_SIZE|POOL_MAX|MAX_POOL_SIZE|POOL_MAX_SIZE|MAX_OVERFLOW|POOL_MIN|MIN_POOL_SIZE"
    r"|CONNECTION_LIMIT|MAX_CONNECTIONS_PER_WORKER)$|^(?:DATABASE_|DB_)?CONN_MAX_AGE$",
    re.IGNORECASE,
)
_POOL_DISABLED_NAME = re.compile(
    r"(?:^|_)(?:DISABLE_POOL|DISABLE_POOLING|POOL_DISABLED|NO_POOL)$", re.IGNORECASE
)
_POOL_CLASS_NAME = re.compile(r"(?:^|_)POOL_?CLASS$", re.IGNORECASE)
_URL_POOL = re.compile(
    r"[?&](?:pool_size|connection_limit|max_pool_size|maxPoolSize|pool_max)=\d", re.IGNORECASE
)
_EXTERNAL_POOLER = re.compile(r"pgbouncer|pgpool|odyssey|pgcat|supavisor|proxysql", re.IGNORECASE)


def _external_pooler(project: Project) -> str | None:
    """A pooler service in compose or an RDS proxy in Terraform: pooling happens outside."""
    found = project.memo("compose_pooler", lambda: compose_pooler(project))
    if found is not None:
        return found
    for _, block in project.terraform_resources(("aws_db_proxy",)):
        return block.address
    return None


def compose_pooler(project: Project) -> str | None:
    """The first pooler service of any compose view, as _external_pooler names it."""
    for view in project.compose_views:
        for name, svc in view.services.items():
            image = svc.get("image")
            if _EXTERNAL_POOLER.search(name) or (
                image is not None and _EXTERNAL_POOLER.search(image.as_str() or "")
            ):
                return f"service {name}"
    return None


def connection_pooling(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """True for a pool setting (DB_POOL_SIZE=20, ``?pool_size=`` in a database URL, CONN_MAX_AGE
    above 0), False only when pooling is switched off (NullPool, DB_DISABLE_POOLING=true) and
    nothing pools outside the application either; None for anything else."""
    from policyscan.policy.operators import TRUTHY

    name = _fact_str(value, "name") or ""
    text = _known_text(value.lookup("value"))
    if text is None:
        return UNKNOWN
    setting = text.strip().strip("'\"")
    disabled = (_POOL_DISABLED_NAME.search(name) is not None and setting.lower() in TRUTHY) or (
        _POOL_CLASS_NAME.search(name) is not None
        and setting.rsplit(".", 1)[-1].lower() == "nullpool"
    )
    if disabled:
        pooler = project.memo("env_external_pooler", lambda: _external_pooler(project))
        if pooler is not None:
            return Outcome(
                True, details={"evidence": f"{name} off in the application; {pooler} pools"}
            )
        return Outcome(False, value.lookup("value"), "value", {"setting": setting})
    if _POOL_SIZE.search(name):
        try:
            number = float(setting)
        except ValueError:
            return UNKNOWN
        if number > 0:
            return Outcome(True, details={"evidence": f"{name}={setting}"})
        return UNKNOWN  # 0 means "no limit" for some libraries, "no pooling" for others
    if _URL_POOL.search(text):
        return Outcome(True, details={"evidence": f"pool option in {name}"})
    return UNKNOWN


_SESSION_BACKEND = re.compile(
    r"^(?:[A-Z0-9]+_)?SESSION_(?:ENGINE|BACKEND|DRIVER|STORE|TYPE|STORAGE|HANDLER)$", re.IGNORECASE
)
_REDIS_URL_NAME = re.compile(r"(?:^|_)REDIS_(?:URL|URI|DSN)$|^SESSION_REDIS", re.IGNORECASE)
# In-process stores: lost on restart and not shared between workers or replicas.
_MEMORY_STORES = frozenset({"memory", "inmemory", "in-memory", "memorystore", "array", "locmem"})


def session_store(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """True when sessions (or the cache) point at Redis, False for an in-process memory store,
    None for any other backend (a database or file store may be fine)."""
    name = _fact_str(value, "name") or ""
    text = _known_text(value.lookup("value"))
    if text is None:
        return UNKNOWN
    setting = text.strip().strip("'\"").lower()
    if _SESSION_BACKEND.search(name):
        if "redis" in setting or "valkey" in setting:
            return Outcome(True, details={"evidence": f"{name} uses Redis"})
        last = re.split(r"[.:/\\]", setting)[-1]
        if last in _MEMORY_STORES:
            return Outcome(False, value.lookup("value"), "value", {"store": last})
        return UNKNOWN
    if _REDIS_URL_NAME.search(name) and setting.startswith(
        ("redis://", "rediss://", "redis+", "unix://")
    ):
        return Outcome(True, details={"evidence": f"{name} points at Redis"})
    return UNKNOWN


PREDICATES: dict[str, Predicate] = {
    "secret_name": secret_name,
    "in_runtime": in_runtime,
    "dev_host": dev_host,
    "insecure_cors_origin": insecure_cors_origin,
    "test_credential": test_credential,
    "sandbox_endpoint": sandbox_endpoint,
    "aws_credentials": aws_credentials,
    "dockerfile_secret": dockerfile_secret,
    # Its first name, kept for the policies that use it.
    "compose_literal_secret": literal_secret,
    "literal_secret": literal_secret,
    "has_deployed_env": has_deployed_env,
    "template_key_set": template_key_set,
    "compose_variable_defined": compose_variable_defined,
    "configures_application": configures_application,
    "error_tracking_configured": error_tracking_configured,
    "connection_pooling": connection_pooling,
    "session_store": session_store,
}
