"""``dvlite status``: how the workspace differs from the pointers and the cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.storage.scanner import missing_objects
from dvlite.workspace import Comparison, compare, resolve_targets

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid

State = Literal["modified", "deleted", "not in cache"]


@dataclass(frozen=True)
class StatusEntry:
    path: str
    state: State
    added: tuple[str, ...] = ()  # files inside a folder, relative to it
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatusResult:
    entries: tuple[StatusEntry, ...]  # only what differs
    checked: int  # tracked paths looked at
    hashed_files: int
    hashed_bytes: int


def status(
    repo: Repo, targets: Sequence[str] = (), *, progress: Progress = NO_PROGRESS
) -> StatusResult:
    entries: list[StatusEntry] = []
    hashed_files = hashed_bytes = 0
    resolved = resolve_targets(repo, targets)
    for target in resolved:
        cmp = compare(repo, target, watched=True, progress=progress)
        hashed_files += cmp.scan.hashed_files
        hashed_bytes += cmp.scan.hashed_bytes
        if cmp.scan.state.kind is None:
            entries.append(StatusEntry(target.path, "deleted"))
        elif not cmp.matches:
            changes = cmp.changes if cmp.manifest_cached else None
            entries.append(StatusEntry(
                target.path, "modified",
                added=tuple(e.path for e in changes.added) if changes else (),
                modified=tuple(new.path for _, new in changes.modified) if changes else (),
                deleted=tuple(e.path for e in changes.removed) if changes else (),
            ))
        elif not cmp.manifest_cached or _missing(repo, cmp):
            entries.append(StatusEntry(target.path, "not in cache"))
    return StatusResult(tuple(entries), len(resolved), hashed_files, hashed_bytes)


def _missing(repo: Repo, cmp: Comparison) -> set[Oid]:
    """Objects a checkout of the target needs that the cache lacks: of its files, and of a
    whole folder its manifest."""
    tree, ptr = cmp.scan.state.tree, cmp.target.tracked.pointer
    if cmp.same:  # a whole tracked path, as walked: the stat index may vouch for the cache
        oids = list(tree.oids) if tree is not None else []
        return missing_objects(repo.index, cmp.target.path, ptr.oid, repo.cache,
                               [*oids, ptr.oid])
    needed = [oid for oid, _, _ in (cmp.recorded_files or {}).values()]
    if ptr.kind == "dir" and not cmp.target.sub:
        needed.append(ptr.oid)
    return repo.cache.missing(needed)
