"""Shared by the file-system watcher's tests: its daemons (found by pid, killed at teardown),
a status with and without it, and the folders a call lists.

The machine allows 128 inotify instances per user and CI runs two workers: every daemon a
test starts, directly or through a status, is killed by ``Daemons.kill_all``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvlite.ops.status import status
from dvlite.repo import Repo
from dvlite.storage import fsmonitor
from dvlite.workspace import scan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

WATCHING = {"DVLITE_CORE_FSMONITOR": "true"}
DEADLINE = 15.0  # seconds for a daemon to answer or to go; far above what it takes
_POLL = 0.01
_DAEMON = "dvlite.storage.fsmonitor_daemon"

_listed: list[str] | None = None


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "os.scandir" and _listed is not None:
        path = args[0]
        _listed.append(os.fsdecode(path) if isinstance(path, (str, bytes)) else str(path))


sys.addaudithook(_hook)  # once per process (a hook cannot be removed); idle outside `listing`


@contextlib.contextmanager
def listing() -> Iterator[list[str]]:
    """The folders this process lists (``os.scandir``) during the block: a walk lists each."""
    global _listed  # noqa: PLW0603 (the audit hook is global, and installed once)
    seen: list[str] = []
    _listed = seen
    try:
        yield seen
    finally:
        _listed = None


def poll(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(_POLL)


def daemon_pids(tmp_dir: str) -> list[int]:
    """The live watcher processes of the repo whose ``.dvlite/tmp`` is ``tmp_dir`` (a
    stopped one too; a killed one not reaped yet has no command line, so is not listed)."""
    wanted = os.path.realpath(tmp_dir)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 4 and argv[2] == _DAEMON.encode() and \
                os.path.realpath(os.fsdecode(argv[3])) == wanted:
            found.append(int(name))
    return found


@dataclass
class Daemons:
    """The watchers of the repos a test registers, every one killed at teardown."""

    tmp_dirs: list[str] = field(default_factory=list)

    def watch(self, root: str) -> str:
        tmp_dir = os.path.join(root, ".dvlite", "tmp")
        self.tmp_dirs.append(tmp_dir)
        return tmp_dir

    def start(self, root: str) -> int:
        """Start the watcher of the repo at ``root``; its pid, once it answers."""
        tmp_dir = self.watch(root)
        fsmonitor.start(tmp_dir)
        return self.wait_running(tmp_dir)

    @staticmethod
    def wait_running(tmp_dir: str) -> int:
        answers: list[dict[str, object]] = []

        def answered() -> bool:
            answer = fsmonitor.request(tmp_dir, {"op": "status"})
            answers.extend([answer] if answer else [])
            return answer is not None

        poll(answered, "the watcher to answer")
        pid = answers[0]["pid"]
        assert isinstance(pid, int)
        return pid

    def kill_all(self) -> None:
        pids = [pid for tmp_dir in self.tmp_dirs for pid in daemon_pids(tmp_dir)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # (a stopped one too)
        for child in list(fsmonitor._started):  # reap those this process started
            if child.pid in pids or child.poll() is not None:
                child.wait(timeout=DEADLINE)
                fsmonitor._started.remove(child)
        poll(lambda: not any(daemon_pids(t) for t in self.tmp_dirs), "the watchers to die")


@contextlib.contextmanager
def daemons() -> Iterator[Daemons]:
    found = Daemons()
    try:
        yield found
    finally:
        found.kill_all()


Report = list[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]]


def report(repo: Repo) -> Report:
    return [(e.path, e.state, e.added, e.modified, e.deleted) for e in status(repo).entries]


def watched_status(root: str) -> tuple[Report, list[str]]:
    """``status`` with the watcher on (a new Repo, as a new command would), and the folders
    it listed."""
    with Repo(root, env=WATCHING) as repo, listing() as seen:
        return report(repo), seen


@contextlib.contextmanager
def walking_repo(root: str) -> Iterator[Repo]:
    """The repo without a watcher and with a stat index of its own, made afresh: it hashes
    every file, so it is what the workspace holds, and it leaves the repo's index (and the
    watcher's tokens in it) alone."""
    tmp_dir = tempfile.mkdtemp(prefix="walk-index-")
    try:
        with Repo(root, env={}) as repo:
            repo.tmp_dir = tmp_dir  # (the stat index is opened there, on first use)
            yield repo
    finally:
        shutil.rmtree(tmp_dir)


def walked_status(root: str) -> Report:
    with walking_repo(root) as repo:
        return report(repo)


def oids(root: str, path: str) -> tuple[object, object]:
    """The oid of ``path`` scanned with the watcher, and that of a full walk."""
    with Repo(root, env=WATCHING) as repo:
        watched = scan(repo, path, watched=True).state.oid
    with walking_repo(root) as repo:
        return watched, scan(repo, path).state.oid


def under(seen: list[str], folder: str) -> list[str]:
    """The folders in ``seen`` at or below ``folder``."""
    return sorted(s for s in seen if s == folder or s.startswith(folder + "/"))
