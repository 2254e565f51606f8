"""The scan split by kind between two processes (policyscan/split.py): Terraform in a forked
worker, everything else in the parent. It must find exactly what one process finds, in the same
order, whatever goes wrong in the worker."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest

from policyscan import scan as scan_module
from policyscan import split as split_module
from policyscan.model import Kind
from policyscan.policy import engine
from policyscan.project import (
    CROSS_FAMILY_RESOURCES,
    PartialViewError,
    Project,
    TerraformElsewhere,
)
from policyscan.scan import parse_artifact
from tests.conftest import assert_same_result as _assert_same
from tests.conftest import generate_monorepo, record_returns, write_tree
from tests.conftest import scan_tree as _scan

COMPOSE = """\
services:
  db:
    image: postgres:16
    volumes: [pgdata:/var/lib/postgresql/data]
  cache:
    image: redis:7
    command: redis-server --save ""
  web:
    image: nginx:1.25
    ports: ["80:80", "8080:8080"]
volumes:
  pgdata: {}
"""
ENV = "DEBUG=true\nSECRET_KEY=changeme\nDATABASE_URL=postgres://app:hunter2@db/app\n"
BACKUP_TF = """\
resource "aws_backup_plan" "nightly" {
  name = "nightly"
}

resource "aws_elasticache_replication_group" "cache" {
  replication_group_id     = var.name
  snapshot_retention_limit = 0
}

variable "name" {
  default = "cache"
}
"""
DB_TF = """\
resource "aws_db_instance" "main" {
  publicly_accessible     = true
  backup_retention_period = 1
  password                = "hunter2"
}

# policyscan: ignore[PST002] reviewed: a test database
resource "aws_db_instance" "test" {
  publicly_accessible = true
}
"""
BUCKET_TF = """\
resource "aws_s3_bucket" "assets" {
  bucket = "assets"
}

resource "aws_lb_listener" "http" {
  port     = 80
  protocol = "HTTP"
}
"""
NGINX = (
    "http {\n  include missing.conf;\n  server {\n    listen 80;\n    server_tokens on;\n  }\n}\n"
)


def _repo(root: Path) -> Path:
    return write_tree(
        root,
        {
            "app/docker-compose.yml": COMPOSE,
            "app/.env": ENV,
            "app/Dockerfile": "FROM python:latest\nCMD python app.py\n",
            "infra/backup.tf": BACKUP_TF,
            "infra/broken.tf": 'resource "aws_s3_bucket" "x" {\n  bucket = \n',
            "infra/db.tf": DB_TF,
            "infra/latin1.tf": b'resource "aws_s3_bucket" "y" { bucket = "caf\xe9" }\n',
            "modules/edge/main.tf": BUCKET_TF,
            "modules/edge/broken.tf": "locals {\n  a = [\n",
            "nginx/nginx.conf": NGINX,
        },
    )


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Split even a small tree, every other Terraform file parsed by each process; the list
    gets what each split returned (None: it fell back)."""
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)
    monkeypatch.setattr(
        split_module, "_share_here", lambda artifacts, terraform, sources: set(terraform[::2])
    )
    returned: list[Any] = []
    real = split_module.scan_by_kind

    def recorded(*args: Any) -> Any:
        done = real(*args)
        returned.append(done)
        return done

    monkeypatch.setattr(split_module, "scan_by_kind", recorded)
    return returned


