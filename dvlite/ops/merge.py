"""Three-way merges of ``.dvl`` pointers and ``dvlite.lock``, for git's merge drivers.

git calls a driver only when both sides changed a file and their bytes differ; these
functions then merge by meaning, not by line: a pointer is its data (oid, size, kind,
files, path) plus unknown keys, a lock is a table of stages, a folder is its manifest.
Trivial merges resolve themselves (the same data on both sides, one side unchanged,
disjoint stage or file edits); anything else is a conflict, left as both sides' full
texts between git's conflict markers. The result is always canonical bytes.

Pure over bytes and the cache: the only write is a merged folder's manifest, added to
``cache`` so that the merged pointer's data can be checked out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from dvlite import pointer as pointers
from dvlite.errors import ObjectError, PipelineError, PointerError
from dvlite.pipeline import lockfile
from dvlite.storage.hashing import DEFAULT_ALGORITHM
from dvlite.storage.manifest import Manifest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dvlite.pointer import Pointer
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore

K = TypeVar("K")
V = TypeVar("V")

How = Literal["same", "ours", "theirs", "merged", "conflict"]
_SHOWN = 5  # conflicting names in a message before "and N more"


@dataclass(frozen=True)
class MergeResult:
    data: bytes  # what git should keep: the merge, or both sides between conflict markers
    how: How  # same: both sides agree; ours/theirs: one side changed; merged: both did
    conflict: str | None = None  # why it could not be merged (when how == "conflict")


@dataclass(frozen=True)
class MapMerge(Generic[K, V]):
    merged: dict[K, V]
    conflicts: tuple[K, ...]  # keys changed differently on both sides (not in merged)


def merge_maps(base: Mapping[K, V], ours: Mapping[K, V], theirs: Mapping[K, V],
               key: Callable[[V], object] = lambda v: v) -> MapMerge[K, V]:
    """A three-way merge of two dicts, key by key: a key added, removed or changed on one
    side only, or identically on both, takes that change; ``key`` gives what is compared."""
    merged: dict[K, V] = {}
    conflicts: list[K] = []
    for name in dict.fromkeys([*base, *ours, *theirs]):  # ordered, unlike a set
        b, o, t = (key(m[name]) if name in m else None for m in (base, ours, theirs))
        side = pick(b, o, t)
        if side is None:
            conflicts.append(name)
            continue
        chosen = theirs if side == "theirs" else ours
        if name in chosen:
            merged[name] = chosen[name]
    return MapMerge(merged, tuple(conflicts))


def pick(base: object, ours: object, theirs: object) -> Literal["same", "ours", "theirs"] | None:
    """Which side wins when at most one side changed (None: both changed, differently)."""
    if ours == theirs:
        return "same"
    if base == ours:
        return "theirs"
    if base == theirs:
        return "ours"
    return None


def conflict_text(ours: bytes, theirs: bytes) -> bytes:
    """Both versions, whole, between git's conflict markers (``git diff`` shows them)."""
    def block(text: bytes) -> bytes:
        return text if not text or text.endswith(b"\n") else text + b"\n"
    return b"<<<<<<< ours\n" + block(ours) + b"=======\n" + block(theirs) + b">>>>>>> theirs\n"


def _conflict(ours: bytes, theirs: bytes, why: str) -> MergeResult:
    return MergeResult(conflict_text(ours, theirs), "conflict", why)


def _by_bytes(base: bytes, ours: bytes, theirs: bytes, why: str) -> MergeResult:
    """What git itself would do, for files that cannot be read: only the trivial cases."""
    side = pick(base, ours, theirs)
    if side is None:
        return _conflict(ours, theirs, why)
    return MergeResult(theirs if side == "theirs" else ours, side)


