"""The other kinds judged a part of the tree at a time (policyscan/other_parts.py), in the split's
parent: it must find exactly what judging them whole finds, answer the questions that cross
parts from every part, fall back to the whole where a part reaches another, and let each
part's documents go before the next."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path
from typing import Any

import pytest

from policyscan import other_parts
from policyscan import scan as scan_module
from policyscan import split as split_module
from policyscan.model import Artifact, Environment, Kind
from policyscan.parsers.compose import ComposeDocument
from policyscan.plan import Settings, make_plan
from policyscan.project import PartialViewError
from tests.conftest import FIXTURES, generate_monorepo, record_returns, write_tree
from tests.conftest import assert_same_result as _assert_same
from tests.conftest import scan_tree as _scan

# A tree whose answers cross its groups: each rule that asks the whole tree is answered from
# another group than the one it judges.
CROSSING = {
    # The database, the Redis and the plain-HTTP port, and what their rules look for elsewhere.
    "groups/a/docker-compose.yml": """\
services:
  db:
    image: postgres:16
    volumes: [pgdata:/var/lib/postgresql/data]
  cache:
    image: redis:7
    command: redis-server --save ""
  web:
    image: example/web:1.0
    ports: ["80:80"]
volumes:
  pgdata: {}
""",
    "groups/a/.env": (
        "DEBUG=false\nENVIRONMENT=production\nLOG_LEVEL=info\nALLOWED_HOSTS=a.example.com\n"
        "SECRET_KEY=Vq8#kR2!mZ7@pL4$wX9^\nDB_DISABLE_POOLING=true\n"
    ),
    # A backup service, a pooler, the same secret, a client-side statement timeout, and an
    # error tracker (a sibling's: it does not count for group a).
    "groups/b/docker-compose.yml": """\
services:
  backup:
    image: prodrigestivill/postgres-backup-local:16
  pgbouncer:
    image: edoburu/pgbouncer:1.21
""",
    "groups/b/.env": (
        "JWT_SECRET=Vq8#kR2!mZ7@pL4$wX9^\nPGOPTIONS=-c statement_timeout=5000\n"
        "SENTRY_DSN=https://key@sentry.example.com/1\n"
    ),
    # The first nginx server of the tree, without limit_req; a TLS server.
    "groups/c/nginx/nginx.conf": """\
http {
  server {
    listen 80;
    server_name c.example.com;
    location / { root /srv; }
  }
  server {
    listen 443 ssl;
    server_name c.example.com;
    ssl_certificate /etc/ssl/c.pem;
    location / { root /srv; }
  }
}
""",
    # A server with limit_req of its own: the tree's first one tells the others.
    "groups/d/nginx/nginx.conf": """\
http {
  limit_req_zone $binary_remote_addr zone=one:10m rate=5r/s;
  server {
    listen 80;
    server_name d.example.com;
    location / { limit_req zone=one; root /srv; }
  }
}
""",
    "groups/d/infra/main.tf": 'resource "aws_s3_bucket" "assets" {\n  bucket = "assets"\n}\n',
    # A later part's answers, which the earlier ones' must win over: another backup service,
    # another Redis that keeps nothing, another server without limit_req.
    "groups/e/docker-compose.yml": """\
services:
  restic:
    image: restic/restic:0.16
  queue:
    image: redis:7
    command: redis-server --save ""
""",
    # and a server that may have limit_req in a file the scan does not hold.
    "groups/e/nginx.conf": (
        "server {\n  listen 80;\n  location / { root /srv; }\n}\n"
        "server {\n  listen 81;\n  include extra/*.conf;\n  location / { root /srv; }\n}\n"
    ),
}


@pytest.fixture
def in_parts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Split even a small tree, each group a part of its own; the list gets what each judging
    in parts returned, in two processes and in one (None: it fell back to the whole)."""
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)
    monkeypatch.setattr(other_parts, "PART_BYTES", 1)
    returned = record_returns(monkeypatch, split_module, "_judge_parts")
    real = scan_module._other_parts

    def one_process(*args: Any) -> Any:
        try:
            returned.append(real(*args))
        except PartialViewError:
            returned.append(None)  # a part reached another: the scan starts again, whole
            raise
        return returned[-1]

    monkeypatch.setattr(scan_module, "_other_parts", one_process)
    return returned


