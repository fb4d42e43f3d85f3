"""The object store: immutable, content-addressed files at ``<root>/<2 hex>/<30 hex>``.

Writes go to a read-only temp file in ``<root>/tmp`` and are renamed into
place only when complete and verified, so a crash can leave litter in
``tmp`` but never a partial object under a final name. Renaming over an
existing object is harmless: same name, same bytes.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.fsutil import clone_fd, disk_full
from dvlite.storage.hashing import (
    DEFAULT_ALGORITHM,
    Oid,
    hash_bytes,
    hash_stream,
    is_oid,
    new_hasher,
)
from dvlite.storage.links import copy_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

READ_ONLY = 0o444
_LIST_ABOVE = 512  # oids from which listing folders beats a stat per object
_HEX = frozenset("0123456789abcdef")


@dataclass
class _Temp:
    """An object being written: its temp file, and the oid it turns out to have."""

    file: BinaryIO
    oid: Oid | None = None


class ObjectStore:
    """A store on the local disk (the cache, a folder remote)."""

    def __init__(self, root: str, *, algorithm: str = DEFAULT_ALGORITHM) -> None:
        self.root = root
        self.algorithm = algorithm
        self._reflink_works = True  # until the filesystem refuses a clone

    def __repr__(self) -> str:
        return f"ObjectStore({self.root!r})"

    def hash_of(self, data: bytes) -> Oid:
        return hash_bytes(data, self.algorithm)

    def path(self, oid: Oid) -> str:
        return os.path.join(self.root, oid[:2], oid[2:])

    def exists(self, oid: Oid) -> bool:
        return os.path.exists(self.path(oid))

    def missing(self, oids: Iterable[Oid]) -> set[Oid]:
        """The oids not stored here: a stat each for a few, one listing per 2-hex folder for many
        (256 listings cost less than thousands of stats)."""
        wanted = set(oids)
        if len(wanted) < _LIST_ABOVE:
            return {oid for oid in wanted if not self.exists(oid)}
        present: set[str] = set()
        for prefix in {oid[:2] for oid in wanted}:
            try:
                names = os.listdir(os.path.join(self.root, prefix))
            except FileNotFoundError:
                continue
            present.update(prefix + name for name in names)
        return wanted - present

    def add_file(self, src: str, oid: Oid | None = None) -> Oid:
        """Store a copy of the local file ``src``; return its oid.

        With ``oid`` known (from the stat index) an existing object costs one
        stat, and a new one is cloned where the filesystem allows it and
        verified otherwise. Without it the bytes are hashed as they are copied,
        so each byte is read once.
        """
        if oid is not None and self.exists(oid):
            return oid
        with open(src, "rb", buffering=0) as fsrc:  # first: a missing source leaves nothing
            where = self.path(oid) if oid is not None else self.root
            with self._writing(where, os.fstat(fsrc.fileno()).st_size) as temp:
                if oid is not None and self._clone(fsrc.fileno(), temp.file.fileno()):
                    stored = oid
                else:
                    stored, _ = hash_stream(fsrc, self.algorithm, sink=temp.file.write)
                if oid is not None and stored != oid:
                    raise CorruptObjectError(
                        f"`{src}` changed while it was being stored",
                        hint="let whatever writes it finish, then run the command again",
                    )
                temp.oid = stored
        return stored

    def add_copy(self, src: str, oid: Oid, *, offset: int = 0, size: int | None = None) -> None:
        """Store as ``oid`` a copy of ``src`` (or of its ``size`` bytes from ``offset``: a chunk),
        an object of a store this process trusts (its cache, pushed to a folder remote): cloned
        or copied in the kernel, not hashed again."""
        with open(src, "rb", buffering=0) as fsrc:
            fd = fsrc.fileno()
            whole = size is None
            if size is None:
                size = os.fstat(fd).st_size
            with self._writing(self.path(oid), size) as temp:
                if not (whole and self._clone(fd, temp.file.fileno())):
                    os.lseek(fd, offset, os.SEEK_SET)
                    copy_bytes(fd, temp.file.fileno(), size)
                temp.oid = oid

    def add_stream(self, stream: BinaryIO, oid: Oid, *, source: str,
                   size: int | None = None) -> None:
        """Store bytes read from ``stream`` as ``oid``, hashing them on the way in; on a
        mismatch nothing is stored and CorruptObjectError names ``source``. ``size``, when
        known, goes into the message if the disk is full."""
        with self._writing(self.path(oid), size) as temp:
            stored, _ = hash_stream(stream, self.algorithm, sink=temp.file.write)
            if stored != oid:
                raise _corrupt(oid, stored, source)
            temp.oid = oid

    def add_download(self, download: Callable[[str], object], oid: Oid, *, source: str,
                     size: int | None = None) -> None:
        """Store as ``oid`` the file that ``download(path)`` creates at a new temp path (a
        backend's own download: one request, streamed to disk). Its bytes are hashed first;
        on a mismatch nothing is stored and CorruptObjectError names ``source``. ``size``,
        when known, goes into the message if the disk is full."""
        tmp = self._tmp_name()
        with disk_full(self.path(oid), size):
            if not os.path.isdir(os.path.dirname(tmp)):  # the first write to this store
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
            try:
                download(tmp)
                with open(tmp, "rb", buffering=0) as f:
                    stored, _ = hash_stream(f, self.algorithm)
                if stored != oid:
                    raise _corrupt(oid, stored, source)
                os.chmod(tmp, READ_ONLY)
                self._finalize(tmp, oid)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def add_bytes(self, data: bytes, oid: Oid | None = None, *, source: str = "") -> Oid:
        """Store ``data``; return its oid. With ``oid`` (what the bytes should be: a piece of a
        pack), bytes that hash otherwise are not stored and CorruptObjectError names ``source``."""
        stored = hash_bytes(data, self.algorithm)
        if oid is not None and stored != oid:
            raise _corrupt(oid, stored, source)
        oid = stored
        if self.exists(oid):
            return oid
        with self._writing(self.path(oid), len(data)) as temp:
            temp.file.write(data)
            temp.oid = oid
        return oid

    def add_pieces(self, oid: Oid, pieces: Iterable[bytes], *, source: str,
                   size: int | None = None) -> None:
        """Store as ``oid`` the concatenation of ``pieces`` (a file put back together from its
        chunks), hashed as it is written: nothing is stored unless the whole hashes to ``oid``."""
        with self._writing(self.path(oid), size) as temp:
            hasher = new_hasher(self.algorithm)
            for piece in pieces:
                hasher.update(piece)
                temp.file.write(piece)
            stored = Oid(hasher.hexdigest())
            if stored != oid:
                raise _corrupt(oid, stored, source)
            temp.oid = oid

    @contextlib.contextmanager
    def _writing(self, where: str, size: int | None) -> Iterator[_Temp]:
        """A new temp file for the block to write an object into and to name (``.oid``);
        then closed and renamed to that object, or deleted if the block failed. A write that
        runs out of room is a DiskFullError naming ``where`` and ``size``."""
        with disk_full(where, size):
            tmp, fd = self._new_tmp()
            try:
                with open(fd, "wb") as f:
                    temp = _Temp(f)
                    yield temp
                assert temp.oid is not None, "the block names what it wrote"
                self._finalize(tmp, temp.oid)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def open(self, oid: Oid) -> BinaryIO:
        try:
            return open(self.path(oid), "rb")
        except FileNotFoundError:
            raise self.missing_error(oid) from None

    def missing_error(self, oid: Oid) -> MissingObjectError:
        return MissingObjectError(
            f"object {oid} is not in the cache `{self.root}`",
            hint="fetch it from a remote, or re-add the data it belongs to",
        )

    def read_verified(self, oid: Oid) -> bytes:
        """The object's bytes, checked against its oid (for manifests and small objects)."""
        with self.open(oid) as f:
            data = f.read()
        if hash_bytes(data, self.algorithm) != oid:
            raise CorruptObjectError(
                f"object {oid} in `{self.root}` is corrupt",
                hint="run `dvlite fsck` to quarantine it, then re-add or fetch the data",
            )
        return data

    def verify(self, oid: Oid) -> bool:
        with self.open(oid) as f:
            return hash_stream(f, self.algorithm)[0] == oid

    def iter_oids(self) -> Iterator[Oid]:
        try:
            prefixes = os.listdir(self.root)
        except FileNotFoundError:
            return
        for prefix in sorted(prefixes):
            if len(prefix) != 2 or not _HEX.issuperset(prefix):
                continue
            for rest in sorted(os.listdir(os.path.join(self.root, prefix))):
                # only this store's hash: in a cache shared with a repo of the other hash,
                # fsck would call its objects corrupt and gc would count them unreferenced
                if is_oid(prefix + rest, self.algorithm):
                    yield Oid(prefix + rest)

    def delete(self, oid: Oid) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))

    def quarantine(self, oid: Oid) -> str:
        """Move a bad object out of the way (kept for inspection, never served)."""
        folder = os.path.join(self.root, "quarantine")
        os.makedirs(folder, exist_ok=True)
        dest = os.path.join(folder, f"{oid}.{uuid.uuid4().hex[:8]}")
        os.replace(self.path(oid), dest)
        return dest

    def _new_tmp(self) -> tuple[str, int]:
        """A new read-only temp file in ``<root>/tmp``, open for writing."""
        tmp = self._tmp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            return tmp, os.open(tmp, flags, READ_ONLY)
        except FileNotFoundError:  # the first write to this store
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            return tmp, os.open(tmp, flags, READ_ONLY)

    def _tmp_name(self) -> str:
        return os.path.join(self.root, "tmp", uuid.uuid4().hex)

    def _clone(self, src_fd: int, dst_fd: int) -> bool:
        """Reflink unless this filesystem already said it cannot (the copy then follows)."""
        if not self._reflink_works:
            return False
        try:
            clone_fd(src_fd, dst_fd)
        except OSError:
            self._reflink_works = False
            return False
        return True

    def _finalize(self, tmp: str, oid: Oid) -> None:
        """Rename a complete temp file to its final name: atomic, and harmless if the object
        exists already (same name, same bytes)."""
        final = self.path(oid)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # a new 2-hex folder
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)


def _corrupt(oid: Oid, stored: Oid, source: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"object {oid} from {source} is corrupt (its bytes hash to {stored}); it was not stored",
        hint="repair the remote's copy: push it again from a clone that has it",
    )
