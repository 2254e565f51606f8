"""--jobs and the cache change how fast a scan is, never what it finds.

Every test compares a scan made one way with the plain one (one process, no cache): the results
must be equal, field for field, and the rendered reports byte for byte. The cache must also be
safe: a changed file is parsed again, and a damaged, forged or planted cache is ignored without
ever being unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from policyscan import cache
from policyscan import scan as scan_module
from policyscan.cli import main
from policyscan.discover import discover
from policyscan.model import Kind
from policyscan.policy import engine, loader
from policyscan.scan import parse_artifact, scan
from tests.conftest import assert_same_result as _assert_same
from tests.conftest import scan_options as _options
from tests.conftest import scan_tree as _scan

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "benchmarks" / "generate_monorepo.py"

COMPOSE = """\
services:
  web:  # policyscan: ignore[PSC008] sized by the orchestrator
    image: nginx:latest
    privileged: true
    environment:
      DEBUG: "true"
      DB_PASSWORD: ${DB_PASSWORD}
  db:
    image: postgres:16
    ports:
      - "5432:5432"
"""
ENV = "DB_PASSWORD=changeme\nSECRET_KEY=secret\nDEBUG=true\n"
TERRAFORM = """\
resource "aws_security_group" "ssh" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_db_instance" "main" {  # policyscan: ignore[PST001]
  engine                  = "postgres"
  publicly_accessible     = true
  backup_retention_period = 1
  password                = "hunter2"
}
"""
DOCKERFILE = "FROM python:latest\nRUN curl https://example.com/x.sh | sh\nCMD python app.py\n"
NGINX = "server {\n  listen 80;\n  server_tokens on;\n  location / { autoindex on; }\n}\n"


@pytest.fixture(autouse=True)
def _private_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HMAC key and the policy markers in a directory of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _small_repo(root: Path) -> Path:
    return _write(
        root,
        {
            "app/docker-compose.yml": COMPOSE,
            "app/.env": ENV,
            "app/Dockerfile": DOCKERFILE,
            "infra/main.tf": TERRAFORM,
            "nginx/nginx.conf": NGINX,
        },
    )


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated tree big enough for the pool (over POOL_MIN_FILES files)."""
    out = tmp_path_factory.mktemp("gen") / "monorepo"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--services", "16", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


# ------------------------------------------------------------------------------- --jobs


