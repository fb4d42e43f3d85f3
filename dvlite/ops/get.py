"""``dvlite get``: tracked data from any git repo (a path or URL), without cloning its data.

Git makes a bare, blobless clone of the one revision, from which only the project config
and the pointer are read (git fetches just those files). The objects come from that
project's remote into a cache, each verified as it arrives: the current project's cache
when there is one with the same hash, else a temporary one. The data is put together in a
staging folder beside ``out`` and renamed into place, so ``out`` appears whole or not at all.
Everything temporary is removed when the command ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from dvlite import pointer as pointers
from dvlite import scm
from dvlite.config import Config, user_config_path
from dvlite.errors import (
    ConfigError,
    NotARepoError,
    PathError,
    TransferError,
    UnsafeOperationError,
)
from dvlite.fsutil import NO_PROGRESS, Progress, is_within
from dvlite.remote import open_remote, protocol_of
from dvlite.storage import links, transfer
from dvlite.storage.manifest import Entry, Manifest, is_safe_relative_path
from dvlite.storage.odb import ObjectStore
from dvlite.workspace import below

if TYPE_CHECKING:
    from dvlite.pointer import Kind, Pointer
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.remote_store import RemoteStore
    from dvlite.storage.transfer import TransferResult

CONFIG_FILE = ".dvlite/config.toml"
_PRIVATE_COPY = ("reflink", "copy")  # never a link into a cache: `out` is the user's own


@dataclass(frozen=True)
class GetResult:
    source: str
    path: str  # in the source repo
    rev: str  # the commit sha it was read at
    out: str
    kind: Kind
    files: int
    size: int
    downloaded: int  # objects fetched from the remote
    cached: int  # objects the cache held already


def get(
    source: str, path: str, out: str, *, rev: str | None = None, remote: str | None = None,
    into: Repo | None = None, force: bool = False, jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> GetResult:
    """Write the data tracked at ``path`` in git repo ``source`` (at ``rev``, default its HEAD)
    to ``out``, downloading it from that repo's remote (``remote``, default its default one).

    With ``into``, a dvlite project, its cache keeps the downloaded objects.
    """
    rel = clean_path(path)
    out = os.path.abspath(out)
    _check_out(out, force, into)
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".dvlite-get-", dir=parent)  # beside out: one filesystem
    except OSError as exc:
        raise PathError(f"cannot write in `{parent}`: {exc.strerror or exc}",
                        hint="choose another place with `-o OUT`") from None
    try:
        sha = scm.clone_revision(source, rev, os.path.join(work, "git"))
        git = scm.Git(os.path.join(work, "git"))
        try:
            config = _config_at(git, sha, work, source)
            algorithm: str = config.get("core.hash")
            ptr, tracked_path, sub = _find(git, sha, rel, algorithm, f"`{source}` at {sha[:12]}")
        finally:
            git.close()
        store = _remote(config, remote, source)
        jobs = jobs or store.jobs
        shared = into is not None and into.cache.algorithm == algorithm
        cache = into.cache if into is not None and shared else ObjectStore(
            os.path.join(work, "cache"), algorithm=algorithm)
        with into.lock() if into is not None and shared else contextlib.nullcontext():
            entries, moved = _download(store, cache, ptr, tracked_path, sub, jobs=jobs,
                                       progress=progress)
            staged = os.path.join(work, "out")
            _assemble(cache, entries, staged, move=not shared)
            _check_out(out, force, into)  # again: something may have appeared meanwhile
            _put_in_place(staged, out, os.path.join(work, "replaced"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return GetResult(source, rel, sha, out, "file" if "" in entries else "dir", len(entries),
                     sum(e.size for e in entries.values()), len(moved.transferred),
                     len(moved.skipped))


def is_url(source: str) -> bool:
    """Whether a REPO argument is a URL for git; otherwise it is a local path."""
    return scm.is_git_url(source)


def clean_path(path: str) -> str:
    """``path`` as a plain relative POSIX path inside the repo (a pointer file names its data)."""
    rel = posixpath.normpath(path) if path else ""
    rel = rel.removesuffix(pointers.SUFFIX)
    if path.startswith("/") or not is_safe_relative_path(rel):
        raise PathError(f"`{path}` is not a path inside a repo",
                        hint="give it relative to the repo's top folder, e.g. `data/images`")
    return rel


def default_out(path: str) -> str:
    """Where ``get`` writes by default: the last part of ``path``, in the current folder."""
    return posixpath.basename(clean_path(path))


def _check_out(out: str, force: bool, into: Repo | None) -> None:
    if not os.path.lexists(out):
        return
    if not force:
        raise UnsafeOperationError(
            f"`{out}` exists already",
            hint="choose another place with `-o OUT`, or pass `--force` to replace it",
        )
    if os.path.isdir(out) and not os.path.islink(out) and (
        os.path.lexists(os.path.join(out, ".git"))
        or (into is not None and is_within(out, into.root))
    ):
        raise UnsafeOperationError(f"`{out}` holds a git repo; not replacing it, even with "
                                   "`--force`", hint="choose another place with `-o OUT`")


def _put_in_place(staged: str, out: str, aside: str) -> None:
    """Rename ``staged`` to ``out``; what ``out`` held (with --force) is moved ``aside`` first,
    and back if the rename fails."""
    if not os.path.lexists(out):
        os.replace(staged, out)
        return
    os.replace(out, aside)
    try:
        os.replace(staged, out)
    except BaseException:
        os.replace(aside, out)
        raise


def _config_at(git: scm.Git, sha: str, work: str, source: str) -> Config:
    """The project config committed at ``sha`` over the user's config (for credentials)."""
    data = git.read_at(sha, CONFIG_FILE)
    if data is None:
        raise NotARepoError(f"`{source}` at {sha[:12]} is not a dvlite project "
                            f"(it has no `{CONFIG_FILE}`)",
                            hint="check the repo and the revision (`--rev`)")
    project = os.path.join(work, "config.toml")
    with open(project, "wb") as f:
        f.write(data)
    # not strict: a value this dvlite cannot read should not stop a download
    return Config.load({"user": user_config_path(), "project": project}, {}, strict=False)


