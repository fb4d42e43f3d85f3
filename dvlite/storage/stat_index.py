"""Remembered hashes, so an unchanged file is never hashed twice.

A sqlite table maps a path to the (inode, mtime_ns, size) it had when it was
hashed, and the oid it hashed to. A lookup trusts the oid only when the
file's stat still matches and the entry is not *racy*: git's rule that a file
modified in the same timestamp tick as it was hashed could change again
without its mtime moving. Each entry therefore records ``stamp_ns``, the
filesystem's own clock (read by touching a file) taken *before* the file was
stat'ed, and is trusted only when the file's mtime is strictly older than
that: any later write would then have moved the mtime.

A second table keeps, for each scanned path, a *tree*: the records of all its
files as walked (packed a column at a time) and their oids, with the stamp
taken before that walk. A walk equal to the tree, with no file as new as the stamp,
proves the whole path unchanged in one comparison, with no per-file lookup;
after a change, the tree still vouches for every file whose record it holds.

With a file-system watcher running (``storage/fsmonitor.py``), a tree also keeps the
watcher's token from before its walk: the watcher's list of what changed since that token
then stands in for the next walk.

A third table remembers that every object a path's oid needs was in an object
store, with the (inode, mtime_ns) of the store's 2-hex folders holding them,
stat'ed before they were listed. Removing an object moves its folder's mtime,
so while those folders' stats are unchanged (and not racy, as above) the
objects are still there, and a listing of the store is not needed.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
from operator import itemgetter
from typing import TYPE_CHECKING

from dvlite.storage.hashing import Oid
from dvlite.storage.tree import Tree, loads, pack, unpack

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvlite.fsutil import FileRecord, FileStat

Known = tuple[int, int, int, str, int]  # what lookup remembers: inode, mtime_ns, size, oid, stamp

_TABLES = (
    """CREATE TABLE IF NOT EXISTS entries (
        path TEXT PRIMARY KEY,
        inode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        oid TEXT NOT NULL,
        stamp_ns INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS trees (
        path TEXT NOT NULL,
        stored INTEGER NOT NULL,
        oid TEXT NOT NULL,
        stamp_ns INTEGER NOT NULL,
        newest_ns INTEGER NOT NULL,
        -- before the blobs: sqlite reads a row's columns in order, overflow pages and all
        token TEXT,
        records BLOB NOT NULL,
        oids BLOB NOT NULL,
        PRIMARY KEY (path, stored)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stored (
        path TEXT PRIMARY KEY,
        oid TEXT NOT NULL,
        stamp_ns INTEGER NOT NULL,
        folders BLOB NOT NULL
    ) WITHOUT ROWID""",
)
# The tables' version: an index of another version loses its trees and stored tables (the
# entries table is as it was in version 0); it is only a cache, so it fills up again.
_VERSION = 3
_BATCH = 500  # paths per `IN (...)` query, well below sqlite's variable limit
_MTIME = itemgetter(2)  # of a FileRecord


class StatIndex:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._stamp_path = db_path + ".stamp"
        self._db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
            self._migrate()
        self._trees: dict[tuple[str, Oid], Tree] = {}  # read by this process: see tree_of

    def _migrate(self) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # one process migrates, the others wait
            if self._db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                self._db.execute("DROP TABLE IF EXISTS trees")
                self._db.execute("DROP TABLE IF EXISTS stored")
                for table in _TABLES:
                    self._db.execute(table)
                self._db.execute(f"PRAGMA user_version = {_VERSION}")

    def close(self) -> None:
        self._db.close()

    def lookup(self, prefix: str) -> dict[str, Known]:
        """All entries at ``prefix`` or below it, in one query."""
        rows = self._db.execute(
            "SELECT path, inode, mtime_ns, size, oid, stamp_ns FROM entries "
            "WHERE path = ? OR (path > ? AND path < ?)",
            (prefix, prefix + "/", prefix + "0"),  # "0" sorts right after "/"
        )
        return {row[0]: row[1:] for row in rows}

    @staticmethod
    def trusted_oid(known: Known | None, current: FileStat) -> Oid | None:
        """The remembered oid, if ``current`` proves the file unchanged since it was hashed."""
        if known is None:
            return None
        inode, mtime_ns, size, oid, stamp = known
        if (inode, mtime_ns, size) != (current.inode, current.mtime_ns, current.size):
            return None
        return Oid(oid) if mtime_ns < stamp else None

    def record(self, entries: Iterable[tuple[str, FileStat, Oid]], stamp: int) -> None:
        """Remember hashed files, in one transaction; ``stamp`` is ``fs_clock()`` from
        before their stats were taken."""
        rows = [(p, s.inode, s.mtime_ns, s.size, oid, stamp) for p, s, oid in entries]
        if rows:
            with self._db:
                self._db.execute("BEGIN")
                self._insert(rows)

    def _insert(self, rows: Iterable[tuple[str, int, int, int, str, int]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)

    def known_oids(
        self, path: str, records: list[FileRecord]
    ) -> tuple[Oid | None, list[Oid | None]]:
        """What the index vouches for in ``records``, the files walked at ``path``: the oid
        of the whole path when its tree proves nothing changed, and each file's oid (None
        where the file must be hashed)."""
        rows = self._db.execute(
            "SELECT oid, stamp_ns, newest_ns, records, oids FROM trees WHERE path = ?", (path,)
        ).fetchall()
        trees = [(row, tree) for row in rows if (tree := loads(row[3], row[4])) is not None]
        packed = pack(records)
        for (oid, stamp, newest, _, _), (stored, stored_oids) in trees:
            if newest < stamp and stored == packed:  # no racy file, nothing changed
                return Oid(oid), list(stored_oids)
        by_record: dict[FileRecord, Oid] = {}
        for (oid, stamp, newest, _, _), (stored, stored_oids) in trees:
            unpacked = unpack(stored)
            self._trees.setdefault((path, Oid(oid)), Tree(unpacked, stored_oids))
            if newest < stamp:  # no racy file: every record vouches for its oid
                by_record.update(zip(unpacked, stored_oids, strict=True))
            else:
                by_record.update((r, o) for r, o in zip(unpacked, stored_oids, strict=True)
                                 if r[2] < stamp)
        return None, self.file_oids(path, records, [by_record.get(r) for r in records])

    def file_oids(self, path: str, records: list[FileRecord],
                  oids: list[Oid | None]) -> list[Oid | None]:
        """``oids`` of ``records`` (walked at ``path``), with those that are None filled in
        where the index remembers the file unchanged since it was hashed."""
        unknown = [i for i, oid in enumerate(oids) if oid is None]
        if unknown:
            known = self._entries([_key(path, records[i][0]) for i in unknown])
            for i in unknown:
                rel, inode, mtime_ns, size, _ = records[i]
                entry = known.get(_key(path, rel))
                if entry is not None and entry[:3] == (inode, mtime_ns, size) and (
                    mtime_ns < entry[4]
                ):
                    oids[i] = Oid(entry[3])
        return oids

    def _entries(self, paths: list[str]) -> dict[str, Known]:
        found: dict[str, Known] = {}
        for start in range(0, len(paths), _BATCH):
            batch = paths[start:start + _BATCH]
            rows = self._db.execute(  # only placeholders are formatted in
                "SELECT path, inode, mtime_ns, size, oid, stamp_ns FROM entries "  # noqa: S608
                f"WHERE path IN ({','.join('?' * len(batch))})", batch,
            )
            found.update((row[0], row[1:]) for row in rows)
        return found

    def save(self, path: str, tree: Tree, oid: Oid | None, stamp: int, hashed: Iterable[int],
             *, stored: bool, token: str | None = None) -> None:
        """Remember the tree walked at ``path`` (whose oid is ``oid``; None: the files alone)
        and, per file, the files of it at the positions ``hashed``; in one transaction.
        ``stamp`` is ``fs_clock()`` from before the walk. A path keeps two trees: the last
        one ``stored`` (its manifest is in the store: what a pointer records), and the last
        one seen by any other scan, so that a changed path is still compared with its
        pointer without reading its manifest. ``token``: the file-system watcher's, from before
        the walk."""
        rows = ((_key(path, tree.records[i][0]), *tree.records[i][1:4], tree.oids[i], stamp)
                for i in hashed)  # a generator: add of a big folder records every file
        newest = max(map(_MTIME, tree.records), default=0)
        with self._db:
            self._db.execute("BEGIN")
            self._insert(rows)
            if oid is None:
                return
            self._db.execute(
                "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (path, stored, oid, stamp, newest, token, marshal.dumps(pack(tree.records)),
                 marshal.dumps(tree.oids)),
            )

    def watched(self, path: str) -> list[tuple[str, Oid, bool]]:
        """(token, oid, stored) of the trees at ``path`` saved with a watcher's token."""
        rows = self._db.execute(
            "SELECT token, oid, stored FROM trees WHERE path = ? AND token IS NOT NULL", (path,)
        )
        return [(token, Oid(oid), bool(stored)) for token, oid, stored in rows]

    def tree_in(self, path: str, stored: bool, oid: Oid) -> Tree | None:
        """The tree saved at ``path`` as ``stored`` (see ``save``), if its oid is ``oid``."""
        row = self._db.execute(
            "SELECT records, oids FROM trees WHERE path = ? AND stored = ? AND oid = ?",
            (path, stored, oid),
        ).fetchone()
        loaded = loads(*row) if row is not None else None
        if loaded is None:
            return None
        tree = Tree(None, loaded[1], packed=loaded[0])
        self._trees.setdefault((path, oid), tree)  # (see tree_of)
        return tree

    def tree_of(self, path: str, oid: Oid) -> Tree | None:
        """The files of a tree saved at ``path`` whose oid is ``oid``, if one is kept. Trees
        of one oid list the same paths, oids, sizes and modes, so one read by this process
        (``known_oids`` reads them all when it compares a walk) serves again."""
        if (path, oid) not in self._trees:
            row = self._db.execute(
                "SELECT records, oids FROM trees WHERE path = ? AND oid = ? LIMIT 1", (path, oid)
            ).fetchone()
            loaded = loads(*row) if row is not None else None
            if loaded is None:
                return None
            self._trees[path, oid] = Tree(None, loaded[1], packed=loaded[0])
        return self._trees[path, oid]

    def objects_vouched(self, path: str, oid: Oid, root: str) -> bool:
        """Whether every object ``oid`` at ``path`` needs is still in the store at ``root``."""
        row = self._db.execute(
            "SELECT stamp_ns, folders FROM stored WHERE path = ? AND oid = ?", (path, oid)
        ).fetchone()
        if row is None:
            return False
        stamp, blob = row
        try:  # written by this class, like the trees
            stored_root, folders = marshal.loads(blob)  # noqa: S302
        except (EOFError, ValueError, TypeError):
            return False
        return stored_root == root and folders == folder_stats(root, [f[0] for f in folders]) \
            and all(0 <= f[2] < stamp for f in folders)

    def vouch_objects(self, path: str, oid: Oid, root: str,
                      folders: list[tuple[str, int, int]], stamp: int) -> None:
        """Remember that every object ``oid`` at ``path`` needs was found in the store at
        ``root`` by a listing made after ``folders`` were stat'ed (``folder_stats``) and
        ``stamp`` taken (``fs_clock``), in that order."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO stored VALUES (?, ?, ?, ?)",
                             (path, oid, stamp, marshal.dumps((root, folders))))

    def forget(self, prefix: str) -> None:
        self._trees.clear()
        with self._db:
            self._db.execute("BEGIN")
            below = (prefix, prefix + "/", prefix + "0")
            for delete in (
                "DELETE FROM entries WHERE path = ? OR (path > ? AND path < ?)",
                "DELETE FROM trees WHERE path = ? OR (path > ? AND path < ?)",
                "DELETE FROM stored WHERE path = ? OR (path > ? AND path < ?)",
            ):
                self._db.execute(delete, below)

    def fs_clock(self) -> int:
        """The filesystem's clock now, at its own timestamp granularity."""
        with open(self._stamp_path, "wb"):
            pass
        return os.stat(self._stamp_path).st_mtime_ns


def folder_stats(root: str, names: list[str]) -> list[tuple[str, int, int]]:
    """(name, inode, mtime_ns) of the folders ``names`` in ``root``; a missing one as (name,
    0, -1), which no folder matches."""
    stats = []
    for name in names:
        try:
            st = os.stat(os.path.join(root, name))
        except FileNotFoundError:
            stats.append((name, 0, -1))
        else:
            stats.append((name, st.st_ino, st.st_mtime_ns))
    return stats


def _key(path: str, rel: str) -> str:
    return f"{path}/{rel}" if rel else path