def _no_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the cache, processes split a tree with Terraform by kind (test_split.py) or
    judge its Terraform in parts (test_terraform_parts.py): these tests are about the other
    ways of sharing a scan, those of a tree without Terraform."""
    monkeypatch.setattr(scan_module, "_split", lambda *args: None)
    monkeypatch.setattr(scan_module, "_in_parts", lambda *args: None)


def test_pool_gives_the_same_result_as_one_process(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = len(discover([str(monorepo)], str(monorepo)).artifacts)
    assert files >= scan_module.POOL_MIN_FILES  # or the pool would not run at all
    _no_split(monkeypatch)
    plain = _scan(monorepo, jobs=1)
    pooled = _scan(monorepo, jobs=2)
    assert plain.findings  # a tree with nothing to find would prove nothing
    _assert_same(plain, pooled)


def _scan_in_a_daemon(root: Path, send: Any) -> None:
    result = _scan(root, jobs=2, cache=False)
    send.send([(f.rule_id, f.location.path, f.location.span.start_line) for f in result.findings])


def test_a_scan_from_a_daemonic_process_is_done_in_it(monorepo: Path, tmp_path: Path) -> None:
    """Called from a pool's worker (a daemonic process, which multiprocessing lets have no
    children), the scan is done in that process, not failed."""
    import multiprocessing
    import shutil

    # Without its Dockerfiles: their parser runs Go, whose runtime a process forked after it
    # started (this one, if an earlier test parsed one) cannot use (scan._parse_in_pool).
    tree = tmp_path / "tree"
    shutil.copytree(monorepo, tree, ignore=shutil.ignore_patterns("Dockerfile*", "*.dockerfile"))
    found_kinds = {a.kind for a in discover([str(tree)], str(tree)).artifacts}
    assert Kind.DOCKERFILE not in found_kinds and Kind.TERRAFORM in found_kinds
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_scan_in_a_daemon, args=(tree, send), daemon=True)
    process.start()
    send.close()  # the daemon's end: if it dies, this end reads as EOF
    try:
        found = receive.recv() if receive.poll(120) else None
    except EOFError:
        found = None
    process.join(timeout=10)
    plain = _scan(tree, jobs=1, cache=False)
    assert found == [
        (f.rule_id, f.location.path, f.location.span.start_line) for f in plain.findings
    ]
    assert found


def test_rules_shared_out_among_processes_give_the_same_result(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _scan(monorepo, jobs=1)
    _no_split(monkeypatch)
    monkeypatch.setattr(scan_module, "RULES_POOL_MIN_FILES", 0)  # this tree is too small
    calls = []
    real = engine._evaluate_forked

    def counted(*args: Any) -> Any:
        calls.append(args[2])  # jobs
        shared = real(*args)
        assert shared is not None  # evaluated in processes, not fallen back
        return shared

    monkeypatch.setattr(engine, "_evaluate_forked", counted)
    for jobs in (2, 3):
        _assert_same(plain, _scan(monorepo, jobs=jobs))
    assert calls == [2, 3]


@pytest.mark.parametrize("by_family", [True, False])
def test_rules_shared_by_family_or_by_subject_give_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_family: bool
) -> None:
    """Shared by family, each process builds only part of the project view, and so meets only
    part of its problems (an nginx include that is not there, a compose file that is not a
    mapping): together they must be the problems of one process, no more, no fewer."""
    root = _small_repo(tmp_path / "repo")
    _write(
        root,
        {
            "nginx/nginx.conf": "http {\n  include conf.d/*.conf;\n  include missing.conf;\n}\n",
            "nginx/conf.d/a.conf": NGINX,
            "nginx/conf.d/b.conf": "server {\n  listen 80;\n  include gone.conf;\n}\n",
            "other/docker-compose.yml": "- just\n- a list\n",
        },
    )
    plain = _scan(root, jobs=1)
    assert plain.problems and plain.findings
    # This tree is far too small for processes: make them anyway.
    _no_split(monkeypatch)
    monkeypatch.setattr(scan_module, "RULES_POOL_MIN_FILES", 0)
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)
    monkeypatch.setattr(engine, "_by_family", lambda project, jobs: by_family)
    real = engine._evaluate_forked
    calls = []

    def must_share(*args: Any) -> Any:
        shared = real(*args)
        assert shared is not None  # evaluated in processes, not fallen back
        calls.append(args[2])
        return shared

    monkeypatch.setattr(engine, "_evaluate_forked", must_share)
    _assert_same(plain, _scan(root, jobs=2))
    assert calls == [2]


def test_union_of_problems_keeps_each_as_often_as_one_view_met_it() -> None:
    from policyscan.model import Problem, Span

    a, b, c = (Problem(p, Span.line(1), "m", "include") for p in "abc")
    assert engine._union([[a, a, b], [b, c], [a]]) == [a, a, b, c]
    assert engine._union([[a, b], [a, b]]) == [a, b]
    assert engine._union([]) == []


def test_reports_are_byte_identical_with_and_without_jobs_and_cache(
    monorepo: Path, tmp_path: Path
) -> None:
    outputs = {}
    runs = {
        "plain": ["--jobs", "1", "--no-cache"],
        "jobs": ["--jobs", "2", "--no-cache"],
        "cold": ["--jobs", "2"],
        "warm": ["--jobs", "2"],
        "warm-1": ["--jobs", "1"],
    }
    cache.clear(str(monorepo))
    for name, extra in runs.items():
        sarif, junit = tmp_path / f"{name}.sarif", tmp_path / f"{name}.xml"
        code, text = _cli(
            str(monorepo),
            *extra,
            "--fail-on",
            "never",
            "--format",
            "sarif",
            "-o",
            str(sarif),
            "--format",
            "junit",
            "-o",
            str(junit),
            "--format",
            "text",
            "--no-color",
        )
        assert code == 0
        outputs[name] = (text, sarif.read_bytes(), junit.read_bytes())
    assert (monorepo / cache.CACHE_DIRNAME / "results.bin").is_file()
    for name, produced in outputs.items():
        assert produced == outputs["plain"], name


def test_small_scans_do_not_start_a_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _small_repo(tmp_path / "repo")

    def no_pool(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pool for five files")

    monkeypatch.setattr(scan_module, "_parse_in_pool", no_pool)
    _assert_same(_scan(root, jobs=1), _scan(root, jobs=8))


_PARENT = os.getpid()
_REAL_CHUNK = scan_module._parse_chunk


def _dies_in_a_worker(task: Any) -> Any:
    if os.getpid() != _PARENT:
        os._exit(3)  # as a worker killed by the OOM killer would
    return _REAL_CHUNK(task)


def test_a_broken_pool_falls_back_to_this_process(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _scan(monorepo, jobs=1)
    _no_split(monkeypatch)
    monkeypatch.setattr(scan_module, "_parse_chunk", _dies_in_a_worker)
    _assert_same(plain, _scan(monorepo, jobs=2))


# ------------------------------------------------------------------------------- the cache


def test_cold_warm_and_uncached_scans_are_equal(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    plain = _scan(root)
    cold = _scan(root, cache=True)
    assert (root / cache.CACHE_DIRNAME / "documents.bin").is_file()
    warm = _scan(root, cache=True)
    _assert_same(plain, cold)
    _assert_same(plain, warm)
    assert any(f.suppressed for f in warm.findings)  # the ignore comments were honoured


def test_leaving_out_evidence_changes_nothing_else(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _scan(monorepo, jobs=1)
    assert full.evidence and full.findings
    lean = _scan(monorepo, jobs=1, evidence=False)
    assert lean.evidence == []
    assert lean.findings == full.findings
    assert lean.problems == full.problems
    split = _scan(monorepo, jobs=2, evidence=False)  # split by kind
    assert split.evidence == []
    assert split.findings == full.findings
    _no_split(monkeypatch)
    monkeypatch.setattr(scan_module, "RULES_POOL_MIN_FILES", 0)  # shared among processes too
    shared = _scan(monorepo, jobs=2, evidence=False)
    assert shared.evidence == []
    assert shared.findings == full.findings


def test_results_cached_without_evidence_do_not_answer_the_checklist(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    first = _cli("checklist", str(root), "--format", "json")
    assert any(item["evidence"] for item in json.loads(first[1])["items"])
    cache.clear(str(root))
    code, _ = _cli(str(root), "--fail-on", "never")  # the scan caches its results, lean
    assert code == 0
    assert (root / cache.CACHE_DIRNAME / "results.bin").is_file()
    assert _cli("checklist", str(root), "--format", "json") == first


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parse(*args: Any) -> Any:
        raise AssertionError("parsed although nothing changed")

    monkeypatch.setattr(scan_module, "parse_text", no_parse)
    monkeypatch.setattr(scan_module, "parse_artifact", no_parse)


def test_a_warm_scan_parses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _small_repo(tmp_path / "repo")
    cold = _scan(root, cache=True)
    _no_parsing(monkeypatch)

    def no_snippet(*args: Any) -> Any:
        raise AssertionError("a snippet made again although nothing changed")

    monkeypatch.setattr(scan_module, "snippet", no_snippet)
    timings: dict[str, float] = {}
    warm = _scan(root, cache=True, timings=timings)
    assert "rules" not in timings  # answered from the results, not evaluated
    assert [f.snippet for f in warm.findings] == [f.snippet for f in cold.findings]
    assert any(f.snippet for f in warm.findings)  # the results keep them


@pytest.mark.parametrize("jobs", [1, 2])
def test_documents_are_reused_when_only_the_rules_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    root = _small_repo(tmp_path / "repo")
    monkeypatch.setattr(scan_module, "_jobs_for", lambda jobs, files: jobs)  # a small tree
    rules, options = _options(root, cache=True, jobs=jobs)
    scan(rules, options)
    fewer = [r for r in rules if not r.id.startswith("PSC")]
    with monkeypatch.context() as patched:
        _no_parsing(patched)  # every document from the cache
        cached = scan(fewer, options)
    _assert_same(scan(fewer, dataclasses.replace(options, cache=False)), cached)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "environment"])
def test_a_changed_tree_is_scanned_again(tmp_path: Path, change: str) -> None:
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    if change == "edit":
        (root / "app" / ".env").write_text("DEBUG=false\nSECRET_KEY=changeme\n", encoding="utf-8")
    elif change == "add":
        _write(root, {"more/docker-compose.yml": COMPOSE.replace("5432:5432", "6379:6379")})
    elif change == "remove":
        (root / "infra" / "main.tf").unlink()
    else:  # the same bytes under a name that makes them production
        (root / "app" / ".env").rename(root / "app" / ".env.production")
    plain = _scan(root)
    _assert_same(plain, _scan(root, cache=True))
    _assert_same(plain, _scan(root, cache=True))


def test_an_edit_of_the_same_size_and_time_is_seen(tmp_path: Path) -> None:
    """Keyed by content, not by stat: a checkout can keep both size and mtime."""
    root = _small_repo(tmp_path / "repo")
    env = root / "app" / ".env"
    _scan(root, cache=True)
    before = env.stat()
    env.write_text(ENV.replace("DEBUG=true", "DEBUG=True"), encoding="utf-8")
    os.utime(env, ns=(before.st_atime_ns, before.st_mtime_ns))
    _assert_same(_scan(root), _scan(root, cache=True))


@pytest.mark.parametrize("split", [True, False])
def test_jobs_with_a_partly_warm_cache(
    monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    """Two processes with the cache: split by kind, or (as with more processes) a pool."""
    import shutil

    if not split:
        monkeypatch.setattr(scan_module, "_split_cached", lambda *args: None)
    root = tmp_path / "tree"
    shutil.copytree(monorepo, root, ignore=shutil.ignore_patterns(cache.CACHE_DIRNAME))
    _scan(root, cache=True, jobs=2)
    for env in sorted(root.glob("services/*/.env"))[:5]:
        env.write_text(env.read_text(encoding="utf-8") + "DEBUG=true\n", encoding="utf-8")
    (root / cache.CACHE_DIRNAME / "results.bin").unlink()
    plain = _scan(root, jobs=1)
    _assert_same(plain, _scan(root, cache=True, jobs=2))
    _assert_same(plain, _scan(root, cache=True, jobs=1))


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    code, _ = _cli(str(root), "--no-cache", "--fail-on", "never")
    assert code == 0
    assert not (root / cache.CACHE_DIRNAME).exists()
    code, _ = _cli("checklist", str(root), "--no-cache", "-f", "json")
    assert code == 0
    assert not (root / cache.CACHE_DIRNAME).exists()
    _cli("checklist", str(root), "-f", "json")
    assert (root / cache.CACHE_DIRNAME).exists()  # the checklist does use the cache otherwise


def test_cache_clear(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    assert _cli(str(root), "--fail-on", "never")[0] == 0
    directory = root / cache.CACHE_DIRNAME
    assert (directory / "CACHEDIR.TAG").is_file()
    assert (directory / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    assert _cli("cache", "clear", str(root))[0] == 0
    assert not directory.exists()
    assert _cli("cache", "clear", str(root))[0] == 0  # nothing to clear is no error


def test_cache_directory_is_not_scanned(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    (root / cache.CACHE_DIRNAME / "docker-compose.yml").write_text(COMPOSE, encoding="utf-8")
    paths = [a.path for a in discover([str(root)], str(root)).artifacts]
    assert not any(p.startswith(cache.CACHE_DIRNAME) for p in paths)


# ------------------------------------------------------------------------------- safety


class _Planted:
    """Unpickling this creates a file: the proof that planted bytes ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> Any:
        return (Path.touch, (self.target,))


