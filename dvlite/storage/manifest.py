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
import re
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, cast

from dvlite.errors import PathError, PointerError
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, all_oids, is_oid

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

FORMAT_VERSION = 1
MAGIC = b'{"dvlite-manifest":'  # the bytes every manifest starts with
_PATH = attrgetter("path")
_SLICE = 4096  # entries encoded at a time


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
        ordered = tuple(sorted(entries, key=_PATH))
        check_walked([e.path for e in ordered])
        return cls(ordered)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}

    def to_bytes(self) -> bytes:
        entries = self.entries
        return encode([e.path for e in entries], [e.oid for e in entries],
                      [e.size for e in entries], [e.executable for e in entries])

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
        entries = _entries_in_bulk(files, algorithm)
        if entries is None:  # something is wrong: find it entry by entry, to name it
            entries = tuple(_entry(item, source, algorithm) for item in files)
        paths = [e.path for e in entries]
        if paths != sorted(set(paths)):
            for before, after in itertools.pairwise(paths):
                if before >= after:
                    raise PointerError(
                        f"manifest {source} is not sorted or lists `{after}` twice")
        folders = _folders_of(paths)
        if not folders.isdisjoint(paths):
            inside = next(p for p in paths if not _folders_of([p]).isdisjoint(paths))
            raise PointerError(f"manifest {source} lists `{inside}` inside a file")
        return cls(entries)


def encode(paths: Sequence[str], oids: Sequence[Oid], sizes: Sequence[int],
           executables: Sequence[bool]) -> bytes:
    """A manifest's bytes from its columns, in path order (a walked tree's files need no
    Entry each to be given an oid)."""
    # What json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives,
    # written out by hand because it is several times faster on big folders, and a
    # slice at a time so that a folder of millions of files is not held twice as text.
    head = f'{MAGIC.decode()}{FORMAT_VERSION},"files":['.encode()
    if not paths:
        return head + b"]}\n"
    parts = [head]
    for start in range(0, len(paths), _SLICE):
        end = start + _SLICE
        lines = (
            f'{{"exec":{"true" if executable else "false"},"oid":"{oid}",'
            f'"path":{_json_string(path)},"size":{size}}}'
            for path, oid, size, executable in zip(
                paths[start:end], oids[start:end], sizes[start:end], executables[start:end],
                strict=True)
        )
        parts.append(("\n" if start == 0 else ",\n").encode() + ",\n".join(lines).encode())
    parts.append(b"\n]}\n")
    return b"".join(parts)


def check_walked(paths: list[str]) -> None:
    """Refuse, naming it, a sorted walk's path that a manifest may not hold, or one listed
    twice."""
    if not all_safe(paths):
        for path in paths:  # the slow way, to name the first bad one
            _check_walked(path)
    if len(set(paths)) != len(paths):
        for before, after in itertools.pairwise(paths):
            if before == after:
                raise PointerError(f"manifest lists `{before}` twice")


def _check_walked(path: str) -> None:
    if not is_safe_relative_path(path):
        raise PathError(
            f"cannot track `{path}`: a backslash or drive prefix in a name is not portable",
            hint="rename the file",
        )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise PathError(
            f"cannot track {path!r}: its name is not valid UTF-8", hint="rename the file",
        ) from None


def _entries_in_bulk(files: list[object], algorithm: str) -> tuple[Entry, ...] | None:
    """The entries of a decoded file list, checked a column at a time; None when any entry
    is bad (``_entry`` then says which and why)."""
    if not _all_of_type(files, dict):
        return None
    items = cast("list[dict[str, object]]", files)
    try:
        paths, oids, sizes, execs = (list(map(itemgetter(k), items))
                                     for k in ("path", "oid", "size", "exec"))
    except KeyError:
        return None
    if not (_all_of_type(paths, str) and _all_of_type(oids, str)
            and _all_of_type(sizes, int) and _all_of_type(execs, bool)):
        return None
    text_paths = cast("list[str]", paths)
    text_oids = cast("list[str]", oids)
    if not (all_safe(text_paths) and all_oids(text_oids, algorithm)
            and min(cast("list[int]", sizes), default=0) >= 0):
        return None
    return tuple(map(Entry, text_paths, text_oids, sizes, execs))  # type: ignore[arg-type]


def _all_of_type(values: list[object], kind: type) -> bool:
    """Every value is exactly of ``kind`` (no subclass: a bool is not an int here)."""
    return set(map(type, values)) <= {kind}


def _folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder the paths lie in (not "" for the top)."""
    parents = {p.rpartition("/")[0] for p in paths}
    folders = set()
    for parent in parents:  # few: the folders, not the files
        folder = parent
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    return folders


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


_DRIVE = re.compile(r"(?:^|[\0/])[^\0/]:")
_BAD_PARTS = frozenset(("", ".", ".."))


def all_safe(paths: list[str]) -> bool:
    """``all(map(is_safe_relative_path, paths))`` and every path encodes as UTF-8, checked
    over all the paths at once (a manifest may list millions)."""
    if not paths:
        return True
    joined = "\0".join(paths)
    if (
        joined.count("\0") != len(paths) - 1  # a NUL inside a path
        or "\\" in joined
        or (":" in joined and _DRIVE.search(joined))
        or not _BAD_PARTS.isdisjoint(joined.replace("\0", "/").split("/"))
    ):
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    modified: tuple[tuple[Entry, Entry], ...]  # (old, new)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def diff(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> ManifestDiff:
    """What changed from ``old`` to ``new`` (both keyed by path)."""
    return diff_files(file_map(old), file_map(new))


FileRow = tuple[Oid, int, bool]  # a file's oid, size and executable bit
FileMap = dict[str, FileRow]  # by path: a folder's files, light enough to build for millions


def file_map(entries: Mapping[str, Entry]) -> FileMap:
    return {key: (e.oid, e.size, e.executable) for key, e in entries.items()}


def diff_files(old: FileMap, new: FileMap) -> ManifestDiff:
    """``diff`` of two file maps, with an Entry made only for each changed file."""
    old_row = old.get
    newer = sorted((p, row) for p, row in new.items() if old_row(p) != row)  # few, mostly
    added = tuple(Entry(p, *row) for p, row in newer if p not in old)
    removed = tuple(Entry(p, *old[p]) for p in sorted(old.keys() - new.keys()))
    modified = tuple((Entry(p, *old[p]), Entry(p, *row)) for p, row in newer
                     if p in old and _content(old[p]) != _content(row))
    return ManifestDiff(added, removed, modified)


def _content(row: FileRow) -> tuple[Oid, bool]:
    """What makes a file modified: its oid or its executable bit (a size goes with its oid)."""
    return row[0], row[2]
