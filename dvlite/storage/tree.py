"""A scanned path's files as the stat index keeps them: records (path, inode, mtime_ns,
size, executable) and oids, packed a column at a time for storage."""

from __future__ import annotations

import marshal
from array import array
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvlite.fsutil import FileRecord
    from dvlite.storage.hashing import Oid
    from dvlite.storage.manifest import FileMap

_COLUMNS = tuple(itemgetter(i) for i in range(5))  # of a FileRecord
_PATH, _, _, _SIZE, _EXECUTABLE = _COLUMNS


class Tree:
    """A scanned path's files (records relative to it, "" for a file itself) and their oids.

    A tree read from the index keeps its records packed until they are asked for: a status
    that the watcher tells nothing changed needs only the oids and the total size, and
    unpacking 200,000 records takes 0.1 s."""

    def __init__(self, records: list[FileRecord] | None, oids: list[Oid],
                 packed: Packed | None = None) -> None:
        self._records, self._packed, self.oids = records, packed, oids

    @property
    def records(self) -> list[FileRecord]:
        if self._records is None:
            assert self._packed is not None  # (one of the two is always given)
            self._records = unpack(self._packed)
        return self._records

    @property
    def size(self) -> int:
        """The bytes of all its files."""
        if self._records is None and self._packed is not None:
            return sum(array("q", self._packed[3]))
        return sum(map(_SIZE, self.records))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and (self.records, self.oids) == (other.records, other.oids)

    __hash__ = None  # type: ignore[assignment]  # (mutable lists inside, like a dataclass's)

    def __repr__(self) -> str:
        return f"Tree({len(self.oids)} files)"

    def file_map(self) -> FileMap:
        """The files by path (built in C: a folder may hold millions)."""
        records = self.records
        rows = zip(self.oids, map(_SIZE, records), map(_EXECUTABLE, records), strict=True)
        return dict(zip(map(_PATH, records), rows, strict=True))


Packed = tuple[bytes, bytes, bytes, bytes, bytes]  # records a column each, for compact storage


def pack(records: list[FileRecord]) -> Packed:
    """Records as five byte strings: NUL-joined paths, then inodes, mtimes, sizes and
    executable bits as machine integers. Equal records give equal bytes, so comparing a walk
    with a stored tree is a comparison of bytes, with nothing unpacked."""
    paths, inodes, mtimes, sizes, executables = (list(map(column, records)) for column in _COLUMNS)
    return ("\0".join(paths).encode("utf-8", "surrogateescape"), array("Q", inodes).tobytes(),
            array("q", mtimes).tobytes(), array("q", sizes).tobytes(), bytes(executables))


def unpack(packed: Packed) -> list[FileRecord]:
    paths, inodes, mtimes, sizes, executables = packed
    if not executables:
        return []
    return list(zip(paths.decode("utf-8", "surrogateescape").split("\0"), array("Q", inodes),
                    array("q", mtimes), array("q", sizes), map(bool, executables), strict=True))


def loads(records: bytes, oids: bytes) -> tuple[Packed, list[Oid]] | None:
    """A stored tree, or None if its blobs do not hold one (a damaged index is only slow)."""
    try:  # written by the stat index into the repo's own .dvlite/tmp, like its database
        packed, stored_oids = marshal.loads(records), marshal.loads(oids)  # noqa: S302
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(packed, tuple) and len(packed) == len(_COLUMNS)
            and all(type(column) is bytes for column in packed)
            and isinstance(stored_oids, list)):
        return None
    n = len(stored_oids)
    paths, inodes, mtimes, sizes, executables = packed
    if (len(executables), len(inodes), len(mtimes), len(sizes)) != (n, 8 * n, 8 * n, 8 * n) or (
        n and paths.count(b"\0") != n - 1
    ):
        return None
    return packed, stored_oids