@pytest.mark.parametrize("name", ["documents.bin", "documents-terraform.bin", "results.bin"])
@pytest.mark.parametrize("how", ["flipped", "truncated", "unsigned", "other-key", "garbage"])
def test_a_damaged_or_forged_cache_is_ignored(tmp_path: Path, name: str, how: str) -> None:
    root = _small_repo(tmp_path / "repo")
    plain = _scan(root)
    _scan(root, cache=True)
    path = root / cache.CACHE_DIRNAME / name
    data = bytearray(path.read_bytes())
    ran = tmp_path / "ran"
    evil = pickle.dumps(_Planted(ran))
    if how == "flipped":
        data[-10] ^= 0xFF
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "unsigned":
        data = bytearray(cache._MAGIC + bytes(cache._MAC_SIZE) + evil)
    elif how == "other-key":
        other = cache.ScanCache(str(path.parent), b"k" * 32)
        data = bytearray(cache._MAGIC + other._mac(name, evil) + evil)
    else:
        data = bytearray(evil)
    path.write_bytes(bytes(data))
    _assert_same(plain, _scan(root, cache=True))
    assert not ran.exists()
    _assert_same(plain, _scan(root, cache=True))  # and the damage was overwritten


def test_even_a_signed_entry_only_builds_policyscan_classes(tmp_path: Path) -> None:
    """Defence in depth: a leaked key still does not let a cache run code."""
    root = _small_repo(tmp_path / "repo")
    plain = _scan(root)
    _scan(root, cache=True)
    store = cache.ScanCache.open(str(root))
    assert store is not None
    ran = tmp_path / "ran"
    key = store.open_shelf(terraform=False).key("app/.env")
    assert key is not None
    writer = store.shelf_writer(False, cache.Shelf())
    writer.put("app/.env", key, pickle.dumps(_Planted(ran)))  # signed, and under its key
    writer.close()
    assert store.open_shelf(terraform=False).unchanged("app/.env", key) is not None
    (root / cache.CACHE_DIRNAME / "results.bin").unlink()
    with pytest.raises(pickle.UnpicklingError):
        cache.loads(pickle.dumps(_Planted(ran)))
    _assert_same(plain, _scan(root, cache=True))
    assert not ran.exists()


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / cache.CACHE_DIRNAME).symlink_to(elsewhere, target_is_directory=True)
    _assert_same(_scan(root), _scan(root, cache=True))
    assert list(elsewhere.iterdir()) == []


