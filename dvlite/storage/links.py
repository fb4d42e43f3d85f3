"""Putting cached objects into the workspace: reflink, hardlink, symlink or copy.

Strategies are tried in the configured order for each file, falling through
when the filesystem says a kind of link is not possible there. Reflinks and
copies are private to the workspace and writable; hardlinks and symlinks
share the cache's read-only file, so an edit cannot corrupt the cache.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from typing import TYPE_CHECKING

from dvlite.fsutil import disk_full, reflink

if TYPE_CHECKING:
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore

STRATEGIES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_STRATEGIES = ("reflink", "copy")
_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.EMLINK,
     errno.ENOTTY, errno.ENOSYS}
)


TEMP_PREFIX = "materialize-"  # files being written in a ``tmp_dir``; a crash may leave some


def materialize(
    odb: ObjectStore,
    oid: Oid,
    dest: str,
    strategies: tuple[str, ...],
    *,
    executable: bool = False,
    tmp_dir: str | None = None,
) -> str:
    """Make ``dest`` hold object ``oid``, replacing what is there; return the strategy used.

    The file is made under a temp name and renamed to ``dest`` once complete: in ``tmp_dir``
    when that is on the same filesystem, so that a command killed meanwhile leaves nothing in
    the user's folders (a half-written file there would be new data to the next checkout,
    which would refuse to delete it), else beside ``dest``.
    """
    src = os.path.abspath(odb.path(oid))  # a symlink must not depend on the cwd
    if not os.path.exists(src):
        odb.open(oid)  # raises MissingObjectError with its hint
    if executable:
        # a link shares the cache object's read-only, non-executable mode
        strategies = tuple(s for s in strategies if s in ("reflink", "copy")) or ("copy",)
    with disk_full(dest, os.path.getsize(src)):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        return _make(src, dest, strategies, _temp_name(dest, tmp_dir), executable)


def _make(src: str, dest: str, strategies: tuple[str, ...], tmp: str, executable: bool) -> str:
    """Try each strategy until one works; the result is renamed from ``tmp`` to ``dest``."""
    last_error: OSError | None = None
    for strategy in strategies:
        try:
            _link(strategy, src, tmp, executable)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if exc.errno not in _UNSUPPORTED:
                raise
            last_error = exc
            continue
        _replace(tmp, dest)
        if strategy == "hardlink":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # rename(2) does nothing when both names are one file already
        return strategy
    assert last_error is not None, "cache.link is validated to be non-empty"
    raise last_error


def _temp_name(dest: str, tmp_dir: str | None) -> str:
    folder = os.path.dirname(dest)
    if tmp_dir is not None and os.path.isdir(tmp_dir) and (
        os.stat(tmp_dir).st_dev == os.stat(folder).st_dev  # a rename cannot cross filesystems
    ):
        return os.path.join(tmp_dir, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    return os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex[:8]}")


def _link(strategy: str, src: str, tmp: str, executable: bool) -> None:
    if strategy == "hardlink":
        os.link(src, tmp)
    elif strategy == "symlink":
        os.symlink(src, tmp)
    else:
        if strategy == "reflink":
            reflink(src, tmp)
        else:
            shutil.copyfile(src, tmp)  # copy_file_range/sendfile under the hood
        os.chmod(tmp, 0o755 if executable else 0o644)


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
