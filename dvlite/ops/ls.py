"""``dvlite ls``: tracked data at a revision or in the workspace.

With ``chunks``, each file whose chunk list (recipe) is in the cache says how many chunks it
has and how many of its bytes are in chunks that other files with a chunk list in the cache
also use: what versions of a big file share, which a remote stores once (ops/sharing.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dvlite.errors import CorruptObjectError, MissingObjectError, PathError, PointerError
from dvlite.ops.sharing import with_sharing
from dvlite.storage.remote_index import RemoteIndex
from dvlite.workspace import Tracked, below, find_tracked, pointer_entries, tracked_at

if TYPE_CHECKING:
    from dvlite.pointer import Kind
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid


@dataclass(frozen=True)
class LsEntry:
    path: str
    kind: Kind
    size: int
    oid: Oid
    in_cache: bool
    files: int | None = None  # folders
    on_remote: bool | None = None  # None: not asked
    chunks: int | None = None  # files with a chunk list in the cache, when asked
    shared_bytes: int | None = None  # of those, bytes in chunks other such files use too


def ls(
    repo: Repo, path: str = "", *, rev: str | None = None, on_remote: bool = False,
    remote: str | None = None, chunks: bool = False,
) -> list[LsEntry]:
    """Tracked paths at or below ``path`` (repo-relative); inside a tracked folder, its files.
    With ``on_remote``, whether ``remote`` (default: the default one) holds each; with
    ``chunks``, what each file's chunks share with other files."""
    found = _list(repo, path, rev)
    if chunks:
        found = with_sharing(repo, found)
    if not on_remote:
        return found
    store = repo.remote(remote)
    # a folder's manifest goes up only after all its files, so it alone says the folder is
    # there; and a file may be there plain, packed or as chunks
    absent = RemoteIndex(store, repo.cache).missing({e.oid for e in found}, jobs=store.jobs)
    return [replace(e, on_remote=e.oid not in absent) for e in found]


def _list(repo: Repo, path: str, rev: str | None) -> list[LsEntry]:
    tracked = tracked_at(repo, rev) if rev else find_tracked(repo)
    for t in tracked:
        if path == t.path or path.startswith(t.path + "/"):
            return _inside(repo, t, path[len(t.path) + 1:])
    found = [
        LsEntry(t.path, t.pointer.kind, t.pointer.size, t.pointer.oid, _cached(repo, t),
                t.pointer.files)
        for t in tracked
        if not path or t.path.startswith(path + "/")
    ]
    if path and not found:
        raise PathError(f"no tracked data at `{path}`" + (f" in `{rev}`" if rev else ""),
                        hint="`dvlite ls" + (f" --rev {rev}" if rev else "")
                        + "` lists what is tracked")
    return found


def _cached(repo: Repo, tracked: Tracked) -> bool:
    """Whether the cache holds all of it: a folder's manifest and every one of its files."""
    if not repo.cache.exists(tracked.pointer.oid):
        return False
    if tracked.pointer.kind == "file":
        return True
    try:
        files = pointer_entries(repo, tracked.pointer)
    except (MissingObjectError, PointerError, CorruptObjectError):
        return False
    return not repo.cache.missing(e.oid for e in files.values())


def _inside(repo: Repo, tracked: Tracked, sub: str) -> list[LsEntry]:
    try:
        entries = below(pointer_entries(repo, tracked.pointer), sub)
    except MissingObjectError as exc:
        raise MissingObjectError(
            f"the file list of `{tracked.path}` ({tracked.pointer.oid}) is not in the cache",
            hint=exc.hint,
        ) from None
    if not entries:
        raise PathError(f"`{tracked.path}/{sub}` is not in tracked folder `{tracked.path}`",
                        hint=f"`dvlite ls {tracked.path}` lists its files")
    root = f"{tracked.path}/{sub}" if sub else tracked.path
    return [
        LsEntry(f"{root}/{key}" if key else root, "file", e.size, e.oid,
                repo.cache.exists(e.oid))
        for key, e in sorted(entries.items())
    ]