def test_the_signing_key_is_private_and_outside_the_tree(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    key = cache.user_cache_dir() / "cache-key"
    assert key.stat().st_mode & 0o077 == 0
    assert len(key.read_bytes()) == 32
    assert not str(key).startswith(str(root))


def _fixture_documents() -> list[object]:
    root = REPO / "fixtures"
    found = discover([str(root)], str(root))
    return [parse_artifact(a, 1 << 20)[0] for a in found.artifacts]


def test_codec_round_trips_documents() -> None:
    docs = _fixture_documents()
    assert docs
    assert [cache.loads(cache.dumps(d)) for d in docs] == docs


def test_a_writer_killed_mid_write_leaves_nothing_for_long(tmp_path: Path) -> None:
    """A temporary file left by a killed writer goes with the next write once it is an hour
    old; a younger one may be another writer's, at it now, and stays."""
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    folder = root / cache.CACHE_DIRNAME
    old, young = folder / ".tmp-killed", folder / ".tmp-writing"
    for path in (old, young):
        path.write_bytes(b"half a shelf")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    (root / "app" / ".env").write_text("DEBUG=false\n", encoding="utf-8")
    _scan(root, cache=True)
    assert not old.exists()
    assert young.exists()


def test_a_shelf_is_written_only_when_it_changes(tmp_path: Path) -> None:
    """A writer that keeps every document of the old shelf leaves its file alone; one that
    drops a document, or puts a new one, replaces it, the kept pickles copied from the old
    file (also those kept before the first new one came). A pickle is checked against the
    signed index when read: one changed on disk reads as nothing."""
    store = cache.ScanCache(str(tmp_path / "cache"), b"k" * 32)
    path = tmp_path / "cache" / cache._DOCUMENTS
    first = store.shelf_writer(False, cache.Shelf())
    for name in ("a", "b", "c"):
        first.put(name, f"key {name}", cache.dumps({"doc": name}))
    first.close()

    def shelf() -> dict[str, object]:
        opened = store.open_shelf(terraform=False)
        found = {p: cache.loads(opened.unchanged(p, k) or b"") for p, k in opened.keys().items()}
        opened.close()
        return found

    assert shelf() == {"a": {"doc": "a"}, "b": {"doc": "b"}, "c": {"doc": "c"}}
    assert store.open_shelf(terraform=False).unchanged("a", "another key") is None
    before = path.stat()

    def write(keep: list[str], put: dict[str, str]) -> None:
        old = store.open_shelf(terraform=False)
        writer = store.shelf_writer(False, old)
        for name in keep:
            writer.keep(name, f"key {name}")
        for name, doc in put.items():
            writer.put(name, f"key {name}", cache.dumps({"doc": doc}))
        writer.close()
        old.close()

    write(["c", "a", "b"], {})
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    write(["a", "b"], {})
    assert shelf() == {"a": {"doc": "a"}, "b": {"doc": "b"}}
    write(["b"], {"d": "new"})
    assert shelf() == {"b": {"doc": "b"}, "d": {"doc": "new"}}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]

    data = bytearray(path.read_bytes())
    data[len(cache._SHELF_MAGIC) + 3] ^= 0xFF  # inside the first pickle, "b"
    path.write_bytes(bytes(data))
    opened = store.open_shelf(terraform=False)
    assert opened.unchanged("b", "key b") is None
    assert opened.unchanged("d", "key d") is not None


