"""Objects on any fsspec filesystem (a remote), in the cache's 2/30 layout.

Errors from the backend are turned into dvlite errors by the ``translate``
function the store is given (see ``remote.py``, the one place that knows the
backends). Uploads are never visible under their final name before they are
complete: object stores (S3, GCS, Azure) only show an object once its PUT has
finished, and every other filesystem gets a temp name and a rename.

A folder remote is a store on the local disk like the cache: its objects are
moved with plain system calls, not through fsspec, which costs more than
copying a small file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from dvlite.errors import DvliteError, MissingObjectError, RemoteError, RemoteUnavailableError
from dvlite.fsutil import disk_full
from dvlite.storage import remote_listing
from dvlite.storage.hashing import CHUNK_SIZE, Oid
from dvlite.storage.odb import ObjectStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from fsspec import AbstractFileSystem

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # a full disk or a size limit, never the network
_SLOWEST_UPLOAD = 64 << 10  # bytes a second: an upload slower than this is stalled


@dataclass(frozen=True)
class Traits:
    """What one kind of storage does well (``remote.py``, which knows the backends, says)."""

    # flat keys (S3, GCS, Azure): an upload shows only once complete, and one paged listing of
    # the root names every object
    object_store: bool = False
    read_only: bool = False
    # fs.get_file streams an object to disk in one request; fsspec's generic one (and open())
    # asks for the size or the kind of the path first
    native_get: bool = False
    get_options: Mapping[str, Any] = field(default_factory=dict)  # for fs.get_file
    put_options: Callable[[int], Mapping[str, Any]] | None = None  # size → fs.put_file's
    # fs.cat_file reads only the range asked for (sshfs's reads the whole file, and says
    # nothing: a seek in an open file reads just the range there)
    ranged_cat: bool = True


class RemoteStore:
    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        *,
        name: str,
        translate: Callable[[BaseException], DvliteError],
        traits: Traits = Traits(),
        jobs: int = 4,
        probe: Callable[[str], bool] | None = None,
        timeout: float | None = None,
        reopen: Callable[[], AbstractFileSystem] | None = None,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.name = name  # "remote `storage` (s3://bucket/dvlite)", for messages
        self.translate = translate
        self.traits = traits
        self.read_only = traits.read_only
        self.jobs = jobs  # parallel transfers that suit this backend
        self._probe = probe or self._info_exists  # path → is a file there? (errors raise)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        # a folder: the same layout as the cache, on a disk this process writes itself
        self._disk = ObjectStore(self.root) if "file" in protocols else None
        self._made: set[str] = set()
        self.timeout = timeout  # seconds the backend waits for an answer (None: its own)
        self._reopen = reopen  # a new connection, for backends whose dropped one stays dead
        self._reopening = threading.Lock()

    @property
    def local(self) -> bool:
        """A folder on this machine: reading an object costs no request."""
        return self._disk is not None

    def __repr__(self) -> str:
        return f"RemoteStore({self.name})"

    def path(self, oid: Oid) -> str:
        return f"{self.root}/{oid[:2]}/{oid[2:]}"

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Backend exceptions raised inside become dvlite errors."""
        fs = self.fs
        try:
            yield
        except DvliteError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in _FULL:
                raise  # a disk filled up (ours, or a folder remote's): disk_full() names it
            error = self.translate(exc)
            if isinstance(error, RemoteUnavailableError) and self._reopen is not None:
                self._reconnect(fs)
            raise error from (exc if error.show_cause else None)  # None: it shows a credential

    def _reconnect(self, broken: AbstractFileSystem) -> None:
        """Replace a connection that failed, once however many transfers saw it fail."""
        with self._reopening:
            if self.fs is broken:
                with contextlib.suppress(Exception):  # still down: the next attempt says so
                    self.fs = self._reopen()  # type: ignore[misc]

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
        """The oids not stored here, asked with as few requests as the remote allows."""
        if self._disk is not None:
            with self.errors():
                return self._disk.missing(oids)
        return remote_listing.missing(self, oids, jobs=jobs)

    def iter_oids(self) -> Iterator[Oid]:
        return iter(remote_listing.oids_below(self, self.root))

    def size(self, oid: Oid) -> int:
        """The object's size in bytes; 0 when it is not there."""
        with self.errors():
            try:
                return int(self.fs.size(self.path(oid)))
            except FileNotFoundError:
                return 0

    def put_file(self, local_path: str, oid: Oid) -> None:
        """Upload a local object (bytes this process trusts: its cache's); visible under its
        name only once complete."""
        self._check_writable()
        if self._disk is not None:  # a folder: copied in the kernel, then renamed
            with self.errors():
                self._disk.add_copy(local_path, oid)
            return
        self.put_file_at(local_path, self.path(oid))

    def put_file_at(self, local_path: str, final: str) -> None:
        """Upload a local file to the path ``final`` below the root (an object, a pack);
        visible there only once complete. A file already there is kept."""
        size = os.path.getsize(local_path)
        options = self.traits.put_options(size) if self.traits.put_options else {}
        self._put(final, lambda dest: self._upload("put_file", size, local_path, dest, **options),
                  replace=False)

    def put_range(self, local_path: str, offset: int, size: int, oid: Oid) -> None:
        """Upload ``size`` bytes of a local file from ``offset`` as the object ``oid`` (a chunk
        of a cached file: bytes this process trusts)."""
        self._check_writable()
        if self._disk is not None:
            with self.errors():
                self._disk.add_copy(local_path, oid, offset=offset, size=size)
            return
        with open(local_path, "rb", buffering=0) as f:
            data = os.pread(f.fileno(), size, offset)
        self.put_bytes(self.path(oid), data)

    def put_bytes(self, final: str, data: bytes, *, replace: bool = False) -> None:
        """Write a small file at the path ``final`` below the root (a recipe, a pack index);
        without ``replace`` a file already there is kept."""
        self._put(final, lambda dest: self._upload("pipe_file", len(data), dest, data),
                  replace=replace)

    def _upload(self, method: str, size: int, *args: Any, **options: Any) -> None:
        """``fs.<method>(*args, **options)`` (put_file or pipe_file) sending ``size`` bytes."""
        if self.timeout is None or not getattr(self.fs, "async_impl", False):
            getattr(self.fs, method)(*args, **options)
            return
        # aiohttp and asyncssh bound the wait for an answer, not for a server that stopped
        # taking the body: the whole upload gets a deadline, at a rate no real link is below
        from fsspec.asyn import sync  # noqa: PLC0415  (fsspec loads only with a remote)

        sync(self.fs.loop, getattr(self.fs, "_" + method), *args,
             timeout=self.timeout + size / _SLOWEST_UPLOAD, **options)

    def get_file(self, oid: Oid, local_path: str) -> None:
        """Download the object into the new local file ``local_path``, as the backend does it
        best; the bytes are not checked here (the cache hashes what it receives)."""
        path = self.path(oid)
        with self.errors():
            try:
                if self.traits.native_get:
                    self.fs.get_file(path, local_path, **self.traits.get_options)
                else:
                    with self.fs.open(path, "rb") as src, open(local_path, "xb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK_SIZE)
            except FileNotFoundError:
                raise self._not_here(oid) from None

    # Files beside the objects, named by a path below the root: the run cache's index
    # (runs/<2 hex>/<rest>), recipes of chunked files and packs of small objects.

    def below(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def keyed(self, folder: str, key: Oid) -> str:
        """``<root>/<folder>/<2 hex>/<rest>``: the file of ``key`` in a folder of such files."""
        return self.below(folder, key[:2], key[2:])

    def keys_in(self, folder: str) -> list[Oid]:
        return remote_listing.oids_below(self, self.below(folder))

    def listing(self, folder: str) -> dict[str, float | None]:
        """The files in ``folder``: name → modification time (None when not known)."""
        return remote_listing.files_in(self, folder)

    def read(self, path: str, start: int | None = None, end: int | None = None) -> bytes | None:
        """The bytes of the file ``path`` (from ``start`` up to ``end``, when given); None when
        there is no such file."""
        with self.errors():
            try:
                if self._disk is not None:
                    with open(path, "rb", buffering=0) as f:
                        first = start or 0
                        size = end - first if end is not None else os.fstat(f.fileno()).st_size
                        return os.pread(f.fileno(), size, first)
                if start is not None and not self.traits.ranged_cat:
                    with self.fs.open(path, "rb") as f:
                        f.seek(start)
                        ranged: bytes = f.read(-1 if end is None else end - start)
                        return ranged
                # a whole file: the way a download asks (s3fs would ask its size first)
                whole = self.traits.get_options if start is None and end is None else {}
                data: bytes = self.fs.cat_file(path, start=start, end=end, **whole)
                return data
            except FileNotFoundError:
                if self._probe(path):  # some backends say "not found" for any failure
                    raise
                return None
            except OSError as exc:
                # a range starting past the end (s3fs turns S3's 416 InvalidRange into EINVAL):
                # the file is shorter than asked, as a local read would say with fewer bytes
                if start is not None and exc.errno == errno.EINVAL:
                    return b""
                raise

    def delete_at(self, path: str) -> None:
        if self.read_only:
            raise RemoteError(f"{self.name} is read-only")
        with self.errors(), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def _put(self, final: str, write: Callable[[str], None], *, replace: bool) -> None:
        """``write(path)`` the file at ``final``, under a temp name first unless the backend
        shows a file only once it is complete. Without ``replace``, a file already at
        ``final`` is kept (objects: same name, same bytes). A full disk (a folder remote) is a
        DiskFullError naming ``final``."""
        self._check_writable()
        with self.errors(), disk_full(final):
            if self.traits.object_store:
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

    def _check_writable(self) -> None:
        if self.read_only:
            raise RemoteError(f"{self.name} is read-only", hint="push to another remote")

    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def open(self, oid: Oid) -> BinaryIO:
        """A stream of the object's bytes whose read errors are dvlite errors too."""
        with self.errors():
            try:
                if self._disk is not None:
                    return open(self.path(oid), "rb")
                return _Reader(self.fs.open(self.path(oid), "rb"), self)  # type: ignore[return-value]
            except FileNotFoundError:
                raise self._not_here(oid) from None

    def _not_here(self, oid: Oid) -> Exception:
        """What a "not found" from the backend means: the object is missing, or (as some
        backends say for any failure) it was another failure, which a probe tells."""
        if self._probe(self.path(oid)):  # it is there after all: the answer was a fault
            return RemoteUnavailableError(
                f"{self.name} answered that object {oid} is missing, then that it is there",
                hint="run the command again")
        return MissingObjectError(
            f"object {oid} is not on {self.name}",
            hint="push it from a clone that has it, or check the remote's URL",
        )

    def delete(self, oid: Oid) -> None:
        self.delete_at(self.path(oid))


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
