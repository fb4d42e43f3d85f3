"""The run cache: what a stage produced, kept by the exact inputs it ran with, so that a run
with the same inputs is restored instead of repeated.

**Key.** The hash of one canonical JSON document of the stage's ``cmd``, ``wdir``, deps
(path -> oid), params (spec -> value) and outs (path -> whether cached; metrics are uncached
outs). Nothing else: not the stage's name (renaming a stage keeps its runs), and not the
environment, which the entry records but a lookup never matches.

**Entry.** An object in the cache: the stage's lock entry (inputs, every out with its oid,
the environment) under a small header. Reading one checks its oid and that its inputs hash
to the key it was found under, so an index naming the wrong entry restores nothing.

**Index.** ``<runs>/<key 2 hex>/<rest>``: a text file naming entry oids, oldest first. The
same inputs can produce other outputs (a nondeterministic stage, a ``--force`` run): the run
saved last becomes the newest entry and is the one restored; entries that come from another
store (fetch, push) are added as newer than the ones already there; beyond ``KEEP`` the
oldest are dropped. Writes are atomic; a concurrent write may lose an entry, which costs a
rerun at worst.
"""

from __future__ import annotations

import datetime
import json
import os
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tomli_w

from dvlite.errors import DvliteError, PipelineError
from dvlite.fsutil import atomic_write
from dvlite.pipeline.lockfile import decode_stage
from dvlite.storage.hashing import Oid, hash_bytes, is_oid
from dvlite.storage.manifest import Manifest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dvlite.pipeline.lockfile import StageLock
    from dvlite.pipeline.stage import Stage
    from dvlite.storage.odb import ObjectStore

RUNS_DIR = "runs"  # below the cache's root, and below a remote's
KEEP = 8  # entries per key; more only happen for nondeterministic stages
_VERSION = 1
_ENTRY_HEADER = "# dvlite run-cache entry: a stage's inputs and what it produced\n"
_INDEX_HEADER = "# dvlite run cache: entries for one key, newest last\n"
INDEX_LIMIT = 1 << 16  # bytes: an index is a few hundred; a bigger file is not one


def cacheable(stage: Stage) -> bool:
    """Whether runs of ``stage`` are kept: it needs deps (else nothing pins what it read) and
    something it writes, and an always_changed stage is meant to run every time."""
    return bool(stage.deps) and bool(stage.out_paths) and not stage.always_changed


def stage_key(
    stage: Stage, dep_oids: Mapping[str, Oid], params: Mapping[str, Any], algorithm: str
) -> Oid | None:
    """The key of running ``stage`` now; None when a param has a value no key can hold."""
    outs = {o.path: o.cache for o in stage.outs} | dict.fromkeys(stage.metrics, False)
    return key_of(stage.cmd, stage.wdir, dep_oids, params, outs, algorithm=algorithm)


def lock_key(lock: StageLock, algorithm: str) -> Oid | None:
    """The key of the run a lock entry records."""
    outs = {path: out.cache for path, out in lock.outs.items()}
    return key_of(lock.cmd, lock.wdir, lock.deps, lock.params, outs, algorithm=algorithm)


def key_of(
    cmd: str | Sequence[str], wdir: str, deps: Mapping[str, Oid], params: Mapping[str, Any],
    outs: Mapping[str, bool], *, algorithm: str,
) -> Oid | None:
    """Hash of the canonical JSON of a run's inputs: mappings in any order give one key."""
    doc = {"version": _VERSION, "cmd": cmd if isinstance(cmd, str) else list(cmd),
           "wdir": wdir, "deps": dict(deps), "outs": dict(outs)}
    try:
        # keyed as the lock holds them: a value TOML cannot hold has no key (nor lock entry),
        # and one TOML holds another way (a tuple, a time zone) is keyed as it reads back,
        # so an entry read from the cache has the key its run was looked up by
        held = tomllib.loads(tomli_w.dumps({"params": dict(params)}))["params"]
        doc["params"] = _canonical(held)
    except (TypeError, ValueError):
        return None
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hash_bytes(text.encode("utf-8"), algorithm)


def _canonical(value: Any) -> Any:
    """A param value as JSON without losing what tells values apart: 1, 1.0 and true stay
    distinct (as in ``lockfile.changed``), a tuple is a list, dates and times are tagged."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("param tables need string keys")
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return {f"${type(value).__name__}": value.isoformat()}
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise TypeError(f"no canonical form for {type(value).__name__}")


def encode_entry(lock: StageLock) -> bytes:
    doc = {"version": _VERSION, "run": lock.to_toml()}
    return (_ENTRY_HEADER + tomli_w.dumps(doc)).encode("utf-8")


def decode_entry(data: bytes, *, source: str, algorithm: str) -> StageLock:
    """Parse an entry strictly; every problem is a PipelineError naming ``source``."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    # RecursionError: arrays or tables nested thousands deep (tomllib recurses)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise PipelineError(f"run-cache entry {source} is not valid: {exc}") from exc
    if doc.get("version") != _VERSION or set(doc) != {"version", "run"}:
        raise PipelineError(f"run-cache entry {source} has an unknown version or keys")
    return decode_stage(doc["run"], where=f"run-cache entry {source}", algorithm=algorithm)


