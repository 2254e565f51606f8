"""The scan cache in ``.policyscan_cache/`` under the scanned root: parsed documents by content,
and the rule results of a whole tree by the content of all its files.

Each file is rewritten whole after a scan that changed it:

``documents.bin``, ``documents-terraform.bin``
    two shelves of documents, the Terraform ones apart: each document's pickle, and a signed
    index of path -> (key, where the pickle is, its SHA-256). The key hashes the file's bytes,
    where and what it is (path, kind, environment, template), and the code that parses it; a
    file whose key changed is parsed again. A pickle is read when it is needed and checked
    against the index then, and a shelf is written as its documents come (Shelf,
    ShelfWriter): a scan holds the index, not the pickles. The Terraform shelf also keeps
    each module's summary (scan.ModuleSummaries).
``results.bin``
    the rule results of the last scan, under a key that hashes every file's key, the rules (their
    files' contents and the configuration's overrides) and the code. An unchanged tree is
    answered from it without parsing at all.

Safety. The cache sits in the repository being scanned, so a repository can plant one. Entries
are pickles (documents are trees of dataclasses; pickle rebuilds them 5-10x faster than a
generic JSON or marshal decoder written in Python could), and unpickling planted bytes can run
code. So every file is signed: HMAC-SHA256 with a random key kept in the user's cache directory
(``$XDG_CACHE_HOME/policyscan/cache-key``, mode 0600), outside any repository; a file whose
signature does not verify, is truncated or of another format is ignored (and overwritten on the
next write). Even a signed file is read by an unpickler that only builds policyscan's own
classes and a few builtins: a key that leaked cannot be turned into code execution either.
Anything that goes wrong with the cache (read-only tree, no home directory, a full disk) turns
the cache off for the run; it never fails a scan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import io
import operator
import os
import pickle
import secrets
import shutil
import stat
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

CACHE_DIRNAME = ".policyscan_cache"
# documents.bin is about twice the size of the files it holds (80 MB for 16,000 files); a larger
# file is not ours, or not worth reading.
MAX_FILE_BYTES = 1 << 30
_MAGIC = b"PSCACHE1"
_MAC_SIZE = 32
_KEY_NAME = "cache-key"
# The documents in two shelves, so that in a scan split by kind (split.py) each process loads
# and stores only its own: the Terraform pickles, two thirds of the documents, never pass
# through the process that judges the other kinds (50 MB of the 240 it held at 10,000 files).
_DOCUMENTS = "documents.bin"
_TERRAFORM_DOCUMENTS = "documents-terraform.bin"
# A shelf: the magic, each document's pickle one after the other, the index (path -> key,
# offset, length, SHA-256 of the pickle) pickled, then the index's offset and its signature.
# A pickle is read when a scan needs it and checked against the signed index then, so that
# nothing is held but the index (the pickles of 10,000 files are 45 MB) and a shelf can be
# written as its documents come, each let go once written.
_SHELF_MAGIC = b"PSSHELF1"
_OFFSET_SIZE = 8
_RESULTS = "results.bin"
_TEMP = ".tmp-"
_STALE_SECONDS = 3600
_GITIGNORE = "# Created by policyscan: a cache, never to be committed.\n*\n"
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by policyscan.\n"
)
# Libraries whose version changes what a parser returns.
_PARSER_DISTRIBUTIONS = (
    "pyyaml",
    "python_dotenv",
    "tree_sitter",
    "tree_sitter_hcl",
    "dockerfile",
    "crossplane",
)


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "policyscan"


# ------------------------------------------------------------------------------- pickling

_FIRST = operator.itemgetter(0)


def _rebuild(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    """A frozen dataclass with a ``__post_init__`` rebuilt without running it again."""
    obj: Any = object.__new__(cls)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


class _Reducers(dict[type, Callable[[Any], Any]]):
    """The pickler's dispatch table, filled per class on first sight.

    Plain pickle rebuilds a frozen slotted dataclass through ``dataclasses._dataclass_setstate``,
    which calls ``dataclasses.fields()`` for every object: most of the time spent loading a
    document. Here a dataclass is pickled as a call of its own constructor with its fields
    (a frozen one with a ``__post_init__`` through ``_rebuild``), and equal ``Span``s, most of
    them, are written once and shared: they are frozen, so sharing them is invisible.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spans: dict[tuple[int, int, int, int], Any] = {}

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        from policyscan.model import Span

        reducer: Callable[[Any], Any]
        if cls is Span:
            # A function of the spans seen, not a method of this table: a table holding its
            # own bound method is a reference cycle, and scans run without the cyclic
            # collector, so every dump's table and spans stayed alive (25 MB in a scan that
            # pickled 2,000 documents).
            reducer = _span_reducer(self.spans)
        elif dataclasses.is_dataclass(cls) and cls.__module__.startswith("policyscan."):
            reducer = _dataclass_reducer(cls)
        else:
            raise KeyError(cls)  # the default way (enums, builtins)
        self[cls] = reducer
        return reducer


