"""One version of a project's tracked data, open for reading: the workspace's pointers, or
a commit (of the current project, or of a clone that ``ops/read.py`` made).

A ``Snapshot`` answers "what is tracked at this path" (the pointer files along the path
first, a few reads; else the full list, which holds pipeline stage outputs too), reads
folder manifests and opens objects. An object missing from the cache comes from the
project's remote, hashed as it arrives; one already in the cache is hashed before it is
handed out (once per snapshot while the file stays the same), so no unverified byte ever
reaches a reader.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from typing import TYPE_CHECKING, Any, BinaryIO

from dvlite import pointer as pointers
from dvlite.errors import ConfigError, CorruptObjectError, PathError, TransferError
from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.storage import transfer
from dvlite.storage.hashing import Oid, hash_stream
from dvlite.storage.manifest import Entry, Manifest
from dvlite.workspace import Target, Tracked, below, find_tracked, tracked_at

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager

    from dvlite.pointer import Pointer
    from dvlite.repo import Repo
    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.remote_store import RemoteStore
    from dvlite.storage.transfer import TransferResult


class Snapshot:
    """One version of a project's tracked data, open for reading; close it when done."""

    def __init__(
        self, repo: Repo, sha: str | None, *, label: str, remote: Callable[[], RemoteStore],
        cache: ObjectStore | None = None,
        lock: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        remove: str | None = None,
    ) -> None:
        self.repo = repo
        self.sha = sha  # None: the workspace's pointers, read afresh on every call
        self.label = label  # "at `v1` (0123456789ab)", for messages
        self.cache = cache if cache is not None else repo.cache
        self.moved = transfer.EMPTY  # everything fetches brought or found so far
        self._open_remote = remote
        self._store: RemoteStore | None = None
        self._lock = lock  # taken while objects are written into the cache
        self._remove = remove  # a temporary folder that close() deletes
        self._tracked: list[Tracked] | None = None
        self._found: dict[str, Target | None] = {}  # a commit's answers never change
        self._manifests: dict[Oid, dict[str, Entry]] = {}
        self._verified: dict[Oid, tuple[int, int, int]] = {}  # oid → (inode, mtime, size)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.repo.close()
        if self._remove is not None:
            shutil.rmtree(self._remove, ignore_errors=True)

    def tracked(self) -> list[Tracked]:
        """Everything tracked: pointers and the stage outputs the lock records."""
        if self.sha is None:
            return find_tracked(self.repo)
        if self._tracked is None:
            self._tracked = tracked_at(self.repo, self.sha)
        return self._tracked

    def find(self, rel: str) -> Target | None:
        """The tracked path that holds ``rel`` (``rel`` itself, or a tracked folder above it)."""
        if rel in self._found:
            return self._found[rel]
        if self.sha is None:
            self.repo.rel(self.repo.abs(rel))  # PathError behind a symlink out of the repo
        found = self._along(rel)
        if found is None:  # a stage output, or nothing: only the full list can tell
            found = next(filter(None, (_cover(t, rel) for t in self.tracked())), None)
        if self.sha is not None:
            self._found[rel] = found
        return found

    def locate(self, rel: str) -> Target:
        found = self.find(rel)
        if found is None:
            hint = (f"name the data, not its pointer: `{rel.removesuffix(pointers.SUFFIX)}`"
                    if rel.endswith(pointers.SUFFIX)
                    else "check the path (relative to the repo's top folder) and the revision")
            raise PathError(f"`{rel}` is not tracked by dvlite {self.label}", hint=hint)
        return found

    def _along(self, rel: str) -> Target | None:
        """Through the pointer files along ``rel``: the path's own, then its folders'."""
        parts = rel.split("/")
        for depth in range(len(parts), 0, -1):
            pointer_file = "/".join(parts[:depth]) + pointers.SUFFIX
            ptr = self._pointer_at(pointer_file)
            if ptr is not None:
                folder = posixpath.dirname(pointer_file)
                data_path = f"{folder}/{ptr.path}" if folder else ptr.path
                return _cover(Tracked(pointer_file, data_path, ptr), rel)
        return None

    def _pointer_at(self, pointer_file: str) -> Pointer | None:
        algorithm = self.repo.cache.algorithm
        if self.sha is None:
            full = self.repo.abs(pointer_file)
            return pointers.load(full, algorithm) if os.path.isfile(full) else None
        data = self.repo.git.read_at(self.sha, pointer_file)
        if data is None:
            return None
        return pointers.decode(data, source=f"`{pointer_file}` {self.label}", algorithm=algorithm)

    def manifest(self, tracked: Tracked) -> dict[str, Entry]:
        """A tracked folder's files by path, fetched first if the cache lacks the manifest."""
        oid = tracked.pointer.oid
        files = self._manifests.get(oid)
        if files is None:
            self.fetch({oid: 0}, tracked.path)
            data = self.cache.read_verified(oid)
            files = Manifest.from_bytes(data, source=f"{oid} (`{tracked.path}`)",
                                        algorithm=self.cache.algorithm).by_path()
            self._manifests[oid] = files
        return files

    def entries(self, target: Target) -> dict[str, Entry]:
        """The files at or below a target, keyed relative to it ("" for a single file)."""
        ptr = target.tracked.pointer
        if ptr.kind == "file":
            return {"": Entry("", ptr.oid, ptr.size)}
        found = below(self.manifest(target.tracked), target.sub)
        if not found:
            raise PathError(f"`{target.path}` is not in tracked folder "
                            f"`{target.tracked.path}` {self.label}")
        return found

    def open_file(self, rel: str) -> BinaryIO:
        """The tracked file at ``rel``, verified, open for reading."""
        entry = self.entries(self.locate(rel)).get("")
        if entry is None:
            raise PathError(f"`{rel}` is a folder {self.label}, not a file",
                            hint="read the files in it one by one")
        return self.open_object(entry.oid, entry.size, rel)

    def open_object(self, oid: Oid, size: int, shown: str) -> BinaryIO:
        """Object ``oid`` (the data of ``shown``), fetched if need be, checked against its oid
        before the first byte is handed out; the same file is then read from the start."""
        arrived = oid in self.fetch({oid: size}, shown).transferred  # hashed on the way in
        f = self.cache.open(oid)
        try:
            st = os.fstat(f.fileno())
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if not arrived and self._verified.get(oid) != stamp:
                actual, _ = hash_stream(f, self.cache.algorithm)
                if actual != oid:
                    raise CorruptObjectError(
                        f"object {oid} of `{shown}` in `{self.cache.root}` is corrupt "
                        f"(its bytes hash to {actual})",
                        hint="run `dvlite fsck` to quarantine it, then `dvlite fetch` it again",
                    )
                f.seek(0)
            self._verified[oid] = stamp
        except BaseException:
            f.close()
            raise
        return f

    def fetch(self, sizes: Mapping[Oid, int], shown: str, *, jobs: int | None = None,
              progress: Progress = NO_PROGRESS) -> TransferResult:
        """Bring the objects (oid → size) the cache lacks from the remote, each verified; the
        remote is opened only when something is missing."""
        if not self.cache.missing(sizes):
            result = transfer.TransferResult((), tuple(sorted(sizes)), {})
        else:
            store = self._remote(shown)
            with self._lock():
                result = transfer.download(store, self.cache, sizes, jobs=jobs or store.jobs,
                                           progress=progress)
            raise_failed(result, shown, store)
        self.moved += result
        return result

    def _remote(self, shown: str) -> RemoteStore:
        if self._store is None:
            try:
                self._store = self._open_remote()
            except ConfigError as exc:
                raise ConfigError(f"the data of `{shown}` is not in the cache, and it cannot be "
                                  f"downloaded: {exc.message}", hint=exc.hint) from None
        return self._store


def _cover(tracked: Tracked, rel: str) -> Target | None:
    if rel == tracked.path:
        return Target(tracked)
    if tracked.pointer.kind == "dir" and rel.startswith(tracked.path + "/"):
        return Target(tracked, rel[len(tracked.path) + 1:])
    return None


def raise_failed(result: TransferResult, shown: str, store: RemoteStore) -> None:
    if result.failed:
        oid, why = next(iter(result.failed.items()))
        raise TransferError(
            f"{len(result.failed)} object(s) of `{shown}` could not be downloaded from "
            f"{store.name}; first {oid}: {why}",
            {str(o): w for o, w in result.failed.items()},
            hint="try again: only what failed is downloaded again",
        )
