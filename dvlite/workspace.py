"""What is tracked, and what the workspace holds at each tracked path.

Tracked data is found through its ``.dvl`` pointers and through the cached outputs
that ``dvlite.lock`` records for pipeline stages, in the work tree or at a git
revision; a stage output is handed around as a pointer too, so every command treats
both alike. ``scan`` reads a tracked path's current content with one stat
per file and hashes only files the stat index cannot vouch for; given an
object store it also stores those files, hashing as it copies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from dvlite import pointer as pointers
from dvlite.errors import MissingObjectError, PathError
from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.pipeline import lockfile as lockfiles
from dvlite.repo import DVLITE_DIR, Repo
from dvlite.storage.manifest import Entry, FileMap, Manifest, ManifestDiff, diff_files, file_map
from dvlite.storage.scanner import manifest_bytes, scan_path
from dvlite.storage.scanner import manifest_of as tree_manifest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from dvlite.pipeline.lockfile import Lockfile
    from dvlite.pointer import Kind, Pointer
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.tree import Tree


@dataclass(frozen=True)
class Tracked:
    pointer_file: str  # repo-relative POSIX paths; `dvlite.lock` for a stage output
    path: str
    pointer: Pointer
    stage: str | None = None  # the stage whose output this is

    @property
    def source(self) -> str:
        """Where it is recorded, for messages."""
        return f"stage `{self.stage}` in {self.pointer_file}" if self.stage else self.pointer_file


@dataclass(frozen=True)
class Target:
    """A tracked path, or one file or folder inside a tracked folder (``sub``)."""

    tracked: Tracked
    sub: str = ""

    @property
    def path(self) -> str:
        return f"{self.tracked.path}/{self.sub}" if self.sub else self.tracked.path


@dataclass(frozen=True)
class DataState:
    """What the workspace holds at a tracked path."""

    kind: Kind | None  # None: nothing there
    oid: Oid | None = None
    size: int = 0
    executable: bool = False  # files
    tree: Tree | None = None  # folders: their files as walked, and their oids

    @property
    def files(self) -> int:
        return len(self.tree.records) if self.tree is not None else 0

    @cached_property
    def manifest(self) -> Manifest | None:
        return tree_manifest(self.tree) if self.tree is not None else None

    def entries(self) -> dict[str, Entry]:
        """Files keyed by their path inside the folder ("" for a single file)."""
        if self.manifest is not None:
            return self.manifest.by_path()
        if self.oid is not None:
            return {"": Entry("", self.oid, self.size, self.executable)}
        return {}

    def file_map(self) -> FileMap:
        """``entries()``, light: what comparisons of big folders are made with."""
        if self.tree is not None:
            return self.tree.file_map()
        if self.oid is not None:
            return {"": (self.oid, self.size, self.executable)}
        return {}


@dataclass(frozen=True)
class Scan:
    state: DataState
    hashed_files: int
    hashed_bytes: int


def _tracked(pointer_file: str, ptr: Pointer) -> Tracked:
    folder = os.path.dirname(pointer_file)
    return Tracked(pointer_file, f"{folder}/{ptr.path}" if folder else ptr.path, ptr)


def load_tracked(repo: Repo, pointer_file: str) -> Tracked:
    """The pointer at ``pointer_file`` (repo-relative) in the work tree."""
    return _tracked(pointer_file, pointers.load(repo.abs(pointer_file), repo.cache.algorithm))


def find_tracked(repo: Repo, under: str = "", *, outs: bool = True) -> list[Tracked]:
    """Every pointer in the work tree at or below ``under`` and, with ``outs``, every cached
    stage output the workspace's lock records there; sorted by data path."""
    found = [load_tracked(repo, p) for p in _pointer_files(repo.abs(under), under)]
    if outs:
        found.extend(workspace_outs(repo, under))
    return sorted(found, key=lambda t: t.path)


def workspace_outs(repo: Repo, under: str = "") -> list[Tracked]:
    """The cached stage outputs the workspace's lock records at or below ``under``."""
    lock = lockfiles.load(repo.abs(lockfiles.FILENAME), algorithm=repo.cache.algorithm)
    return stage_outs(lock, under)


def stage_outs(lock: Lockfile, under: str = "") -> list[Tracked]:
    """The cached outputs ``lock`` records at or below ``under``, as tracked data."""
    found = []
    for name, stage in lock.stages.items():
        for path, out in stage.outs.items():
            rel = stage.in_repo(path)
            if out.cache and (not under or rel == under or rel.startswith(under + "/")):
                ptr = pointers.Pointer(rel.rpartition("/")[2], out.oid, out.size, out.kind,
                                       out.files)
                found.append(Tracked(lockfiles.FILENAME, rel, ptr, name))
    return found


