"""``dvlite push``, ``fetch``, ``pull`` and ``status --remote``: objects between cache and remote.

What moves is decided by targets (tracked paths, or files inside tracked
folders) over a scope of revisions: the workspace and any git revisions.
Folder manifests travel after their files, so a remote never lists a folder
whose files it lacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dvlite import pointer as pointers
from dvlite.errors import MissingObjectError, PointerError, RemoteError
from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.ops import runcache
from dvlite.ops.checkout import CheckoutResult, checkout
from dvlite.ops.sharing import bytes_to_send
from dvlite.storage import transfer
from dvlite.storage.remote_index import RemoteIndex
from dvlite.workspace import Target, Tracked, below, manifest_of, resolve_targets, tracked_at

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.remote_store import RemoteStore
    from dvlite.storage.transfer import TransferResult


@dataclass(frozen=True)
class Scope:
    """Which versions of the targets: the workspace and/or git revisions."""

    workspace: bool = True
    revs: tuple[str, ...] = ()
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False


@dataclass(frozen=True)
class SyncResult:
    transferred: int
    skipped: int  # already there
    failed: dict[Oid, str]  # oid → why
    not_in_cache: tuple[str, ...] = ()  # push: paths whose data this cache lacks

    @classmethod
    def of(cls, result: TransferResult, not_in_cache: Sequence[str] = ()) -> SyncResult:
        return cls(len(result.transferred), len(result.skipped), dict(result.failed),
                   tuple(not_in_cache))


@dataclass(frozen=True)
class RemoteStatusEntry:
    path: str
    missing: int  # objects of this path the remote lacks
    total: int
    # bytes of those objects, and what a push sends of them: big files only the chunks the
    # remote lacks (ops/sharing.py). Sizes describe an entry, they do not tell entries apart.
    size: int = field(default=0, compare=False)
    to_send: int = field(default=0, compare=False)


def targets_in_scope(repo: Repo, targets: Sequence[str], scope: Scope) -> list[Target]:
    """The targets (absolute paths; none means all) as tracked at every revision in scope."""
    found = resolve_targets(repo, targets) if scope.workspace else []
    rels = [repo.rel(t).removesuffix(pointers.SUFFIX) for t in targets]
    shas = repo.git.revisions(scope.revs, all_branches=scope.all_branches,
                              all_tags=scope.all_tags, all_commits=scope.all_commits)
    for sha in shas:
        found.extend(_select(tracked_at(repo, sha), rels))
    unique = {(t.tracked.path, t.tracked.pointer.oid, t.sub): t for t in found}
    return list(unique.values())


def _select(tracked: Sequence[Tracked], rels: Sequence[str]) -> list[Target]:
    if not rels:
        return [Target(t) for t in tracked]
    chosen = []
    for t in tracked:
        for rel in rels:
            if not rel or t.path == rel or t.path.startswith(rel + "/"):
                chosen.append(Target(t))
            elif rel.startswith(t.path + "/"):
                chosen.append(Target(t, rel[len(t.path) + 1:]))
    return chosen


def push(
    repo: Repo, targets: Sequence[str] = (), *, remote: str | None = None,
    jobs: int | None = None, scope: Scope = Scope(), progress: Progress = NO_PROGRESS,
    run_cache: bool = False,
) -> SyncResult:
    """Send the objects of the targets in scope that the remote lacks; with ``run_cache``,
    every run-cache entry too, with the objects it names."""
    store = repo.remote(remote)
    if store.read_only:
        raise RemoteError(f"{store.name} is read-only", hint="push to another remote (`-r NAME`)")
    jobs = jobs or store.jobs
    with repo.lock():
        needed = objects_needed(repo, targets_in_scope(repo, targets, scope))
        absent = repo.cache.missing(needed.files)
        lacking = sorted(set(needed.unreadable) | {needed.paths[oid] for oid in absent})
        sendable = {oid: size for oid, size in needed.files.items() if oid not in absent}
        index = RemoteIndex(store, repo.cache)
        result = transfer.upload(repo.cache, store, sendable, jobs=jobs, progress=progress,
                                 layout=repo.layout, index=index)
        # a manifest goes up only when every one of its files is there
        incomplete = set(result.failed) | absent
        complete = {oid: 0 for oid, members in needed.manifests.items()
                    if not members & incomplete}
        result += transfer.upload(repo.cache, store, complete, jobs=jobs, progress=progress,
                                  layout=repo.layout, index=index)
        if run_cache:
            result += runcache.push(repo, store, jobs=jobs, progress=progress)
        return SyncResult.of(result, lacking)


def fetch(
    repo: Repo, targets: Sequence[str] = (), *, remote: str | None = None,
    jobs: int | None = None, scope: Scope = Scope(), progress: Progress = NO_PROGRESS,
    run_cache: bool = False,
) -> SyncResult:
    """Bring the objects of the targets in scope that the cache lacks, verifying each; with
    ``run_cache``, every run-cache entry the remote has too, with the objects it names."""
    store = repo.remote(remote)
    jobs = jobs or store.jobs
    with repo.lock():
        result = _fetch(repo, store, targets_in_scope(repo, targets, scope), jobs=jobs,
                        progress=progress)
        if run_cache:
            result += runcache.fetch(repo, store, jobs=jobs, progress=progress)
        return SyncResult.of(result)


def pull(
    repo: Repo, targets: Sequence[str] = (), *, remote: str | None = None,
    jobs: int | None = None, scope: Scope = Scope(), force: bool = False,
    progress: Progress = NO_PROGRESS, run_cache: bool = False,
) -> tuple[SyncResult, CheckoutResult]:
    """Fetch, then check out the workspace targets."""
    fetched = fetch(repo, targets, remote=remote, jobs=jobs, scope=scope, progress=progress,
                    run_cache=run_cache)
    return fetched, checkout(repo, targets, force=force)


def _fetch(repo: Repo, store: RemoteStore, chosen: list[Target], *, jobs: int,
           progress: Progress) -> TransferResult:
    folders = {t.tracked.pointer.oid: 0 for t in chosen if t.tracked.pointer.kind == "dir"}
    index = RemoteIndex(store, repo.cache)
    result = transfer.download(store, repo.cache, folders, jobs=jobs, progress=progress,
                               index=index)
    files = objects_needed(repo, chosen).files
    return result + transfer.download(store, repo.cache, files, jobs=jobs, progress=progress,
                                      index=index)


@dataclass(frozen=True)
class NeededObjects:
    """The objects a set of targets needs."""

    files: dict[Oid, int]  # oid → size
    manifests: dict[Oid, set[Oid]]  # a whole folder's manifest → its files' oids
    paths: dict[Oid, str]  # a path each object stands for, for messages
    unreadable: tuple[str, ...]  # folders whose manifest is not in the cache


def objects_needed(repo: Repo, chosen: Sequence[Target]) -> NeededObjects:
    """A whole folder needs its manifest and files; a file inside a folder only itself."""
    found = NeededObjects({}, {}, {}, ())
    unreadable = []
    for target in chosen:
        ptr = target.tracked.pointer
        if ptr.kind == "file":
            found.files[ptr.oid] = ptr.size
            found.paths.setdefault(ptr.oid, target.path)
            continue
        try:
            entries = below(manifest_of(repo, ptr).by_path(), target.sub)
        except (MissingObjectError, PointerError):
            unreadable.append(target.path)
            continue
        for key, entry in entries.items():
            found.files[entry.oid] = entry.size
            found.paths.setdefault(entry.oid, f"{target.path}/{key}" if key else target.path)
        if not target.sub:
            found.manifests[ptr.oid] = {e.oid for e in entries.values()}
            found.paths.setdefault(ptr.oid, target.path)
    return replace(found, unreadable=tuple(unreadable))


def remote_status(
    repo: Repo, targets: Sequence[str] = (), *, remote: str | None = None,
    jobs: int | None = None,
) -> list[RemoteStatusEntry]:
    """For each workspace target, how many of its objects the remote lacks, their bytes, and
    how many bytes a push would send of them."""
    store = repo.remote(remote)
    jobs = jobs or store.jobs
    chosen = resolve_targets(repo, targets)
    per_target = []
    for target in chosen:
        needed = objects_needed(repo, [target])
        sizes = dict(needed.files)
        if not target.sub:  # the whole: a folder's manifest (its size, if cached) or the file
            sizes.setdefault(target.tracked.pointer.oid, _cached_size(repo, target))
        per_target.append((target, sizes))
    everything = {oid for _, sizes in per_target for oid in sizes}
    index = RemoteIndex(store, repo.cache)
    absent = index.missing(everything, jobs=jobs)
    unpushed = [(target, sizes, {oid: size for oid, size in sizes.items() if oid in absent})
                for target, sizes in per_target if absent.intersection(sizes)]
    sending = bytes_to_send(repo, index, [lacking for _, _, lacking in unpushed], jobs=jobs)
    return [
        RemoteStatusEntry(target.path, len(lacking), len(sizes), sum(lacking.values()), to_send)
        for (target, sizes, lacking), to_send in zip(unpushed, sending, strict=True)
    ]


def _cached_size(repo: Repo, target: Target) -> int:
    """The size of a target's whole object: a file's from its pointer, a folder manifest's
    from the cache (0 when not cached: it is small)."""
    ptr = target.tracked.pointer
    if ptr.kind == "file":
        return ptr.size
    try:
        return os.path.getsize(repo.cache.path(ptr.oid))
    except FileNotFoundError:
        return 0
