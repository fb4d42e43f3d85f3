"""``dvlite gc``: delete the objects nothing in scope refers to, from the cache and, with
``cloud``, from a remote.

An object is referenced when a pointer or a lock's stage output in scope names it: a
file's oid, or a folder's manifest oid and every file oid in that manifest. The scope
always holds the workspace (and every cached object a workspace file is a symlink to); by
default it also holds every commit reachable from a branch or tag, and every experiment
(``refs/exps/``; a narrower scope leaves them out, and ``dvlite exp remove`` drops one). A
folder in scope whose manifest cannot be read makes gc refuse, since what that folder
references is unknown.

``plan`` only looks; ``collect`` deletes what a plan found, after working out the references
again under the repo lock, so that an object referenced since the plan was made survives.

Other repos may share the cache (`cache.dir`). Their objects are theirs: gc also keeps what
each of them references in its workspace and every branch and tag (whatever scope was asked
for here), and holds the cache lock exclusively, so that none of them adds objects meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dvlite.errors import (
    DvliteError,
    MissingObjectError,
    UnsafeOperationError,
)
from dvlite.fsutil import NO_PROGRESS, Progress, is_within
from dvlite.ops.exp_store import experiments
from dvlite.ops.gc_remote import RemotePlan, collect_remote, plan_remote
from dvlite.ops.sync import Scope, objects_needed, targets_in_scope
from dvlite.repo import CACHE_USERS, Repo
from dvlite.storage import links
from dvlite.storage.chunks import RecipeStore
from dvlite.storage.hashing import Oid, is_oid
from dvlite.storage.manifest import Manifest
from dvlite.storage.remote_index import RemoteIndex
from dvlite.workspace import resolve_targets

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from dvlite.pointer import Pointer
    from dvlite.storage.remote_store import RemoteStore
    from dvlite.workspace import Target

DEFAULT_SCOPE = Scope(all_commits=True)  # the workspace and every commit of a branch or tag
STALE_AFTER = 3600.0  # seconds: a temp file this old belongs to no running command


@dataclass(frozen=True)
class StorePlan:
    """What one store holds that nothing in scope references."""

    name: str
    listed: int  # objects in the store
    unreferenced: dict[Oid, int]  # oid → size in bytes
    size: int  # bytes of the unreferenced objects

    @classmethod
    def of(cls, name: str, listed: int, unreferenced: dict[Oid, int]) -> StorePlan:
        return cls(name, listed, unreferenced, sum(unreferenced.values()))


@dataclass(frozen=True)
class GcPlan:
    scope: Scope
    revisions: int  # commits looked at, besides the workspace
    referenced: int  # distinct objects referenced in scope
    cache: StorePlan
    temp_files: dict[str, int]  # stale temp file in the cache → size
    remote: RemotePlan | None = None
    remote_name: str | None = None  # as asked for (None: the default remote)

    @property
    def empty(self) -> bool:
        return not (self.cache.unreferenced or self.temp_files
                    or (self.remote is not None and not self.remote.empty))


@dataclass(frozen=True)
class GcResult:
    cache_deleted: int
    cache_size: int
    temp_files_deleted: int
    remote_deleted: int = 0
    remote_size: int = 0
    kept: tuple[Oid, ...] = ()  # in the plan, but referenced by the time of deleting


def plan(
    repo: Repo, *, scope: Scope = DEFAULT_SCOPE, cloud: bool = False, remote: str | None = None,
    now: float | None = None,
) -> GcPlan:
    """What gc would delete; deletes nothing."""
    store = repo.remote(remote) if cloud else None
    with repo.lock(exclusive_cache=True):
        refs, revisions = referenced(repo, scope, store)
        refs |= _shared_refs(repo)
        listed = 0
        unreferenced: dict[Oid, int] = {}
        for oid in repo.cache.iter_oids():
            listed += 1
            if oid not in refs:
                unreferenced[oid] = _size(repo.cache.path(oid))
        cache = StorePlan.of(f"cache `{repo.cache.root}`", listed, unreferenced)
        temp_files = _stale_temp_files(repo, time.time() if now is None else now)
    remote_plan = (plan_remote(repo, store, refs, now=time.time() if now is None else now,
                               stale_after=STALE_AFTER) if store is not None else None)
    return GcPlan(replace(scope, workspace=True), revisions, len(refs), cache, temp_files,
                  remote_plan, remote)


def collect(repo: Repo, gc_plan: GcPlan, *, progress: Progress = NO_PROGRESS) -> GcResult:
    """Delete what ``gc_plan`` lists, except objects referenced by now."""
    store = repo.remote(gc_plan.remote_name) if gc_plan.remote is not None else None
    with repo.lock(exclusive_cache=True):
        refs, _ = referenced(repo, gc_plan.scope, store)
        refs |= _shared_refs(repo)
        cache_todo = [oid for oid in gc_plan.cache.unreferenced if oid not in refs]
        remote_todo: list[Oid] = []
        progress.set_size(len(cache_todo) + len(gc_plan.temp_files)
                          + (len(gc_plan.remote.unreferenced) if gc_plan.remote else 0))
        if store is not None and gc_plan.remote is not None:
            # before the cache's: a rerun after a kill still finds the manifests there
            remote_todo = collect_remote(repo, store, gc_plan.remote, refs, progress)
        for oid in cache_todo:
            repo.cache.delete(oid)
            progress.relative_update(1)
        recipes = RecipeStore(repo.cache)
        for oid in recipes.iter_oids():  # how a file was chunked, kept while the file is
            if not repo.cache.exists(oid):
                recipes.delete(oid)
        for path in gc_plan.temp_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            progress.relative_update(1)
    kept = {oid for oid in gc_plan.cache.unreferenced if oid in refs}
    if gc_plan.remote is not None:
        kept.update(oid for oid in gc_plan.remote.unreferenced if oid in refs)
        remote_size = sum(gc_plan.remote.unreferenced[oid] for oid in remote_todo)
    else:
        remote_size = 0
    return GcResult(len(cache_todo), sum(gc_plan.cache.unreferenced[oid] for oid in cache_todo),
                    len(gc_plan.temp_files), len(remote_todo), remote_size, tuple(sorted(kept)))


def referenced(repo: Repo, scope: Scope, store: RemoteStore | None = None, *,
               unknown_ok: bool = False) -> tuple[set[Oid], int]:
    """Every object referenced in ``scope`` plus the workspace, and how many commits that took.

    A folder whose manifest is not in the cache is read from ``store`` when given; if it
    cannot be read at all, MissingObjectError names it, unless ``unknown_ok`` (another repo
    on the cache, whose own gc may have dropped that version: what it listed is gone too).
    """
    workspace = resolve_targets(repo, [])
    history = replace(scope, workspace=False)
    if scope.all_commits:  # the default scope: every experiment's commit too (`dvlite exp`)
        history = replace(history, revs=(*history.revs, *(e.sha for e in experiments(repo))))
    revisions = repo.git.revisions(history.revs, all_branches=history.all_branches,
                                   all_tags=history.all_tags, all_commits=history.all_commits)
    targets = workspace + targets_in_scope(repo, [], history)
    needed = objects_needed(repo, targets)
    refs = set(needed.files) | set(needed.manifests)
    refs.update(t.tracked.pointer.oid for t in targets)
    unknown: dict[str, Oid] = {}
    for target in targets:
        ptr = target.tracked.pointer
        if ptr.kind != "dir" or ptr.oid in needed.manifests:
            continue
        manifest = _remote_manifest(repo, store, ptr) if store is not None else None
        if manifest is None:
            unknown.setdefault(target.path, ptr.oid)
        else:
            refs.update(e.oid for e in manifest.entries)
    if unknown and not unknown_ok:
        path, oid = next(iter(unknown.items()))
        others = f" (and {len(unknown) - 1} more folder(s))" if len(unknown) > 1 else ""
        where = "the cache or the remote" if store is not None else "the cache"
        raise MissingObjectError(
            f"cannot tell what folder `{path}`{others} references: its file list (object "
            f"{oid}) is not in {where}, so nothing was deleted",
            hint="fetch it first (`dvlite fetch --all-commits`), or use `--cloud` to read it "
                 "from the remote",
        )
    refs.update(_linked_from_workspace(repo, workspace))
    return refs, len(revisions)


def _shared_refs(repo: Repo) -> set[Oid]:
    """What the other repos on this repo's cache reference: their workspace and history, as
    their own gc by default keeps (a narrower scope asked for here is for this repo's data)."""
    found: set[Oid] = set()
    for root in repo.cache_users():
        try:
            with Repo(root) as other:
                found |= referenced(other, DEFAULT_SCOPE, unknown_ok=True)[0]
        except DvliteError as exc:
            raise UnsafeOperationError(
                f"cannot tell what `{root}`, which shares the cache, references ({exc.message}), "
                "so nothing was deleted",
                hint=f"fix that repo (`dvlite -C {root} status`); if it no longer uses this "
                f"cache, delete its entry in `{os.path.join(repo.cache_dir, CACHE_USERS)}`",
            ) from exc
    return found


def _remote_manifest(repo: Repo, store: RemoteStore, ptr: Pointer) -> Manifest | None:
    """The folder's manifest read from the remote (plain or packed), verified; None when it is
    not there."""
    data = RemoteIndex(store, repo.cache).read_object(ptr.oid)
    if data is None:
        return None
    return Manifest.from_bytes(data, source=f"{ptr.oid} on {store.name}",
                               algorithm=repo.cache.algorithm)


def _linked_from_workspace(repo: Repo, targets: Sequence[Target]) -> set[Oid]:
    """Cached objects that workspace files are symlinks to: deleting one would lose data the
    workspace shows, whatever the pointers say now."""
    cache = os.path.realpath(repo.cache.root)
    found: set[Oid] = set()
    for link in _symlinks(repo.abs(t.path) for t in targets):
        target = os.path.realpath(link)
        if not is_within(cache, target):
            continue
        folder, name = os.path.split(target)
        oid = os.path.basename(folder) + name
        if is_oid(oid, repo.cache.algorithm):
            found.add(Oid(oid))
    return found


def _symlinks(roots: Iterable[str]) -> Iterator[str]:
    for root in roots:
        if os.path.islink(root):
            yield root
        elif os.path.isdir(root):
            for folder, dirs, files in os.walk(root):
                for name in dirs + files:
                    path = os.path.join(folder, name)
                    if os.path.islink(path):  # os.walk does not descend into linked folders
                        yield path


def _stale_temp_files(repo: Repo, now: float) -> dict[str, int]:
    """Temp files older than STALE_AFTER, left behind by a crash: in the cache, and the
    workspace files checkout was writing in the repo's temp folder."""
    found: dict[str, int] = {}
    for folder, prefix in ((os.path.join(repo.cache.root, "tmp"), ""),
                           (repo.tmp_dir, links.TEMP_PREFIX)):
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if not entry.name.startswith(prefix) or not entry.is_file(
                        follow_symlinks=False
                    ):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if now - st.st_mtime > STALE_AFTER:
                        found[entry.path] = st.st_size
        except FileNotFoundError:
            pass
    return found


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0