def _span_reducer(spans: dict[tuple[int, int, int, int], Any]) -> Callable[[Any], Any]:
    def reduce(span: Any) -> Any:
        key = (span.start_line, span.start_col, span.end_line, span.end_col)
        first = spans.setdefault(key, span)
        if first is span:
            return (_shared_span, key)
        return (_FIRST, ((first,),))  # a reference to the first one, from the pickle's memo

    return reduce


def _shared_span(start_line: int, start_col: int, end_line: int, end_col: int) -> Any:
    """A Span as loaded: equal ones shared across documents too, as the parsers share them
    (each document's own pickle shares them only within it, and a scan that loaded its
    documents held 2.4 times the spans of one that parsed them: 10 MB more at 10,000 files)."""
    key = (start_line, start_col, end_line, end_col)
    span = _LOADED_SPANS.get(key)
    if span is None:
        from policyscan.model import Span

        span = Span(*key)
        if len(_LOADED_SPANS) >= _LOADED_SPANS_SIZE:
            _LOADED_SPANS.clear()  # bounded, as the parsers' own tables are
        _LOADED_SPANS[key] = span
    return span


_LOADED_SPANS: dict[tuple[int, int, int, int], Any] = {}
_LOADED_SPANS_SIZE = 1 << 16


@cache
def _dataclass_reducer(cls: type) -> Callable[[Any], Any]:
    # Made once per class, not per pickle: each document is a pickle of its own, and making
    # these again for each was 5% of pickling them (4,000 documents: 0.38 s, now 0.36 s).
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    get = operator.attrgetter(*names)
    single = len(names) == 1
    by_constructor = all(f.init for f in fields) and not hasattr(cls, "__post_init__")

    def reduce(obj: Any) -> Any:
        values = (get(obj),) if single else get(obj)
        if by_constructor:
            return (cls, values)
        return (_rebuild, (cls, names, values))

    return reduce


def dumps(obj: object) -> bytes:
    buffer = io.BytesIO()
    dump(obj, buffer)
    return buffer.getvalue()


def dump(obj: object, file: Any) -> None:
    """``dumps`` into ``file`` (anything with ``write``), frame by frame."""
    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _Reducers()
    pickler.dump(obj)


_SAFE_BUILTINS = frozenset({"frozenset", "set", "complex", "slice", "range", "bytearray"})
# Private classes that scan.py caches.
_PRIVATE = frozenset({("policyscan.scan", "_Failed"), ("policyscan.scan", "_Evaluated")})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Only what dumps() writes: policyscan's classes, and the helpers above.
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module == "operator" and name == "itemgetter":
            return operator.itemgetter
        if module == __name__ and name == "_rebuild":
            return _rebuild
        if module == __name__ and name == "_shared_span":
            return _shared_span
        if module.startswith("policyscan.") and (
            not name.startswith("_") or (module, name) in _PRIVATE
        ):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"not allowed in a cache: {module}.{name}")


