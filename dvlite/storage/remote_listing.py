"""Asking a remote what it holds, in as few requests as its kind allows: an existence check
per object for a few, a listing of the 2-hex folders they fall in for more, or (an object
store, whose listing is flat) one paged listing of the whole store.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dvlite.fsutil import run_parallel
from dvlite.storage.hashing import Oid, is_oid

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from dvlite.storage.remote_store import RemoteStore

_EXISTS_UP_TO = 256  # a stat each costs less than listing folders below this many oids
_PAGE = 1000  # keys an object store returns per listing request
_FOLDERS = 256  # 2-hex folders


def missing(store: RemoteStore, oids: Iterable[Oid], *, jobs: int) -> set[Oid]:
    """The oids not stored here, asking whichever way takes fewest requests: one existence
    check per object, a listing of each 2-hex folder they fall in, or (an object store) a
    listing of every object at once, a page of keys per request."""
    wanted = sorted(set(oids))
    if len(wanted) <= _EXISTS_UP_TO:
        return _missing_each(store, wanted, jobs)
    prefixes = sorted({oid[:2] for oid in wanted})
    sample = _list(store, prefixes[0])  # one folder, a sample of how full they all are
    by_folder = len(prefixes) * max(1, len(sample) // _PAGE)
    whole = len(sample) * _FOLDERS // _PAGE + 1 if store.traits.object_store else by_folder
    if min(by_folder, whole) >= len(wanted):
        return _missing_each(store, wanted, jobs)
    if whole < by_folder:
        return set(wanted) - set(oids_below(store, store.root))
    listed = run_parallel(lambda prefix: _list(store, prefix), prefixes[1:], jobs)
    return set(wanted) - sample - {oid for names in listed for oid in names}

def _missing_each(store: RemoteStore, wanted: list[Oid], jobs: int) -> set[Oid]:
    found = run_parallel(store.exists, wanted, jobs)
    return {oid for oid, there in zip(wanted, found, strict=True) if not there}

def _list(store: RemoteStore, prefix: str) -> set[str]:
    folder = f"{store.root}/{prefix}"
    with store.errors():
        store.fs.invalidate_cache(folder)
        try:
            names = store.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return set()
    return {prefix + posixpath.basename(n.rstrip("/")) for n in names}


def oids_below(store: RemoteStore, folder: str) -> list[Oid]:
    """The names of the ``<folder>/<2 hex>/<rest>`` files that make an oid; files deeper
    down (the run cache's index in ``runs/``) or elsewhere (``tmp/``) are not objects."""
    with store.errors():
        store.fs.invalidate_cache(folder)
        try:
            paths = store.fs.find(folder)
        except FileNotFoundError:
            return []
    # backends differ on a leading "/" (webdav lists "a/b" below "/a")
    prefix = store.fs._strip_protocol(folder).strip("/") + "/"
    found = []
    for path in sorted(paths):
        rel = store.fs._strip_protocol(path).strip("/").removeprefix(prefix)
        head, _, rest = rel.partition("/")
        if len(head) == 2 and "/" not in rest and is_oid(head + rest):
            found.append(Oid(head + rest))
    return found


def files_in(store: RemoteStore, folder: str) -> dict[str, float | None]:
    """The files in ``folder``: name → modification time (seconds; None when the backend
    does not say)."""
    with store.errors():
        store.fs.invalidate_cache(folder)
        try:
            entries = store.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return {}
    return {posixpath.basename(e["name"].rstrip("/")): _mtime(e) for e in entries
            if e.get("type") != "directory"}


def _mtime(entry: Mapping[str, Any]) -> float | None:
    """A listing entry's modification time, whichever name the backend gives it."""
    for key in ("mtime", "LastModified", "last_modified", "modified", "created"):
        value = entry.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    return None
