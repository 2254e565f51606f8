"""nginx checks that need the context tree: what a server or location inherits from the http
block, what a whole server serves, and which server speaks for a setting it shares.

Three rules of honesty run through them:
- an ``include`` the scan could not read (left in place by the project view) may set anything,
  so a setting that is not found where such an include sits is unknown, not missing;
- a file with server blocks but no ``http`` block is a snippet of a configuration we cannot
  see; http-level defaults are only assumed when no main configuration sits beside it;
- a setting written once at the http level is reported once, by the first server that
  inherits it, not once per server.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from policyscan.model import Kind, Related, Value
from policyscan.parsers.nginx_stock import STOCK_FILES
from policyscan.policy.conditions import TRUE, UNKNOWN, Outcome, Predicate

if TYPE_CHECKING:
    # Types only: loading policies must not import the parsers (see policyscan/scopes.py).
    from policyscan.parsers.nginx import Directive
    from policyscan.project import NginxContext, Project, Subject

_HANDLERS = frozenset(
    {
        "proxy_pass",
        "fastcgi_pass",
        "uwsgi_pass",
        "scgi_pass",
        "grpc_pass",
        "memcached_pass",
        "root",
        "alias",
        "try_files",
        "index",
        "autoindex",
    }
)
_PROXIES = frozenset(
    {"proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass"}
)


# ------------------------------------------------------------------------------- tree helpers


def _ctx(subject: Subject) -> NginxContext | None:
    return subject.node if subject.scope in ("nginx.server", "nginx.location") else None


def _block(directive: Directive) -> list[Directive]:
    return directive.block or []


def opaque(directive: Directive) -> list[Directive]:
    """Includes left unread in this block (resolved ones were replaced by their content)."""
    return [
        d
        for d in _block(directive)
        if d.name == "include" and d.args and posixpath.basename(d.args[0]) not in STOCK_FILES
    ]


def _walk(directive: Directive) -> Iterator[Directive]:
    """Every directive nested in this block, depth first, in file order."""
    for child in _block(directive):
        yield child
        if child.block is not None:
            yield from _walk(child)


def _subtree_opaque(directive: Directive) -> bool:
    if opaque(directive):
        return True
    return any(d.block is not None and opaque(d) for d in _walk(directive))


def ancestor(ctx: NginxContext | None, name: str) -> NginxContext | None:
    while ctx is not None and ctx.directive.name != name:
        ctx = ctx.parent
    return ctx


def _last(directive: Directive, name: str) -> Directive | None:
    found = directive.find(name)
    return found[-1] if found else None


def _value(d: Directive, text: str | None = None) -> Value:
    shown = " ".join(d.args) if text is None else text
    return Value(shown, d.path, d.span, text=shown)


def _header_value(d: Directive) -> str:
    """add_header's value without the ``always`` flag and quotes."""
    args = list(d.args[1:])
    if args and args[-1].lower() == "always":
        args.pop()
    return " ".join(args).strip().strip("\"'").strip()


def _is_on(d: Directive | None) -> bool:
    return d is not None and bool(d.args) and d.args[0].lower() in ("on", "always")


def _servers(project: Project) -> list[NginxContext]:
    return _index(project)[0]


def _locations_of(project: Project, server: NginxContext) -> list[NginxContext]:
    return _index(project)[1].get(id(server), [])


def _index(project: Project) -> tuple[list[NginxContext], dict[int, list[NginxContext]]]:
    """Servers, and locations by server, built once per project: predicates ask per subject."""

    def build() -> tuple[list[NginxContext], dict[int, list[NginxContext]]]:
        servers = [c for k, c in project.nginx_contexts if k == "server"]
        locations: dict[int, list[NginxContext]] = {}
        for kind, ctx in project.nginx_contexts:
            if kind == "location":
                locations.setdefault(id(ancestor(ctx, "server")), []).append(ctx)
        return servers, locations

    return project.memo("nginx_index", build)


