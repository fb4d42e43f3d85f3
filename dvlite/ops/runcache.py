"""Stage outs between the workspace and the cache, and the run cache on remotes.

``store_outs`` stores what a stage just wrote; ``restore`` writes a run-cache entry's outs
back into the workspace the way checkout writes tracked data (cached outs through the
configured links, metrics and ``cache = false`` outs as private copies), vouches for them
in the stat index and makes git ignore the cached ones. So that every out can be restored,
a run that goes to the run cache stores its metrics and ``cache = false`` outs in the cache
too; no lock or pointer references those objects, so ``gc`` deletes them like any other
unreferenced object, and an entry that lost one is ignored.

``push`` and ``fetch`` move every entry one side has, with the objects it names, then merge
the indexes. Objects go first (on push: files, then folder manifests, then the entry; on
fetch in the order they are discovered) and the index last, so neither side ever lists an
entry whose objects it lacks.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from dvlite import scm
from dvlite.errors import PipelineError
from dvlite.fsutil import FileStat, Progress, run_parallel
from dvlite.pipeline.lockfile import OutLock
from dvlite.pipeline.runcache import (
    INDEX_LIMIT,
    RUNS_DIR,
    RunCache,
    cacheable,
    decode_index,
    encode_index,
    merge,
    out_files,
    out_manifests,
    stage_key,
)
from dvlite.storage import links, transfer
from dvlite.storage.manifest import Entry, Manifest
from dvlite.storage.remote_index import RemoteIndex
from dvlite.workspace import scan

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from dvlite.pipeline.lockfile import StageLock
    from dvlite.pipeline.stage import Stage
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.remote_store import RemoteStore
    from dvlite.storage.transfer import TransferResult

# Metrics live in git and `cache = false` outs are the user's: both must be plain files.
_PRIVATE = ("reflink", "copy")


def runs_of(repo: Repo) -> RunCache:
    return RunCache(os.path.join(repo.cache_dir, RUNS_DIR), repo.cache)


def lookup(
    repo: Repo, stage: Stage, dep_oids: Mapping[str, Oid], params: Mapping[str, Any]
) -> StageLock | None:
    """A run of ``stage`` with exactly these inputs that the cache alone can restore."""
    if not cacheable(stage):
        return None
    key = stage_key(stage, dep_oids, params, repo.cache.algorithm)
    return runs_of(repo).find(key) if key is not None else None


def save(repo: Repo, stage: Stage, run: StageLock) -> None:
    """Keep a successful run whose outs ``store_outs`` stored."""
    if cacheable(stage):
        runs_of(repo).save(run)


def store_outs(repo: Repo, stage: Stage) -> dict[str, OutLock]:
    """Store the outs a stage just wrote, and make git ignore the cached ones."""
    everything = cacheable(stage)  # the run cache must be able to write every out back
    written = [(o.path, o.cache) for o in stage.outs] + [(m, False) for m in stage.metrics]
    for path, _ in written:
        rel = stage.in_repo(path)
        if not os.path.lexists(repo.abs(rel)):
            raise PipelineError(
                f"stage `{stage.name}` ran but did not write its out `{rel}`",
                hint="make the command write it, or remove it from the stage's outs",
            )
    outs: dict[str, OutLock] = {}
    for path, cache in written:
        rel = stage.in_repo(path)
        state = scan(repo, rel, store=repo.cache if cache or everything else None).state
        if state.oid is None:
            raise PipelineError(f"stage `{stage.name}`: out `{rel}` vanished while being stored")
        files = len(state.manifest.entries) if state.manifest is not None else None
        outs[path] = OutLock(state.oid, state.size, state.kind or "file", files, cache)
        if cache:
            _ignore(repo, rel)
    return outs


def _ignore(repo: Repo, rel: str) -> None:
    folder, _, name = rel.rpartition("/")
    scm.add_ignore(repo.abs(folder), name)


def restore(repo: Repo, run: StageLock) -> None:
    """Make the workspace hold the outs ``run`` records (every object is in the cache)."""
    written: list[tuple[str, FileStat, Oid]] = []
    for path, out in sorted(run.outs.items()):
        rel = run.in_repo(path)
        dest = repo.abs(rel)
        _clear(dest)  # what a rerun would overwrite; a folder must end up exactly as recorded
        strategies = repo.link_strategies if out.cache else _PRIVATE
        for sub, entry in _files(repo, out).items():
            target = os.path.join(dest, *sub.split("/")) if sub else dest
            links.materialize(repo.cache, entry.oid, target, strategies,
                              executable=entry.executable, tmp_dir=repo.tmp_dir)
            written.append((f"{rel}/{sub}" if sub else rel, FileStat.of(os.stat(target)),
                            entry.oid))
        if out.kind == "dir":
            os.makedirs(dest, exist_ok=True)  # it may hold no files
        if out.cache:
            _ignore(repo, rel)
    # Files were written before this stamp: a later edit moves their mtime past it.
    repo.index.record(written, repo.index.fs_clock())


def _files(repo: Repo, out: OutLock) -> dict[str, Entry]:
    if out.kind == "file":
        return {"": Entry("", out.oid, out.size)}
    data = repo.cache.read_verified(out.oid)
    return Manifest.from_bytes(data, source=out.oid, algorithm=repo.cache.algorithm).by_path()


def _clear(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def push(repo: Repo, store: RemoteStore, *, jobs: int, progress: Progress) -> TransferResult:
    """Send every local entry that is complete, with its objects; then list the ones that
    arrived in the remote's index."""
    runs = runs_of(repo)
    ready = [run for key in runs.stored_keys() for run in runs.complete(key)]

    index = RemoteIndex(store, repo.cache)

    def send(oids: Mapping[Oid, int]) -> TransferResult:
        return transfer.upload(repo.cache, store, oids, jobs=jobs, progress=progress,
                               layout=repo.layout, index=index)

    result = send({oid: size for run in ready for oid, size in run.files.items()})
    ready = [run for run in ready if not run.files.keys() & result.failed.keys()]
    result += send({oid: 0 for run in ready for oid in out_manifests(run.lock)})
    ready = [run for run in ready if not out_manifests(run.lock) & result.failed.keys()]
    result += send({run.oid: 0 for run in ready})
    ready = [run for run in ready if run.oid not in result.failed]
    algorithm = repo.cache.algorithm
    for key, oids in _by_key((run.key, run.oid) for run in ready).items():
        # a damaged index on the remote is replaced
        old = decode_index(_read_index(store, key) or b"", algorithm) or []
        new = merge(old, oids)
        if new != old:
            store.put_bytes(store.keyed(RUNS_DIR, key), encode_index(new), replace=True)
    return result


