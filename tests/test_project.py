"""The cross-file view: environments, compose overrides and interpolation, nginx includes and
header inheritance, Terraform variable resolution."""

from __future__ import annotations

from pathlib import Path

from policyscan.cli import main
from policyscan.discover import discover
from policyscan.interpolate import interpolate
from policyscan.model import Environment, Span, Value
from policyscan.project import _fact, facts
from policyscan.scan import parse_artifact
from tests.conftest import project_of as _project
from tests.conftest import write_tree


def test_interpolation_forms() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("${A}", env).text == "1"
    assert interpolate("${B}", env).text is None
    assert interpolate("${B:-d}", env).text == "d"
    assert interpolate("${E:-d}", env).text == "d"
    assert interpolate("${E-d}", env).text == ""
    assert interpolate("$$A", env).text == "$A"
    assert interpolate("${B:?required}", env).text is None
    assert interpolate("${B:-${A}}", env).text == "1"
    assert interpolate("x$A/y", env).text == "x1/y"


def test_environments_from_names_and_the_lone_file(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "docker-compose.yml": "services: {}\n",
            "docker-compose.prod.yml": "services: {}\n",
            "docker-compose.override.yml": "services: {}\n",
            "deploy/.env": "A=1\n",
            "deploy/.env.example": "A=\n",
        },
    )
    found = discover([str(root)], str(root))
    envs = {a.path: (a.environment, a.template) for a in found.artifacts}
    assert envs == {
        "docker-compose.yml": (Environment.UNKNOWN, False),
        "docker-compose.prod.yml": (Environment.PRODUCTION, False),
        "docker-compose.override.yml": (Environment.DEVELOPMENT, False),
        "deploy/.env": (Environment.PRODUCTION, False),  # the only deployed env file
        "deploy/.env.example": (Environment.UNKNOWN, True),
    }


def test_dev_compose_debug_beside_clean_prod_file_is_not_a_finding(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "docker-compose.yml": "services:\n  web:\n    image: app:1.0\n",
            "docker-compose.dev.yml": "services:\n  web:\n    environment:\n      DEBUG: 1\n",
            "docker-compose.prod.yml": "services:\n  web:\n    environment:\n      DEBUG: 0\n",
        },
    )
    assert main([str(root), "--select", "PSE001"]) == 0
    (tmp_path / "docker-compose.prod.yml").write_text(
        "services:\n  web:\n    environment:\n      DEBUG: 1\n"
    )
    assert main([str(root), "--select", "PSE001"]) == 1


def test_compose_production_view_merges_override_and_interpolates(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            ".env": "TAG=1.4\nPW=from-env\n",
            "docker-compose.yml": (
                "services:\n  web:\n    image: shop:${TAG}\n    environment:\n      - A=1\n      - PW=${PW}\n"
                "    ports: ['80:80']\n"
            ),
            "docker-compose.prod.yml": "services:\n  web:\n    environment:\n      A: 2\n    ports: ['443:443']\n",
        },
    )
    project = _project(root)
    (prod,) = [v for v in project.compose_views if v.environment is Environment.PRODUCTION]
    web = prod.services["web"]
    assert web.lookup("image").data == "shop:1.4" and web.lookup("image").literal is False
    assert web.lookup("environment.A").as_str() == "2"
    assert web.lookup("environment.A").path == "docker-compose.prod.yml"
    assert web.lookup("environment.PW").literal is False
    assert [p.as_str() for p in web.lookup("ports").data] == ["80:80", "443:443"]


def test_compose_merge_tags_reset_and_override_as_docker_compose_does(tmp_path: Path) -> None:
    """The Compose specification's example (merge.md, "Reset value" and "Replace value"), and
    a `!reset` in the first file, whose value compose ignores too."""
    root = write_tree(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n  app:\n    image: myapp\n    ports:\n      - '8080:80'\n"
                "    expose: ['80']\n    environment:\n      FOO: BAR\n      KEEP: 'yes'\n"
                "    labels: !reset\n      a: b\n"
            ),
            "docker-compose.prod.yml": (
                "services:\n  app:\n    ports: !reset []\n    expose: !override ['443']\n"
                "    environment:\n      FOO: !reset null\n"
            ),
        },
    )
    project = _project(root)
    (view,) = project.compose_views
    app = view.services["app"]
    assert app.lookup("ports") is None
    assert [e.as_str() for e in app.lookup("expose").data] == ["443"]
    assert sorted(app.lookup("environment").data) == ["KEEP"]
    assert app.lookup("labels") is None
    assert app.lookup("image").as_str() == "myapp"


