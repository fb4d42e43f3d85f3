"""Objects on any fsspec filesystem (a remote), in the cache's 2/30 layout.

Errors from the backend are turned into dvlite errors by the ``translate``
function the store is given (see ``remote.py``, the one place that knows the
backends). Uploads are never visible under their final name before they are
complete: object stores (S3, GCS, Azure) only show an object once its PUT has
finished, and every other filesystem gets a temp name and a rename.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from typing import TYPE_CHECKING, BinaryIO

from dvlite.errors import DvliteError, MissingObjectError, RemoteError
from dvlite.fsutil import disk_full, run_parallel
from dvlite.storage.hashing import Oid, is_oid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from fsspec import AbstractFileSystem

_EXISTS_UP_TO = 256  # a stat each costs less than listing folders below this many oids
_PAGE = 1000  # keys an object store returns per listing request
RUNS = "runs"  # the run cache's index, below the root


class RemoteStore:
    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        *,
        name: str,
        translate: Callable[[BaseException], DvliteError],
        atomic_put: bool,
        read_only: bool = False,
        jobs: int = 4,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.name = name  # "remote `storage` (s3://bucket/dvlite)", for messages
        self.translate = translate
        self.atomic_put = atomic_put
        self.read_only = read_only
        self.jobs = jobs  # parallel transfers that suit this backend
        self._probe = probe or self._info_exists  # path → is a file there? (errors raise)
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"RemoteStore({self.name})"

    def path(self, oid: Oid) -> str:
        return f"{self.root}/{oid[:2]}/{oid[2:]}"

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Backend exceptions raised inside become dvlite errors."""
        try:
            yield
        except DvliteError:
            raise
        except Exception as exc:
            error = self.translate(exc)
            raise error from (exc if error.show_cause else None)  # None: it shows a credential

    def exists(self, oid: Oid) -> bool:
        with self.errors():
            return self._probe(self.path(oid))

    def _info_exists(self, path: str) -> bool:
        # not fs.exists: many backends answer False to any error, so an unreachable remote or
        # refused credentials would look like a remote that lacks every object
        try:
            self.fs.info(path)
        except FileNotFoundError:
            return False
        return True

    def missing(self, oids: Iterable[Oid], *, jobs: int) -> set[Oid]:
        """The oids not stored here, asking whichever way takes fewer requests: one existence
        check per object, or listing the 2-hex folders they fall in."""
        wanted = sorted(set(oids))
        prefixes = sorted({oid[:2] for oid in wanted})
        sample = self._list(prefixes[0]) if len(wanted) > _EXISTS_UP_TO else set()
        if len(wanted) <= _EXISTS_UP_TO or len(prefixes) * max(1, len(sample) // _PAGE) >= len(
            wanted
        ):
            found = run_parallel(self.exists, wanted, jobs)
            return {oid for oid, there in zip(wanted, found, strict=True) if not there}
        # the sample folder (a sample of how full they are) is listed already
        listed = run_parallel(self._list, prefixes[1:], jobs)
        return set(wanted) - sample - {oid for names in listed for oid in names}

    def _list(self, prefix: str) -> set[str]:
        folder = f"{self.root}/{prefix}"
        with self.errors():
            self.fs.invalidate_cache(folder)
            try:
                names = self.fs.ls(folder, detail=False)
            except FileNotFoundError:
                return set()
        return {prefix + posixpath.basename(n.rstrip("/")) for n in names}

    def iter_oids(self) -> Iterator[Oid]:
        return iter(self._oids_below(self.root))

    def _oids_below(self, folder: str) -> list[Oid]:
        """The names of the ``<folder>/<2 hex>/<rest>`` files that make an oid; files deeper
        down (the run cache's index in ``runs/``) or elsewhere (``tmp/``) are not objects."""
        with self.errors():
            self.fs.invalidate_cache(folder)
            try:
                paths = self.fs.find(folder)
            except FileNotFoundError:
                return []
        # backends differ on a leading "/" (webdav lists "a/b" below "/a")
        prefix = self.fs._strip_protocol(folder).strip("/") + "/"
        found = []
        for path in sorted(paths):
            rel = self.fs._strip_protocol(path).strip("/").removeprefix(prefix)
            head, _, rest = rel.partition("/")
            if len(head) == 2 and "/" not in rest and is_oid(head + rest):
                found.append(Oid(head + rest))
        return found

    def put_file(self, local_path: str, oid: Oid) -> None:
        """Upload a verified local object; visible under its name only once complete."""
        # free space can be measured (for a full-disk message) only on a folder remote
        local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple)
                           else (self.fs.protocol,))
        self._put(self.path(oid), lambda dest: self.fs.put_file(local_path, dest), replace=False,
                  size=os.path.getsize(local_path) if local else None)

    # The run cache's index: small files at runs/<key 2 hex>/<rest>, beside the objects.

    def run_path(self, key: Oid) -> str:
        return f"{self.root}/{RUNS}/{key[:2]}/{key[2:]}"

    def run_keys(self) -> list[Oid]:
        return self._oids_below(f"{self.root}/{RUNS}")

    def read_run(self, key: Oid, *, limit: int) -> bytes | None:
        """The first ``limit`` bytes of the index file of ``key``; None when there is none."""
        path = self.run_path(key)
        with self.errors():
            try:
                with self.fs.open(path, "rb") as f:
                    data: bytes = f.read(limit)
                    return data
            except FileNotFoundError:
                if self._probe(path):  # some backends say "not found" for any failure
                    raise
                return None

    def write_run(self, key: Oid, data: bytes) -> None:
        """Replace the index file of ``key``: readers see the old or the new one, never a
        part (or, on backends that cannot rename onto a file, briefly none: no entries)."""
        self._put(self.run_path(key), lambda dest: self.fs.pipe_file(dest, data), replace=True)

    def _put(self, final: str, write: Callable[[str], None], *, replace: bool,
             size: int | None = None) -> None:
        """``write(path)`` the file at ``final``, under a temp name first unless the backend
        shows a file only once it is complete. Without ``replace``, a file already at
        ``final`` is kept (objects: same name, same bytes). A full disk (a folder remote) is a
        DiskFullError naming ``final`` and its ``size``."""
        if self.read_only:
            raise RemoteError(f"{self.name} is read-only", hint="push to another remote")
        with self.errors(), disk_full(final, size):
            if self.atomic_put:
                write(final)
                return
            tmp = posixpath.join(self.root, "tmp", uuid.uuid4().hex)
            self._makedirs(posixpath.dirname(tmp))
            self._makedirs(posixpath.dirname(final))
            try:
                write(tmp)
                try:
                    self.fs.mv(tmp, final)
                except Exception:  # webdav4's "already exists" is no OSError
                    if not self.fs.exists(final):
                        raise
                    if replace:  # sftp and some webdav servers rename only onto a free name
                        self.fs.rm_file(final)
                        self.fs.mv(tmp, final)
                    else:  # another push got there first
                        self.fs.rm_file(tmp)
            except BaseException:
                with contextlib.suppress(Exception):  # a failed upload leaves no temp file
                    self.fs.rm_file(tmp)
                raise

    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def open(self, oid: Oid) -> BinaryIO:
        """A stream of the object's bytes whose read errors are dvlite errors too."""
        with self.errors():
            try:
                return _Reader(self.fs.open(self.path(oid), "rb"), self)  # type: ignore[return-value]
            except FileNotFoundError:
                if self._probe(self.path(oid)):  # some backends say "not found" for any failure
                    raise
                raise MissingObjectError(
                    f"object {oid} is not on {self.name}",
                    hint="push it from a clone that has it, or check the remote's URL",
                ) from None

    def delete(self, oid: Oid) -> None:
        if self.read_only:
            raise RemoteError(f"{self.name} is read-only")
        with self.errors(), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(oid))


class _Reader:
    """A remote file whose failures while reading are translated like every other call."""

    def __init__(self, f: BinaryIO, store: RemoteStore) -> None:
        self._f = f
        self._store = store

    def read(self, size: int = -1) -> bytes:
        with self._store.errors():
            return self._f.read(size)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a half-read remote file must not mask
            self._f.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