def main_config_beside(project: Project, path: str) -> bool:
    """Another nginx file with an ``http`` block in this file's directory or the one above: the
    main configuration that probably includes this one at run time (its http settings apply)."""

    def build() -> dict[str, list[str]]:
        by_dir: dict[str, list[str]] = {}
        for doc in project.docs(Kind.NGINX):
            if any(d.name == "http" for d in doc.directives):
                by_dir.setdefault(posixpath.dirname(doc.artifact.path), []).append(
                    doc.artifact.path
                )
        return by_dir

    with_http = project.memo("nginx_http_files_by_dir", build)
    here = posixpath.dirname(path)
    return any(
        other != path
        for place in {here, posixpath.dirname(here)}
        for other in with_http.get(place, ())
    )


def is_tls(server: Directive) -> bool:
    if any("ssl" in d.args or "quic" in d.args for d in server.find("listen")):
        return True
    ssl = _last(server, "ssl")
    return ssl is not None and ssl.args[:1] == ("on",)


# ----------------------------------------------------------------------- what a server serves

_HTTPS_TARGET = re.compile(r"^[\"']?https://", re.IGNORECASE)
_SCHEME_TEST = re.compile(r"\$(?:scheme|https|http_x_forwarded_proto|server_port)\b", re.IGNORECASE)


def _redirects_to_https(block_owner: Directive) -> bool:
    for d in _block(block_owner):
        if (
            d.name == "return"
            and len(d.args) >= 2
            and d.args[0] in ("301", "302", "303", "307", "308")
            and _HTTPS_TARGET.match(d.args[1])
        ):
            return True
        if d.name == "return" and len(d.args) == 1 and _HTTPS_TARGET.match(d.args[0]):
            return True  # `return https://...` is a 302
        if d.name == "rewrite" and len(d.args) >= 2 and _HTTPS_TARGET.match(d.args[1]):
            return True
    return False


def location_serves(loc: Directive) -> bool | None:
    """Does this location hand out content (files or a proxied app)? None when an unread include
    could change the answer. Redirects, fixed returns, ACME challenges, internal and denied
    locations do not count."""
    args = " ".join(loc.args)
    if loc.args and loc.args[-1].startswith("@"):
        return False
    if "acme-challenge" in args or ".well-known" in args:
        return False
    names = {d.name for d in _block(loc)}
    if names & {"return", "internal", "stub_status"}:
        return False
    if _redirects_to_https(loc):
        return False
    if (
        any(d.name == "deny" and d.args[:1] == ("all",) for d in _block(loc))
        and "allow" not in names
    ):
        return False
    if opaque(loc):
        return None
    return True


def server_redirect(server: Directive) -> bool:
    """The whole server answers with a redirect or a fixed response, before any location."""
    if any(d.name == "return" for d in _block(server)):
        return True
    if _redirects_to_https(server):
        return True
    for d in server.find("if"):
        if _SCHEME_TEST.search(" ".join(d.args)) and _redirects_to_https(d):
            return True  # if ($scheme != https) { return 301 https://... }
    return False


def _content(project: Project, server: NginxContext) -> tuple[bool | None, NginxContext | None]:
    """Whether the server serves content, and the first location that does."""
    return project.memo_for("nginx_content", server, lambda: _compute_content(project, server))


def _compute_content(
    project: Project, server: NginxContext
) -> tuple[bool | None, NginxContext | None]:
    if server_redirect(server.directive):
        return False, None
    locations = _locations_of(project, server)
    unknown = False
    for loc in locations:
        serves = location_serves(loc.directive)
        if serves:
            return True, loc
        if serves is None:
            unknown = True
    if opaque(server.directive) or unknown:
        return None, None
    if not locations and any(d.name in _HANDLERS for d in _block(server.directive)):
        return True, None
    return False, None


# ------------------------------------------------------------------------------- reported once


