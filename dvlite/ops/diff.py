"""``dvlite diff``: data changes between two revisions, down to files inside folders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite.errors import MissingObjectError
from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.storage.manifest import Entry
from dvlite.storage.manifest import diff as diff_entries
from dvlite.workspace import find_tracked, pointer_entries, scan, tracked_at

if TYPE_CHECKING:
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid

Change = Literal["added", "deleted", "modified"]


@dataclass(frozen=True)
class DiffEntry:
    path: str
    change: Change
    old_oid: Oid | None
    new_oid: Oid | None
    old_size: int | None
    new_size: int | None


@dataclass(frozen=True)
class _Side:
    oid: Oid
    size: int
    entries: dict[str, Entry] | None  # None: a folder whose manifest is not cached


def diff(repo: Repo, a: str | None = None, b: str | None = None, *,
         progress: Progress = NO_PROGRESS) -> list[DiffEntry]:
    """Changes from revision ``a`` (default HEAD) to ``b`` (default: the workspace data, hashed
    where the stat index cannot vouch for it: ``progress`` counts those files)."""
    old = _at_rev(repo, a or "HEAD")
    new = _at_rev(repo, b) if b is not None else _in_workspace(repo, progress)
    changes: list[DiffEntry] = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.oid == after.oid:
            continue
        if before is None or after is None or before.entries is None or after.entries is None:
            changes.append(_whole(path, before, after))
            continue
        found = diff_entries(before.entries, after.entries)
        changes += [_entry(path, e, None, "deleted") for e in found.removed]
        changes += [_entry(path, None, e, "added") for e in found.added]
        changes += [_entry(path, o, n, "modified") for o, n in found.modified]
    return sorted(changes, key=lambda c: c.path)


def _at_rev(repo: Repo, rev: str) -> dict[str, _Side]:
    sides = {}
    for tracked in tracked_at(repo, rev):
        try:
            entries: dict[str, Entry] | None = pointer_entries(repo, tracked.pointer)
        except MissingObjectError:
            entries = None
        sides[tracked.path] = _Side(tracked.pointer.oid, tracked.pointer.size, entries)
    return sides


def _in_workspace(repo: Repo, progress: Progress) -> dict[str, _Side]:
    sides = {}
    for tracked in find_tracked(repo):
        state = scan(repo, tracked.path, progress=progress, watched=True).state
        if state.oid is not None:
            sides[tracked.path] = _Side(state.oid, state.size, state.entries())
    return sides


def _whole(path: str, before: _Side | None, after: _Side | None) -> DiffEntry:
    change: Change = "added" if before is None else "deleted" if after is None else "modified"
    return DiffEntry(
        path, change,
        before.oid if before else None, after.oid if after else None,
        before.size if before else None, after.size if after else None,
    )


def _entry(root: str, old: Entry | None, new: Entry | None, change: Change) -> DiffEntry:
    key = (old or new).path  # type: ignore[union-attr]
    return DiffEntry(
        f"{root}/{key}" if key else root, change,
        old.oid if old else None, new.oid if new else None,
        old.size if old else None, new.size if new else None,
    )