@pytest.mark.parametrize(
    ("evidence", "share", "chunk"),
    [
        (True, slice(None, None, 2), None),
        (False, slice(0), None),
        (True, slice(None), None),
        (True, slice(None), 1),
    ],
)
def test_split_finds_what_one_process_finds(
    tmp_path: Path,
    forced: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    evidence: bool,
    share: slice,
    chunk: int | None,
) -> None:
    """Each process parsing some of the Terraform files, the worker all of them, this process
    all of them (sent in one chunk, or each file in a chunk of its own)."""
    root = _repo(tmp_path / "repo")
    plain = _scan(root, jobs=1, evidence=evidence)
    # The tree has what the split must carry across: parse problems and a file that is not
    # UTF-8 on both sides, an nginx include that is missing (the view's problem), an ignore
    # comment on a Terraform block, and rules of other families that read Terraform.
    ids = {f.rule_id for f in plain.findings}
    assert {"PST001", "PSE001", "PSX001"} <= ids
    assert "PSC001" not in ids  # the aws_backup_plan, read across families, backs the db up
    # An ignore above a block covers a finding inside it: the worker sends the blocks.
    assert [(f.rule_id, f.location.span.start_line) for f in plain.findings if f.suppressed] == [
        ("PST002", 9)
    ]
    assert [(p.path, p.code) for p in plain.problems] == [
        ("infra/broken.tf", "parse-error"),
        ("infra/latin1.tf", "encoding"),
        ("modules/edge/broken.tf", "parse-error"),
        ("nginx/nginx.conf", "include"),
    ]

    deferred: list[int] = []
    real_judge = engine.judge
    parent = os.getpid()

    def judge(*args: Any, **kwargs: Any) -> Any:
        tagged, later = real_judge(*args, **kwargs)
        if os.getpid() == parent:
            deferred.extend(later)
        return tagged, later

    monkeypatch.setattr(engine, "judge", judge)
    monkeypatch.setattr(
        split_module, "_share_here", lambda artifacts, terraform, sources: set(terraform[share])
    )
    if chunk is not None:
        monkeypatch.setattr(split_module, "SHARE_CHUNK_BYTES", chunk)
    chunks = record_returns(monkeypatch, split_module, "_together")
    split = _scan(root, jobs=2, evidence=evidence)
    assert forced and forced[0] is not None  # split, not fallen back
    assert deferred  # a rule asked for Terraform before the worker sent it, and waited
    _assert_same(plain, split)
    # Every Terraform file read here (all but the one that is not UTF-8) sent, together or
    # one by one.
    assert len(chunks) == (0 if share == slice(0) else 1 if chunk is None else 5)


@pytest.mark.parametrize("made", [None, b"damaged"], ids=["not picklable", "damaged"])
def test_a_share_that_cannot_be_sent_together_is_parsed_by_the_worker(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch, made: bytes | None
) -> None:
    root = _repo(tmp_path / "repo")
    plain = _scan(root, jobs=1)
    sent: list[int] = []

    def together(docs: list[object]) -> bytes | None:
        sent.append(len(docs))
        return made

    monkeypatch.setattr(split_module, "_together", together)
    split = _scan(root, jobs=2)
    assert forced and forced[0] is not None
    assert sent and sent[0] > 0
    _assert_same(plain, split)


ALARM_TF = 'resource "aws_cloudwatch_metric_alarm" "cpu" {\n  alarm_name = "cpu"\n}\n'
CALLER_TF = 'module "edge" {\n  source = "../modules/edge"\n}\n'