def test_shelves_are_read_without_pread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.pread: a shelf is read there all the same."""
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    store = cache.ScanCache.open(str(root))
    assert store is not None
    with_pread = store.load_documents()
    monkeypatch.delattr(os, "pread")
    assert store.load_documents() == with_pread
    files = {a.path for a in discover([str(root)], str(root)).artifacts}
    assert files <= set(with_pread)


def test_a_shelf_whose_write_fails_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk halfway through a shelf: the scan's result is as ever, the old shelf stays
    as it was (read by the next scan), and no temporary file is left."""
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    folder = root / cache.CACHE_DIRNAME
    before = {p.name: p.read_bytes() for p in folder.glob("documents*.bin")}
    assert len(before) == 2
    real = cache._write_all
    calls: list[int] = []

    def full(file: Any, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        real(file, data)

    monkeypatch.setattr(cache, "_write_all", full)
    for path in (root / "app" / ".env", root / "infra" / "main.tf"):
        path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    _assert_same(_scan(root), _scan(root, cache=True))
    assert len(calls) > 2
    assert {p.name: p.read_bytes() for p in folder.glob("documents*.bin")} == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_loaded_documents_share_equal_spans_as_parsed_ones_do() -> None:
    """Each document has a pickle of its own; equal spans are still one object across the
    documents loaded, as across the ones parsed."""
    from policyscan.model import Span

    docs = [cache.loads(cache.dumps(d)) for d in _fixture_documents()]
    seen: dict[Span, list[int]] = {}
    for doc in docs:
        stack: list[Any] = [doc]
        while stack:
            obj = stack.pop()
            if isinstance(obj, Span):
                ids = seen.setdefault(obj, [])
                if id(obj) not in ids:
                    ids.append(id(obj))
            elif isinstance(obj, dict):
                stack.extend(obj.values())
            elif isinstance(obj, list | tuple):
                stack.extend(obj)
            elif hasattr(type(obj), "__slots__"):
                stack.extend(getattr(obj, n) for n in type(obj).__slots__ if hasattr(obj, n))
    assert len(seen) > 100
    assert all(len(ids) == 1 for ids in seen.values())


def test_a_changed_tree_loads_the_results_key_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The results are unpickled only under the tree's key: a scan of a changed tree reads
    the key and stops."""
    root = _small_repo(tmp_path / "repo")
    _scan(root, cache=True)
    store = cache.ScanCache.open(str(root))
    assert store is not None
    loaded: list[object] = []
    real = cache._Unpickler.load

    def load(self: Any) -> Any:
        loaded.append(found := real(self))
        return found

    monkeypatch.setattr(cache._Unpickler, "load", load)
    assert store.load_results("another tree") is None
    assert len(loaded) == 1 and isinstance(loaded[0], str)
    key = loaded[0]
    assert store.load_results(key) is not None
    assert len(loaded) == 3


def test_pickling_a_document_leaves_no_cycle_for_the_collector() -> None:
    """A scan runs without the cyclic collector (scan._collector_paused) and pickles every
    document it parses for the cache: garbage in a cycle would stay for the whole scan."""
    import gc

    docs = _fixture_documents()
    gc.collect()
    gc.disable()
    try:
        blobs = [cache.dumps(d) for d in docs]
        left = gc.collect()
    finally:
        gc.enable()
    assert all(blobs)
    assert left == 0


# ------------------------------------------------------------------------------- policies


def _fields(rule: loader.Rule) -> tuple[Any, ...]:
    return (
        rule.id,
        rule.name,
        rule.scope,
        rule.artifacts,
        rule.environments,
        rule.templates,
        rule.severity,
        rule.confidence,
        rule.checklist,
        rule.tags,
        rule.message,
        rule.source,
        rule.builtin,
        rule.spec.raw,
        rule.where is None,
    )


def test_built_in_policies_validated_once_load_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    validated = loader.load_policies()  # validates, and leaves the marker
    markers = list(cache.user_cache_dir().glob("builtin-policies-*"))
    assert len(markers) == 1

    def no_validation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validated again")

    monkeypatch.setattr(loader, "_schema_validator", no_validation)
    monkeypatch.setattr(loader, "_read_policy", no_validation)
    fast = loader.load_policies()
    assert [_fields(r) for r in fast] == [_fields(r) for r in validated]
    # The pydantic model is still there for whoever asks (reports, explain).
    assert [r.model for r in fast] == [r.model for r in validated]


def test_a_damaged_marker_means_validating_again(monkeypatch: pytest.MonkeyPatch) -> None:
    loader.load_policies()
    (marker,) = cache.user_cache_dir().glob("builtin-policies-*")
    marker.write_bytes(b"\x00garbage")
    calls = []
    real = loader._schema_validator

    def counting() -> Any:
        calls.append(1)
        return real()

    monkeypatch.setattr(loader, "_schema_validator", counting)
    assert loader.load_policies()
    assert calls


def test_user_policies_are_always_validated(tmp_path: Path) -> None:
    loader.load_policies()  # the built-ins' marker exists
    bad = tmp_path / "mine"
    bad.mkdir()
    (bad / "x.yaml").write_text("id: MY001\nname: x\n", encoding="utf-8")
    with pytest.raises(loader.PolicyError):
        loader.load_policies([bad])


def test_a_damaged_signing_key_is_replaced(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    plain = _scan(root)
    _scan(root, cache=True)
    key = cache.user_cache_dir() / "cache-key"
    key.write_bytes(b"short")
    _assert_same(plain, _scan(root, cache=True))  # the old entries no longer verify: a miss
    assert len(key.read_bytes()) == 32
    timings: dict[str, float] = {}
    _assert_same(plain, _scan(root, cache=True, timings=timings))
    assert "rules" not in timings  # and the cache works again


def test_planted_fifos_and_devices_are_not_opened_for_reading(tmp_path: Path) -> None:
    root = _small_repo(tmp_path / "repo")
    plain = _scan(root)
    planted = root / cache.CACHE_DIRNAME
    planted.mkdir()
    os.mkfifo(planted / "documents.bin")  # opening it to read would wait for a writer forever
    (planted / "results.bin").symlink_to("/dev/zero")
    _assert_same(plain, _scan(root, cache=True))
    _assert_same(plain, _scan(root, cache=True))  # replaced by regular files on the way
    assert (planted / "results.bin").is_file() and not (planted / "results.bin").is_symlink()
