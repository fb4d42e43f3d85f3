"""Bringing a DVC out's bytes into dvlite's cache: from the workspace when they are what DVC
recorded (the md5 is checked on the copy in dvlite's cache, so the bytes checked are the
bytes kept), else straight from DVC's cache, file by file for a folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import DvliteError
from dvlite.ops.migrate.common import digest_of
from dvlite.ops.migrate.dvc_files import DvcCache, DvcOut, dir_md5, dos2unix_md5
from dvlite.storage.manifest import Entry, Manifest
from dvlite.workspace import scan

if TYPE_CHECKING:
    from dvlite.pointer import Kind
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid


@dataclass(frozen=True)
class Data:
    oid: Oid
    size: int
    kind: Kind
    files: int | None
    source: str


def where(repo: Repo, cache: DvcCache, out: DvcOut) -> str:
    """Where a dry run expects an out's bytes to come from."""
    if os.path.lexists(repo.abs(out.path)):
        return "workspace"
    return "DVC cache" if cache.find(out.md5, is_dir=out.is_dir, legacy=out.legacy) else "missing"


def store_out(repo: Repo, cache: DvcCache, out: DvcOut) -> Data | None:
    """Store ``out``'s bytes in dvlite's cache, from the workspace when they are what DVC
    recorded, else from DVC's cache; None when neither has them."""
    state = scan(repo, out.path, store=repo.cache).state
    present: dict[str, tuple[Entry, str]] = {}  # workspace file -> (entry, md5)
    if state.oid is not None and (state.kind == "dir") == out.is_dir:
        for key, entry in state.entries().items():
            present[key] = (entry, _md5(repo, entry.oid, legacy=out.legacy))
        md5s = ((k, md5) for k, (_, md5) in present.items())
        if (dir_md5(md5s) if out.is_dir else present[""][1]) == out.md5:
            files = len(present) if out.is_dir else None
            return Data(state.oid, state.size, "dir" if out.is_dir else "file", files, "workspace")
    if not out.is_dir:
        path = cache.find(out.md5, legacy=out.legacy)
        if path is None:
            return None
        oid = repo.cache.add_file(path)
        _check_md5(repo, oid, out, path)
        return Data(oid, os.path.getsize(path), "file", None, "DVC cache")
    listing = cache.dir_entries(out)
    if listing is None:
        return None
    entries = []
    for relpath, md5 in listing:
        if relpath in present and present[relpath][1] == md5:
            entries.append(present[relpath][0])
            continue
        path = cache.find(md5, legacy=out.legacy)
        if path is None:
            return None
        oid = repo.cache.add_file(path)
        _check_md5(repo, oid, out, path, md5)
        entries.append(Entry(relpath, oid, os.path.getsize(path)))
    manifest = Manifest.build(entries)
    oid = repo.cache.add_bytes(manifest.to_bytes())
    return Data(oid, manifest.size, "dir", len(entries), "DVC cache")


def _md5(repo: Repo, oid: Oid, *, legacy: bool) -> str:
    if legacy:  # DVC 2 read text with CRLF as LF
        return dos2unix_md5(repo.cache.read_verified(oid))
    return digest_of(repo.cache, oid, "md5")


def _check_md5(repo: Repo, oid: Oid, out: DvcOut, path: str, md5: str | None = None) -> None:
    wanted = md5 or out.md5
    if _md5(repo, oid, legacy=out.legacy) != wanted:
        raise DvliteError(f"DVC's cache object `{path}` is corrupt (its md5 is not {wanted})",
                          hint="repair it with `dvc fetch` or `dvc pull`, then import again")


class OutStore:
    """``store_out`` once per out: a folder both added with `dvc add` and a stage's dep is
    read and checked once."""

    def __init__(self, repo: Repo, cache: DvcCache) -> None:
        self.repo, self.cache = repo, cache
        self._done: dict[tuple[str, str, bool, bool], Data | None] = {}

    def store(self, out: DvcOut) -> Data | None:
        key = (out.path, out.md5, out.is_dir, out.legacy)
        if key not in self._done:
            self._done[key] = store_out(self.repo, self.cache, out)
        return self._done[key]