def _read_index(store: RemoteStore, key: Oid) -> bytes | None:
    """The remote's index file of ``key``, up to INDEX_LIMIT bytes; None when there is none."""
    return store.read(store.keyed(RUNS_DIR, key), 0, INDEX_LIMIT)


def fetch(repo: Repo, store: RemoteStore, *, jobs: int, progress: Progress) -> TransferResult:
    """Bring every entry the remote lists, with its objects; then list the complete ones in
    the local index, as newer than what it had."""
    runs = runs_of(repo)
    algorithm = repo.cache.algorithm
    keys = store.keys_in(RUNS_DIR)
    indexes = run_parallel(lambda key: _read_index(store, key), keys, jobs)
    listed = [(key, oid) for key, data in zip(keys, indexes, strict=True)
              for oid in decode_index(data or b"", algorithm) or []]

    index = RemoteIndex(store, repo.cache)

    def bring(oids: Mapping[Oid, int]) -> TransferResult:
        return transfer.download(store, repo.cache, oids, jobs=jobs, progress=progress,
                                 index=index)

    result = bring({oid: 0 for _, oid in listed})
    entries = [(key, oid, lock) for key, oid in listed
               if (lock := runs.read_entry(oid, key)) is not None]
    result += bring({oid: 0 for *_, lock in entries for oid in out_manifests(lock)})
    needed = [(key, oid, files) for key, oid, lock in entries
              if (files := out_files(lock, repo.cache)) is not None]
    result += bring({oid: size for *_, files in needed for oid, size in files.items()})
    arrived = [(key, oid) for key, oid, files in needed if not files.keys() & result.failed.keys()]
    for key, oids in _by_key(arrived).items():
        runs.add(key, oids)
    return result


def _by_key(pairs: Iterable[tuple[Oid, Oid]]) -> dict[Oid, list[Oid]]:
    grouped: defaultdict[Oid, list[Oid]] = defaultdict(list)
    for key, oid in pairs:
        grouped[key].append(oid)
    return grouped