def _whole(root: Path, **options: Any) -> Any:
    """The other kinds judged whole, as before other_parts.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(other_parts, "plan", lambda *args: None)
        return _scan(root, jobs=1, cache=False, **options)


def _whole_and_parts(root: Path, in_parts: list[Any], evidence: bool = True) -> tuple[Any, Any]:
    """Judged whole, then in parts by one process and by two (which must agree)."""
    whole = _whole(root, evidence=evidence)
    in_parts.clear()  # what the whole judging recorded: nothing in parts
    one = _scan(root, jobs=1, cache=False, evidence=evidence)
    two = _scan(root, jobs=2, cache=False, evidence=evidence)
    _assert_same(one, two)
    return whole, two


def test_answers_that_cross_parts_are_the_whole_trees(tmp_path: Path, in_parts: list[Any]) -> None:
    root = write_tree(tmp_path, CROSSING)
    whole, parts = _whole_and_parts(root, in_parts)
    assert len(in_parts) == 2 and None not in in_parts  # five parts, in one process and two
    _assert_same(whole, parts)
    found = {(f.rule_id, f.location.path, f.location.span.start_line) for f in parts.findings}
    # The secret of group a is group b's too, and the other way round.
    reused = [f for f in parts.findings if f.rule_id == "PSE004"]
    assert [(f.location.path, [r.location.path for r in f.related]) for f in reused] == [
        ("groups/a/.env", ["groups/b/.env"]),
        ("groups/b/.env", ["groups/a/.env"]),
    ]
    # Backed up, pooled and timed out from group b; TLS terminated in group c.
    assert not {"PSC001", "PSE019", "PSC020", "PSX002"} & {rule for rule, _, _ in found}
    met = {(e.rule_id, e.status, e.note) for e in parts.evidence}
    assert ("PSC001", "met", "backup service backup") in met
    assert (
        "PSE019",
        "met",
        "DB_DISABLE_POOLING off in the application; service pgbouncer pools",
    ) in met
    assert ("PSC020", "met", "client-side statement timeout") in met
    assert ("PSX002", "met", "nginx TLS server in groups/c/nginx/nginx.conf") in met
    # Group b's tracker is a sibling's: group a's production env file still lacks one.
    assert ("PSE013", "groups/a/.env", 1) in found
    # The Redis of group a keeps nothing, and is the project's finding; group e's is related.
    (redis,) = [f for f in parts.findings if f.rule_id == "PSX001"]
    assert (redis.location.path, redis.location.span.start_line) == (
        "groups/a/docker-compose.yml",
        5,
    )
    assert [(r.location.path, r.location.span.start_line) for r in redis.related] == [
        ("groups/e/docker-compose.yml", 4)
    ]
    # The tree's first server without limit_req speaks for all, and another server uses it.
    psn013 = [(e.location.path, e.status, e.note) for e in parts.evidence if e.rule_id == "PSN013"]
    assert psn013 == [
        ("groups/c/nginx/nginx.conf", "unknown", "limit_req is used by another server"),
        ("groups/d/nginx/nginx.conf", "met", "limit_req zone=one"),
        ("groups/e/nginx.conf", "unknown", "limit_req is used by another server"),
    ]


@pytest.mark.parametrize("evidence", [True, False])
def test_fixtures_and_a_generated_tree_in_parts(
    tmp_path: Path, in_parts: list[Any], evidence: bool
) -> None:
    for name in ("insecure-shop", "hardened-shop"):
        shutil.copytree(FIXTURES / name, tmp_path / "shops" / name)
    generate_monorepo(tmp_path / "generated", 12, 7, 0.3)
    for root in (tmp_path / "shops", tmp_path / "generated"):
        whole, parts = _whole_and_parts(root, in_parts, evidence)
        assert len(in_parts) == 2 and None not in in_parts
        in_parts.clear()
        _assert_same(whole, parts)
        assert parts.findings


def test_inline_ignores_in_parts(tmp_path: Path, in_parts: list[Any]) -> None:
    files = dict(CROSSING)
    files["groups/a/docker-compose.yml"] = files["groups/a/docker-compose.yml"].replace(
        "  web:\n", "  # policyscan: ignore[PSC004,PSC008] reviewed: a stateless proxy\n  web:\n"
    )
    files["groups/c/nginx/nginx.conf"] = files["groups/c/nginx/nginx.conf"].replace(
        "  server {\n    listen 443 ssl;",
        "  # policyscan: ignore[PSN001,PSN002] reviewed: the CDN sets them\n"
        "  server {\n    listen 443 ssl;",
    )
    root = write_tree(tmp_path, files)
    whole, parts = _whole_and_parts(root, in_parts)
    assert len(in_parts) == 2 and None not in in_parts
    _assert_same(whole, parts)
    silenced = {(f.rule_id, f.location.path) for f in parts.findings if f.suppressed}
    assert silenced == {
        ("PSC004", "groups/a/docker-compose.yml"),
        ("PSC008", "groups/a/docker-compose.yml"),
        ("PSN001", "groups/c/nginx/nginx.conf"),
        ("PSN002", "groups/c/nginx/nginx.conf"),
    }


@pytest.mark.parametrize(
    "reach",
    [
        # An env_file, a build context, an nginx include in another group.
        {
            "groups/a/docker-compose.yml": "services:\n  app:\n    image: x:1\n    env_file: ../b/.env\n"
        },
        {
            "groups/a/docker-compose.yml": "services:\n  app:\n    build: ../b\n",
            "groups/b/Dockerfile": "FROM python:3.12\n",
        },
        {
            "groups/c/nginx/nginx.conf": "http {\n  include ../../d/nginx/extra.conf;\n}\n",
            "groups/d/nginx/extra.conf": "server {\n  listen 80;\n}\n",
        },
    ],
)
def test_a_part_that_reaches_another_is_judged_whole(
    tmp_path: Path, in_parts: list[Any], reach: dict[str, str]
) -> None:
    root = write_tree(tmp_path, {**CROSSING, **reach})
    whole, parts = _whole_and_parts(root, in_parts)
    assert in_parts == [None, None]
    _assert_same(whole, parts)


def test_each_part_lets_the_last_ones_documents_go(
    tmp_path: Path, in_parts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = generate_monorepo(tmp_path / "generated", 12, 7, 0.3)
    held: list[int] = []
    real = other_parts.Parts.judge

    def judge(self: other_parts.Parts, part: other_parts.Part, *args: Any) -> None:
        gc.collect()
        held.append(sum(1 for o in gc.get_objects() if isinstance(o, ComposeDocument)))
        real(self, part, *args)

    monkeypatch.setattr(other_parts.Parts, "judge", judge)
    for jobs in (1, 2):
        held.clear()
        _scan(root, jobs=jobs, cache=False)
        assert in_parts[-1] is not None and len(held) == 12
        # Each part's own compose files, parsed before it is judged, and none of the others'.
        assert max(held) <= 3 < sum(held)


def _artifacts(*paths: str) -> list[Artifact]:
    kinds = {".yml": Kind.COMPOSE, ".env": Kind.ENV, ".conf": Kind.NGINX}
    return [
        Artifact(p, "/" + p, kinds[Path(p).suffix or Path(p).name], Environment.UNKNOWN)
        for p in sorted(paths)
    ]


@pytest.mark.parametrize(
    ("paths", "groups"),
    [
        (["s/a/docker-compose.yml", "s/a/x/.env", "s/b/nginx.conf"], [("s/a/",), ("s/b/",)]),
        (["a/docker-compose.yml", "b/.env", "c/n/nginx.conf"], [("a/",), ("b/",), ("c/",)]),
        # A file beside the groups relates to all of them; one group is no parts.
        (["docker-compose.yml", "a/.env", "b/.env"], None),
        (["s/.env", "s/a/.env", "s/b/.env"], None),
        (["s/a/.env", "s/a/b/.env"], None),
        ([], None),  # nothing of the other kinds
        # The view of a-b comes before the view of a/x, the files of a/ before those of a-b/.
        (["a/docker-compose.yml", "a-b/docker-compose.yml"], None),
        (["a/x/docker-compose.yml", "a-b/docker-compose.yml"], [("a-b/",), ("a/",)]),
    ],
)
def test_the_parts_of_a_tree(
    monkeypatch: pytest.MonkeyPatch, paths: list[str], groups: list[tuple[str, ...]] | None
) -> None:
    monkeypatch.setattr(other_parts, "PART_BYTES", 1)
    artifacts = _artifacts(*paths)
    planned = other_parts.plan(artifacts, range(len(artifacts)), lambda a: 1)
    assert (None if planned is None else [p.prefixes for p in planned]) == groups
    if planned is not None:
        assert [i for p in planned for i in p.indices] == list(range(len(artifacts)))


def test_parts_gather_groups_up_to_their_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(other_parts, "PART_BYTES", 3)
    artifacts = _artifacts(*(f"s/g{n}/.env" for n in range(7)))
    planned = other_parts.plan(artifacts, range(7), lambda a: 1)
    assert planned is not None
    assert [p.prefixes for p in planned] == [
        ("s/g0/", "s/g1/", "s/g2/"),
        ("s/g3/", "s/g4/", "s/g5/"),
        ("s/g6/",),
    ]


def _ways_of(tmp_path: Path, policy: str) -> other_parts.Ways | None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mine.yaml").write_text(policy)
    plan = make_plan(Settings(paths=(str(tmp_path),), policy_dirs=(str(tmp_path / "policies"),)))
    rules = [i for i, r in enumerate(plan.rules) if not r.scope.startswith("terraform.")]
    return other_parts.ways(plan.rules, rules)


_MINE = (
    "id: ORG001\nname: mine\nscope: {scope}\nartifacts: [compose]\nseverity: low\n"
    "confidence: high\nchecklist: [backup.database.automated]\nmessage: mine\n"
    "docs: {{what: w, why: y, fix: f}}\n{conditions}\n"
    # Examples are the test suite's, for built-in rules; a user's must merely exist.
    "examples: {{fail: [{{files: {{a.yml: 'x'}}, expect: [{{file: a.yml, line: 1}}]}}],"
    " pass: [{{files: {{b.yml: 'y'}}}}]}}\n"
)


def test_the_built_in_rules_are_judged_in_parts(tmp_path: Path) -> None:
    plan = make_plan(Settings(paths=(str(tmp_path),)))
    rules = [i for i, r in enumerate(plan.rules) if not r.scope.startswith("terraform.")]
    ways = other_parts.ways(plan.rules, rules)
    assert ways is not None

    def ids(indices: list[int]) -> list[str]:
        return [plan.rules[i].id for i in indices]

    assert ids(ways.stubs) == ["PSC001", "PSE013", "PSE019"]
    assert (ids(ways.reuse), ids(ways.both), ids(ways.once)) == (["PSE004"], ["PSC020"], ["PSN013"])
    assert ids(ways.whole) == ["PSX001", "PSX002"]


@pytest.mark.parametrize(
    "conditions",
    [
        # A wide predicate beside another condition, or in a where: not judged in parts.
        "assert:\n  all:\n    - {predicate: backup_anywhere}\n    - {attr: image, op: exists}",
        "where: {predicate: backup_anywhere}\nassert: {attr: image, op: exists}",
        "assert: {predicate: secret_reused}",  # secret_reused of a compose service
    ],
)
def test_a_users_rule_that_asks_the_whole_tree_otherwise(tmp_path: Path, conditions: str) -> None:
    assert _ways_of(tmp_path, _MINE.format(scope="compose.service", conditions=conditions)) is None


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_in_parts_only_goes_forward(
    tmp_path: Path, in_parts: list[Any], jobs: int
) -> None:
    root = write_tree(tmp_path, CROSSING)
    told: list[tuple[int, int]] = []
    _scan(root, jobs=jobs, cache=False, progress=lambda done, total: told.append((done, total)))
    assert in_parts and in_parts[-1] is not None
    done = [d for d, _ in told]
    assert done == sorted(done) and told[-1] == (len(CROSSING), len(CROSSING))
