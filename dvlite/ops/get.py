"""``dvlite get``: tracked data from any git repo (a path or URL), without cloning its data.

``ops/read.py`` makes a bare, blobless clone of the one revision, from which only the
project config and the pointers are read (git fetches just those files). The objects come
from that project's remote into a cache, each verified as it arrives: the current project's
cache when there is one with the same hash, else a temporary one. The data is put together in a
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

from dvlite import pointer as pointers
from dvlite import scm
from dvlite.errors import PathError, UnsafeOperationError
from dvlite.fsutil import NO_PROGRESS, Progress, is_within
from dvlite.ops.read import open_clone
from dvlite.storage import links
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from dvlite.pointer import Kind
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.manifest import Entry
    from dvlite.storage.odb import ObjectStore
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
        with open_clone(source, rev, work=os.path.join(work, "clone"), remote=remote,
                        into=into) as snapshot:
            target = snapshot.locate(rel)
            shared = into is not None and snapshot.cache is into.cache
            with into.lock() if into is not None and shared else contextlib.nullcontext():
                entries = snapshot.entries(target)  # a folder's manifest says what else to get
                snapshot.fetch({e.oid: e.size for e in entries.values()}, target.path,
                               jobs=jobs, progress=progress)
                staged = os.path.join(work, "out")
                _assemble(snapshot.cache, entries, staged, move=not shared)
                _check_out(out, force, into)  # again: something may have appeared meanwhile
                _put_in_place(staged, out, os.path.join(work, "replaced"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sha, moved = snapshot.sha, snapshot.moved
    assert sha is not None  # a clone is always read at a commit
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
