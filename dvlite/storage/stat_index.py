"""Remembered hashes, so an unchanged file is never hashed twice.

A sqlite table maps a path to the (inode, mtime_ns, size) it had when it was
hashed, and the oid it hashed to. A lookup trusts the oid only when the
file's stat still matches and the entry is not *racy*: git's rule that a file
modified in the same timestamp tick as it was hashed could change again
without its mtime moving. Each entry therefore records ``stamp_ns``, the
filesystem's own clock (read by touching a file) taken *before* the file was
stat'ed, and is trusted only when the file's mtime is strictly older than
that: any later write would then have moved the mtime.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

from dvlite.storage.hashing import Oid

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvlite.fsutil import FileStat

Known = tuple[int, int, int, str, int]  # what lookup remembers: inode, mtime_ns, size, oid, stamp

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    oid TEXT NOT NULL,
    stamp_ns INTEGER NOT NULL
) WITHOUT ROWID
"""


class StatIndex:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._stamp_path = db_path + ".stamp"
        self._db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

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
        rows = list(entries)
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                [(p, s.inode, s.mtime_ns, s.size, oid, stamp) for p, s, oid in rows],
            )

    def forget(self, prefix: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "DELETE FROM entries WHERE path = ? OR (path > ? AND path < ?)",
                (prefix, prefix + "/", prefix + "0"),
            )

    def fs_clock(self) -> int:
        """The filesystem's clock now, at its own timestamp granularity."""
        with open(self._stamp_path, "wb"):
            pass
        return os.stat(self._stamp_path).st_mtime_ns