def loads(data: bytes | memoryview) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


# ------------------------------------------------------------------------------- keys


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """This policyscan (version, and every source file's size and time, so that an editable
    install's edits count) and the installed versions of the parser libraries."""
    from policyscan import __version__

    parts: list[str] = [__version__, sys.version]
    package = Path(__file__).resolve().parent
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".json", ".yaml")):
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                parts.append(f"{os.path.relpath(path, package)}:{st.st_size}:{st.st_mtime_ns}")
    parts.extend(_parser_versions())
    return _digest(*parts)


def _parser_versions() -> list[str]:
    # importlib.metadata takes tens of milliseconds to find six distributions; their
    # ``*.dist-info`` directory names say the same (name and version) for one listdir.
    found: list[str] = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist = name.split("-", 1)[0].lower()
                if dist in _PARSER_DISTRIBUTIONS:
                    found.append(name)
    return sorted(found)


def rules_fingerprint(rules: Sequence[Any]) -> str:
    """What the rules are: each file's contents and whatever the configuration overrode."""
    import json

    parts: list[str] = []
    for rule in rules:
        parts.append(
            json.dumps(
                [
                    rule.id,
                    rule.name,
                    rule.scope,
                    sorted(a.value for a in rule.artifacts),
                    sorted(e.value for e in rule.environments),
                    rule.templates,
                    rule.severity.value,
                    rule.confidence,
                    list(rule.checklist),
                    list(rule.tags),
                    rule.message,
                    rule.source,
                    rule.builtin,
                    rule.spec.raw,
                ],
                sort_keys=True,
                default=repr,
            )
        )
    return _digest(*parts)


def document_key(artifact: Any, digest: str, max_bytes: int) -> str:
    return _digest(
        code_fingerprint(),
        artifact.path,
        artifact.kind.value,
        artifact.environment.value,
        str(artifact.template),
        str(max_bytes),
        digest,
    )


def tree_key(root: str, rules_fp: str, entries: Iterable[str]) -> str:
    return _digest(code_fingerprint(), rules_fp, root, *entries)


# ------------------------------------------------------------------------------- files


def _signing_key() -> bytes | None:
    """The user's HMAC key, made on first use; None if the cache directory is unusable."""
    directory = user_cache_dir()
    path = directory / _KEY_NAME
    damaged = False
    try:
        with open(path, "rb") as handle:
            key = handle.read(64)
        if len(key) == 32:
            return key
        damaged = True
    except OSError:
        pass
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".key-")  # mode 0600
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
        try:
            if damaged:
                os.replace(temp, path)  # every entry signed with the old key is now a miss
            else:
                # link: of two processes making a key at once, one wins and both use its key.
                os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        with open(path, "rb") as handle:
            key = handle.read(64)
    except OSError:
        return None
    return key if len(key) == 32 else None


class _Signing:
    """A file to pickle into that keeps the signature of what went through it."""

    def __init__(self, handle: Any, mac: hmac.HMAC) -> None:
        self._handle = handle
        self.mac = mac

    def write(self, data: bytes) -> int:
        self.mac.update(data)
        written: int = self._handle.write(data)
        return written


