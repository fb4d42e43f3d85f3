"""Asking the file-system watcher what changed, instead of walking a tracked folder.

The watcher (``storage/fsmonitor_daemon.py``) hands out a token with each answer; a scan
saves it with the tree it walked (``StatIndex.save``). The next scan sends that token and
gets back the paths changed since it. When there are none, the saved tree is what a walk
would find; otherwise the walk's records are the saved tree's with those paths stat'ed
again (a folder among them walked). When the watcher cannot say ("unknown") or does not
answer, the scan walks, as it does without one. Only reports (``status``, ``diff``) ask: a
command that overwrites or records data always walks, so a change the watcher cannot see
(a write through a memory map, or through a hard link from outside the folder) can mislead
a report, never lose data.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.fsutil import walk_records

if TYPE_CHECKING:
    import subprocess

    from dvlite.fsutil import FileRecord
    from dvlite.storage.hashing import Oid
    from dvlite.storage.stat_index import StatIndex
    from dvlite.storage.tree import Tree

SOCKET, LOCK, LOG = "fsmonitor.sock", "fsmonitor.lock", "fsmonitor.log"  # in .dvlite/tmp
_ANSWER_TIMEOUT = 3.0  # seconds; a watcher that takes longer is taken for gone: the scan walks
_started: list[subprocess.Popen[bytes]] = []  # watchers this process started (kept: not reaped)


@dataclass(frozen=True)
class Watched:
    """What the watcher said about a tracked folder."""

    token: str  # to save with the tree this scan ends up with
    records: list[FileRecord]  # what a walk of it gives now (unless unchanged: the tree's)
    # the oids of those the saved tree vouches for, with no change since (None: walked)
    oids: list[Oid | None] | None = None
    unchanged: tuple[Oid, Tree] | None = None  # nothing changed since this saved tree


class Monitor:
    """The watcher of the repo whose ``.dvlite/tmp`` is ``tmp_dir``; started if not running
    (once per process: until it runs, scans walk)."""

    def __init__(self, tmp_dir: str) -> None:
        self.tmp_dir = tmp_dir
        self._silent = False  # no watcher answered: do not ask again in this process

    def look(self, index: StatIndex, key: str, full: str, *,
             allowed: tuple[str, ...]) -> Watched | None:
        """The folder ``full`` (``key`` to ``index``) as the watcher knows it, from the
        newest tree saved there with a token and what changed since; walked where the
        watcher cannot say. None when no watcher answered."""
        if self._silent:
            return None
        st = os.stat(full)
        saved = max(index.watched(key), key=lambda row: _seq(row[0]), default=None)
        answer = request(self.tmp_dir, {"op": "changes", "path": key,
                                        "ident": [st.st_dev, st.st_ino],
                                        "token": saved[0] if saved else None})
        if answer is None:
            self._silent = True
            start(self.tmp_dir)
            return None
        token, paths = str(answer["token"]), answer["paths"]
        tree = index.tree_in(key, saved[2], saved[1]) if saved and paths is not None else None
        if saved is None or tree is None or not isinstance(paths, list):
            return Watched(token, walk_records(full, allowed=allowed))
        if not paths:
            return Watched(token, [], unchanged=(saved[1], tree))  # (records left packed)
        changed = [(str(path), bool(is_dir)) for path, is_dir in paths]
        found = patched(tree, full, changed, allowed=allowed)
        if found is None:
            return Watched(token, walk_records(full, allowed=allowed))
        return Watched(token, *found)


def patched(tree: Tree, full: str, changed: list[tuple[str, bool]], *,
            allowed: tuple[str, ...]) -> tuple[list[FileRecord], list[Oid | None]] | None:
    """The records a walk of the folder ``full`` gives now, from ``tree`` (saved from a walk
    of it since which only the paths ``changed``, each with whether it was a folder, changed),
    and the oids the tree gives them (None for those stat'ed again); None when a symlink
    makes a real walk needed."""
    gone = {path for path, _ in changed}
    folders = tuple(path + "/" for path, is_dir in changed if is_dir)
    fresh: list[FileRecord] = []
    walked: tuple[str, ...] = ()
    for path in sorted(gone):  # a folder before what is inside it
        if walked and path.startswith(walked):
            continue
        here = os.path.join(full, path)
        try:
            st = os.lstat(here)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            inside = walk_records(here, allowed=allowed)
            fresh.extend((f"{path}/{r[0]}", r[1], r[2], r[3], r[4]) for r in inside)
            walked += (path + "/",)
        elif stat.S_ISREG(st.st_mode):
            fresh.append(_record(path, st))
        else:
            return None
    # a write or chmod through one hard link changes the file at its other links, which
    # raise no event: a file sharing an inode with a changed path is stat'ed again
    linked = {r[1] for r in fresh} | {r[1] for r in tree.records if r[0] in gone}
    records: list[FileRecord] = []
    oids: list[Oid | None] = []
    for record, oid in zip(tree.records, tree.oids, strict=True):
        path = record[0]
        if path in gone or (folders and path.startswith(folders)):
            continue
        if record[1] not in linked:
            records.append(record)
            oids.append(oid)
            continue
        try:
            st = os.lstat(os.path.join(full, path))
        except (FileNotFoundError, NotADirectoryError):  # (its event is in the next answer)
            continue
        if not stat.S_ISREG(st.st_mode):
            return None
        records.append(_record(path, st))
        oids.append(None)
    return records + fresh, oids + [None] * len(fresh)


def _record(path: str, st: os.stat_result) -> FileRecord:
    return (path, st.st_ino, st.st_mtime_ns, st.st_size, bool(st.st_mode & stat.S_IXUSR))


def _seq(token: str) -> int:
    seq = token.rpartition(":")[2]
    return int(seq) if seq.isdigit() else -1


def socket_address(tmp_dir: str, folder: int) -> str:
    """The socket's path in ``tmp_dir``, open as ``folder``: through /proc when the plain
    path is too long for ``bind`` and ``connect`` (108 bytes), however deep the repo is."""
    path = os.path.join(tmp_dir, SOCKET)
    return path if len(os.fsencode(path)) < 100 else f"/proc/self/fd/{folder}/{SOCKET}"


def request(tmp_dir: str, message: dict[str, object]) -> dict[str, object] | None:
    """Send ``message`` to the watcher of ``tmp_dir``; its answer, or None if none came (in
    ``_ANSWER_TIMEOUT``, read at each call so that a test can shorten it)."""
    try:
        folder = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_ANSWER_TIMEOUT)
            conn.connect(socket_address(tmp_dir, folder))
            conn.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    return None
                data += chunk
        answer = json.loads(data)
    except (OSError, ValueError):
        return None
    finally:
        os.close(folder)
    return answer if isinstance(answer, dict) else None


def start(tmp_dir: str) -> None:
    """Start a watcher for ``tmp_dir``'s repo in the background (it exits at once if one
    runs), detached from this process's session and output."""
    import subprocess  # noqa: PLC0415 (only a scan that finds no watcher starts one)

    with contextlib.suppress(OSError):
        _started.append(subprocess.Popen(
            [sys.executable, "-m", "dvlite.storage.fsmonitor_daemon", tmp_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True,
        ))