def test_a_share_the_worker_needs_first_is_parsed_there_or_not_taken(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that calls another stays with the worker; the first module with an alarm, in
    this process's share and not sent yet when the worker's first part wants it, is parsed by
    the worker (its copy from here dropped when the share comes), not waited for."""
    root = _repo(tmp_path / "repo")
    write_tree(root, {"a_alarms/main.tf": ALARM_TF, "a_env/main.tf": CALLER_TF})
    plain = _scan(root, jobs=1)
    parsed_there = tmp_path / "parsed_there"
    real_here = split_module._parsed_here

    def parsed_here(artifact: Any, text: str) -> object | None:
        with parsed_there.open("a") as out:
            out.write(artifact.path + "\n")
        return real_here(artifact, text)

    real_together = split_module._together

    def together(docs: list[object]) -> bytes | None:
        time.sleep(1)  # the share comes late
        return real_together(docs)

    monkeypatch.setattr(split_module, "_parsed_here", parsed_here)
    monkeypatch.setattr(split_module, "_together", together)
    monkeypatch.setattr(
        split_module,
        "_share_here",
        lambda artifacts, terraform, sources: {
            i for i in terraform if artifacts[i].path.startswith(("a_", "infra/db"))
        },
    )
    taken: list[set[str]] = []
    real_plan = split_module._Plan

    def plan(*args: Any) -> Any:
        made = real_plan(*args)
        taken.append({made.artifacts[i].path for i in made.read})
        return made

    monkeypatch.setattr(split_module, "_Plan", plan)
    split = _scan(root, jobs=2)
    assert forced and forced[0] is not None
    assert taken == [{"a_alarms/main.tf", "infra/db.tf"}]  # a_env/main.tf stayed there
    # Before its first part; any other file of the share it reaches first, it parses too.
    assert parsed_there.read_text().split()[0] == "a_alarms/main.tf"
    _assert_same(plain, split)


def test_documents_sent_together_share_what_the_parser_shared() -> None:
    """Loaded from one pickle, two files' documents share their interned names and equal
    spans, as parsed ones do; from a pickle each, they would not."""
    from policyscan.model import Artifact

    texts = ['resource "aws_s3_bucket" "b" {\n  bucket = var.name\n}\n'] * 2
    docs = [
        scan_module.parse_text(Artifact(name, "/nonexistent", Kind.TERRAFORM), text)
        for name, text in zip(("a.tf", "b.tf"), texts, strict=True)
    ]
    loaded = split_module._load_together(split_module._together(docs), 2)
    assert loaded == docs
    first, second = (d.blocks[0] for d in loaded)  # type: ignore[attr-defined]
    assert first.type is second.type and first.span is second.span
    alone = [scan_module._load(scan_module._dumps(d)) for d in docs]
    assert alone[0].blocks[0].type is not alone[1].blocks[0].type  # type: ignore[attr-defined]


def test_split_on_a_generated_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = generate_monorepo(tmp_path / "monorepo", 16, 7, 0.2)
    plain = _scan(out, jobs=1)
    assert plain.findings
    returned = record_returns(monkeypatch, split_module, "scan_by_kind")
    split = _scan(out, jobs=2)  # over POOL_MIN_FILES: split without being forced to
    assert returned and returned[0] is not None
    _assert_same(plain, split)


def _dies(*args: Any) -> Any:
    os._exit(3)  # as a worker killed by the OOM killer would


def _fails(*args: Any) -> Any:
    raise ValueError("a bug in the worker")


@pytest.mark.parametrize("how", [_dies, _fails])
def test_a_lost_worker_leaves_the_scan_to_this_process(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch, how: Any
) -> None:
    root = _repo(tmp_path / "repo")
    plain = _scan(root, jobs=1)
    monkeypatch.delenv("POLICYSCAN_DEBUG", raising=False)
    monkeypatch.setattr(split_module, "_work", how)
    after = _scan(root, jobs=2)
    assert forced == [None]  # the split gave up, and the scan was done the ordinary way
    _assert_same(plain, after)


def test_a_worker_lost_after_storing_its_shelf(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stores the Terraform shelf before it sends its findings: one that dies in
    between leaves the scan to this process, which had let the Terraform texts go and reads
    the tree again; the cache it leaves is what one process leaves."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv("POLICYSCAN_DEBUG", raising=False)
    root = _repo(tmp_path / "repo")
    plain = _scan(root, jobs=1)
    from multiprocessing.connection import Connection

    parent = os.getpid()
    real_send = Connection.send_bytes
    sent: list[int] = []

    def send_bytes(self: Connection, buf: Any, *args: Any) -> None:
        if os.getpid() != parent:  # in the worker: its resources, then its findings
            sent.append(len(buf))
            if len(sent) == 2:
                os._exit(3)
        real_send(self, buf, *args)

    monkeypatch.setattr(Connection, "send_bytes", send_bytes)
    read_again = record_returns(monkeypatch, scan_module, "_split_cached")
    after = _scan(root, jobs=2, cache=True)
    assert forced == [None]
    assert read_again == ["again"]
    _assert_same(plain, after)
    made = _entries(root)
    from policyscan import cache

    cache.clear(str(root))
    _scan(root, jobs=1, cache=True)
    # The documents; not the modules' summaries, which the ordinary way, taken after a
    # failure, does not make (judged in parts, one process makes them).
    assert _documents(_entries(root)) == made
    assert _documents(made) == made


def _documents(entries: dict[str, Any]) -> dict[str, Any]:
    return {path: entry for path, entry in entries.items() if not path.startswith("\0")}


def _shelf_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that gets a line for each shelf opened, each pickle read from one, and each
    shelf written: which process, what, which shelf."""
    from policyscan.cache import ScanCache, Shelf, ShelfWriter

    log = tmp_path / "shelves.log"
    real_open, real_read, real_start = (
        ScanCache.open_shelf,
        Shelf.unchanged,
        ShelfWriter._start,
    )

    def note(what: str, name: str) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {what} {name}\n")

    def open_shelf(self: ScanCache, terraform: bool) -> Shelf:
        note("open", "terraform" if terraform else "others")
        return real_open(self, terraform)

    def read(self: Shelf, path: str, key: str | None) -> bytes | None:
        found = real_read(self, path, key)
        if found is not None:
            note("read", self.name)
        return found

    def start(self: ShelfWriter) -> bool:
        note("write", self._name)
        return real_start(self)

    monkeypatch.setattr(ScanCache, "open_shelf", open_shelf)
    monkeypatch.setattr(Shelf, "unchanged", read)
    monkeypatch.setattr(ShelfWriter, "_start", start)
    return log


def test_each_process_of_a_split_reads_and_writes_its_own_shelf(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Terraform pickles never pass through this process: the worker reads the Terraform
    shelf and writes it, this process the other kinds' one (it opens the Terraform shelf for
    its keys alone). Cold, and with one Terraform file changed, where only the worker
    writes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = _repo(tmp_path / "repo")
    log = _shelf_calls(tmp_path, monkeypatch)
    parent = str(os.getpid())

    def calls() -> set[tuple[str, str, str]]:
        found = [tuple(line.split()) for line in log.read_text(encoding="utf-8").splitlines()]
        log.unlink()
        return {("here" if pid == parent else "worker", what, name) for pid, what, name in found}

    _scan(root, jobs=2, cache=True)
    assert forced and forced[-1] is not None
    assert calls() == {
        ("here", "open", "others"),
        ("here", "open", "terraform"),
        ("here", "write", "documents.bin"),
        ("worker", "open", "terraform"),
        ("worker", "write", "documents-terraform.bin"),
    }
    with (root / "infra" / "db.tf").open("a", encoding="utf-8") as f:
        f.write('\nresource "aws_s3_bucket" "more" {\n  bucket = "more"\n}\n')
    partly = _scan(root, jobs=2, cache=True)
    assert calls() == {
        ("here", "open", "others"),
        ("here", "open", "terraform"),
        ("here", "read", "documents.bin"),
        ("worker", "open", "terraform"),
        ("worker", "read", "documents-terraform.bin"),
        ("worker", "write", "documents-terraform.bin"),
    }
    _assert_same(_scan(root, jobs=1), partly)


@pytest.mark.parametrize("how", ["pickle damaged", "shelf lost", "index damaged"])
def test_a_damaged_terraform_shelf(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A pickle that does not read back as its signed index says (a byte flipped), a shelf
    gone, an index that does not verify: the documents are parsed again, the result is one
    process's, and the shelf is whole again after."""
    from policyscan import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = _repo(tmp_path / "repo")
    _scan(root, jobs=2, cache=True)
    shelf = root / cache.CACHE_DIRNAME / cache._TERRAFORM_DOCUMENTS
    made = _entries(root)
    data = bytearray(shelf.read_bytes())
    if how == "pickle damaged":
        data[len(cache._SHELF_MAGIC) + 5] ^= 0xFF  # inside the first pickle
        shelf.write_bytes(bytes(data))
    elif how == "index damaged":
        data[-50] ^= 0xFF  # inside the index
        shelf.write_bytes(bytes(data))
    else:
        shelf.unlink()
    (root / cache.CACHE_DIRNAME / cache._RESULTS).unlink()
    forced.clear()
    after = _scan(root, jobs=2, cache=True)
    assert forced and forced[-1] is not None
    _assert_same(_scan(root, jobs=1), after)
    assert _entries(root) == made


def _project(root: Path, kinds: frozenset[Kind] | None) -> Project:
    from policyscan.discover import discover

    found = discover([str(root)], str(root))
    documents = {}
    for artifact in found.artifacts:
        doc, _ = parse_artifact(artifact, 1 << 20)
        if isinstance(doc, scan_module._Failed):
            continue
        if kinds is None or artifact.kind in kinds:
            documents[artifact.path] = doc
    return Project(found.root, found.artifacts, documents, kinds=kinds)


def test_a_partial_project_refuses_the_kinds_it_does_not_hold(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    terraform = _project(root, frozenset({Kind.TERRAFORM}))
    with pytest.raises(PartialViewError):
        terraform.docs(Kind.COMPOSE)
    with pytest.raises(PartialViewError):
        terraform.dotenv_for("app")
    assert terraform.docs(Kind.TERRAFORM)

    rest = _project(root, frozenset(set(Kind) - {Kind.TERRAFORM}))
    with pytest.raises(PartialViewError):
        _ = rest.terraform_modules
    with pytest.raises(TerraformElsewhere):  # not sent yet
        list(rest.terraform_resources(["aws_backup_plan"]))
    rest.remote_terraform = terraform.cross_family_terraform()
    with pytest.raises(PartialViewError):  # never sent: not declared in CROSS_FAMILY_RESOURCES
        list(rest.terraform_resources(["aws_s3_bucket"]))


def test_the_resources_sent_are_those_every_resource_would_give(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    full = _project(root, None)
    rest = _project(root, frozenset(set(Kind) - {Kind.TERRAFORM}))
    rest.remote_terraform = _project(root, frozenset({Kind.TERRAFORM})).cross_family_terraform()
    types = sorted(CROSS_FAMILY_RESOURCES)
    expected = [
        (b.address, b.path, b.span)
        for _, b in full.terraform_blocks("resource")
        if b.labels and b.labels[0] in CROSS_FAMILY_RESOURCES
    ]
    assert len(expected) == 3  # the backup plan, the cache and the listener
    for project in (full, rest):
        found = [(b.address, b.path, b.span) for _, b in project.terraform_resources(types)]
        assert found == expected
    # Resolved the same way: the cache's id comes from a variable of its module.
    for project in (full, rest):
        [(module, block)] = project.terraform_resources(["aws_elasticache_replication_group"])
        resolved = module.resolve_tree(block.body).get("replication_group_id")
        assert resolved is not None and resolved.data == "cache"


def _entries(root: Path) -> dict[str, tuple[str, object]]:
    """The cache's documents, loaded: equal documents may pickle to different bytes (which
    equal objects a pickle shares depends on what was built before)."""
    from policyscan.cache import ScanCache, loads

    store = ScanCache.open(str(root))
    assert store is not None
    return {path: (key, loads(blob)) for path, (key, blob) in store.load_documents().items()}


def test_split_with_the_cache(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cold, partly warm and warm: the same result as one process without the cache, and the
    same cache entries as one process with it."""
    from policyscan import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = _repo(tmp_path / "repo")

    def entries_alone() -> dict[str, tuple[str, object]]:
        """What one process leaves in the cache after the same scan."""
        made = _entries(root)
        cache.clear(str(root))
        _scan(root, jobs=1, cache=True)
        assert _entries(root) == made
        return made

    split = _scan(root, jobs=2, cache=True)
    assert forced and forced[-1] is not None
    _assert_same(_scan(root, jobs=1), split)
    entries_alone()
    _scan(root, jobs=2, cache=True)  # the split's own entries back, for the next scan

    # A Terraform document and an env file change, the rest do not.
    with (root / "infra" / "db.tf").open("a", encoding="utf-8") as f:
        f.write('\nresource "aws_s3_bucket" "more" {\n  bucket = "more"\n}\n')
    with (root / "app" / ".env").open("a", encoding="utf-8") as f:
        f.write("LOG_LEVEL=debug\n")
    forced.clear()
    loaded: list[bytes | None] = []
    real_load = scan_module._load

    def counted(blob: bytes | None) -> object | None:
        loaded.append(blob)
        return real_load(blob)

    monkeypatch.setattr(scan_module, "_load", counted)
    partly = _scan(root, jobs=2, cache=True)
    assert forced and forced[-1] is not None
    assert loaded  # unchanged documents came from the cache
    _assert_same(_scan(root, jobs=1), partly)

    forced.clear()
    warm = _scan(root, jobs=2, cache=True)
    assert forced == []  # answered from the cached results: nothing to split
    _assert_same(partly, warm)
    entries_alone()


@pytest.mark.parametrize(
    ("scope", "predicate"),
    [
        ("terraform.resource", "backup_anywhere"),  # a Terraform rule reading compose
        ("compose.service", "alarms_in_project"),  # a compose rule reading Terraform its own way
    ],
)
@pytest.mark.parametrize("large", [False, True])
def test_a_rule_that_reads_across_kinds_its_own_way_leaves_the_scan_to_one_process(
    tmp_path: Path,
    forced: list[Any],
    scope: str,
    predicate: str,
    large: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any predicate may serve any scope in a user's policy: one that reads documents its
    process does not hold gives up the split (the tree is scanned the ordinary way), never a
    different answer. With ``large``, the Terraform resources the worker sends first are
    more than a pipe holds and the parent reads late, so that the worker is still writing
    them when its rule fails: the news of the failure must follow them, not break into them
    (a 10,000-file tree once ended in an internal error that way)."""
    from policyscan.plan import Settings, make_plan
    from policyscan.project import Project, TerraformModule
    from policyscan.scan import scan

    if large:
        real = Project.cross_family_terraform

        def padded(self: Project) -> dict[str, TerraformModule]:
            modules = real(self)
            modules["z" * 300_000] = TerraformModule("z" * 300_000)  # no resources: no answers
            return modules

        monkeypatch.setattr(Project, "cross_family_terraform", padded)
        judge = engine.judge

        def late(*args: Any, **kwargs: Any) -> Any:
            if os.getpid() == parent:
                # The parent reads nothing until the worker's rule has failed, while its
                # sender waits with the pipe full.
                time.sleep(0.5)
            return judge(*args, **kwargs)

        parent = os.getpid()
        monkeypatch.setattr(engine, "judge", late)
        damaged: list[Exception] = []
        loads = split_module.loads

        def checked(data: bytes) -> Any:
            try:
                return loads(data)
            except Exception as exc:  # the parent would fall back: still a broken message
                damaged.append(exc)
                raise

        monkeypatch.setattr(split_module, "loads", checked)

    root = _repo(tmp_path / "repo")
    policies = write_tree(
        tmp_path / "policies",
        {
            "org.yaml": (
                f"id: ORG001\nname: across\nscope: {scope}\nartifacts: [compose, terraform]\n"
                "severity: low\nconfidence: high\nchecklist: [app.env.no-dev-values]\n"
                "message: 'across'\ndocs: {what: w, why: y, fix: f}\n"
                f"assert: {{predicate: {predicate}}}\n"
                # Examples are the test suite's, for built-in rules; a user's must merely exist.
                "examples: {fail: [{files: {a.tf: 'x'}, expect: [{file: a.tf, line: 1}]}],"
                " pass: [{files: {b.tf: 'y'}}]}\n"
            )
        },
    )
    plan = make_plan(Settings(paths=(str(root),), policy_dirs=(str(policies),)))
    assert any(r.id == "ORG001" for r in plan.rules)
    options = plan.scan_options(None)
    plain = scan(plan.rules, dataclasses.replace(options, jobs=1))
    split = scan(plan.rules, dataclasses.replace(options, jobs=2))
    assert forced == [None]
    _assert_same(plain, split)
    if large:
        assert damaged == []


def test_a_damaged_message_from_the_worker_reads_as_none() -> None:
    """Whatever the worker sent, the parent falls back to the ordinary scan rather than fail."""
    import multiprocessing

    receive, send = multiprocessing.Pipe(duplex=False)
    for raw in (b"\x80\x05garbage", split_module.dumps(["not", "a", "tuple"]), b""):
        send.send_bytes(raw)
        assert split_module._receive(receive) is None
    send.send_bytes(split_module.dumps(("ok", 42)))
    assert split_module._receive(receive) == 42


def test_the_share_taken_here_leaves_cached_terraform_to_the_worker(tmp_path: Path) -> None:
    """With the cache, this process takes only Terraform files it must parse (it holds no
    Terraform pickle), from the end, while the worker has more to do; a file the shelf's keys
    say is cached is the worker's, and a key that no longer matches makes a file parseable
    here again."""
    from policyscan.cache import ScanCache, Shelf
    from policyscan.discover import discover

    files = {f"mod{i:02d}/main.tf": "# " + "x" * 20_000 + "\n" for i in range(12)}
    root = write_tree(tmp_path / "repo", {**files, "app/.env": "DEBUG=false\n"})
    artifacts = discover([str(root)], str(root)).artifacts
    terraform = [i for i, a in enumerate(artifacts) if a.kind is Kind.TERRAFORM]
    keys = {a.path: f"key {a.path}" for a in artifacts}
    store = ScanCache(str(tmp_path / "cache"), b"k" * 32)

    shelf = dict(keys)  # the keys as the shelf has them

    def taken(cached: set[str]) -> list[str]:
        sources = split_module.Sources(
            {},
            {},
            Shelf(),
            keys,
            store,
            {p: shelf[p] for p in cached},
            store.shelf_writer(False, Shelf()),
        )
        here = split_module._share_here(artifacts, terraform, sources)
        return sorted(artifacts[i].path for i in here)

    none_cached = taken(set())
    assert none_cached and len(none_cached) < len(terraform)
    assert none_cached == sorted(artifacts[i].path for i in terraform[-len(none_cached) :])
    last = artifacts[terraform[-1]].path
    with_last_cached = taken({last})
    assert last not in with_last_cached and with_last_cached
    assert taken({artifacts[i].path for i in terraform}) == []
    keys[last] = "changed since"
    assert last in taken({last})


def _obtained_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose document this process (the split's parent) took: loaded or parsed."""
    taken: list[str] = []
    real = split_module._obtain

    def obtain(plan: Any, index: int, *args: Any, **kwargs: Any) -> Any:
        taken.append(plan.artifacts[index].path)
        return real(plan, index, *args, **kwargs)

    monkeypatch.setattr(split_module, "_obtain", obtain)
    return taken


@pytest.mark.parametrize(
    ("focus", "taken"),
    [
        # A Terraform file (with an ignore comment): no rule of the other kinds can find
        # anything in it, so none of their documents is loaded.
        ("infra/db.tf", set()),
        # An env file: its variables are judged with every other variable (secret reuse,
        # compose environments, Dockerfile ENV); nginx is not asked.
        ("app/.env", {"app/.env", "app/Dockerfile", "app/docker-compose.yml"}),
    ],
)
def test_a_focused_split_loads_the_documents_its_rules_ask_for(
    tmp_path: Path,
    forced: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    focus: str,
    taken: set[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = _repo(tmp_path / "repo")
    _scan(root, jobs=2, cache=True)
    with (root / focus).open("a", encoding="utf-8") as f:
        f.write("# changed, as a file a commit stages\n")
    obtained = _obtained_here(monkeypatch)
    forced.clear()
    focused = _scan(root, jobs=2, cache=True, only=frozenset({focus}))
    assert forced and forced[-1] is not None
    assert {p for p in obtained if not p.endswith(".tf")} == taken  # its Terraform share aside
    _assert_same(_scan(root, jobs=1, only=frozenset({focus})), focused)
    assert focused.findings  # the comparison is about something


def test_a_waiting_document_that_does_not_load_is_parsed(
    tmp_path: Path, forced: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyscan import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = _repo(tmp_path / "repo")
    _scan(root, jobs=2, cache=True)
    shelf = root / cache.CACHE_DIRNAME / cache._DOCUMENTS
    data = bytearray(shelf.read_bytes())
    data[len(cache._SHELF_MAGIC) + 5] ^= 0xFF  # inside the first pickle: app/.env's
    shelf.write_bytes(bytes(data))
    with (root / "app" / "Dockerfile").open("a", encoding="utf-8") as f:
        f.write("# changed\n")
    obtained = _obtained_here(monkeypatch)
    parsed = record_returns(monkeypatch, scan_module, "parse_text")
    forced.clear()
    focused = _scan(root, jobs=2, cache=True, only=frozenset({"app/Dockerfile"}))
    assert forced and forced[-1] is not None
    assert "app/.env" in obtained  # asked for by the variables' rules, after the others
    assert "app/.env" in {doc.artifact.path for doc in parsed}
    _assert_same(_scan(root, jobs=1, only=frozenset({"app/Dockerfile"})), focused)


def test_waiting_documents_arrive_when_first_asked_for() -> None:
    loaded: list[str] = []

    def load(path: str) -> object | None:
        loaded.append(path)
        return None if path == "broken.env" else f"document of {path}"

    documents = split_module._Waiting(load)
    documents["here.yml"] = "parsed"
    for path in ("a.env", "b.env", "c.env", "d.env", "broken.env"):
        documents.wait(path)
    assert loaded == [] and set(documents) == {"here.yml"}  # iterating loads nothing
    assert documents.get("a.env") == "document of a.env"
    assert documents["b.env"] == "document of b.env"
    assert "c.env" in documents
    assert documents.pop("d.env", None) is None  # let go before it was asked for
    assert "d.env" not in documents
    assert "broken.env" not in documents and documents.get("broken.env") is None
    assert documents.get("a.env") == "document of a.env"  # loaded once
    assert loaded == ["a.env", "b.env", "c.env", "broken.env"]