def test_compose_merge_tags_survive_the_cache(tmp_path: Path) -> None:
    """The tagged values are the tree's own objects after a pickle round trip, or the view of a
    cached document would merge what compose resets."""
    from policyscan.cache import dumps, loads

    root = write_tree(
        tmp_path,
        {"docker-compose.yml": "services:\n  app:\n    ports: !reset []\n    image: a\n"},
    )
    found = discover([str(root)], str(root))
    doc = loads(dumps(parse_artifact(found.artifacts[0], 1 << 20)[0]))
    ((value, tag),) = doc.merge_tags
    assert tag == "!reset"
    assert value is doc.root.lookup("services.app.ports")


def test_compose_secrets_are_marked_when_the_view_is_made(tmp_path: Path) -> None:
    """Before any subject is built: a rule about services sees a secret as one whatever rules
    ran before it (with --jobs, each process builds subjects on its own)."""
    root = write_tree(
        tmp_path,
        {
            "docker-compose.yml": (
                "services:\n  db:\n    image: postgres:16\n    environment:\n"
                "      - POSTGRES_PASSWORD=hunter2hunter2\n      - POSTGRES_DB=shop\n"
            ),
        },
    )
    project = _project(root)
    (view,) = project.compose_views
    db = view.services["db"]
    assert db.lookup("environment.POSTGRES_PASSWORD").sensitive is True
    assert db.lookup("environment.POSTGRES_DB").sensitive is False
    assert project._cache == {}  # no scope was built to get there


def test_nginx_stock_includes_are_not_missing_files(tmp_path: Path) -> None:
    """Files nginx and its packages ship (Debian's snippets/fastcgi-php.conf among them) are
    not the project's: an include of one is no warning. Any other unread include is."""
    root = write_tree(
        tmp_path,
        {
            "nginx/site.conf": (
                "server {\n  listen 443 ssl;\n  include mime.types;\n"
                "  include snippets/fastcgi-php.conf;\n  include /etc/nginx/fastcgi_params;\n"
                "  include conf.d/missing.conf;\n}\n"
            ),
        },
    )
    project = _project(root)
    project.nginx_contexts  # noqa: B018 (splicing the includes is what reports them)
    problems = [(p.code, p.span.start_line) for p in project.problems]
    assert problems == [("include", 6)]


def test_nginx_includes_resolve_inside_root_and_headers_inherit_like_nginx(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "nginx/nginx.conf": (
                "http {\n  add_header X-Frame-Options DENY;\n  include /etc/nginx/conf.d/*.conf;\n"
                "  include ../../etc/secret.conf;\n}\n"
            ),
            "nginx/conf.d/site.conf": (
                "server {\n  listen 443 ssl;\n  location / {\n    add_header Cache-Control no-store;\n  }\n"
                "  location /b {\n  }\n}\n"
            ),
        },
    )
    project = _project(root)
    contexts = project.nginx_contexts
    kinds = [(k, c.directive.path, c.directive.span.start_line) for k, c in contexts]
    assert kinds == [
        ("server", "nginx/conf.d/site.conf", 1),
        ("location", "nginx/conf.d/site.conf", 3),
        ("location", "nginx/conf.d/site.conf", 6),
    ]
    server, loc_own, loc_inherit = (c for _, c in contexts)
    assert set(server.headers) == {"x-frame-options"}
    assert set(loc_own.headers) == {"cache-control"}  # declaring one drops the inherited ones
    assert set(loc_inherit.headers) == {"x-frame-options"}
    assert any("outside the scanned root" in p.message for p in project.problems)


