"""The file-system watcher: a process per repo that tells ``status`` what changed.

It watches, with Linux's inotify (``storage/inotify.py``), every folder below
each tracked folder that a client has asked about, and numbers the events it reads. A
client sends the token it got last time for a folder and gets back the paths changed
since, or "unknown", after which it walks the folder as it would without a watcher:

- the first question about a folder (it is watched from then on);
- a token from another run of the watcher, or older than an overflow of the kernel's event
  queue (``IN_Q_OVERFLOW``) or than the forgetting of a long list of changes;
- a folder now at another inode than the one watched (it, or a folder above it, was
  replaced or moved), or one that holds a symlink (a change to the file it points at
  raises no event in the folder), or one where a watch could not be added (the kernel's
  ``max_user_watches``);
- a folder on a network file system, or holding a mount point (another machine's writes
  raise no event here); after any change to the mount table, every folder is watched anew.

Events are queued by the kernel as each write happens, so the watcher reads every pending
event before it answers: a change made before a question is in the answer. A folder that
appears is watched as soon as its event is read and reported as a whole, so whatever was
written in it before its watch is found by the client's walk of it.

It listens on ``fsmonitor.sock`` in the repo's ``.dvlite/tmp`` (one JSON line each way),
holds ``fsmonitor.lock`` while it runs so only one runs per repo, and exits when asked to,
or when its socket is removed or replaced (the repo was deleted or another watcher took
over).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import socket
import sys
import traceback
from dataclasses import dataclass, field

from dvlite.storage.fsmonitor import LOCK, LOG, SOCKET, socket_address
from dvlite.storage.inotify import (
    IN_CREATE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    Inotify,
    MountTable,
    file_system,
    is_remote,
    mount_table,
)

_MAX_CHANGES = 100_000  # paths remembered per folder; past it, older tokens get "unknown"
_ALIVE_CHECK = 2.0  # seconds between checks that the socket is still this watcher's


@dataclass
class Root:
    """A watched folder (repo-relative ``path``) and what changed in it."""

    path: str
    ident: tuple[int, int]  # (st_dev, st_ino) of the folder when it was first watched
    floor: int  # tokens older than this get "unknown"
    folders: dict[int, str] = field(default_factory=dict)  # wd -> folder inside, "" itself
    changed: dict[str, tuple[int, bool]] = field(default_factory=dict)  # path -> (seq, dir?)
    blind: str = ""  # why every answer is "unknown" (a symlink inside, too many folders)


class Watcher:
    def __init__(self, repo_root: str) -> None:
        self.repo_root = repo_root
        self.inotify = Inotify()
        self.mounts = MountTable()
        self.run_id = os.urandom(8).hex()
        self.seq = 0
        self.roots: dict[str, Root] = {}
        self.owners: dict[int, Root] = {}  # wd -> the root it watches a folder of

    # --- questions --------------------------------------------------------------------

    def changes(self, path: str, ident: tuple[int, int], token: str | None) -> dict[str, object]:
        """The answer to a client about the folder ``path``, at ``ident`` as it stat'ed it."""
        self.drain()
        root = self.roots.get(path)
        if root is not None and root.ident != ident:
            self._drop(root)
            root = None
        known = root is not None
        if root is None:
            root = self._watch_root(path)
        answer: dict[str, object] = {"token": f"{self.run_id}:{self.seq}", "paths": None}
        since = self._seq_of(token)
        if known and not root.blind and since is not None and since >= root.floor:
            answer["paths"] = [[p, is_dir] for p, (seq, is_dir) in root.changed.items()
                               if seq > since]
        return answer

    def _seq_of(self, token: str | None) -> int | None:
        run_id, _, seq = (token or "").partition(":")
        return int(seq) if run_id == self.run_id and seq.isdigit() else None

    def describe(self) -> dict[str, object]:
        return {"pid": os.getpid(), "watches": len(self.owners),
                "folders": {r.path: r.blind or "watched" for r in self.roots.values()}}

    # --- events -----------------------------------------------------------------------

    def drain(self) -> None:
        if self.mounts.changed():  # a mount in a watched folder raises no event there, and
            for root in list(self.roots.values()):  # hides what is watched: all are watched
                self._drop(root)  # anew (and one holding a mount point is walked)
        for wd, mask, name in self.inotify.read():
            self._event(wd, mask, name)

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:  # events were lost: no token handed out so far holds, and
            for root in list(self.roots.values()):  # a folder made or moved meanwhile has no
                self._drop(root)  # watch, or one under its old path: all are watched anew
            return
        owner = self.owners.get(wd)
        if owner is None:  # a watch already let go of
            return
        root, folder = owner, owner.folders[wd]
        if mask & IN_IGNORED:  # the folder is gone
            del self.owners[wd], root.folders[wd]
        if folder == "" and mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            self._drop(root)  # the next question watches what is then at the path
            return
        if not name:  # about the folder itself: its parent's event says it
            return
        path = f"{folder}/{name}" if folder else name
        is_dir = bool(mask & IN_ISDIR)
        self.seq += 1
        if len(root.changed) >= _MAX_CHANGES:
            root.floor, root.changed = self.seq, {}
        # once a folder, the path stays one: a client must drop what it held below it
        # (a folder moved away raises no event for its files)
        before = root.changed.get(path)
        root.changed[path] = (self.seq, is_dir or (before is not None and before[1]))
        if is_dir and mask & (IN_CREATE | IN_MOVED_TO):
            self._watch_tree(root, path)
        elif is_dir and mask & IN_MOVED_FROM:
            self._unwatch_tree(root, path)
        elif mask & (IN_CREATE | IN_MOVED_TO) and os.path.islink(self._abs(root, path)):
            root.blind = "holds a symlink"

    # --- watches ----------------------------------------------------------------------

    def _abs(self, root: Root, inside: str) -> str:
        return os.path.join(self.repo_root, root.path, inside) if inside else \
            os.path.join(self.repo_root, root.path)

    def _watch_root(self, path: str) -> Root:
        try:  # before the watch: if the folder is replaced meanwhile, the next question
            st = os.stat(os.path.join(self.repo_root, path))  # sees another inode
        except OSError:
            st = None
        self.seq += 1  # a token handed out before is about what was at the path then
        root = Root(path, (st.st_dev, st.st_ino) if st else (0, 0), floor=self.seq)
        self.roots[path] = root
        kind = file_system(os.path.realpath(self._abs(root, "")), mount_table())
        if is_remote(kind):  # another machine's writes raise no event here
            root.blind = f"on a network file system ({kind})"
        self._watch_tree(root, "")
        return root

    def _watch_tree(self, root: Root, top: str) -> None:
        """Watch ``top`` in ``root`` and every folder below it: each folder is watched
        before it is listed, so a folder made meanwhile raises an event."""
        stack = [top]
        while stack and not root.blind:
            inside = stack.pop()
            full = self._abs(root, inside)
            try:
                wd = self.inotify.add(full)
            except OSError as exc:
                if exc.errno in (2, 20):  # ENOENT, ENOTDIR: gone again; its event says so
                    continue
                root.blind = f"cannot watch: {exc.strerror}"
                return
            if wd in self.owners and self.owners[wd] is not root:
                root.blind = "inside another watched folder"
                return
            self.owners[wd], root.folders[wd] = root, inside
            try:
                if os.stat(full).st_dev != root.ident[0]:
                    root.blind = "holds a mount point"  # (maybe a network one)
                    return
                with os.scandir(full) as entries:
                    for entry in entries:
                        if entry.is_symlink():
                            root.blind = "holds a symlink"
                        elif entry.is_dir(follow_symlinks=False):
                            stack.append(f"{inside}/{entry.name}" if inside else entry.name)
            except OSError:
                continue  # gone or replaced meanwhile: its parent's event says so

    def _unwatch_tree(self, root: Root, top: str) -> None:
        prefix = top + "/"
        for wd, inside in list(root.folders.items()):
            if inside == top or inside.startswith(prefix):
                self.inotify.remove(wd)
                del self.owners[wd], root.folders[wd]

    def _drop(self, root: Root) -> None:
        for wd in root.folders:
            self.inotify.remove(wd)
            del self.owners[wd]
        del self.roots[root.path]


