"""``dvlite fsmonitor start|stop|status``: the file-system watcher that ``status`` asks."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvlite.errors import DvliteError
from dvlite.storage import fsmonitor

if TYPE_CHECKING:
    from dvlite.repo import Repo

_WAIT = 10.0  # seconds for a watcher to start or stop
_POLL = 0.02


@dataclass(frozen=True)
class WatcherState:
    running: bool
    enabled: bool  # core.fsmonitor: whether status asks it
    pid: int | None = None
    watches: int = 0  # folders watched
    folders: dict[str, str] = field(default_factory=dict)  # tracked folder -> "watched" or why not


def state(repo: Repo) -> WatcherState:
    enabled = bool(repo.config.get("core.fsmonitor"))
    answer = fsmonitor.request(repo.tmp_dir, {"op": "status"})
    if answer is None:
        return WatcherState(running=False, enabled=enabled)
    pid, watches, folders = answer.get("pid"), answer.get("watches"), answer.get("folders")
    return WatcherState(True, enabled, pid if isinstance(pid, int) else None,
                        watches if isinstance(watches, int) else 0,
                        {str(k): str(v) for k, v in folders.items()}
                        if isinstance(folders, dict) else {})


def start(repo: Repo) -> WatcherState:
    """Start the repo's watcher unless it runs; its state once it answers."""
    if not sys.platform.startswith("linux"):
        raise DvliteError("the file-system watcher needs Linux (inotify)",
                          hint="dvlite status walks the tracked folders instead")
    found = state(repo)
    if found.running:
        return found
    os.makedirs(repo.tmp_dir, exist_ok=True)
    fsmonitor.start(repo.tmp_dir)
    deadline = time.monotonic() + _WAIT
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        found = state(repo)
        if found.running:
            return found
    log = os.path.join(repo.tmp_dir, fsmonitor.LOG)
    raise DvliteError("the file-system watcher did not start",
                      hint=f"its errors, if any, are in `{log}`")


def stop(repo: Repo) -> bool:
    """Stop the repo's watcher; whether one was running."""
    if fsmonitor.request(repo.tmp_dir, {"op": "stop"}) is None:
        return False
    lock = os.path.join(repo.tmp_dir, fsmonitor.LOCK)
    deadline = time.monotonic() + _WAIT
    while time.monotonic() < deadline:  # it has stopped when its lock is free
        with open(lock, "a+b") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(_POLL)
                continue
        return True
    raise DvliteError("the file-system watcher did not stop",
                      hint="`dvlite fsmonitor status` shows its pid; `kill` it")
