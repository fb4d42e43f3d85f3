"""Reading tracked data from Python, at any revision of any repo::

    import dvlite.api
    raw = dvlite.api.read("data/raw.csv", rev="v1.0")                    # str
    model = dvlite.api.read("models/model.pkl", rev="v1.0", mode="rb")  # bytes
    with dvlite.api.open("data/raw/a.csv", rev="HEAD~2") as f:          # a file inside a
        header = f.readline()                                           # tracked folder

``repo`` is the project holding the current folder by default; a path or URL of any other
git repo reads that repo's committed data (see docs/api.md). What is returned has been
checked against its oid before the first byte is read; ``open`` never loads the whole file.
Errors are dvlite errors: PathError (untracked or unsafe path), ObjectError, TransferError,
GitError (unknown revision), NotARepoError, ConfigError. ``ls`` lists what is tracked.
"""

from __future__ import annotations

import io
import os
from typing import IO, TYPE_CHECKING, Any, Literal, overload

from dvlite.errors import PathError, UsageError
from dvlite.ops.read import open_snapshot, repo_path
from dvlite.storage.manifest import Entry

if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

    from dvlite.workspace import Tracked

__all__ = ["ls", "open", "read"]

_MODES = {"r": False, "rt": False, "rb": True}  # mode → binary?


@overload
def open(path: str | os.PathLike[str], *, repo: str | None = ..., rev: str | None = ...,
         remote: str | None = ..., mode: Literal["rb"], encoding: None = ...) -> BinaryIO: ...
@overload
def open(path: str | os.PathLike[str], *, repo: str | None = ..., rev: str | None = ...,
         remote: str | None = ..., mode: Literal["r", "rt"] = ...,
         encoding: str | None = ...) -> TextIO: ...


def open(path: str | os.PathLike[str], *, repo: str | None = None, rev: str | None = None,
         remote: str | None = None, mode: str = "r", encoding: str | None = None) -> IO[Any]:
    """Open the tracked file at ``path`` (relative to the repo's top folder; it may be a
    file inside a tracked folder) as it is at ``rev`` (default: what the workspace records
    now) of ``repo``, for reading: text (UTF-8 unless ``encoding``) or, with ``mode="rb"``,
    bytes. Objects the cache lacks come from ``remote`` (default: the default remote)."""
    return _open(path, repo=repo, rev=rev, remote=remote, mode=mode, encoding=encoding)


@overload
def read(path: str | os.PathLike[str], *, repo: str | None = ..., rev: str | None = ...,
         remote: str | None = ..., mode: Literal["rb"], encoding: None = ...) -> bytes: ...
@overload
def read(path: str | os.PathLike[str], *, repo: str | None = ..., rev: str | None = ...,
         remote: str | None = ..., mode: Literal["r", "rt"] = ...,
         encoding: str | None = ...) -> str: ...


def read(path: str | os.PathLike[str], *, repo: str | None = None, rev: str | None = None,
         remote: str | None = None, mode: str = "r", encoding: str | None = None) -> str | bytes:
    """The whole content of the tracked file at ``path``: ``str``, or ``bytes`` with
    ``mode="rb"``; the arguments are those of ``open``."""
    with _open(path, repo=repo, rev=rev, remote=remote, mode=mode, encoding=encoding) as f:
        data: str | bytes = f.read()
    return data


def _open(path: str | os.PathLike[str], *, repo: str | None, rev: str | None,
          remote: str | None, mode: str, encoding: str | None) -> IO[Any]:
    binary = _MODES.get(mode)
    if binary is None:
        raise UsageError(f"mode `{mode}`: dvlite.api only reads",
                         hint='use mode="r" for text or mode="rb" for bytes')
    if binary and encoding is not None:
        raise UsageError("binary mode takes no encoding", hint='use mode="r" to decode text')
    rel = repo_path(path)  # before anything is opened or cloned
    # the snapshot (and a clone's temporary folder) is gone once the file is open: the open
    # file keeps its bytes readable (POSIX), and nothing is left to clean up after it
    with open_snapshot(repo, rev, remote=remote, cwd=os.getcwd()) as snapshot:
        f = snapshot.open_file(rel)
    if binary:
        return f
    return io.TextIOWrapper(f, encoding=encoding or "utf-8")


def ls(path: str | os.PathLike[str] = "", *, repo: str | None = None, rev: str | None = None,
       remote: str | None = None, recursive: bool = False) -> list[dict[str, Any]]:
    """The tracked data at or below ``path`` (default: the whole repo) at ``rev`` of ``repo``,
    sorted by path: ``{"path", "type": "file" | "directory", "size", "oid"}`` per entry, where
    ``oid`` is a file's (None for a directory, whose size sums its files). Without
    ``recursive``, only the entries directly in ``path``; with it, every file below it. A
    tracked folder's file list comes from its manifest, fetched if the cache lacks it."""
    rel = repo_path(path) if os.fspath(path) not in ("", ".") else ""
    with open_snapshot(repo, rev, remote=remote, cwd=os.getcwd()) as snapshot:
        files = {
            f"{tracked.path}/{key}" if key else tracked.path: entry
            for tracked in snapshot.tracked()
            if not rel or _overlap(tracked.path, rel)
            for key, entry in (snapshot.manifest(tracked).items() if tracked.pointer.kind == "dir"
                               else [("", _file_entry(tracked))])
        }
    below = {p: e for p, e in files.items() if not rel or p == rel or p.startswith(rel + "/")}
    if not below:
        raise PathError(f"`{rel}` holds no tracked data", hint="list the repo with ls()")
    if recursive or list(below) == [rel]:
        return [{"path": p, "type": "file", "size": e.size, "oid": e.oid}
                for p, e in sorted(below.items())]
    children: dict[str, dict[str, Any]] = {}
    start = len(rel) + 1 if rel else 0
    for p, entry in sorted(below.items()):
        name, _, deeper = p[start:].partition("/")
        child = f"{rel}/{name}" if rel else name
        if not deeper:
            children[child] = {"path": child, "type": "file", "size": entry.size,
                               "oid": entry.oid}
        else:
            folder = children.setdefault(child, {"path": child, "type": "directory",
                                                 "size": 0, "oid": None})
            folder["size"] += entry.size
    return sorted(children.values(), key=lambda c: c["path"])


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _file_entry(tracked: Tracked) -> Entry:
    return Entry("", tracked.pointer.oid, tracked.pointer.size)