def serve(tmp_dir: str) -> None:
    """Run the watcher for the repo whose ``.dvlite/tmp`` is ``tmp_dir``, until told to stop;
    return at once if another one runs."""
    lock = os.open(os.path.join(tmp_dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    os.umask(0o077)  # the socket: this user only
    watcher = Watcher(os.path.dirname(os.path.dirname(os.path.abspath(tmp_dir))))
    folder = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET, dir_fd=folder)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_address(tmp_dir, folder))
    server.listen(16)
    bound = os.stat(SOCKET, dir_fd=folder).st_ino
    os.chdir("/")  # hold no repo folder as the working directory
    selector = selectors.DefaultSelector()
    selector.register(watcher.inotify.fd, selectors.EVENT_READ, "events")
    selector.register(server, selectors.EVENT_READ, "client")
    while True:
        for key, _ in selector.select(timeout=_ALIVE_CHECK):
            if key.data == "events":
                watcher.drain()
            elif not _answer(server, watcher):  # told to stop: leave no socket behind
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(SOCKET, dir_fd=folder)
                return
        try:  # the repo deleted, or the socket taken over
            if os.stat(SOCKET, dir_fd=folder).st_ino != bound:
                return
        except FileNotFoundError:
            return


def _answer(server: socket.socket, watcher: Watcher) -> bool:
    """Answer one client; False when it asked the watcher to stop."""
    conn, _ = server.accept()
    with conn:
        conn.settimeout(5)
        try:
            request = json.loads(_read_line(conn))
            op = request.get("op")
            if op == "stop":
                conn.sendall(b'{"stopping": true}\n')
                return False
            if op == "changes":
                answer = watcher.changes(str(request["path"]), tuple(request["ident"]),
                                         request.get("token"))
            else:
                answer = watcher.describe()
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # a client that went away or sent nonsense gets nothing; it walks
    return True


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def main() -> None:
    tmp_dir = sys.argv[1]
    try:
        serve(tmp_dir)
    except Exception:  # a watcher that dies leaves clients walking: say why, for `doctor`
        with open(os.path.join(tmp_dir, LOG), "a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
        raise


if __name__ == "__main__":
    main()
