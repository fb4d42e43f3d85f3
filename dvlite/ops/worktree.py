"""Temporary worktrees for runs away from the user's workspace (``repro --rev`` and
experiments), safe to make several of at once, beside a ``dvlite gc``."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from dvlite.fsutil import FileLock
from dvlite.repo import CACHE_LOCK
from dvlite.scm import plumbing

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dvlite.repo import Repo

_WORKTREE_WAIT = 300.0  # seconds: making or removing a worktree takes well under one


@contextlib.contextmanager
def isolated_worktree(repo: Repo, rev: str) -> Iterator[str]:
    """The top of a temporary detached worktree of ``repo`` at ``rev``, removed on every way
    out.

    While it exists the cache lock is held shared, as every writing command holds it: the
    worktree's own repo lock is no gc's business, so between two stages a ``dvlite gc`` in
    the main repo would see the first stage's outputs as unreferenced. And worktrees are made
    and removed one at a time, across threads and processes: ``git worktree add`` reads every
    other worktree's files, and fails on one that is being made or removed at that moment."""
    with _cache_in_use(repo):
        tree = plumbing.temporary_worktree(repo.root, rev)
        with _one_at_a_time(repo):
            top = tree.__enter__()
        try:
            yield top
        finally:
            with _one_at_a_time(repo):
                tree.__exit__(*sys.exc_info())


def _one_at_a_time(repo: Repo) -> FileLock:
    os.makedirs(repo.tmp_dir, exist_ok=True)
    return FileLock(os.path.join(repo.tmp_dir, "worktrees.lock"), timeout=_WORKTREE_WAIT,
                    what="another temporary worktree")


def _cache_in_use(repo: Repo) -> FileLock:
    os.makedirs(repo.cache_dir, exist_ok=True)
    return FileLock(os.path.join(repo.cache_dir, CACHE_LOCK), shared=True,
                    timeout=repo.config.get("core.lock_timeout"),
                    on_wait=repo.on_lock_wait, what=f"the cache `{repo.cache_dir}`")