def _pointer_files(abs_dir: str, rel_dir: str) -> Iterator[str]:
    try:
        with os.scandir(abs_dir) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return
    names = {e.name for e in entries}
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if entry.name.endswith(pointers.SUFFIX) and entry.is_file(follow_symlinks=False):
            yield rel
        elif (
            entry.is_dir(follow_symlinks=False)
            and entry.name not in (".git", DVLITE_DIR)
            and entry.name + pointers.SUFFIX not in names  # tracked data holds no pointers
        ):
            yield from _pointer_files(entry.path, rel)


def tracked_at(repo: Repo, rev: str, under: str = "", *, outs: bool = True) -> list[Tracked]:
    """Every pointer committed at ``rev`` at or below ``under`` and, with ``outs``, every
    cached stage output that ``rev``'s lock records there."""
    algorithm = repo.cache.algorithm
    found = [
        _tracked(path, pointers.decode(data, source=f"{rev}:{path}", algorithm=algorithm))
        for path, data in repo.git.files_at(rev, pointers.SUFFIX, under)
    ]
    lock_data = repo.git.read_at(rev, lockfiles.FILENAME) if outs else None
    if lock_data is not None:
        lock = lockfiles.decode(lock_data, source=f"{rev}:{lockfiles.FILENAME}",
                                algorithm=algorithm)
        found.extend(stage_outs(lock, under))
    return sorted(found, key=lambda t: t.path)


def resolve_targets(repo: Repo, targets: Sequence[str]) -> list[Target]:
    """Command-line targets (absolute paths) as tracked paths; none means everything."""
    if not targets:
        return [Target(t) for t in find_tracked(repo)]
    resolved: list[Target] = []
    for target in targets:
        rel = repo.rel(target)
        resolved.extend(_resolve_one(repo, rel, target))
    return resolved


def _resolve_one(repo: Repo, rel: str, shown: str) -> list[Target]:
    if rel.endswith(pointers.SUFFIX) and os.path.isfile(repo.abs(rel)):
        return [Target(load_tracked(repo, rel))]
    parts = rel.split("/") if rel else []
    for depth in range(len(parts), 0, -1):  # the path itself, then each folder above it
        pointer_file = "/".join(parts[:depth]) + pointers.SUFFIX
        if os.path.isfile(repo.abs(pointer_file)):
            return [Target(load_tracked(repo, pointer_file), "/".join(parts[depth:]))]
    for out in workspace_outs(repo):
        if rel == out.path or rel.startswith(out.path + "/"):
            return [Target(out, rel[len(out.path) + 1:])]
    if os.path.isdir(repo.abs(rel)):
        inside = find_tracked(repo, rel)
        if inside:
            return [Target(t) for t in inside]
    raise PathError(
        f"`{shown}` is not tracked by dvlite", hint=f"track it with `dvlite add {shown}`"
    )


def scan(
    repo: Repo,
    path: str,
    *,
    store: ObjectStore | None = None,
    keep: bool = True,
    jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
    watched: bool = False,
) -> Scan:
    """Read what the workspace holds at ``path`` (repo-relative), hashing as little as possible.

    With ``store``, every file ends up in it as well (for add and commit). Without ``keep``
    (see ``scan_path``) a changed folder's oid is None. ``watched``: ask the repo's
    file-system watcher, if ``core.fsmonitor`` is on, what changed (only for reports, which
    record nothing: see storage/fsmonitor.py).
    """
    found = scan_path(repo.index, path, repo.abs(path), store or repo.cache,
                      allowed=(repo.root, repo.cache_dir), store=store is not None, keep=keep,
                      jobs=jobs or default_jobs(repo), progress=progress,
                      monitor=repo.monitor if watched else None)
    if found is None:
        return Scan(DataState(None), 0, 0)
    if found.kind == "file":
        _, _, _, size, executable = found.tree.records[0]
        state = DataState("file", found.oid, size, executable)
    else:
        state = DataState("dir", found.oid, found.tree.size, tree=found.tree)
    return Scan(state, found.hashed_files, found.hashed_bytes)


def default_jobs(repo: Repo) -> int:
    """Threads for file I/O: enough to keep the disk and both cores busy."""
    configured: int | None = repo.config.get("core.jobs")
    return configured or min(8, (os.cpu_count() or 1) * 2)


def manifest_of(repo: Repo, ptr: Pointer) -> Manifest:
    """The manifest a folder pointer names, read from the cache and verified."""
    data = repo.cache.read_verified(ptr.oid)
    return Manifest.from_bytes(data, source=ptr.oid, algorithm=repo.cache.algorithm)


