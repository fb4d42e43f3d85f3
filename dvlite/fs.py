"""``dvlite://``: tracked data as a read-only fsspec filesystem, at any revision of any repo::

    fsspec.open("dvlite://data/raw.csv", rev="v1").open()
    pandas.read_csv("dvlite://data/raw.csv", storage_options={"rev": "v1"})
    DvliteFileSystem(repo="https://host/org/repo", rev="main").ls("data")

Registered through the ``fsspec.specs`` entry point. Paths are relative to the repo's top
folder. Its folders are the folders that hold tracked paths, tracked folders and the
folders inside them; its files are tracked files and the files of tracked folders. Options
are those of ``dvlite.api.open``: ``repo``, ``rev``, ``remote`` (see docs/api.md).

fsspec keeps one instance per set of options (and thread): an instance reads the commit
its ``rev`` named when first used; with no ``rev`` it follows the workspace's pointers as
they change. Missing paths raise ``NotTrackedError``, which is both dvlite's PathError and
the FileNotFoundError fsspec's ``exists``, ``isdir`` and ``walk`` expect; writes raise
``ReadOnlyError`` (also a PermissionError).
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any, NoReturn

from fsspec.spec import AbstractFileSystem

from dvlite import scm
from dvlite.errors import DvliteError, PathError
from dvlite.ops.read import open_snapshot, repo_path

if TYPE_CHECKING:
    from typing import BinaryIO

    from dvlite.ops.snapshot import Snapshot
    from dvlite.storage.hashing import Oid
    from dvlite.storage.manifest import Entry
    from dvlite.workspace import Target, Tracked

Info = dict[str, Any]
Tree = dict[str, dict[str, "Entry | None"]]  # folder → name → its file's entry, None: a folder


class NotTrackedError(PathError, FileNotFoundError):
    """No tracked data at a path."""


class ReadOnlyError(DvliteError, PermissionError):
    """A write to the read-only ``dvlite://`` filesystem."""


class DvliteFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    protocol = "dvlite"
    root_marker = ""

    def __init__(self, repo: str | None = None, rev: str | None = None,
                 remote: str | None = None) -> None:
        super().__init__(repo=repo, rev=rev, remote=remote)
        self.repo, self.rev, self.remote = repo, rev, remote
        # one snapshot per current folder when `repo` is local: fsspec hands out this same
        # instance after a chdir, and "the project here" may then be another one
        self._snapshots: dict[str, Snapshot] = {}
        self._trees: dict[Oid, Tree] = {}
        weakref.finalize(self, _close_all, self._snapshots)

    def close(self) -> None:
        """Close what the instance opened (git, a clone's temporary folder); the next call
        opens it again."""
        _close_all(self._snapshots)

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> str | list[str]:
        if isinstance(path, list):
            return [str(cls._strip_protocol(p)) for p in path]
        return str(path).removeprefix("dvlite://").strip("/")

    def _snapshot(self) -> Snapshot:
        key = self.repo if self.repo is not None and scm.is_git_url(self.repo) else os.getcwd()
        snapshot = self._snapshots.get(key)
        if snapshot is None:
            snapshot = open_snapshot(self.repo, self.rev, remote=self.remote, cwd=os.getcwd())
            self._snapshots[key] = snapshot
        return snapshot

    def _lookup(self, path: str) -> tuple[Snapshot, str, Target | None]:
        """(snapshot, repo-relative path, the tracked path holding it or None)."""
        try:
            stripped = str(self._strip_protocol(path))
            rel = repo_path(stripped) if stripped else ""
            snapshot = self._snapshot()
            return snapshot, rel, snapshot.find(rel) if rel else None
        except NotTrackedError:
            raise
        except PathError as exc:  # unsafe, in `.git`, behind a symlink: not there for fsspec
            raise NotTrackedError(exc.message, hint=exc.hint) from None

    def info(self, path: str, **kwargs: Any) -> Info:
        snapshot, rel, target = self._lookup(path)
        if target is not None:
            return self._info_at(snapshot, target)
        if rel and not any(t.path.startswith(rel + "/") for t in snapshot.tracked()):
            raise NotTrackedError(f"`{rel}` is not tracked by dvlite {snapshot.label}")
        return _folder(rel)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Info] | list[str]:
        snapshot, rel, target = self._lookup(path)
        if target is None:
            found = self._outside(snapshot, rel)
        elif (info := self._info_at(snapshot, target))["type"] == "file":
            found = [info]
        else:
            tree = self._tree(snapshot, target)
            found = [_file(f"{rel}/{name}", entry) if entry is not None
                     else _folder(f"{rel}/{name}")
                     for name, entry in sorted(tree[target.sub].items())]
        return found if detail else [info["name"] for info in found]

    def _outside(self, snapshot: Snapshot, rel: str) -> list[Info]:
        """A folder above tracked paths: its tracked paths, and the folders leading to more."""
        prefix = f"{rel}/" if rel else ""
        found: dict[str, Info] = {}
        for tracked in snapshot.tracked():
            if not tracked.path.startswith(prefix):
                continue
            name, sep, _ = tracked.path[len(prefix):].partition("/")
            if sep:
                found.setdefault(name, _folder(prefix + name))
            else:
                found[name] = _tracked_info(tracked)
        if rel and not found:
            raise NotTrackedError(f"`{rel}` is not tracked by dvlite {snapshot.label}")
        return [found[name] for name in sorted(found)]

    def _info_at(self, snapshot: Snapshot, target: Target) -> Info:
        """A tracked path, or a file or folder inside a tracked folder."""
        if not target.sub:
            return _tracked_info(target.tracked)
        folder, _, name = target.sub.rpartition("/")
        siblings = self._tree(snapshot, target).get(folder, {})
        if name not in siblings:
            raise NotTrackedError(f"`{target.path}` is not in tracked folder "
                                  f"`{target.tracked.path}` {snapshot.label}")
        entry = siblings[name]
        return _file(target.path, entry) if entry is not None else _folder(target.path)

    def _tree(self, snapshot: Snapshot, target: Target) -> Tree:
        """The folders of a tracked folder, built once per manifest (``walk`` lists each)."""
        oid = target.tracked.pointer.oid
        tree = self._trees.get(oid)
        if tree is None:
            tree = {"": {}}
            for key, entry in snapshot.manifest(target.tracked).items():
                folder, _, name = key.rpartition("/")
                tree.setdefault(folder, {})[name] = entry
                while folder:  # link each new folder into its parent
                    parent, _, name = folder.rpartition("/")
                    siblings = tree.setdefault(parent, {})
                    if name in siblings:
                        break
                    siblings[name] = None
                    folder = parent
            self._trees[oid] = tree
        return tree

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> BinaryIO:
        if mode != "rb":
            self._read_only()
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(f"`{info['name']}` is a folder, not a file")
        return self._snapshot().open_object(info["oid"], info["size"], info["name"])

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError("the dvlite:// filesystem is read-only",
                            hint="change the data in the workspace, then `dvlite add` it")

    # every way fsspec writes ends in one of these
    mkdir = makedirs = rmdir = rm = rm_file = _rm = touch = _read_only
    cp_file = put_file = pipe_file = mv = _read_only


def _tracked_info(tracked: Tracked) -> Info:
    ptr = tracked.pointer
    return {"name": tracked.path, "size": ptr.size, "oid": ptr.oid,
            "type": "file" if ptr.kind == "file" else "directory"}


def _file(name: str, entry: Entry) -> Info:
    return {"name": name, "size": entry.size, "oid": entry.oid, "type": "file",
            "executable": entry.executable}


def _folder(name: str) -> Info:
    return {"name": name, "size": 0, "type": "directory"}


def _close_all(snapshots: dict[str, Snapshot]) -> None:
    while snapshots:
        snapshots.popitem()[1].close()
