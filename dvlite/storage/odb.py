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
from dvlite.fsutil import reflink
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, hash_bytes, hash_stream, is_oid

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

READ_ONLY = 0o444
_HEX = frozenset("0123456789abcdef")


class ObjectStore:
    """A store on the local disk (the cache, a folder remote)."""

    def __init__(self, root: str, *, algorithm: str = DEFAULT_ALGORITHM) -> None:
        self.root = root
        self.algorithm = algorithm
        self._made: set[str] = set()  # folders known to exist, to skip makedirs
        self._reflink_works = True

    def __repr__(self) -> str:
        return f"ObjectStore({self.root!r})"

    def hash_of(self, data: bytes) -> Oid:
        return hash_bytes(data, self.algorithm)

    def path(self, oid: Oid) -> str:
        return os.path.join(self.root, oid[:2], oid[2:])

    def exists(self, oid: Oid) -> bool:
        return os.path.exists(self.path(oid))

    def missing(self, oids: Iterable[Oid]) -> set[Oid]:
        return {oid for oid in oids if not self.exists(oid)}

    def add_file(self, src: str, oid: Oid | None = None) -> Oid:
        """Store a copy of the local file ``src``; return its oid.

        With ``oid`` known (from the stat index) an existing object costs one
        stat, and a new one is cloned where the filesystem allows it and
        verified otherwise. Without it the bytes are hashed as they are copied,
        so each byte is read once.
        """
        if oid is not None and self.exists(oid):
            return oid
        tmp = self._tmp_path()
        try:
            if oid is not None and self._clone(src, tmp):
                stored = oid
            else:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
                with open(src, "rb", buffering=0) as fsrc, open(fd, "wb") as fdst:
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

    def add_bytes(self, data: bytes) -> Oid:
        oid = hash_bytes(data, self.algorithm)
        if self.exists(oid):
            return oid
        tmp = self._tmp_path()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
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

    def _tmp_path(self) -> str:
        folder = os.path.join(self.root, "tmp")
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        return os.path.join(folder, uuid.uuid4().hex)

    def _clone(self, src: str, tmp: str) -> bool:
        """Reflink ``src`` to ``tmp`` unless this filesystem already said it cannot."""
        if not self._reflink_works:
            return False
        try:
            reflink(src, tmp)
        except OSError:
            self._reflink_works = False
            return False
        os.chmod(tmp, READ_ONLY)
        return True

    def _finalize(self, tmp: str, oid: Oid) -> None:
        """Move a complete, read-only temp file to its final name.

        A rename is atomic; if the object already exists the same bytes replace it.
        """
        final = self.path(oid)
        folder = os.path.dirname(final)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        os.replace(tmp, final)