def _find(git: scm.Git, sha: str, rel: str, algorithm: str,
          where: str) -> tuple[Pointer, str, str]:
    """The pointer tracking ``rel`` (itself, or a folder above it): (pointer, tracked path,
    path inside the tracked folder)."""
    parts = rel.split("/")
    for depth in range(len(parts), 0, -1):
        here = "/".join(parts[:depth])
        data = git.read_at(sha, here + pointers.SUFFIX)
        if data is None:
            continue
        ptr = pointers.decode(data, source=f"{here}{pointers.SUFFIX} in {where}",
                              algorithm=algorithm)
        sub = "/".join(parts[depth:])
        if ptr.path == parts[depth - 1] and not (sub and ptr.kind == "file"):
            return ptr, here, sub
        break
    raise PathError(f"`{rel}` is not tracked by dvlite in {where}",
                    hint="check the path and the revision (`--rev`)")


def _remote(config: Config, name: str | None, source: str) -> RemoteStore:
    """The source project's remote ``name`` (default: its ``core.remote``)."""
    name = name or config.get("core.remote")
    if not name:
        raise ConfigError(f"`{source}` has no default remote to download from",
                          hint="name one of its remotes with `-r NAME`")
    options = config.section(f"remote.{name}")
    url = options.pop("url", None)
    if not url:
        raise ConfigError(f"`{source}` has no remote `{name}` in its committed config",
                          hint="name one of its remotes with `-r NAME` (remotes in its "
                               "`config.local.toml` are not visible from outside)")
    url = str(url)
    if protocol_of(url) == "file" and "://" not in url:
        url = os.path.expanduser(url)
        if not os.path.isabs(url):  # relative to the source repo's folder
            url = os.path.join(_local_root(source, name, url), url)
    return open_remote(name, url, options)


def _local_root(source: str, name: str, url: str) -> str:
    if not scm.is_git_url(source):
        return os.path.abspath(source)
    if source.startswith("file://"):
        return url2pathname(urlparse(source).path)
    raise ConfigError(
        f"remote `{name}` of `{source}` is the relative folder `{url}`, which means something "
        "only on the machine that holds that repo",
        hint="get from a local clone of it, or name another remote with `-r NAME`",
    )


def _download(
    store: RemoteStore, cache: ObjectStore, ptr: Pointer, tracked_path: str, sub: str, *,
    jobs: int, progress: Progress,
) -> tuple[dict[str, Entry], TransferResult]:
    """The files to write (keyed by path inside ``out``; "" for a single file), all in
    ``cache`` once this returns. A folder's manifest comes first: it says what else to get."""
    shown = f"{tracked_path}/{sub}" if sub else tracked_path
    moved = transfer.EMPTY
    if ptr.kind == "file":
        entries = {"": Entry("", ptr.oid, ptr.size)}
    else:
        moved = transfer.download(store, cache, {ptr.oid: 0}, jobs=jobs)
        _raise_failed(moved, shown, store)
        manifest = Manifest.from_bytes(cache.read_verified(ptr.oid),
                                       source=f"{ptr.oid} (`{tracked_path}`)",
                                       algorithm=cache.algorithm)
        entries = below(manifest.by_path(), sub)
        if not entries:
            raise PathError(f"`{shown}` is not in tracked folder `{tracked_path}`")
    sizes = {e.oid: e.size for e in entries.values()}
    moved += transfer.download(store, cache, sizes, jobs=jobs, progress=progress)
    _raise_failed(moved, shown, store)
    return entries, moved


def _raise_failed(result: TransferResult, shown: str, store: RemoteStore) -> None:
    if result.failed:
        oid, why = next(iter(result.failed.items()))
        raise TransferError(
            f"{len(result.failed)} object(s) of `{shown}` could not be downloaded from "
            f"{store.name}; first {oid}: {why}",
            {str(o): w for o, w in result.failed.items()},
            hint="run the command again: it retries what failed",
        )


def _assemble(cache: ObjectStore, entries: dict[str, Entry], dest: str, *, move: bool) -> None:
    """Write ``entries`` at ``dest``. With ``move`` (a cache about to be thrown away) each
    object is renamed out of it instead of copied; a second file of the same bytes is a copy
    of the first."""
    written: dict[Oid, str] = {}
    for key, entry in sorted(entries.items()):
        target = os.path.join(dest, *key.split("/")) if key else dest
        os.makedirs(os.path.dirname(target), exist_ok=True)
        first = written.get(entry.oid)
        if first is not None:
            shutil.copyfile(first, target)
        elif move:
            os.replace(cache.path(entry.oid), target)
        else:
            links.materialize(cache, entry.oid, target, _PRIVATE_COPY)
        os.chmod(target, 0o755 if entry.executable else 0o644)
        written.setdefault(entry.oid, target)