def _listing(names: tuple[str, ...]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


# --- pointers ---------------------------------------------------------------------------------


def merge_pointer(base: bytes, ours: bytes, theirs: bytes, *, cache: ObjectStore | None,
                  algorithm: str = DEFAULT_ALGORITHM) -> MergeResult:
    """Merge three versions of a ``.dvl`` pointer (``base`` empty: added on both sides).

    With ``cache`` (None outside a dvlite project), a folder changed on both sides is
    merged file by file when its three manifests are in the cache."""
    try:
        old = pointers.decode(base, source="base", algorithm=algorithm) if base else None
        mine = pointers.decode(ours, source="ours", algorithm=algorithm)
        other = pointers.decode(theirs, source="theirs", algorithm=algorithm)
    except PointerError as exc:
        return _by_bytes(base, ours, theirs, exc.message)
    extra = _merge_extra(old.extra if old else {}, mine.extra, other.extra)
    data = _data_merge(old, mine, other, cache)
    if isinstance(data, str):
        return _conflict(ours, theirs, data)
    chosen, how = data
    if how == "same" and extra != mine.extra:
        how = "merged"  # the data agreed, the unknown keys came from both sides
    return MergeResult(replace(chosen, extra=extra).encode(), how)


def _merge_extra(base: Mapping[str, object], ours: Mapping[str, object],
                 theirs: Mapping[str, object]) -> dict[str, object]:
    """Unknown keys (a newer dvlite's, a user's): ours, unless only theirs changed one."""
    result = merge_maps(base, ours, theirs)
    for name in result.conflicts:
        if name in ours:
            result.merged[name] = ours[name]
    return dict(sorted(result.merged.items()))


def _data(p: Pointer | None) -> tuple[object, ...] | None:
    return None if p is None else (p.path, p.oid, p.size, p.kind, p.files)


def _data_merge(base: Pointer | None, ours: Pointer, theirs: Pointer,
                cache: ObjectStore | None) -> tuple[Pointer, How] | str:
    """The pointer whose data wins (and how), or why the data cannot be merged."""
    side = pick(_data(base), _data(ours), _data(theirs))
    if side is not None:
        return theirs if side == "theirs" else ours, side
    both_folders = ours.kind == theirs.kind == "dir" and ours.path == theirs.path
    if not both_folders or (base is not None and base.kind != "dir"):
        return f"the data changed on both sides ({_version(ours)} ours, {_version(theirs)} theirs)"
    if cache is None:
        return "the folder changed on both sides, and outside a dvlite project its file " \
               "listings cannot be read to merge them"
    merged = _merge_folders(cache, base.oid if base else None, ours.oid, theirs.oid)
    if isinstance(merged, str):
        return merged
    oid = cache.add_bytes(merged.to_bytes())
    return ours.with_data(oid, merged.size, len(merged.entries), "dir"), "merged"


def _version(p: Pointer) -> str:
    return f"{p.kind} {p.oid[:12]}"


def _merge_folders(cache: ObjectStore, base: Oid | None, ours: Oid,
                   theirs: Oid) -> Manifest | str:
    """The three-way merge of a folder's manifests, or why there is none."""
    try:
        old = _manifest(cache, base) if base else Manifest(())
        mine, other = _manifest(cache, ours), _manifest(cache, theirs)
    except ObjectError:
        return "the folder changed on both sides, and the cache lacks a version's file " \
               "listing to merge them (`dvlite fetch --rev REV` brings a revision's data)"
    except PointerError as exc:
        return f"the folder changed on both sides, and a version's file listing is " \
               f"unreadable: {exc.message}"
    result = merge_maps(old.by_path(), mine.by_path(), other.by_path())
    if result.conflicts:
        names = tuple(sorted(result.conflicts))
        return f"file(s) in the folder changed differently on both sides: {_listing(names)}"
    merged = Manifest(tuple(result.merged[p] for p in sorted(result.merged)))
    try:  # one side's file `x` and the other's `x/y` merge into no folder at all
        Manifest.from_bytes(merged.to_bytes(), source="(merged)", algorithm=cache.algorithm)
    except PointerError as exc:
        return f"the folder's two versions do not fit together: {exc.message}"
    return merged


def _manifest(cache: ObjectStore, oid: Oid) -> Manifest:
    data = cache.read_verified(oid)
    return Manifest.from_bytes(data, source=oid, algorithm=cache.algorithm)


# --- dvlite.lock ------------------------------------------------------------------------------


def merge_lock(base: bytes, ours: bytes, theirs: bytes, *,
               algorithm: str = DEFAULT_ALGORITHM) -> MergeResult:
    """Merge three versions of ``dvlite.lock`` stage by stage (``base`` empty: added on
    both sides). A stage added, removed or changed on one side only takes that side."""
    try:
        old = lockfile.decode(base, source="base", algorithm=algorithm) if base \
            else lockfile.Lockfile()
        mine = lockfile.decode(ours, source="ours", algorithm=algorithm)
        other = lockfile.decode(theirs, source="theirs", algorithm=algorithm)
    except PipelineError as exc:
        return _by_bytes(base, ours, theirs, exc.message)
    result = merge_maps(old.stages, mine.stages, other.stages, key=_stage_bytes)
    if result.conflicts:
        names = tuple(sorted(result.conflicts))
        return _conflict(ours, theirs, f"stage(s) changed differently on both sides: "
                                       f"{_listing(names)}")
    merged = lockfile.Lockfile(result.merged).encode()
    mine_bytes, other_bytes = mine.encode(), other.encode()
    how: How = ("same" if merged == mine_bytes == other_bytes else "ours" if merged == mine_bytes
                else "theirs" if merged == other_bytes else "merged")
    return MergeResult(merged, how)


def _stage_bytes(stage: lockfile.StageLock) -> bytes:
    """A stage as the lock writes it: 1, 1.0 and true are different params there."""
    return lockfile.Lockfile({"": stage}).encode()
