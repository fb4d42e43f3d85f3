"""``dvlite add`` and ``dvlite commit``: store data in the cache and point to it from git."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite import pointer as pointers
from dvlite import scm
from dvlite.errors import PathError
from dvlite.fsutil import NO_PROGRESS, Progress, atomic_write
from dvlite.ops.checkout import link_workspace, store_for_add
from dvlite.ops.repro import commit_stages
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pointer import Pointer
from dvlite.workspace import (
    Scan,
    Tracked,
    compare,
    find_tracked,
    load_tracked,
    resolve_targets,
    scan,
    workspace_outs,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid


@dataclass(frozen=True)
class Stored:
    path: str
    pointer_file: str
    oid: Oid
    size: int
    files: int | None
    changed: bool  # the pointer was written (new data or new content)


@dataclass(frozen=True)
class StoreResult:
    stored: tuple[Stored, ...]
    hashed_files: int
    hashed_bytes: int
    staged: bool  # pointers and .gitignore files were staged in git (core.autostage)
    stages: tuple[str, ...] = ()  # stages whose lock entries `commit` recorded anew


def add(
    repo: Repo, paths: Sequence[str], *, jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> StoreResult:
    """Track ``paths`` (absolute): store their content, write ``<path>.dvl``, ignore in git."""
    with repo.lock():
        rels = sorted({_addable(repo, p) for p in paths})
        for inner in rels:
            parts = inner.split("/")
            for outer in ("/".join(parts[:depth]) for depth in range(1, len(parts))):
                if outer in rels:
                    raise PathError(
                        f"`{inner}` is inside `{outer}`, which is being added too",
                        hint=f"add `{outer}` alone; it includes `{inner}`",
                    )
        in_git = repo.git.tracked(rels)
        if in_git:
            raise PathError(
                f"`{in_git[0]}` is tracked by git; dvlite cannot track it as well",
                hint=f"stop git tracking it with `git rm -r --cached {in_git[0]}`, then add again",
            )
        results = []
        for rel in rels:
            pointer_file = pointers.pointer_file_for(rel)
            existing = (
                load_tracked(repo, pointer_file)
                if os.path.exists(repo.abs(pointer_file)) else None
            )
            results.append(_store(repo, rel, existing, jobs=jobs, progress=progress))
        return _finish(repo, results)


def commit(
    repo: Repo, targets: Sequence[str] = (), *, jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> StoreResult:
    """Store the current content of tracked paths and update their pointers; a stage output
    updates its stage's lock entry instead. Without targets: every pointer, and every stage
    whose outputs changed."""
    with repo.lock():
        tracked: dict[str, Tracked] = {}
        stages: set[str] = set()
        for target in resolve_targets(repo, targets):
            if target.tracked.stage is None:
                tracked[target.tracked.path] = target.tracked  # a file inside commits its folder
            elif targets or not compare(repo, target).matches:
                stages.add(target.tracked.stage)
        results = [_store(repo, t.path, t, jobs=jobs, progress=progress)
                   for t in tracked.values()]
        if stages:
            commit_stages(repo, sorted(stages))
        return _finish(repo, results, sorted(stages))


def _addable(repo: Repo, path: str) -> str:
    rel = repo.rel(path)
    if not rel:
        raise PathError("cannot track the whole repo", hint="add the folders inside it")
    if rel.endswith(pointers.SUFFIX):
        raise PathError(f"`{rel}` is a pointer file", hint="name the data it points to")
    if not os.path.lexists(repo.abs(rel)):
        raise PathError(f"`{rel}` does not exist", hint="check the path")
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        outer = "/".join(parts[:depth])
        if os.path.exists(repo.abs(outer + pointers.SUFFIX)):
            raise PathError(
                f"`{rel}` is inside tracked folder `{outer}`",
                hint=f"run `dvlite add {outer}` to store the folder's new content",
            )
    for out in workspace_outs(repo):
        if rel == out.path or rel.startswith(out.path + "/"):
            raise PathError(
                f"`{rel}` is {'' if rel == out.path else 'inside '}an output of {out.source}",
                hint=f"run `dvlite repro {out.stage}` to remake it, or `dvlite commit "
                f"{out.path}` to record what it holds now",
            )
    if os.path.isdir(repo.abs(rel)):
        inner = find_tracked(repo, rel)
        if inner:
            where = inner[0].source if inner[0].stage else f"`{inner[0].pointer_file}`"
            raise PathError(
                f"`{rel}` holds tracked data `{inner[0].path}` ({where})",
                hint="add the files beside it one by one, or a different folder",
            )
    return rel


def _store(
    repo: Repo, rel: str, existing: Tracked | None, *, jobs: int | None, progress: Progress,
) -> tuple[Stored, list[str], Scan]:
    """Store one path; return what was stored, the files git should see, and the scan."""
    store = store_for_add(repo)
    result = scan(repo, rel, store=store, jobs=jobs, progress=progress)
    state = result.state
    if state.kind is None or state.oid is None:
        raise PathError(f"`{rel}` does not exist", hint="restore it with `dvlite checkout`")
    files = state.files if state.kind == "dir" else None
    pointer_file = existing.pointer_file if existing else pointers.pointer_file_for(rel)
    name = rel.rpartition("/")[2]
    new = (
        existing.pointer.with_data(state.oid, state.size, files, state.kind) if existing
        else Pointer(name, state.oid, state.size, state.kind, files)
    )
    changed = existing is None or existing.pointer != new
    if changed:
        atomic_write(repo.abs(pointer_file), new.encode())
    folder = repo.abs(rel.rpartition("/")[0])
    scm.add_ignore(folder, name)
    link_workspace(repo, rel, state.entries(), store)
    ignore_file = f"{rel.rpartition('/')[0]}/.gitignore".lstrip("/")
    stored = Stored(rel, pointer_file, state.oid, state.size, files, changed)
    return stored, [pointer_file, ignore_file], result


def _finish(
    repo: Repo, results: list[tuple[Stored, list[str], Scan]], stages: Sequence[str] = (),
) -> StoreResult:
    staged = bool(repo.config.get("core.autostage"))
    if staged:
        files = {f for _, files, _ in results for f in files}
        if stages:
            files.add(lockfiles.FILENAME)
        repo.git.stage(sorted(files))
    return StoreResult(
        tuple(stored for stored, _, _ in results),
        hashed_files=sum(s.hashed_files for _, _, s in results),
        hashed_bytes=sum(s.hashed_bytes for _, _, s in results),
        staged=staged,
        stages=tuple(stages),
    )