def encode_index(oids: Iterable[Oid]) -> bytes:
    return (_INDEX_HEADER + "".join(f"{oid}\n" for oid in oids)).encode("ascii")


def decode_index(data: bytes, algorithm: str) -> list[Oid] | None:
    """The entry oids of an index, oldest first; None when it is not a valid index."""
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        return None
    oids = [line for line in lines if not line.startswith("#")]
    if not all(is_oid(oid, algorithm) for oid in oids):
        return None
    return [Oid(oid) for oid in dict.fromkeys(oids)]


def merge(old: Sequence[Oid], new: Sequence[Oid], *, keep: int = KEEP) -> list[Oid]:
    """``old`` then what ``new`` adds to it (both oldest first), the newest ``keep``."""
    seen = set(old)
    return [*old, *(oid for oid in dict.fromkeys(new) if oid not in seen)][-keep:]


@dataclass(frozen=True)
class Run:
    """One entry of the run cache, read and checked."""

    key: Oid
    oid: Oid  # of the entry object
    lock: StageLock
    files: dict[Oid, int]  # every file object its outs need -> size


class RunCache:
    """The index at ``root`` (``<cache>/runs``) over the entries and outs in ``odb``."""

    def __init__(self, root: str, odb: ObjectStore) -> None:
        self.root = root
        self.odb = odb

    def index_path(self, key: Oid) -> str:
        return os.path.join(self.root, key[:2], key[2:])

    def stored_keys(self) -> list[Oid]:
        try:
            prefixes = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found: list[Oid] = []
        for prefix in prefixes:
            folder = os.path.join(self.root, prefix)
            names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            found.extend(Oid(prefix + n) for n in names if is_oid(prefix + n, self.odb.algorithm))
        return found

    def entry_oids(self, key: Oid) -> list[Oid]:
        """The entries of ``key``, oldest first (none for a missing or damaged index)."""
        try:
            with open(self.index_path(key), "rb") as f:
                data = f.read(INDEX_LIMIT)
        except FileNotFoundError:
            return []
        return decode_index(data, self.odb.algorithm) or []

    def add(self, key: Oid, oids: Sequence[Oid], *, newest: bool = False) -> None:
        """Add entries (oldest first) that ``odb`` holds to the index of ``key``; with
        ``newest`` they become the newest even if it had them (a run just saved)."""
        old = self.entry_oids(key)
        if newest:
            old = [oid for oid in old if oid not in oids]
        merged = [oid for oid in merge(old, oids) if self.odb.exists(oid)]  # gc's leftovers go
        if merged != self.entry_oids(key):
            os.makedirs(os.path.dirname(self.index_path(key)), exist_ok=True)
            atomic_write(self.index_path(key), encode_index(merged))

    def save(self, lock: StageLock) -> Oid | None:
        """Keep a run (its lock entry; its outs must be in ``odb``); return its key."""
        key = lock_key(lock, self.odb.algorithm)
        if key is None:
            return None
        self.add(key, [self.odb.add_bytes(encode_entry(lock))], newest=True)
        return key

    def read_entry(self, oid: Oid, key: Oid) -> StageLock | None:
        """The entry ``oid`` if it is in ``odb``, intact and a run of ``key``; else None."""
        try:
            lock = decode_entry(self.odb.read_verified(oid), source=oid,
                                algorithm=self.odb.algorithm)
        except DvliteError:  # missing (gc), corrupt or not an entry: as if never saved
            return None
        return lock if lock_key(lock, self.odb.algorithm) == key else None

    def complete(self, key: Oid) -> list[Run]:
        """The entries of ``key`` whose every object is in ``odb``, oldest first."""
        found = []
        for oid in self.entry_oids(key):
            lock = self.read_entry(oid, key)
            files = out_files(lock, self.odb) if lock is not None else None
            if lock is not None and files is not None and not self.odb.missing(files):
                found.append(Run(key, oid, lock, files))
        return found

    def find(self, key: Oid) -> StageLock | None:
        """The newest entry of ``key`` that can be restored from ``odb`` alone."""
        runs = self.complete(key)
        return runs[-1].lock if runs else None


def out_manifests(lock: StageLock) -> set[Oid]:
    """The manifests of the folders among a run's outs."""
    return {out.oid for out in lock.outs.values() if out.kind == "dir"}


def out_files(lock: StageLock, odb: ObjectStore) -> dict[Oid, int] | None:
    """Every file object a run's outs need (oid -> size), read through the folders'
    manifests in ``odb``; None when one of those is missing or damaged."""
    files: dict[Oid, int] = {}
    for out in lock.outs.values():
        if out.kind == "file":
            files[out.oid] = out.size
            continue
        try:
            manifest = Manifest.from_bytes(odb.read_verified(out.oid), source=out.oid,
                                           algorithm=odb.algorithm)
        except DvliteError:
            return None
        files.update((e.oid, e.size) for e in manifest.entries)
    return files
