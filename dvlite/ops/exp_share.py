"""Keeping and sharing experiments: ``exp apply`` (into the workspace), ``exp branch``,
``exp remove``, and ``exp push`` / ``exp pull`` (the refs to and from a git remote, their
data to and from a dvlite remote)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite import pointer as pointers
from dvlite.errors import UnsafeOperationError, UsageError
from dvlite.fsutil import atomic_write
from dvlite.ops import exp_store, sync
from dvlite.ops.checkout import CheckoutResult, checkout
from dvlite.scm import refs
from dvlite.workspace import workspace_outs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.ops.exp_store import Experiment, QueuedRun
    from dvlite.ops.sync import SyncResult
    from dvlite.repo import Repo


@dataclass(frozen=True)
class ApplyResult:
    experiment: Experiment
    files: tuple[str, ...]  # written (or deleted) from the experiment's commit
    checkout: CheckoutResult  # its outputs and pointed-to data


def apply(repo: Repo, name: str, *, force: bool = False) -> ApplyResult:
    """Bring experiment ``name``'s files (what it changed on its baseline: params, lock,
    metrics, pointers) into the workspace, then its data from the cache. A workspace file
    whose content git has never stored is not overwritten unless ``force``."""
    [exp] = exp_store.resolve(repo, [name])
    top = exp_store.top_of(repo)
    changes = refs.changed_paths(top, exp.baseline, exp.sha)
    unsafe = [path for _, path in changes if os.path.isfile(os.path.join(top, path))
              and not refs.is_stored(top, os.path.join(top, path))]
    if unsafe and not force:
        raise UnsafeOperationError(
            f"applying `{exp.name}` would overwrite changes that are nowhere else: "
            f"{', '.join(f'`{p}`' for p in unsafe)}",
            hint="commit or save them first, or overwrite them with `--force`",
        )
    data: list[str] = []
    with repo.lock():
        for status, path in changes:
            full = os.path.join(top, path)
            if status == "D":
                if os.path.lexists(full):
                    os.unlink(full)
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            atomic_write(full, refs.blob_at(top, exp.sha, path))
            if path.endswith(pointers.SUFFIX):
                data.append(full.removesuffix(pointers.SUFFIX))
    data += [repo.abs(t.path) for t in workspace_outs(repo)]
    result = checkout(repo, data, force=force) if data else CheckoutResult((), (), (), 0)
    return ApplyResult(exp, tuple(path for _, path in changes), result)


def branch(repo: Repo, name: str, new_branch: str) -> Experiment:
    """A git branch ``new_branch`` at experiment ``name``'s commit (on its baseline)."""
    [exp] = exp_store.resolve(repo, [name])
    refs.create_branch(exp_store.top_of(repo), new_branch, exp.sha)
    return exp


@dataclass(frozen=True)
class RemoveResult:
    experiments: tuple[Experiment, ...]
    queued: tuple[QueuedRun, ...]  # queued runs taken off the queue


def remove(repo: Repo, names: Sequence[str] = (), *, all_but: Sequence[str] = (),
           queue: bool = False) -> RemoveResult:
    """Delete experiments ``names`` (queued runs of those names are dropped too), or every
    experiment but ``all_but``; with ``queue``, every queued run as well. Their data stays in
    the cache until ``dvlite gc``."""
    if (names and all_but) or not (names or all_but or queue):
        raise UsageError("name the experiments to remove, or the ones to keep with `--all-but`",
                         hint="`dvlite exp remove NAME...` or `dvlite exp remove --all-but NAME`")
    waiting = exp_store.queued(repo)
    dropped = [q for q in waiting if queue or q.name in names]
    if names:
        chosen = exp_store.resolve(repo, [n for n in names if n not in {q.name for q in waiting}])
    else:
        kept = {e.ref for e in exp_store.resolve(repo, all_but)}
        chosen = [e for e in exp_store.experiments(repo) if all_but and e.ref not in kept]
    exp_store.remove(repo, chosen)
    taken = [q for q in dropped if exp_store.claim(q)]
    for q in taken:
        exp_store.release(repo, q)
    return RemoveResult(tuple(chosen), tuple(taken))


@dataclass(frozen=True)
class ShareResult:
    experiments: tuple[Experiment, ...]
    data: SyncResult  # the objects sent or fetched


def push(repo: Repo, git_remote: str, names: Sequence[str] = (), *,
         remote: str | None = None, jobs: int | None = None) -> ShareResult:
    """Send experiments (default: all) to ``git_remote``: first their data to the dvlite
    ``remote``, so that whoever sees a ref can get what it records, then their refs."""
    chosen = exp_store.resolve(repo, names) if names else exp_store.experiments(repo)
    scope = sync.Scope(workspace=False, revs=tuple(e.sha for e in chosen))
    data = sync.push(repo, remote=remote, jobs=jobs, scope=scope)
    refs.push_refs(exp_store.top_of(repo), git_remote, [e.ref for e in chosen])
    return ShareResult(tuple(chosen), data)


def pull(repo: Repo, git_remote: str, names: Sequence[str] = (), *,
         remote: str | None = None, jobs: int | None = None) -> ShareResult:
    """Fetch the experiments of ``git_remote`` (their refs; ``names`` chooses which have their
    data fetched, default all) and the data they record from the dvlite ``remote``."""
    refs.fetch_refs(exp_store.top_of(repo), git_remote, exp_store.PREFIX + "*")
    chosen = exp_store.resolve(repo, names) if names else exp_store.experiments(repo)
    scope = sync.Scope(workspace=False, revs=tuple(e.sha for e in chosen))
    data = sync.fetch(repo, remote=remote, jobs=jobs, scope=scope)
    return ShareResult(tuple(chosen), data)
