"""Folder manifests: the sorted list of a folder's files, stored as an object.

The encoding is canonical JSON, one file per line, so the same folder always
gives the same bytes and the same oid:

    {"dvlite-manifest":1,"files":[
    {"exec":false,"oid":"…","path":"a/b.csv","size":12},
    ...
    ]}

Decoding is strict, because a manifest may come from an untrusted remote: any
entry that could make dvlite write outside its folder is rejected.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from typing import TYPE_CHECKING

from dvlite.errors import PathError, PointerError
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, is_oid

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

FORMAT_VERSION = 1
MAGIC = b'{"dvlite-manifest":'  # the bytes every manifest starts with


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative POSIX path inside the folder
    oid: Oid
    size: int
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Manifest:
    entries: tuple[Entry, ...]  # sorted by path, paths unique

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> Manifest:
        """A manifest of a folder's files as walked: names a manifest may not hold are refused."""
        ordered = tuple(sorted(entries, key=lambda e: e.path))
        for entry in ordered:
            if not is_safe_relative_path(entry.path):
                raise PathError(
                    f"cannot track `{entry.path}`: a backslash or drive prefix in a name is not "
                    "portable", hint="rename the file",
                )
            try:
                entry.path.encode("utf-8")
            except UnicodeEncodeError:
                raise PathError(
                    f"cannot track {entry.path!r}: its name is not valid UTF-8",
                    hint="rename the file",
                ) from None
        for before, after in itertools.pairwise(ordered):
            if before.path == after.path:
                raise PointerError(f"manifest lists `{before.path}` twice")
        return cls(ordered)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}

    def to_bytes(self) -> bytes:
        # What json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives,
        # written out by hand because it is several times faster on big folders.
        lines = [
            f'{{"exec":{"true" if e.executable else "false"},"oid":"{e.oid}",'
            f'"path":{_json_string(e.path)},"size":{e.size}}}'
            for e in self.entries
        ]
        body = ",\n".join(lines)
        head = f'{MAGIC.decode()}{FORMAT_VERSION},"files":['
        return (f"{head}\n{body}\n]}}\n" if lines else f"{head}]}}\n").encode()

    @classmethod
    def from_bytes(
        cls, data: bytes, *, source: str, algorithm: str = DEFAULT_ALGORITHM
    ) -> Manifest:
        """Parse and validate; ``source`` names the object in error messages."""
        try:
            doc = json.loads(data.decode("utf-8"))
        # RecursionError: lists nested thousands deep (a hostile object with a valid name)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise PointerError(f"manifest {source} is not valid JSON: {exc}") from exc
        version = doc.get("dvlite-manifest") if isinstance(doc, dict) else None
        if type(version) is not int or version != FORMAT_VERSION:
            raise PointerError(f"manifest {source} has an unknown format")
        files = doc.get("files")
        if not isinstance(files, list):
            raise PointerError(f"manifest {source} has no file list")
        entries = tuple(_entry(item, source, algorithm) for item in files)
        for before, after in itertools.pairwise(entries):
            if before.path >= after.path:
                raise PointerError(f"manifest {source} is not sorted or lists `{after.path}` twice")
        paths = {e.path for e in entries}
        for e in entries:
            parts = e.path.split("/")
            if any("/".join(parts[:depth]) in paths for depth in range(1, len(parts))):
                raise PointerError(f"manifest {source} lists `{e.path}` inside a file")
        return cls(entries)


def _entry(item: object, source: str, algorithm: str) -> Entry:
    if not isinstance(item, dict):
        raise PointerError(f"manifest {source} has an entry that is not a table")
    path, oid, size, executable = (item.get(k) for k in ("path", "oid", "size", "exec"))
    if not isinstance(path, str) or not is_oid(oid, algorithm):
        raise PointerError(f"manifest {source} has an entry with a bad path or oid")
    if not is_safe_relative_path(path):
        raise PointerError(f"manifest {source} has an unsafe path {path!r}")
    if type(size) is not int or size < 0 or not isinstance(executable, bool):
        raise PointerError(f"manifest {source}: entry `{path}` has a bad size or exec flag")
    return Entry(path, Oid(str(oid)), size, executable)


def is_safe_relative_path(path: str) -> bool:
    """Only a plain relative POSIX path that stays where it is put, on any OS."""
    parts = path.split("/")
    return not (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
        # "c:x" names a drive on Windows, and a drive part restarts a joined path there
        or any(len(part) >= 2 and part[1] == ":" for part in parts)
    )


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    modified: tuple[tuple[Entry, Entry], ...]  # (old, new)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def diff(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> ManifestDiff:
    """What changed from ``old`` to ``new`` (both keyed by path)."""
    added = tuple(new[p] for p in sorted(new.keys() - old.keys()))
    removed = tuple(old[p] for p in sorted(old.keys() - new.keys()))
    modified = tuple(
        (old[p], new[p])
        for p in sorted(old.keys() & new.keys())
        if (old[p].oid, old[p].executable) != (new[p].oid, new[p].executable)
    )
    return ManifestDiff(added, removed, modified)
