"""Putting cached objects into the workspace: reflink, hardlink, symlink or copy.

Strategies are tried in the configured order for each file, falling through
when the filesystem says a kind of link is not possible there. Reflinks and
copies are private to the workspace and writable; hardlinks and symlinks
share the cache's read-only file, so an edit cannot corrupt the cache.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.fsutil import clone_fd, disk_full

if TYPE_CHECKING:
    from collections.abc import Callable

    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore

STRATEGIES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_STRATEGIES = ("reflink", "copy")
_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.EMLINK,
     errno.ENOTTY, errno.ENOSYS}
)


TEMP_PREFIX = "materialize-"  # files being written in a ``tmp_dir``; a crash may leave some
_PRIVATE = ("reflink", "copy")  # what an executable file may use
_COPY_RANGE_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}
)
_MAX_COPY = 1 << 30  # bytes asked of one copy_file_range call
_FD_LINKS = "/proc/self/fd"
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL})


def materialize(
    odb: ObjectStore,
    oid: Oid,
    dest: str,
    strategies: tuple[str, ...],
    *,
    executable: bool = False,
    tmp_dir: str | None = None,
) -> str:
    """Make ``dest`` hold object ``oid``, replacing what is there; return the strategy used."""
    return Placer(odb, strategies, tmp_dir=tmp_dir).place(oid, dest, executable=executable)[0]


class Placer:
    """Puts objects of one store into workspace files, for one command.

    A file that is not there yet is created under its own name in one step, complete: a
    link, or a copy written to an unnamed file (``O_TMPFILE``) that is given its name once
    full. One that is there is replaced by a rename from a temp name: in ``tmp_dir`` when
    that is on the destination's filesystem, else beside the destination. Either way a
    command killed meanwhile leaves no half-written file under a tracked name, nor any
    file in the user's folders (one there would be new data to the next checkout, which
    would refuse to delete it). What it learns on the way (folders made, where temp files
    may go, that reflinks or unnamed files fail) is kept, so that a new file costs a few
    system calls. Safe to share between threads.
    """

    def __init__(
        self, odb: ObjectStore, strategies: tuple[str, ...], *, tmp_dir: str | None = None
    ) -> None:
        self.odb = odb
        self.strategies = strategies
        self._tmp_dir = tmp_dir if tmp_dir is not None and os.path.isdir(tmp_dir) else None
        self._tmp_dev = os.stat(self._tmp_dir).st_dev if self._tmp_dir is not None else None
        self._temp_folders: dict[str, str | None] = {}  # folder -> tmp_dir, or None: beside
        self._token = uuid.uuid4().hex
        self._count = itertools.count()
        self._no_reflink: OSError | None = None  # why the first reflink failed
        self._unnamed = os.path.isdir(_FD_LINKS)  # until the filesystem refuses O_TMPFILE

    def place(
        self, oid: Oid, dest: str, *, executable: bool = False
    ) -> tuple[str, os.stat_result]:
        """Make ``dest`` hold object ``oid``; return the strategy used and the stat of the
        file now there (of the object itself, for a symlink)."""
        src = os.path.abspath(self.odb.path(oid))  # a symlink must not depend on the cwd
        try:
            src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise self.odb.missing_error(oid) from None
        try:
            src_st = os.fstat(src_fd)
            # a link shares the cache object's read-only, non-executable mode
            strategies = (
                tuple(s for s in self.strategies if s in _PRIVATE) or ("copy",)
                if executable else self.strategies
            )
            with disk_full(dest, src_st.st_size):
                return self._make(_Source(src, src_fd, src_st), dest, strategies, executable)
        finally:
            os.close(src_fd)

    def _make(
        self, src: _Source, dest: str, strategies: tuple[str, ...], executable: bool
    ) -> tuple[str, os.stat_result]:
        """Try each strategy until one works."""
        last_error: OSError | None = None
        for strategy in strategies:
            if strategy == "reflink" and self._no_reflink is not None:
                last_error = self._no_reflink
                continue
            try:
                if strategy in ("hardlink", "symlink"):
                    make = os.link if strategy == "hardlink" else os.symlink
                    self._put(functools.partial(make, src.path), dest)
                    return strategy, src.st
                return strategy, self._write(strategy, src, dest, executable)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                if strategy == "reflink":
                    self._no_reflink = exc
                last_error = exc
        assert last_error is not None, "cache.link is validated to be non-empty"
        raise last_error

    def _write(self, strategy: str, src: _Source, dest: str, executable: bool) -> os.stat_result:
        """A private copy (or clone) of ``src`` at ``dest``."""
        mode = 0o755 if executable else 0o644
        fd, tmp = self._new_file(dest, mode)
        try:
            if strategy == "reflink":
                clone_fd(src.fd, fd)
            else:
                copy_bytes(src.fd, fd, src.st.st_size)
            os.fchmod(fd, mode)  # the mode given to open is filtered by the umask
            made = os.fstat(fd)
            if tmp is None:
                # an unnamed file gets a name through its /proc link (linkat follows it);
                # the dir fd only makes os.link call linkat: the path is absolute
                self._put(functools.partial(os.link, f"{_FD_LINKS}/{fd}", src_dir_fd=fd), dest)
            else:
                _replace(tmp, dest)
                tmp = None
            return made
        finally:
            os.close(fd)
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _new_file(self, dest: str, mode: int) -> tuple[int, str | None]:
        """An empty file open for writing: unnamed in the folder of ``dest`` where the
        filesystem allows it (``None``), else under a temp name."""
        folder = self._folder(dest)
        if self._unnamed:
            try:
                return os.open(folder, os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, mode), None
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
                self._unnamed = False
        tmp = self._temp_name(dest)
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), tmp

    def _put(self, make: Callable[[str], None], dest: str) -> None:
        """Create ``dest`` with ``make(name)``; if something is there, make a temp name and
        rename it over."""
        self._folder(dest)
        try:
            make(dest)
        except FileExistsError:
            tmp = self._temp_name(dest)
            make(tmp)
            try:
                _replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)  # rename(2) does nothing when both names are one file

    def _folder(self, dest: str) -> str:
        """The folder of ``dest``, made if need be."""
        folder = os.path.dirname(dest)
        if folder not in self._temp_folders:
            os.makedirs(folder, exist_ok=True)
            same_fs = self._tmp_dir is not None and os.stat(folder).st_dev == self._tmp_dev
            self._temp_folders[folder] = self._tmp_dir if same_fs else None
        return folder

    def _temp_name(self, dest: str) -> str:
        folder = os.path.dirname(dest)
        temp_folder = self._temp_folders[folder]
        if temp_folder is None:
            return os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex[:8]}")
        return os.path.join(temp_folder, f"{TEMP_PREFIX}{self._token}-{next(self._count)}")


@dataclass(frozen=True)
class _Source:
    """An open object: its absolute path, descriptor and stat."""

    path: str
    fd: int
    st: os.stat_result


def copy_bytes(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy ``size`` bytes from the current offset of ``src_fd`` to ``dst_fd`` in the kernel:
    copy_file_range, or sendfile where the filesystems cannot."""
    left = size
    try:
        while left > 0:
            done = os.copy_file_range(src_fd, dst_fd, min(left, _MAX_COPY))
            if done == 0:
                return  # the source is shorter than it said
            left -= done
    except OSError as exc:
        if exc.errno not in _COPY_RANGE_UNSUPPORTED:
            raise
    while left > 0:  # the offsets moved by what was copied
        done = os.sendfile(dst_fd, src_fd, None, min(left, _MAX_COPY))
        if done == 0:
            return
        left -= done


def _replace(tmp: str, dest: str) -> None:
    try:
        os.replace(tmp, dest)
    except IsADirectoryError:  # a file replaces a folder of the same name (rare: no stat first)
        shutil.rmtree(dest)
        os.replace(tmp, dest)


def is_linked(path: str) -> bool:
    """True for workspace files that share their bytes with the cache."""
    st = os.lstat(path)
    return stat.S_ISLNK(st.st_mode) or st.st_nlink > 1 or not st.st_mode & stat.S_IWUSR


def unprotect(path: str) -> bool:
    """Turn a linked file into a private, writable copy; False if it already was one."""
    if not is_linked(path):
        return False
    st = os.stat(path)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.unprotect"
    try:
        shutil.copyfile(path, tmp)
        os.chmod(tmp, (st.st_mode | stat.S_IWUSR) & 0o777)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True
