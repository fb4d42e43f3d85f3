"""Reading what a path in the workspace holds, hashing as little as possible.

One walk with one ``stat`` per file gives plain records; the stat index then
vouches for the whole path in one comparison when nothing changed, or file
by file otherwise, and only the files it cannot vouch for are hashed (and,
when storing, copied into the object store as they are hashed). The work
beyond the walk is proportional to the files that changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Literal, cast

from dvlite.fsutil import (
    NO_PROGRESS,
    Progress,
    file_jobs,
    run_parallel,
    stat_file,
    walk_records,
)
from dvlite.storage.hashing import hash_file
from dvlite.storage.manifest import Entry, Manifest, check_walked, encode
from dvlite.storage.stat_index import folder_stats
from dvlite.storage.tree import Tree

_PATH, _SIZE, _EXECUTABLE = itemgetter(0), itemgetter(3), itemgetter(4)  # of a FileRecord

if TYPE_CHECKING:
    from dvlite.fsutil import FileRecord
    from dvlite.storage.fsmonitor import Monitor
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.stat_index import StatIndex


@dataclass(frozen=True)
class PathScan:
    kind: Literal["file", "dir"]
    oid: Oid | None  # a file's hash, or a folder's manifest's (see ``keep``)
    tree: Tree  # a file: one record, named ""
    hashed_files: int
    hashed_bytes: int


def scan_path(
    index: StatIndex,
    key: str,
    full: str,
    odb: ObjectStore,
    *,
    allowed: tuple[str, ...],
    store: bool = False,
    keep: bool = True,
    jobs: int = 1,
    progress: Progress = NO_PROGRESS,
    monitor: Monitor | None = None,
) -> PathScan | None:
    """Scan the file or folder at ``full``, known to ``index`` as ``key``; None if nothing
    is there. With ``store``, every file (and a folder's manifest) ends up in ``odb``.
    Without ``keep`` (for a command about to rewrite the path, after which this tree is
    gone), a changed folder is given no oid and its tree is not remembered: its files'
    hashes are. With a ``monitor``, a folder is walked only where the file-system watcher
    cannot say what changed in it (see storage/fsmonitor.py)."""
    stamp = index.fs_clock()  # before any stat: see storage/stat_index.py
    kind: Literal["file", "dir"]
    watched = None
    if os.path.isdir(full) and not os.path.islink(full):
        watched = monitor.look(index, key, full, allowed=allowed) if monitor else None
        if watched is not None and watched.unchanged is not None:
            return PathScan("dir", *watched.unchanged, 0, 0)
        kind, records = "dir", (watched.records if watched is not None
                                else walk_records(full, allowed=allowed))
    elif os.path.lexists(full):
        st = stat_file(full, allowed=allowed)
        kind, records = "file", [("", st.inode, st.mtime_ns, st.size, st.executable)]
    else:
        return None
    oid, known = (index.known_oids(key, records) if watched is None or watched.oids is None
                  else (None, index.file_oids(key, records, watched.oids)))
    todo = [] if oid is not None else [i for i, found in enumerate(known) if found is None]
    if store:
        _store_known(index, key, oid, odb, full=full, records=records, known=known)
    progress.set_size(len(todo))

    def one(i: int) -> Oid:
        src = _source(full, records[i][0])
        found = odb.add_file(src) if store else hash_file(src, odb.algorithm)
        progress.relative_update(1)
        return found

    hashed_bytes = sum(records[i][3] for i in todo)
    for i, found in zip(todo, run_parallel(one, todo, file_jobs(hashed_bytes, len(todo), jobs)),
                        strict=True):
        known[i] = found
    tree = Tree(records, cast("list[Oid]", known))
    vouched = oid is not None
    encoded = False
    # a folder's manifest is encoded only when the index cannot vouch for the folder, or to
    # store one that a scan without storing vouched for
    if kind == "dir" and oid is None and not keep:
        if todo:
            index.save(key, tree, None, stamp, todo, stored=False)
        return PathScan(kind, None, tree, len(todo), hashed_bytes)
    if kind == "dir" and (oid is None or (store and not odb.exists(oid))):
        data = manifest_bytes(tree)
        oid = odb.add_bytes(data) if store else odb.hash_of(data)
        encoded = True
    elif oid is None:
        oid = tree.oids[0]
    # (vouched: by a tree whose manifest was not stored, and now is; or by a tree saved
    if not vouched or encoded or watched:  # without the watcher's token this walk has)
        index.save(key, tree, oid, stamp, todo, stored=store,
                   token=watched.token if watched else None)
    return PathScan(kind, oid, tree, len(todo), hashed_bytes)


def missing_objects(index: StatIndex, key: str, oid: Oid, odb: ObjectStore,
                    oids: list[Oid]) -> set[Oid]:
    """Which of ``oids``, every object that ``oid`` at ``key`` needs, ``odb`` lacks: none
    when the index vouches for them all, else one listing (then vouched for next time)."""
    if index.objects_vouched(key, oid, odb.root):
        return set()
    wanted = set(oids)
    stamp = index.fs_clock()  # before the folders' stats, which come before their listing
    folders = folder_stats(odb.root, sorted({o[:2] for o in wanted}))
    missing = odb.missing(wanted)
    if not missing:
        index.vouch_objects(key, oid, odb.root, folders, stamp)
    return missing


def manifest_of(tree: Tree) -> Manifest:
    return Manifest.build(map(Entry, map(_PATH, tree.records), tree.oids,
                              map(_SIZE, tree.records), map(_EXECUTABLE, tree.records)))


def manifest_bytes(tree: Tree) -> bytes:
    """``manifest_of(tree).to_bytes()``, encoded from the tree's columns without an Entry
    per file (a scan that finds a folder changed needs only its oid)."""
    paths = list(map(_PATH, tree.records))
    order = sorted(range(len(paths)), key=paths.__getitem__)
    in_order = [paths[i] for i in order]
    check_walked(in_order)
    records, oids = tree.records, tree.oids
    return encode(in_order, [oids[i] for i in order], [records[i][3] for i in order],
                  [records[i][4] for i in order])


def _source(full: str, rel: str) -> str:
    return os.path.join(full, rel) if rel else full


def _store_known(index: StatIndex, key: str, oid: Oid | None, odb: ObjectStore, *,
                 full: str, records: list[FileRecord], known: list[Oid | None]) -> None:
    """Copy in the files whose oids the index knows but whose objects are not stored: one
    listing of the store for many files rather than a stat each, or none at all when the
    index vouches for the objects of the whole path (``oid``)."""
    where = {found: i for i, found in enumerate(known) if found is not None}
    if oid is None:
        missing = odb.missing(where)
    else:  # the manifest, if missing, is stored by the caller
        missing = missing_objects(index, key, oid, odb, [*where, oid])
    for found in missing & where.keys():
        odb.add_file(_source(full, records[where[found]][0]), found)