class ScanCache:
    """One scanned root's cache. Every method fails soft: a read that fails is a miss, a write
    that fails is skipped."""

    def __init__(self, directory: str, key: bytes) -> None:
        self.directory = directory
        self._key = key

    @classmethod
    def open(cls, root: str, directory: str | None = None) -> ScanCache | None:
        target = directory or os.path.join(root, CACHE_DIRNAME)
        # A planted symbolic link would make us write wherever it points.
        if os.path.islink(target) or (os.path.exists(target) and not os.path.isdir(target)):
            return None
        key = _signing_key()
        return cls(target, key) if key is not None else None

    def _mac(self, purpose: str, payload: bytes | memoryview) -> bytes:
        mac = hmac.new(self._key, purpose.encode(), hashlib.sha256)
        mac.update(payload)
        return mac.digest()

    def _read(self, name: str, wanted: Callable[[Any], bool] | None = None) -> Any:
        """The file's object; with ``wanted``, the file holds two, and the second is read
        only when the first is wanted (None otherwise)."""
        data = _read_regular(os.path.join(self.directory, name))
        if data is None:
            return None
        head = len(_MAGIC) + _MAC_SIZE
        if len(data) < head or not data.startswith(_MAGIC):
            return None
        # Read in place, never sliced: a copy of the documents' file is as large as the file.
        signature = self._mac(name, memoryview(data)[head:])
        if not hmac.compare_digest(data[len(_MAGIC) : head], signature):
            return None
        try:
            source = io.BytesIO(data)  # shares the bytes until written to
            source.seek(head)
            found = _Unpickler(source).load()
            if wanted is not None:
                found = _Unpickler(source).load() if wanted(found) else None
            return found
        except Exception:  # a format from another version, or damage: a miss
            return None

    def _write(self, name: str, *objs: object) -> None:
        """The objects, one pickle each, in a file of their own."""
        try:
            self._prepare()
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=_TEMP)
            try:
                with os.fdopen(fd, "wb") as handle:
                    # Pickled straight into the file and signed on the way, the signature
                    # written last in its place: the documents of a 10,000-file tree pickle
                    # to 50 MB, which a pickle made in memory first held twice.
                    handle.write(_MAGIC)
                    handle.write(bytes(_MAC_SIZE))
                    signed = _Signing(handle, hmac.new(self._key, name.encode(), hashlib.sha256))
                    for obj in objs:
                        dump(obj, signed)
                    handle.seek(len(_MAGIC))
                    handle.write(signed.mac.digest())
                os.replace(temp, os.path.join(self.directory, name))
            except BaseException:
                os.unlink(temp)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            pass

    def _prepare(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for name, text in ((".gitignore", _GITIGNORE), ("CACHEDIR.TAG", _CACHEDIR_TAG)):
            path = os.path.join(self.directory, name)
            if not os.path.exists(path):
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
        # A writer killed mid-write (the split's worker, stopped with its scan) leaves its
        # temporary file: gone once old enough that no writer can still be at it.
        stale = time.time() - _STALE_SECONDS
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(_TEMP) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < stale:
                            os.unlink(entry.path)

    # --- documents: path -> (key, pickled document), in two shelves

    def open_shelf(self, terraform: bool) -> Shelf:
        """The Terraform shelf, or the other kinds' (empty when there is none that verifies)."""
        name = _TERRAFORM_DOCUMENTS if terraform else _DOCUMENTS
        fd = _open_regular(os.path.join(self.directory, name))
        if fd is None:
            return Shelf()
        try:
            index = self._shelf_index(name, fd)
        except Exception:  # unreadable, a format from another version, or damage: a miss
            index = None
        if index is None:
            os.close(fd)
            return Shelf()
        return Shelf(fd, index, name)

    def _shelf_index(self, name: str, fd: int) -> dict[str, _Entry] | None:
        size = os.fstat(fd).st_size
        head, tail = len(_SHELF_MAGIC), _OFFSET_SIZE + _MAC_SIZE
        if size < head + tail or _pread(fd, head, 0) != _SHELF_MAGIC:
            return None
        trailer = _pread(fd, tail, size - tail)
        (at,) = struct.unpack(">Q", trailer[:_OFFSET_SIZE])
        if not head <= at <= size - tail:
            return None
        payload = _pread(fd, size - tail - at, at)
        signature = self._mac(name, payload)
        if not hmac.compare_digest(trailer[_OFFSET_SIZE:], signature):
            return None
        index = _Unpickler(io.BytesIO(payload)).load()
        if not isinstance(index, dict):
            return None
        for path, entry in index.items():
            if not (
                isinstance(path, str)
                and isinstance(entry, tuple)
                and len(entry) == 4
                and isinstance(entry[0], str)
                and all(type(n) is int and 0 <= n <= size for n in entry[1:3])
                and isinstance(entry[3], bytes)
            ):
                return None
        return index

    def shelf_writer(self, terraform: bool, old: Shelf) -> ShelfWriter:
        """A writer of the shelf that replaces ``old`` (as opened)."""
        return ShelfWriter(self, _TERRAFORM_DOCUMENTS if terraform else _DOCUMENTS, old)

    def load_documents(self, terraform: bool | None = None) -> dict[str, tuple[str, bytes]]:
        """Every entry of the Terraform shelf, the other kinds', or both (None), read whole:
        for tests and tools; a scan reads a pickle when it needs it (Shelf.unchanged)."""
        found: dict[str, tuple[str, bytes]] = {}
        for shelf_kind in (False, True):
            if terraform is not None and shelf_kind is not terraform:
                continue
            shelf = self.open_shelf(shelf_kind)
            for path, key in shelf.keys().items():
                blob = shelf.unchanged(path, key)
                if blob is not None:
                    found[path] = (key, blob)
            shelf.close()
        return found

    # --- results: the tree key, then the results, each in a pickle of its own: a run whose
    # tree changed loads the key alone (the results of 10,000 files took 0.15 s and 18 MB)

    def load_results(self, key: str) -> Any:
        return self._read(_RESULTS, wanted=lambda found: found == key)

    def store_results(self, key: str, results: object) -> None:
        self._write(_RESULTS, key, results)


# A shelf's index entry: the document's key, and its pickle's offset, length and SHA-256.
_Entry = tuple[str, int, int, bytes]


class Shelf:
    """A shelf as stored: its signed index, and the file, from which a pickle is read when it
    is asked for. Empty when there was none (or none that verified)."""

    def __init__(
        self, fd: int | None = None, index: dict[str, _Entry] | None = None, name: str = ""
    ) -> None:
        self._fd = fd
        self._index = index or {}
        self.name = name

    def keys(self) -> dict[str, str]:
        """Each document's key, by path."""
        return {path: entry[0] for path, entry in self._index.items()}

    def key(self, path: str) -> str | None:
        entry = self._index.get(path)
        return entry[0] if entry is not None else None

    def digest(self, path: str) -> bytes:
        return self._index[path][3]

    def unchanged(self, path: str, key: str | None) -> bytes | None:
        """The pickle stored for ``path`` if stored under ``key``, and if it reads back as the
        index says it was written; None otherwise."""
        entry = self._index.get(path)
        if entry is None or key is None or entry[0] != key or self._fd is None:
            return None
        _, offset, length, digest = entry
        try:
            blob = _pread(self._fd, length, offset)
        except OSError:
            return None
        if len(blob) != length or hashlib.sha256(blob).digest() != digest:
            return None
        return blob

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # one a caller let go without closing (a tool, a test)
        self.close()


class ShelfWriter:
    """A shelf written as its documents come: ``put`` a new pickle, ``keep`` one the old shelf
    has; ``close`` replaces the old shelf, unless nothing differs from it. Nothing is written
    before the first difference (a new pickle, or a document of the old shelf not kept), so a
    scan that changed nothing here writes nothing; after it, each pickle goes to the file when
    it comes (a kept one copied from the old file) and is let go. Fails soft: a write that
    fails leaves the old shelf as it was."""

    def __init__(self, cache: ScanCache, name: str, old: Shelf) -> None:
        self._cache = cache
        self._name = name
        self._old = old
        self._kept: list[tuple[str, str]] = []  # kept before the file was started
        self._index: dict[str, _Entry] = {}
        self._file: Any = None
        self._temp: str | None = None
        self._failed = False

    def keep(self, path: str, key: str, blob: bytes | None = None) -> None:
        """The old shelf's pickle of ``path``, kept: ``blob``, as Shelf.unchanged gave it, or
        read again."""
        if self._failed:
            return
        if self._file is None:
            self._kept.append((path, key))
            return
        if blob is None:
            blob = self._old.unchanged(path, key)
        if blob is not None:
            self._write(path, key, blob, self._old.digest(path))

    def take(self, path: str, key: str, blob: bytes | None, kept: bytes | None = None) -> None:
        """A document's entry as a scan took it: ``blob``, a pickle the old shelf does not
        have, or None to keep the old shelf's (``kept``, when at hand)."""
        if blob is None:
            self.keep(path, key, kept)
        else:
            self.put(path, key, blob)

    def put(self, path: str, key: str, blob: bytes) -> None:
        """A pickle the old shelf does not have."""
        if self._failed:
            return
        if self._file is None and not self._start():
            return
        self._write(path, key, blob)

    def close(self) -> None:
        """The shelf written, if it differs from the old one (and no write failed)."""
        try:
            if self._failed:
                return
            if self._file is None:
                if {path for path, _ in self._kept} == set(self._old.keys()):
                    return  # the old shelf, as it is
                if not self._start():
                    return
            payload = dumps(self._index)
            at = self._file.tell()
            trailer = struct.pack(">Q", at) + self._cache._mac(self._name, payload)
            _write_all(self._file, payload + trailer)
            self._file.close()
            assert self._temp is not None  # started above
            os.replace(self._temp, os.path.join(self._cache.directory, self._name))
            self._temp = None
        except OSError:
            self._failed = True
        finally:
            self.discard()

    def _start(self) -> bool:
        try:
            self._cache._prepare()
            fd, self._temp = tempfile.mkstemp(dir=self._cache.directory, prefix=_TEMP)
            # Unbuffered: a process forked while this one writes (a helper) inherits the
            # file, and must find nothing of this one's in a buffer that it could flush.
            self._file = os.fdopen(fd, "wb", buffering=0)
            _write_all(self._file, _SHELF_MAGIC)
        except OSError:
            self._failed = True
            self.discard()
            return False
        kept, self._kept = self._kept, []
        for path, key in kept:
            self.keep(path, key)
        return not self._failed

    def _write(self, path: str, key: str, blob: bytes, digest: bytes | None = None) -> None:
        try:
            at = self._file.tell()
            _write_all(self._file, blob)
        except OSError:
            self._failed = True
            self.discard()
            return
        self._index[path] = (key, at, len(blob), digest or hashlib.sha256(blob).digest())

    def discard(self) -> None:
        """The file given up, unless closed already (then nothing)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)
            self._temp = None


def _pread(fd: int, length: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    # Windows has no pread; a shelf's descriptor is never shared by threads there (no fork).
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, length)


def _write_all(file: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]


def _open_regular(path: str) -> int | None:
    """A descriptor of a cache file, if it is a regular file of a sane size. A repository can
    plant anything under that name: a FIFO (opening it would wait for a writer forever;
    O_NONBLOCK returns at once, and it is then refused), a link (O_NOFOLLOW), a device, a
    sparse file of terabytes (MAX_FILE_BYTES)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _read_regular(path: str) -> bytes | None:
    """A cache file's bytes (see _open_regular)."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        chunks = []
        remaining = MAX_FILE_BYTES + 1
        while remaining > 0:
            # The file's size at once: one chunk is joined without a copy.
            chunk = os.read(fd, min(remaining, size + 1))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return data if len(data) <= MAX_FILE_BYTES else None


def clear(root: str) -> str | None:
    """Delete ``root``'s cache; the directory removed, or None when there was none."""
    target = os.path.join(os.path.abspath(root), CACHE_DIRNAME)
    if os.path.islink(target):
        os.unlink(target)  # never follow it: remove the link alone
        return target
    if not os.path.isdir(target):
        return None
    shutil.rmtree(target)
    return target
