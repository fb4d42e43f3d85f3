"""``dvlite checkout`` and ``dvlite unprotect``: make workspace files match the pointers."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import UnsafeOperationError
from dvlite.fsutil import NO_PROGRESS, FileStat, Progress, file_jobs, run_parallel
from dvlite.storage import links
from dvlite.storage.link_store import LinkingStore
from dvlite.storage.manifest import Entry, diff_files
from dvlite.workspace import Target, compare, default_jobs, resolve_targets

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore

_SHOWN = 10  # paths listed in a refusal before "and N more"


@dataclass(frozen=True)
class CheckoutResult:
    written: tuple[str, ...]
    removed: tuple[str, ...]
    missing: tuple[str, ...]  # data whose objects are not in the cache
    unchanged: int  # targets that already matched


@dataclass(frozen=True)
class _Plan:
    root: str  # repo-relative path the entry keys are relative to
    write: tuple[Entry, ...]
    remove: tuple[Entry, ...]
    unsafe: tuple[str, ...]  # workspace files that exist nowhere else
    missing: tuple[str, ...]
    empty_folder: bool = False  # the pointer records a folder with no files


def checkout(
    repo: Repo, targets: Sequence[str] = (), *, force: bool = False,
    progress: Progress = NO_PROGRESS,
) -> CheckoutResult:
    """Bring tracked data back to what its pointers record (targets: absolute paths)."""
    with repo.lock():
        plans = [_plan(repo, t) for t in resolve_targets(repo, targets)]
        unsafe = [p for plan in plans for p in plan.unsafe]
        if unsafe and not force:
            raise UnsafeOperationError(
                f"checkout would overwrite or delete {len(unsafe)} file(s) whose content is not "
                f"in the cache: {_listing(unsafe)}",
                hint="keep the changes with `dvlite add` (or `dvlite commit`), "
                "or discard them with `dvlite checkout --force`",
            )
        progress.set_size(sum(len(p.write) for p in plans))
        written: list[str] = []
        removed: list[str] = []
        for plan in plans:
            removed.extend(_remove(repo, plan))
            written.extend(_write(repo, plan.root, plan.write, progress))
            if plan.empty_folder:
                os.makedirs(repo.abs(plan.root), exist_ok=True)
        return CheckoutResult(
            tuple(written), tuple(removed),
            tuple(p for plan in plans for p in plan.missing),
            unchanged=sum(1 for p in plans if not (p.write or p.remove or p.missing)),
        )


def _plan(repo: Repo, target: Target) -> _Plan:
    cmp = compare(repo, target, keep=False)  # the files written next make its tree old
    path = target.path
    recorded = cmp.recorded_files
    if recorded is None:  # the folder's manifest is not cached
        return _Plan(path, (), (), (), () if cmp.matches else (path,))
    changes = diff_files(cmp.present_files, recorded)  # from what is there to what should be
    replaced = [old for old, _ in changes.modified] + list(changes.removed)
    wanted = list(changes.added) + [new for _, new in changes.modified]
    absent = repo.cache.missing(e.oid for e in replaced + wanted)
    unsafe = tuple(_join(path, e.path) for e in replaced if e.oid in absent)
    return _Plan(
        path,
        write=tuple(e for e in wanted if e.oid not in absent),
        remove=tuple(changes.removed),
        unsafe=unsafe,
        missing=tuple(_join(path, e.path) for e in wanted if e.oid in absent),
        empty_folder=target.tracked.pointer.kind == "dir" and not recorded,
    )


def _remove(repo: Repo, plan: _Plan) -> list[str]:
    removed = []
    for entry in plan.remove:
        rel = _join(plan.root, entry.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(repo.abs(rel))
        removed.append(rel)
        _prune_empty_folders(repo, rel, plan.root)
    return removed


def _prune_empty_folders(repo: Repo, rel: str, root: str) -> None:
    folder = rel.rpartition("/")[0]
    while folder and folder != root and folder.startswith(root + "/"):
        try:
            os.rmdir(repo.abs(folder))
        except OSError:
            return  # not empty
        folder = folder.rpartition("/")[0]


def _write(repo: Repo, root: str, entries: Sequence[Entry], progress: Progress) -> list[str]:
    """Materialize entries under ``root`` and vouch for them in the stat index."""
    placer = links.Placer(repo.cache, repo.link_strategies, tmp_dir=repo.tmp_dir)

    def one(entry: Entry) -> tuple[str, FileStat, Oid]:
        rel = _join(root, entry.path)
        _, st = placer.place(entry.oid, repo.abs(rel), executable=entry.executable)
        progress.relative_update(1)
        return rel, FileStat.of(st), entry.oid

    jobs = file_jobs(sum(e.size for e in entries), len(entries), default_jobs(repo))
    done = run_parallel(one, list(entries), jobs)
    # Files were written before this stamp: a later edit moves their mtime past it.
    repo.index.record(done, repo.index.fs_clock())
    return [rel for rel, _, _ in done]


def link_workspace(repo: Repo, rel: str, entries: dict[str, Entry], store: ObjectStore) -> None:
    """After add: replace workspace files by links to the cache when links are configured
    (``store``: what add stored them with, ``store_for_add``)."""
    strategy = repo.link_strategies[0]
    if strategy in ("reflink", "copy"):
        return  # the workspace files are private copies already
    done = store.linked if isinstance(store, LinkingStore) and strategy == "hardlink" else set()
    stale = []
    for entry in entries.values():
        if entry.executable:  # a link cannot carry its own x bit; these stay copies
            continue
        path = repo.abs(_join(rel, entry.path))
        if os.path.normpath(path) not in done and not _is_link_to(
            path, repo.cache.path(entry.oid), strategy
        ):
            stale.append(entry)
    _write(repo, rel, stale, NO_PROGRESS)


def store_for_add(repo: Repo) -> ObjectStore:
    """Where add and commit store files: with links configured, a store that takes each
    workspace file in by hard link (``link_workspace`` then only links what was cached
    already), instead of copying what is about to be replaced by a link."""
    if repo.link_strategies[0] in ("reflink", "copy"):
        return repo.cache
    return LinkingStore(repo.cache.root, algorithm=repo.cache.algorithm)


def _is_link_to(path: str, obj: str, strategy: str) -> bool:
    if strategy == "symlink":
        return os.path.islink(path) and os.readlink(path) == obj
    return os.path.samefile(path, obj)


def unprotect(repo: Repo, targets: Sequence[str], *,
              progress: Progress = NO_PROGRESS) -> list[str]:
    """Turn linked files under ``targets`` into private, writable copies."""
    with repo.lock():
        changed = []
        for target in resolve_targets(repo, targets):
            cmp = compare(repo, target, progress=progress)
            for entry in cmp.present.values():
                rel = _join(cmp.target.path, entry.path)
                if links.unprotect(repo.abs(rel)):
                    changed.append(rel)
        return changed


def _join(root: str, key: str) -> str:
    return f"{root}/{key}" if key else root


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")