def test_nginx_blocks_without_includes_are_the_documents_own(tmp_path: Path) -> None:
    """Splicing copies only the blocks an include changed; the rest are shared with the
    parsed document (and a spliced block holds the included file's directives)."""
    root = write_tree(
        tmp_path,
        {
            "nginx/nginx.conf": (
                "http {\n  server {\n    listen 80;\n    location / {\n    }\n  }\n"
                "  server {\n    include snippets/tls.conf;\n  }\n}\n"
            ),
            "nginx/snippets/tls.conf": "listen 443 ssl;\n",
        },
    )
    project = _project(root)
    (http,) = project.documents["nginx/nginx.conf"].directives
    plain, with_include = (d for d in http.block if d.name == "server")
    servers = [c for kind, c in project.nginx_contexts if kind == "server"]
    assert [s.directive.span.start_line for s in servers] == [2, 7]
    assert servers[0].directive is plain
    assert servers[1].directive is not with_include
    assert [(d.name, d.args, d.path) for d in servers[1].directive.block or ()] == [
        ("listen", ("443", "ssl"), "nginx/snippets/tls.conf")
    ]


def test_terraform_variables_from_defaults_tfvars_and_locals(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "infra/variables.tf": 'variable "days" {\n  default = 3\n}\nvariable "free" {}\n',
            "infra/terraform.tfvars": "days = 14\n",
            "infra/main.tf": (
                'locals {\n  env = "prod"\n}\n'
                'resource "aws_db_instance" "a" {\n  backup_retention_period = var.days\n'
                "  name = local.env\n  other = var.free\n}\n"
            ),
        },
    )
    (subject,) = _project(root).subjects("terraform.resource")
    facts = subject.facts
    assert facts.lookup("backup_retention_period").data == 14
    assert facts.lookup("backup_retention_period").span.start_line == 5  # the use site
    assert facts.lookup("name").data == "prod"
    assert facts.lookup("other").known is False


def test_terraform_index_gives_what_a_walk_of_every_block_gives(tmp_path: Path) -> None:
    """TerraformIndex answers each scope of blocks and each question about resources of some
    types; the answers must be those of a walk over every block of every module, in module
    order, for any set of types (merged back into that order)."""
    import itertools

    from policyscan.project import TerraformIndex

    types = ["aws_a", "aws_b", "aws_c"]
    files = {}
    for n, directory in enumerate(["b", "a", "a/z", "c"]):
        blocks = []
        for i in range(6):
            rtype = types[(i * (n + 1)) % 3]
            blocks.append(f'resource "{rtype}" "r{n}_{i}" {{\n}}\n')
            if i % 2:
                blocks.append(f'data "{rtype}" "d{n}_{i}" {{\n}}\n')
        blocks.append(f'variable "v{n}" {{\n}}\nresource "no_name" {{\n}}\n')
        files[f"{directory}/main.tf"] = "".join(blocks)
    project = _project(write_tree(tmp_path, files))
    walk = [
        (module, block)
        for _, module in sorted(project.terraform_modules.items())
        for block in module.blocks
    ]
    index = TerraformIndex.of(project.terraform_modules)
    assert index.blocks == walk
    for kind in ("resource", "data", "variable", "module"):
        assert list(project.terraform_blocks(kind)) == [p for p in walk if p[1].type == kind]
    for size in range(len(types) + 1):
        for chosen in itertools.combinations([*types, "aws_none"], size):
            expected = [p for p in walk if p[1].type == "resource" and p[1].labels[0] in chosen]
            assert list(project.terraform_resources(chosen)) == expected


def _eager_facts(path: str, span: Span, **entries: object) -> Value:
    """Facts as they were made before project.Facts: a Value for every scalar up front."""
    return Value({k: _fact(v, path, span) for k, v in entries.items()}, path, span)


