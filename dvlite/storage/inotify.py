"""Linux's kernel interfaces that the file-system watcher reads: inotify (through ctypes,
so no new dependency) and the mount table."""

from __future__ import annotations

import ctypes
import os
import re
import select
import struct

# <sys/inotify.h>
IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_ISDIR = 0x1000000, 0x2000000, 0x40000000
WATCHED = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
           | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then the name, NUL-padded


class Inotify:
    """An inotify instance, non-blocking: each folder added raises events for itself and the
    names in it."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            _raise_errno("inotify_init1")
        self.fd: int = fd

    def add(self, path: str) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), WATCHED)
        if wd < 0:
            _raise_errno(path)
        return int(wd)

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)  # fails only for a watch already gone

    def read(self) -> list[tuple[int, int, str]]:
        """Every pending event, as (wd, mask, name)."""
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return events
            offset = 0
            while offset < len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                name = os.fsdecode(data[offset:offset + size].rstrip(b"\0"))
                offset += size
                events.append((wd, mask, name))


class MountTable:
    """Whether anything was mounted or unmounted since the last question: the kernel flags
    /proc/self/mountinfo for ``poll`` when the table changes."""

    def __init__(self) -> None:
        self._poll = select.poll()
        try:
            self._table = open("/proc/self/mountinfo", "rb")  # noqa: SIM115 (the watcher's life)
        except OSError:
            return
        self._table.read()
        self._poll.register(self._table, select.POLLPRI)

    def changed(self) -> bool:
        if not self._poll.poll(0):
            return False
        self._table.seek(0)
        self._table.read()
        return True


def _raise_errno(what: str) -> None:
    number = ctypes.get_errno()
    raise OSError(number, os.strerror(number), what)


# File systems whose files other machines (or a host) may change: inotify sees only the
# writes made through this kernel. FUSE ones (sshfs, rclone, ...) are "fuse.<name>".
_REMOTE = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs",
                     "lustre", "gpfs", "beegfs", "virtiofs", "fuse", "fuseblk"})


def is_remote(kind: str) -> bool:
    return kind in _REMOTE or kind.startswith("fuse.")


def mount_table() -> str:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            return table.read()
    except OSError:
        return ""


def file_system(path: str, mountinfo: str) -> str:
    """The type of the file system that holds ``path`` (absolute, no symlinks), from the text
    of /proc/self/mountinfo: its mount with the longest mount point above ``path`` (the
    last listed, of mounts on one point); "" if none is found."""
    best, kind = "", ""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split(" ")
        if len(parts) < 5 or not rest:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, rest.split(" ")[0]
    return kind


