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
from typing import TYPE_CHECKING, BinaryIO

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.fsutil import clone_fd
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, hash_bytes, hash_stream, is_oid

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

READ_ONLY = 0o444
_LIST_ABOVE = 512  # oids from which listing folders beats a stat per object
_HEX = frozenset("0123456789abcdef")


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
            tmp, fd = self._new_tmp()
            try:
                with open(fd, "wb") as fdst:
                    if oid is not None and self._clone(fsrc.fileno(), fdst.fileno()):
                        stored = oid
                    else:
                        stored, _ = hash_stream(fsrc, self.algorithm, sink=fdst.write)
                if oid is not None and stored != oid:
                    raise CorruptObjectError(
                        f"`{src}` changed while it was being stored",
                        hint="let whatever writes it finish, then run the command again",
                    )
                self._finalize(tmp, stored)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return stored

    def add_stream(self, stream: BinaryIO, oid: Oid, *, source: str) -> None:
        """Store bytes read from ``stream`` as ``oid``, hashing them on the way in; on a
        mismatch nothing is stored and CorruptObjectError names ``source``."""
        tmp, fd = self._new_tmp()
        try:
            with open(fd, "wb") as fdst:
                stored, _ = hash_stream(stream, self.algorithm, sink=fdst.write)
            if stored != oid:
                raise CorruptObjectError(
                    f"object {oid} from {source} is corrupt (its bytes hash to {stored}); "
                    "it was not stored",
                    hint="repair the remote's copy: push it again from a clone that has it",
                )
            self._finalize(tmp, oid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def add_bytes(self, data: bytes) -> Oid:
        oid = hash_bytes(data, self.algorithm)
        if self.exists(oid):
            return oid
        tmp, fd = self._new_tmp()
        try:
            with open(fd, "wb") as f:
                f.write(data)
            self._finalize(tmp, oid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return oid

    def open(self, oid: Oid) -> BinaryIO:
        try:
            return open(self.path(oid), "rb")
        except FileNotFoundError:
            raise MissingObjectError(
                f"object {oid} is not in the cache `{self.root}`",
                hint="fetch it from a remote, or re-add the data it belongs to",
            ) from None

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
                if is_oid(prefix + rest):
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
        tmp = os.path.join(self.root, "tmp", uuid.uuid4().hex)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            return tmp, os.open(tmp, flags, READ_ONLY)
        except FileNotFoundError:  # the first write to this store
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            return tmp, os.open(tmp, flags, READ_ONLY)

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