def _declares(project: Project, server: Directive, names: frozenset[str]) -> bool:
    """The server sets one of ``names`` itself (anywhere inside it), or could through an unread
    include: it is judged on its own, not as one of the http block's inheritors."""
    hidden, declared = _subtree(project, server)
    return hidden or not names.isdisjoint(declared)


def _subtree(project: Project, directive: Directive) -> tuple[bool, frozenset[str]]:
    """Whether the block has an unread include anywhere inside, and the names of the
    directives it holds: read once per block, since every judged_once rule walks every server
    (the project keeps each directive alive, so its id is not reused)."""
    return project.memo_for(
        "nginx_subtree",
        directive,
        lambda: (_subtree_opaque(directive), frozenset(d.name for d in _walk(directive))),
    )


def judged_once(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Select the servers a setting is judged on. A server that declares the setting is judged
    on its own; among those that inherit it, only the first (in file order) of each http block
    (``per: http``, the default) or of the whole project (``per: project``) speaks for all.
    ``tls: true`` / ``content: true`` narrow to TLS servers / servers serving content;
    ``need_http: true`` skips inheritors that have no visible http block."""
    ctx = _ctx(subject)
    if ctx is None or subject.scope != "nginx.server":
        return Outcome(False)
    names = frozenset(str(n) for n in args.get("directives", ()))
    per = str(args.get("per", "http"))

    def eligible(server: NginxContext) -> bool:
        if args.get("tls") and not is_tls(server.directive):
            return False
        return not (args.get("content") and _content(project, server)[0] is False)

    if not eligible(ctx):
        return Outcome(False)
    if _declares(project, ctx.directive, names):
        return Outcome(True)
    http = ancestor(ctx, "http")
    if per != "project" and http is None:
        return Outcome(not args.get("need_http"))

    def firsts() -> dict[int | None, NginxContext]:
        # The first undeclaring server of every group, in one pass over the servers: a pass
        # per http block made a tree of many nginx files quadratic.
        first: dict[int | None, NginxContext] = {}
        for s in _servers(project):
            key = id(ancestor(s, "http")) if per != "project" else None
            if key not in first and eligible(s) and not _declares(project, s.directive, names):
                first[key] = s
        return first

    first = project.memo(
        ("nginx_judged_once", per, names, bool(args.get("tls")), bool(args.get("content"))),
        firsts,
    )
    group = id(http) if per != "project" else None
    return Outcome(first.get(group) is ctx)


# ------------------------------------------------------------------------------- TLS


def tls_certificate(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A TLS server has ssl_certificate and ssl_certificate_key, its own or the http block's."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    server = ctx.directive
    if _is_on(_last(server, "ssl_reject_handshake")):
        return Outcome(
            True, details={"evidence": "ssl_reject_handshake on (refuses TLS on purpose)"}
        )
    missing = [
        name for name in ("ssl_certificate", "ssl_certificate_key") if ctx.lookup(name) is None
    ]
    if not missing:
        return Outcome(True, details={"evidence": "ssl_certificate and ssl_certificate_key"})
    http = ancestor(ctx, "http")
    if opaque(server) or (http is not None and opaque(http.directive)):
        return UNKNOWN
    if http is None and main_config_beside(project, server.path):
        return UNKNOWN
    return Outcome(False, details={"missing": " and ".join(missing)})


_OLD_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")


def modern_tls_protocols(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The ssl_protocols in force for a TLS server (its own, else the http block's) enable
    nothing older than TLSv1.2."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    found = _last(ctx.directive, "ssl_protocols")
    if found is None:
        if opaque(ctx.directive):
            return UNKNOWN
        http = ancestor(ctx, "http")
        found = _last(http.directive, "ssl_protocols") if http is not None else None
        if found is None:
            # The default depends on the version: TLSv1 and TLSv1.1 until nginx 1.23.4.
            return Outcome(
                None,
                details={
                    "evidence": "ssl_protocols not set: nginx's default depends on its version"
                },
            )
    old = [p for p in found.args if p in _OLD_PROTOCOLS]
    if any("$" in p for p in found.args):
        return Outcome(None, _value(found), "ssl_protocols")
    if old:
        return Outcome(False, _value(found), "ssl_protocols", {"old": ", ".join(old)})
    return Outcome(True, details={"evidence": "ssl_protocols " + " ".join(found.args)})


def _plain_port_80(server: Directive) -> Directive | None:
    """The listen that accepts plain HTTP on port 80 of a public address (no listen at all
    means ``*:80``), or None."""
    listens = server.find("listen")
    if not listens:
        return server
    for listen in listens:
        if not listen.args or "ssl" in listen.args or "quic" in listen.args:
            continue
        address = listen.args[0]
        if address.startswith("unix:"):
            continue
        if address.isdigit():
            host, port = "*", address
        elif address.startswith("["):
            host, _, rest = address.partition("]")
            host += "]"
            port = rest[1:] if rest.startswith(":") else "80"
        elif ":" in address:
            host, port = address.rsplit(":", 1)
        else:
            host, port = address, "80"
        if port == "80" and host.lower() not in ("127.0.0.1", "localhost", "[::1]"):
            return listen
    return None


def plain_http_server(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A server taking plain HTTP on port 80 of an nginx that terminates TLS itself (a TLS server
    in the same directory, the one above or one below); otherwise TLS is done in front of this
    nginx, or nowhere, which is the cross-file rule's question."""
    ctx = _ctx(subject)
    if ctx is None or _plain_port_80(ctx.directive) is None:
        return Outcome(False)

    def tls_dirs() -> tuple[set[str], set[str]]:
        dirs = {
            posixpath.dirname(s.directive.path) for s in _servers(project) if is_tls(s.directive)
        }
        return dirs, {posixpath.dirname(d) for d in dirs}

    dirs, parents = project.memo("nginx_tls_dirs", tls_dirs)
    here = posixpath.dirname(ctx.directive.path)
    # The same nginx: a TLS server in this directory, the one above, or one below it.
    return Outcome(here in dirs or posixpath.dirname(here) in dirs or here in parents)


def http_redirects(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The plain-HTTP server redirects to https (or answers with a fixed response) instead of
    serving content; ACME challenge locations are allowed."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    serves, where = _content(project, ctx)
    if serves is None:
        return UNKNOWN
    if not serves:
        return Outcome(True, details={"evidence": "plain HTTP only redirects"})
    if where is None:
        return Outcome(
            False,
            details={
                "what": "serves "
                + ", ".join(sorted({d.name for d in _block(ctx.directive) if d.name in _HANDLERS}))
            },
        )
    handler = sorted({d.name for d in _block(where.directive) if d.name in _HANDLERS}) or [
        "files from root"
    ]
    return Outcome(
        False,
        details={"what": f"location {' '.join(where.directive.args)} ({', '.join(handler)})"},
        related=(Related(_value(where.directive).location, "served over plain HTTP"),),
    )


# ----------------------------------------------------------------------- http-level settings


def server_tokens_off(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """server_tokens is off for this server: its own, else the http block's (default on)."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    found = _last(ctx.directive, "server_tokens")
    http = ancestor(ctx, "http")
    if found is None:
        if opaque(ctx.directive) or http is None:
            return UNKNOWN
        found = _last(http.directive, "server_tokens")
    if found is None:
        if http is None or opaque(http.directive):
            return UNKNOWN
        return Outcome(
            False,
            _value(http.directive, "http"),
            "server_tokens",
            {"found": "not set in the http block (nginx's default is on)"},
        )
    setting = found.args[0].lower() if found.args else ""
    if "$" in setting:
        return Outcome(None, _value(found), "server_tokens")
    if setting == "off":
        return Outcome(True, details={"evidence": "server_tokens off"})
    return Outcome(False, _value(found), "server_tokens", {"found": setting})


def compression(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Responses of this server are compressed: gzip on with gzip_types, brotli, or
    precompressed files (gzip_static / brotli_static), in the server, its locations or the
    http block."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    server = ctx.directive
    http = ancestor(ctx, "http")
    levels = list(_walk(server)) + (_block(http.directive) if http is not None else [])
    for d in levels:
        if d.name in ("brotli", "brotli_static", "gzip_static") and _is_on(d):
            return Outcome(True, details={"evidence": f"{d.name} on"})
    nested = (d for child in _block(server) if child.block is not None for d in _walk(child))
    if any(d.name == "gzip" and _is_on(d) for d in nested):
        return Outcome(True, details={"evidence": "gzip on in a location"})
    gzip = _last(server, "gzip") or (_last(http.directive, "gzip") if http is not None else None)
    hidden = _subtree_opaque(server) or (http is not None and bool(opaque(http.directive)))
    if gzip is not None and _is_on(gzip):
        types = _last(server, "gzip_types") or (
            _last(http.directive, "gzip_types") if http is not None else None
        )
        if types is not None:
            return Outcome(True, details={"evidence": "gzip on with gzip_types"})
        if hidden:
            return UNKNOWN
        return Outcome(
            False,
            _value(gzip),
            "gzip",
            {"found": "gzip is on without gzip_types, so only text/html is compressed"},
        )
    if hidden:
        return UNKNOWN
    if gzip is not None:
        return Outcome(False, _value(gzip), "gzip", {"found": f"gzip {' '.join(gzip.args)}"})
    if http is None:
        if main_config_beside(project, server.path):
            return UNKNOWN
        return Outcome(False, None, "", {"found": "no gzip or brotli in this server"})
    return Outcome(
        False,
        _value(http.directive, "http"),
        "gzip",
        {"found": "no gzip or brotli in the http block or its servers"},
    )


def _walk_values(value: Value) -> Iterator[tuple[str, Value]]:
    for key, child in value.items():
        yield key, child
        if isinstance(child.data, dict | list):
            yield from _walk_values(child)


def _rate_limit_elsewhere(project: Project) -> str | None:
    """Rate limiting outside nginx: a WAFv2 rate-based rule, or a Traefik rate-limit middleware."""
    for _, block in project.terraform_resources(("aws_wafv2_web_acl",)):
        if any(k == "rate_based_statement" for k, _ in _walk_values(block.body)):
            return f"{block.address} has a rate-based rule"
    found: str | None = project.memo(
        "compose_rate_limit_label", lambda: compose_rate_limit_label(project)
    )
    return found


def compose_rate_limit_label(project: Project) -> str | None:
    """The first compose service with a rate-limit label (a Traefik middleware), as
    _rate_limit_elsewhere names it."""
    for view in project.compose_views:
        for name, svc in view.services.items():
            labels = svc.get("labels")
            if labels is not None and any("ratelimit" in k.lower() for k, _ in labels.items()):
                return f"compose service {name} configures a rate-limit middleware"
    return None


def rate_limit_other(project: Project) -> str | None:
    """Whether some server uses limit_req ("used") or, before one does, may through an unread
    include ("hidden"). The asking server is among them, but only when it has no limit_req."""
    for server in _servers(project):
        if any(d.name == "limit_req" for d in _walk(server.directive)):
            return "used"
        http = ancestor(server, "http")
        if _subtree_opaque(server.directive) or (http is not None and opaque(http.directive)):
            return "hidden"
    return None


def _own_limit_req(ctx: NginxContext) -> Directive | None:
    return next((d for d in _walk(ctx.directive) if d.name == "limit_req"), None)


def rate_limited_alone(subject: Subject) -> bool:
    """Whether rate_limited answers for this server from the server alone (it has limit_req
    itself), asking nothing of the rest of the tree."""
    ctx = _ctx(subject)
    return ctx is None or _own_limit_req(ctx) is not None


def rate_limited(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Requests to this server are rate limited somewhere: limit_req in the server, in another
    server of the project, or in front of nginx (WAF rate-based rule, Traefik middleware)."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    own = _own_limit_req(ctx)
    if own is not None:
        return Outcome(True, details={"evidence": "limit_req " + " ".join(own.args)})
    # Both answers are about the whole project: asked per server, they made a tree without
    # any limit_req quadratic.
    elsewhere = project.memo("nginx_rate_limit_elsewhere", lambda: _rate_limit_elsewhere(project))
    if elsewhere:
        return Outcome(True, details={"evidence": elsewhere})
    other = project.memo("nginx_rate_limit_other", lambda: rate_limit_other(project))
    if other == "used":
        return Outcome(None, details={"evidence": "limit_req is used by another server"})
    if other == "hidden":
        return UNKNOWN  # an unread include may hold the limit_req
    # Reported where limit_req_zone belongs: the http block (the server in an http-less file).
    http = ancestor(ctx, "http")
    if http is not None:
        return Outcome(False, _value(http.directive, "http"), "limit_req")
    return Outcome(False)


# ------------------------------------------------------------------------------- caching

_STATIC_EXTENSIONS = re.compile(
    r"\b(?:css|m?js|png|jpe?g|gif|svgz?|webp|avif|ico|woff2?|ttf|otf|eot)\b", re.IGNORECASE
)
_STATIC_DIRS = re.compile(
    r"(?:^|/)(?:_?static|assets|css|js|img|images|fonts)(?:/|$)", re.IGNORECASE
)


def static_location(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A location inside a server that nginx itself serves static assets from: a regex on
    asset extensions, a /static/ /assets/ ... prefix, or an exact asset file; not proxied."""
    ctx = _ctx(subject)
    if ctx is None or subject.scope != "nginx.location" or ancestor(ctx, "server") is None:
        return Outcome(False)
    loc = ctx.directive
    if not loc.args:
        return Outcome(False)
    modifier = loc.args[0] if len(loc.args) > 1 else ""
    pattern = loc.args[-1]
    if modifier in ("~", "~*"):
        static = "\\." in pattern and bool(_STATIC_EXTENSIONS.search(pattern))
    else:
        static = bool(_STATIC_DIRS.search(pattern)) or bool(
            re.search(
                r"\.(?:css|m?js|png|jpe?g|gif|svgz?|webp|avif|ico|woff2?)$", pattern, re.IGNORECASE
            )
        )
    if not static:
        return Outcome(False)
    if any(d.name in _PROXIES for d in _block(loc)):
        return Outcome(False)  # the upstream application sets its own caching headers
    return Outcome(location_serves(loc) is not False)


def cache_headers(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The location sends caching headers: an expires in force (its own or inherited, not
    ``off``) or a Cache-Control add_header that nginx does not drop here."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE
    where = " ".join(ctx.directive.args)
    expires = ctx.lookup("expires")
    if expires is not None:
        if expires.args[:1] != ("off",):
            return Outcome(True, details={"evidence": "expires " + " ".join(expires.args)})
        return Outcome(
            False, _value(expires), "expires", {"found": "expires off", "location": where}
        )
    if "cache-control" in ctx.headers:
        return Outcome(True, details={"evidence": "Cache-Control header"})
    chain = []
    node: NginxContext | None = ctx
    while node is not None:
        chain.append(node)
        node = node.parent
    if any(opaque(c.directive) for c in chain):
        return UNKNOWN
    if ancestor(ctx, "http") is None and main_config_beside(project, ctx.directive.path):
        return UNKNOWN
    return Outcome(
        False, details={"found": "no expires and no Cache-Control header", "location": where}
    )


# ------------------------------------------------------------------------------- CORS


def _header_sets(
    directive: Directive, inherited: dict[str, Directive]
) -> Iterator[dict[str, Directive]]:
    """Effective add_header sets of a block and of every location / if inside it (a block
    that declares any add_header drops the inherited ones)."""
    own = {d.args[0].lower(): d for d in _block(directive) if d.name == "add_header" and d.args}
    effective = own or inherited
    yield effective
    for child in _block(directive):
        if child.block is not None and child.name in ("location", "if", "limit_except"):
            yield from _header_sets(child, effective)


def _reflecting_maps(http: NginxContext | None) -> set[str]:
    """Variables set by ``map $http_origin $var`` with a catch-all that hands the origin back."""
    out: set[str] = set()
    if http is None:
        return out
    for m in http.directive.find("map"):
        if len(m.args) < 2 or m.args[0] != "$http_origin":
            continue
        for entry in _block(m):
            if entry.name in ("default", "~.*", "~^.*$", "~.+", "~^.+$") and entry.args[:1] == (
                "$http_origin",
            ):
                out.add(m.args[1])
    return out


def _permissive_origin(d: Directive, reflecting: set[str]) -> bool:
    origin = _header_value(d)
    return origin in ("*", "null", "$http_origin") or origin in reflecting


def _cors_offenders(project: Project, server: NginxContext) -> list[tuple[Directive, Directive]]:
    reflecting = _reflecting_maps(ancestor(server, "http"))
    out: list[tuple[Directive, Directive]] = []
    seen: set[tuple[str, int]] = set()
    for headers in _header_sets(server.directive, dict(server.headers)):
        origin = headers.get("access-control-allow-origin")
        creds = headers.get("access-control-allow-credentials")
        if origin is None or creds is None or _header_value(creds).lower() != "true":
            continue
        key = (origin.path, origin.span.start_line)
        if key not in seen and _permissive_origin(origin, reflecting):
            seen.add(key)
            out.append((origin, creds))
    return out


def cors_credentials_safe(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No response of this server allows credentials together with any origin (``*``,
    ``null``, or the request's Origin reflected, directly or through a catch-all map). An
    http-level header is reported by the first server that sends it."""
    ctx = _ctx(subject)
    if ctx is None:
        return TRUE

    def owners() -> dict[tuple[str, int], NginxContext]:
        found: dict[tuple[str, int], NginxContext] = {}
        for server in _servers(project):
            for origin, _ in _cors_offenders(project, server):
                found.setdefault((origin.path, origin.span.start_line), server)
        return found

    owner = project.memo("nginx_cors_owner", owners)
    mine = [
        (o, c)
        for o, c in _cors_offenders(project, ctx)
        if owner.get((o.path, o.span.start_line)) is ctx
    ]
    if not mine:
        return TRUE
    origin = mine[0][0]
    related = tuple(
        Related(_value(c).location, "Access-Control-Allow-Credentials true") for _, c in mine[:1]
    )
    related += tuple(Related(_value(o).location, "also here") for o, _ in mine[1:4])
    return Outcome(
        False,
        _value(origin, _header_value(origin)),
        "headers.access-control-allow-origin",
        {"origin": _header_value(origin)},
        related,
    )


def first_header_owner(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The location is the first (in file order) to send its effective ``args.header``: a header
    set once in a server or the http block is judged once, not in every location inheriting it."""
    ctx = _ctx(subject)
    if ctx is None:
        return Outcome(False)
    name = str(args["header"]).lower()
    mine = ctx.headers.get(name)
    if mine is None:
        return Outcome(False)
    scope = subject.scope.split(".")[1]

    def owners() -> dict[tuple[str, int], NginxContext]:
        found: dict[tuple[str, int], NginxContext] = {}
        for kind, other in project.nginx_contexts:
            header = other.headers.get(name) if kind == scope else None
            if header is not None:
                found.setdefault((header.path, header.span.start_line), other)
        return found

    owner = project.memo(("nginx_header_owner", name, scope), owners)
    return Outcome(owner.get((mine.path, mine.span.start_line)) is ctx)


_CSP_DIRECTIVE = re.compile(r"(?:^|;)\s*([a-z-]+)([^;]*)", re.IGNORECASE)


def csp_safe(value: Value, subject: Subject, project: Project, args: Mapping[str, Any]) -> Outcome:
    """The effective Content-Security-Policy has a default-src, and the sources for scripts
    (script-src, else default-src) allow neither 'unsafe-eval', nor a bare ``*``, nor
    'unsafe-inline' (unless a nonce or hash makes browsers ignore it)."""
    header = value.lookup("headers.content-security-policy")
    if header is None:
        return Outcome(False, details={"reason": ""})
    if not header.known:
        return Outcome(None, header, "headers.content-security-policy")
    policy = (header.as_str() or "").strip()
    if policy.endswith(" always"):
        policy = policy[: -len(" always")]
    policy = policy.strip().strip("\"'")
    directives = {m.group(1).lower(): m.group(2).split() for m in _CSP_DIRECTIVE.finditer(policy)}
    attr = "headers.content-security-policy"
    if "default-src" not in directives:
        return Outcome(False, header, attr, {"reason": " (no default-src)"})
    scripts = [t.lower() for t in directives.get("script-src", directives["default-src"])]
    bad = []
    nonce = any(t.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for t in scripts)
    if "'unsafe-inline'" in scripts and not nonce:
        bad.append("'unsafe-inline'")
    if "'unsafe-eval'" in scripts:
        bad.append("'unsafe-eval'")
    if "*" in scripts:
        bad.append("*")
    if bad:
        return Outcome(False, header, attr, {"reason": " (scripts may use " + ", ".join(bad) + ")"})
    return Outcome(True, details={"evidence": "Content-Security-Policy with default-src"})


def answers_with_pages(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The server sends responses that headers protect: not a server that answers everything
    with a fixed code (``return 444``, ``return 404``); a redirect-only server counts only with
    ``args.redirects`` (HSTS matters on a redirect, framing and CSP do not)."""
    ctx = _ctx(subject)
    if ctx is None:
        return Outcome(False)
    returns = ctx.directive.find("return")
    if not returns:
        return Outcome(True)
    code = returns[0].args[0] if returns[0].args else ""
    redirect = code in ("301", "302", "303", "307", "308") or code.startswith(
        ("http://", "https://")
    )
    return Outcome(redirect and bool(args.get("redirects")))


def header_visible(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The header is in the effective set, or nothing unseen could add it: no unread include
    between this context and the level whose add_header list is in force, and (for a file
    without an http block) no main configuration beside it whose http block could."""
    ctx = _ctx(subject)
    if ctx is None:
        return Outcome(False)
    if str(args["header"]).lower() in ctx.headers:
        return Outcome(True)
    node: NginxContext | None = ctx
    while node is not None:
        if opaque(node.directive):
            return Outcome(False)
        if any(d.name == "add_header" for d in _block(node.directive)):
            return Outcome(True)
        if node.parent is None and node.directive.name != "http":
            return Outcome(not main_config_beside(project, node.directive.path))
        node = node.parent
    return Outcome(True)


PREDICATES: dict[str, Predicate] = {
    "nginx_answers_with_pages": answers_with_pages,
    "nginx_header_visible": header_visible,
    "nginx_first_header_owner": first_header_owner,
    "nginx_csp_safe": csp_safe,
    "nginx_judged_once": judged_once,
    "nginx_tls_certificate": tls_certificate,
    "nginx_modern_tls_protocols": modern_tls_protocols,
    "nginx_plain_http_server": plain_http_server,
    "nginx_http_redirects": http_redirects,
    "nginx_server_tokens_off": server_tokens_off,
    "nginx_compression": compression,
    "nginx_rate_limited": rate_limited,
    "nginx_static_location": static_location,
    "nginx_cache_headers": cache_headers,
    "nginx_cors_credentials_safe": cors_credentials_safe,
}