def pointer_entries(repo: Repo, ptr: Pointer) -> dict[str, Entry]:
    """The files a pointer records, keyed as in ``DataState.entries``."""
    if ptr.kind == "dir":
        return manifest_of(repo, ptr).by_path()
    return {"": Entry("", ptr.oid, ptr.size)}


def recorded_files(repo: Repo, tracked: Tracked) -> FileMap:
    """The files a tracked path's pointer records, from a tree the stat index keeps for the
    path when it has one with the pointer's oid (a scan built that manifest from these very
    files) and the manifest is cached (a folder without it counts as missing), else from
    the manifest."""
    ptr = tracked.pointer
    tree = repo.index.tree_of(tracked.path, ptr.oid) if ptr.kind == "dir" else None
    if tree is None or not repo.cache.exists(ptr.oid):
        return file_map(pointer_entries(repo, ptr))
    return tree.file_map()


def below(entries: dict[str, Entry], sub: str) -> dict[str, Entry]:
    """The entries at or inside ``sub``, keyed relative to it ("" for ``sub`` itself)."""
    if not sub:
        return entries
    return {new_key: replace(entries[key], path=new_key) for key, new_key in _rebased(entries, sub)}


def files_below(files: FileMap, sub: str) -> FileMap:
    """``below`` for a file map."""
    if not sub:
        return files
    return {new_key: files[key] for key, new_key in _rebased(files, sub)}


def _rebased(keys: Iterable[str], sub: str) -> Iterator[tuple[str, str]]:
    """Each key at or inside ``sub`` (not empty), with that key made relative to ``sub``."""
    prefix = sub + "/"
    for key in keys:
        if key == sub:
            yield key, ""
        elif key.startswith(prefix):
            yield key, key[len(prefix):]


@dataclass(frozen=True)
class Comparison:
    """A target's recorded files against the workspace. ``same``: the workspace holds exactly
    what the pointer records (known from the oids alone, so no file list is built)."""

    target: Target
    scan: Scan
    same: bool
    known: FileMap | None = None  # unless same; None when its manifest is not cached

    @cached_property
    def present_files(self) -> FileMap:
        present = self.scan.state.file_map()
        if self.target.tracked.pointer.kind == "file" and "" in present:
            # a file pointer records no executable bit, so do not compare one
            oid, size, _ = present[""]
            present[""] = (oid, size, False)
        return present

    @property
    def recorded_files(self) -> FileMap | None:
        return self.present_files if self.same else self.known

    @property
    def present(self) -> dict[str, Entry]:
        return _entries(self.present_files)

    @property
    def manifest_cached(self) -> bool:
        """Whether the recorded file list is known (``recorded_files`` is not None)."""
        return self.same or self.known is not None

    @cached_property
    def changes(self) -> ManifestDiff:
        return diff_files(self.recorded_files or {}, self.present_files)

    @property
    def matches(self) -> bool:
        if self.same:
            return True
        if self.known is None:  # only the folder's oid is left to compare
            return self.scan.state.oid == self.target.tracked.pointer.oid
        return not self.changes


def _entries(files: FileMap) -> dict[str, Entry]:
    return {path: Entry(path, *row) for path, row in files.items()}


def compare(repo: Repo, target: Target, *, keep: bool = True, watched: bool = False,
            progress: Progress = NO_PROGRESS) -> Comparison:
    """``target``'s pointer against the workspace; ``keep`` and ``watched``: as for ``scan``
    (false for a command about to rewrite the target; true for a report)."""
    # the watcher watches whole tracked folders: one inside another would be a second watch
    scan_result = scan(repo, target.path, keep=keep, watched=watched and not target.sub,
                       progress=progress)
    ptr = target.tracked.pointer
    if not target.sub and scan_result.state.oid == ptr.oid:
        return Comparison(target, scan_result, same=True)
    try:
        recorded: FileMap | None = files_below(recorded_files(repo, target.tracked), target.sub)
    except MissingObjectError:
        recorded = None
    if target.sub and recorded is not None and not recorded:
        raise PathError(f"`{target.path}` is not in tracked folder `{target.tracked.path}`",
                        hint=f"`dvlite ls {target.tracked.path}` lists its files")
    state = scan_result.state
    if recorded is None and state.oid is None and state.tree is not None:
        # without the pointer's file list, only the folder's oid can say if it matches
        oid = repo.cache.hash_of(manifest_bytes(state.tree))
        scan_result = replace(scan_result, state=replace(state, oid=oid))
    return Comparison(target, scan_result, same=False, known=recorded)
