"""What both importers share: the dirty-tree refusal, a foreign digest checked on the bytes
the cache holds, idempotent pointer writes, and the final check of every converted path."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite import scm
from dvlite.errors import CorruptObjectError, NotARepoError, UnsafeOperationError
from dvlite.fsutil import atomic_write, run_parallel
from dvlite.pointer import SUFFIX, Pointer, pointer_file_for
from dvlite.repo import DVLITE_DIR, Repo
from dvlite.storage.hashing import hash_stream
from dvlite.workspace import default_jobs, load_tracked, manifest_of

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore

_OWN_FILES = frozenset({".gitignore", ".gitattributes", "dvlite.toml", "dvlite.lock"})
_SHOWN = 5


@dataclass(frozen=True)
class Converted:
    path: str  # the data, repo-relative
    pointer_file: str
    oid: Oid | None  # None in a dry run
    size: int | None
    files: int | None  # folders only
    source: str  # where its bytes came from: workspace, DVC cache, git-lfs
    action: str  # written, unchanged, kept (a different pointer was there), would write


@dataclass(frozen=True)
class ImportResult:
    converted: tuple[Converted, ...]
    stages: tuple[str, ...] = ()  # written to dvlite.toml
    locked: tuple[str, ...] = ()  # their dvlite.lock entries converted too
    remotes: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()  # DVC's files deleted (`--remove-dvc`)
    unindexed: tuple[str, ...] = ()  # taken out of git's index, kept in the work tree (lfs)
    written: tuple[str, ...] = ()  # files created or changed
    warnings: tuple[str, ...] = ()
    not_converted: tuple[str, ...] = ()
    verified_objects: int = 0
    dry_run: bool = False
    next_steps: tuple[str, ...] = ()


def open_project(start: str) -> Repo:
    """The project of the git work tree holding ``start``, whether dvlite is set up there
    yet or not (``initialise`` does, once an import is sure to write)."""
    root = scm.find_work_tree(start)
    if root is None:
        raise NotARepoError(f"`{os.path.abspath(start)}` is not inside a git work tree",
                            hint="run the import at the top of the project's git work tree")
    return Repo(root)


def initialise(repo: Repo) -> None:
    """`dvlite init`, unless done: the files it makes (config, .gitignore) are kept as they
    are when there."""
    Repo.init(repo.root)[0].close()


def refuse_dirty(repo: Repo, managed: Callable[[str], bool], *, force: bool) -> None:
    """Refuse a work tree with changes of the user's own: the import's changes should be
    reviewable, and undoable, alone. dvlite's files, those ``managed`` by this import, and
    data now behind a pointer are the import's own (so a second run is not refused)."""
    out = scm.run_git("-C", repo.root, "status", "--porcelain=v1", "-z")
    records = out.split("\0")
    dirty: list[str] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if len(record) < 4:
            continue
        if record[0] in "RC":
            i += 1  # the path it was renamed or copied from follows
        path = record[3:].rstrip("/")
        if not (managed(path) or _is_own(repo, path)):
            dirty.append(path)
    if dirty and not force:
        shown = ", ".join(f"`{p}`" for p in dirty[:_SHOWN])
        more = f" and {len(dirty) - _SHOWN} more" if len(dirty) > _SHOWN else ""
        raise UnsafeOperationError(
            f"the git work tree has uncommitted changes: {shown}{more}",
            hint="commit or stash them first, so that the import's changes stand alone; "
            "`--force` imports anyway",
        )


def _is_own(repo: Repo, path: str) -> bool:
    if path.endswith(SUFFIX) or path.rpartition("/")[2] in _OWN_FILES:
        return True
    if path == DVLITE_DIR or path.startswith(DVLITE_DIR + "/"):
        return True
    parts = path.split("/")
    return any(os.path.exists(repo.abs("/".join(parts[:depth]) + SUFFIX))
               for depth in range(1, len(parts) + 1))


def digest_of(odb: ObjectStore, oid: Oid, name: str) -> str:
    """The ``name`` digest (md5, sha256) of a stored object, whose bytes are checked
    against its oid on the same read."""
    other = hashlib.new(name)
    with odb.open(oid) as f:
        got, _ = hash_stream(f, odb.algorithm, sink=other.update)
    if got != oid:
        raise CorruptObjectError(f"object {oid} in `{odb.root}` is corrupt",
                                 hint="run `dvlite fsck`, then import again")
    return other.hexdigest()


def write_pointer(repo: Repo, rel: str, new: Pointer, *, force: bool) -> str:
    """Write ``rel``'s pointer unless it already says the same (or says something else and
    not ``force``), and make git ignore ``rel``; the action taken."""
    pointer_file = pointer_file_for(rel)
    folder, _, name = rel.rpartition("/")
    action = "written"
    if os.path.exists(repo.abs(pointer_file)):
        old = load_tracked(repo, pointer_file).pointer
        if old.with_data(new.oid, new.size, new.files, new.kind) == old:
            action = "unchanged"
        elif not force:
            return "kept"
    if action == "written":
        atomic_write(repo.abs(pointer_file), new.encode())
    scm.add_ignore(repo.abs(folder), name)
    return action


def write_file(path: str, data: bytes, *, force: bool) -> str:
    """``write_pointer``'s rule for a whole file (dvlite.toml, dvlite.lock)."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return "unchanged"
        if not force:
            return "kept"
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return "written"


def verify(repo: Repo, pointers: Sequence[tuple[str, Pointer]]) -> int:
    """Re-read every object the converted paths' pointers name and check it hashes to its
    oid; the number of objects checked."""
    oids: dict[Oid, str] = {}
    for path, ptr in pointers:
        oids[ptr.oid] = path
        if ptr.kind == "dir":
            oids.update({e.oid: f"{path}/{e.path}" for e in manifest_of(repo, ptr).entries})

    def one(item: tuple[Oid, str]) -> None:
        if not repo.cache.verify(item[0]):
            raise CorruptObjectError(
                f"`{item[1]}`: the cache's object {item[0]} does not hash to its pointer",
                hint="run `dvlite fsck`, then import again")

    run_parallel(one, list(oids.items()), default_jobs(repo))
    return len(oids)
