"""Taking workspace files into the cache by hard link, for ``cache.link`` = hardlink or symlink.

When the workspace is to end up linked to the cache anyway, copying each file
into the cache first is wasted work: the file itself can become the object. It
is opened, its inode made read-only (as every object is), hashed through that
descriptor, and only then given its object name by a hard link made through
``/proc/self/fd``, so the name goes to the very inode that was hashed even if
its path changed meanwhile, and the bytes named by an oid are the bytes that
were hashed after the last ordinary writer was locked out. A crash leaves no
object or a whole one. Storing a file then costs a hash and a link.

Files are copied as before where a link would not keep the cache safe or
cannot be made: executable files (the object's read-only mode would take
their x bit away), files with other hard links already (whoever holds those
names could edit the object), anything that is not a regular file, and
filesystems that refuse the link (the cache on another device, no hard
links). What root or a writer that had the file open before can still do to
a linked file is the caveat of every hardlink strategy, in checkout as here.
"""

from __future__ import annotations

import errno
import os
import stat

from dvlite.errors import CorruptObjectError
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, hash_stream
from dvlite.storage.odb import READ_ONLY, ObjectStore

_FD_LINKS = "/proc/self/fd"
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP,
                      errno.ENOSYS, errno.EACCES})


class LinkingStore(ObjectStore):
    """The same store, taking in local files by hard-linking them where it is safe."""

    def __init__(self, root: str, *, algorithm: str = DEFAULT_ALGORITHM) -> None:
        super().__init__(root, algorithm=algorithm)
        self.linked: set[str] = set()  # normalised paths of the files that became objects
        self._fd_links = os.path.isdir(_FD_LINKS)  # how an open file is given a name

    def add_file(self, src: str, oid: Oid | None = None) -> Oid:
        if oid is not None and self.exists(oid):
            return oid
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            return super().add_file(src, oid)  # a symlink: stored as the bytes it points to
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111 or not self._fd_links:
                return super().add_file(src, oid)
            if st.st_nlink > 1:  # maybe linked to its object already: read it once to know
                known = oid or _hash_fd(fd, self.algorithm)
                return known if self.exists(known) else super().add_file(src, known)
            return self._adopt(fd, stat.S_IMODE(st.st_mode), src, oid)
        finally:
            os.close(fd)

    def _adopt(self, fd: int, mode: int, src: str, oid: Oid | None) -> Oid:
        """Make the open file ``fd`` (at ``src``, of ``mode``) the object it hashes to."""
        linked = False
        os.fchmod(fd, READ_ONLY)  # before hashing: later writes are refused
        try:
            stored = _hash_fd(fd, self.algorithm)
            if oid is not None and stored != oid:
                raise CorruptObjectError(
                    f"`{src}` changed while it was being stored",
                    hint="let whatever writes it finish, then run the command again",
                )
            linked = self._link_fd(fd, stored)
        finally:
            if not linked:
                os.fchmod(fd, mode)  # not an object: the user's file as it was
        if linked:
            self.linked.add(os.path.normpath(src))
        elif not self.exists(stored):
            return super().add_file(src, stored)  # no link possible here: a verified copy
        return stored

    def _link_fd(self, fd: int, oid: Oid) -> bool:
        """Give the file open as ``fd`` the object name of ``oid``: the inode that was
        hashed, whatever happened to its path since (the /proc link is followed; the dir fd
        only makes os.link use linkat). False if the object exists or no link can be made."""
        final = self.path(oid)
        name = f"{_FD_LINKS}/{fd}"
        try:
            try:
                os.link(name, final, src_dir_fd=fd)
            except FileNotFoundError:  # a new 2-hex folder
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.link(name, final, src_dir_fd=fd)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in _NO_LINK:
                return False
            raise
        return True


def _hash_fd(fd: int, algorithm: str) -> Oid:
    with open(fd, "rb", buffering=0, closefd=False) as f:
        return hash_stream(f, algorithm)[0]