def test_facts_read_as_values_made_up_front() -> None:
    span = Span(3, 5, 3, 9)
    nested = Value("n", "other.yml", Span(7))
    entries: dict[str, object] = {
        "name": "DEBUG",
        "count": 3,
        "ratio": 0.5,
        "flag": False,
        "service": None,
        "value": nested,
        "ports": [80, "443"],
        "limits": {"cpus": "0.5", "memory": None},
    }
    lazy = facts("a.yml", span, **entries)
    eager = _eager_facts("a.yml", span, **entries)
    for key in [*entries, "missing"]:
        assert lazy.get(key) == eager.get(key), key
        assert lazy.lookup(key) == eager.lookup(key), key
    for dotted in ("limits.cpus", "limits.memory", "ports.1", "limits.missing", "missing.x"):
        assert lazy.lookup(dotted) == eager.lookup(dotted), dotted
    assert lazy.lookup(".") is lazy
    assert lazy.get("service") == Value(None, "a.yml", span)  # a fact of None is no missing one
    assert lazy.get("value") is nested  # a Value given is the Value read, with its own place
    assert lazy.data == eager.data
    assert list(lazy.items()) == list(eager.items())
    assert lazy.to_plain() == eager.to_plain()


def test_facts_keep_their_scalars_bare_until_read() -> None:
    # What makes them cheap: no Value is held for a scalar fact (a scan of 10,000 files has
    # some 150,000 of them). Reading one places it, and holds nothing more.
    lazy = facts("a.env", Span(1), name="A", literal=True, value=Value("x", "a.env", Span(1)))
    assert lazy.get("name") == Value("A", "a.env", Span(1))
    held = Value.__dict__["data"].__get__(lazy)
    assert held["name"] == "A" and held["literal"] is True
    assert isinstance(held["value"], Value)


def test_facts_survive_the_cache_pickle() -> None:
    # Subjects cross processes (the split's stubs) in the cache's pickles.
    from policyscan.cache import dumps, loads

    made = facts("a.tf", Span(2, 1, 4, 2), name="x", count=None, tags={"a": "b"})
    back = loads(dumps(made))
    assert type(back) is type(made)
    assert back.data == made.data and back.path == made.path and back.span == made.span


def test_nginx_nested_facts_are_made_when_read(tmp_path: Path) -> None:
    # An nginx context's args, listen, headers and directive names are not held as values of
    # their own (project.Later): each read makes them from the document, the same as before.
    from policyscan.cache import dumps, loads
    from policyscan.project import Later, _header_fact

    root = write_tree(
        tmp_path,
        {
            "nginx.conf": (
                "http {\n"
                "  add_header X-Frame-Options DENY always;\n"
                "  server {\n"
                "    listen 443 ssl;\n"
                "    listen [::]:443 ssl;\n"
                "    server_name example.com;\n"
                "    location /api/ {\n"
                "      add_header Content-Security-Policy $csp;\n"
                "      proxy_pass http://app;\n"
                "    }\n"
                "  }\n"
                "}\n"
            )
        },
    )
    project = _project(root)
    subjects = [*project.subjects("nginx.server"), *project.subjects("nginx.location")]
    assert [s.key for s in subjects] == [
        "server example.com 443 ssl [::]:443 ssl",
        "server example.com / location /api/",
    ]
    for subject in subjects:
        ctx = subject.node
        d = ctx.directive
        held = Value.__dict__["data"].__get__(subject.facts)
        nested = ("args", "listen", "headers", "directives")
        assert all(type(held[k]) is Later for k in nested)
        eager = _eager_facts(
            d.path,
            d.span,
            args=list(d.args),
            listen=[" ".join(x.args) for x in ctx.values("listen")],
            headers={name: _header_fact(h) for name, h in ctx.headers.items()},
            directives=sorted({x.name for x in d.block or ()}),
        )
        for key in nested:
            assert subject.facts.get(key) == eager.get(key), key
            assert subject.facts.lookup(key) == eager.lookup(key), key
            assert subject.facts.data[key] == eager.data[key], key
        back = loads(dumps(subject.facts))  # pickled as the values it reads as
        assert all(back.get(k) == eager.get(k) for k in nested)
    server, location = subjects
    # At the server directive: line 3, to the end of "  server {".
    assert server.facts.lookup("listen.1") == Value("[::]:443 ssl", "nginx.conf", Span(3, 1, 3, 11))
    assert server.facts.get("directives").to_plain() == ["listen", "location", "server_name"]
    assert location.facts.lookup("headers.content-security-policy").known is False
    assert location.facts.lookup("headers.x-frame-options") is None  # its own header replaces
