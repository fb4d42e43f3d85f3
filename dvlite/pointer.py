"""``<name>.dvl`` pointer files: one canonical TOML encoding, strict decoding.

A pointer names the data beside it and the object that holds it. Unknown keys
are kept on rewrite, so files written by a newer dvlite survive an older one.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import tomli_w

from dvlite.errors import PointerError
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, is_oid
from dvlite.storage.manifest import is_safe_relative_path

SUFFIX = ".dvl"
VERSION = 1
MAX_BYTES = 64 * 1024  # a pointer is tiny; anything bigger is not one
HEADER = "# dvlite pointer: commit this file; the data lives in the cache and remotes\n"
_KNOWN = ("version", "path", "oid", "size", "files", "kind")

Kind = Literal["file", "dir"]


@dataclass(frozen=True)
class Pointer:
    path: str  # relative to the pointer's folder
    oid: Oid
    size: int
    kind: Kind
    files: int | None = None  # folders only
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept as they were

    def with_data(self, oid: Oid, size: int, files: int | None, kind: Kind) -> Pointer:
        return replace(self, oid=oid, size=size, files=files, kind=kind)

    def encode(self) -> bytes:
        known: dict[str, Any] = {"version": VERSION, "path": self.path, "oid": self.oid,
                                 "size": self.size}
        if self.kind == "dir":
            known["files"] = self.files
        known["kind"] = self.kind
        # tomli_w keeps insertion order and puts tables after plain keys.
        return (HEADER + tomli_w.dumps({**known, **dict(sorted(self.extra.items()))})).encode()


def decode(data: bytes, *, source: str, algorithm: str = DEFAULT_ALGORITHM) -> Pointer:
    """Parse pointer bytes; every problem is a PointerError naming ``source``.

    The oid must be one ``algorithm`` (the repo's ``core.hash``) can produce.
    """
    if len(data) > MAX_BYTES:
        raise PointerError(f"`{source}` is {len(data)} bytes, too big to be a dvlite pointer")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PointerError(
            f"`{source}` is not a valid pointer: {exc}",
            hint="restore it with `git checkout -- <file>`, or re-add the data",
        ) from exc
    if doc.get("version") != VERSION or type(doc.get("version")) is not int:
        raise PointerError(f"`{source}` has unsupported version {doc.get('version')!r}")
    path, oid, size, kind, files = (doc.get(k) for k in ("path", "oid", "size", "kind", "files"))
    if not isinstance(path, str):
        raise PointerError(f"`{source}` has no `path`")
    if "/" in path or not is_safe_relative_path(path):
        raise PointerError(
            f"`{source}` has an unsafe path {path!r}",
            hint="a pointer's path is the plain name of the data beside it",
        )
    if not is_oid(oid, algorithm):
        raise PointerError(f"`{source}` has a malformed oid {oid!r}")
    if type(size) is not int or size < 0:
        raise PointerError(f"`{source}` has a bad size {size!r}")
    if kind not in ("file", "dir"):
        raise PointerError(f"`{source}` has an unknown kind {kind!r}")
    if kind == "dir" and (type(files) is not int or files < 0):
        raise PointerError(f"`{source}` is a folder pointer without a valid `files` count")
    if kind == "file" and files is not None:
        raise PointerError(f"`{source}` is a file pointer with a `files` count")
    extra = {k: v for k, v in doc.items() if k not in _KNOWN}
    return Pointer(path, Oid(oid), size, kind, files, extra)  # type: ignore[arg-type]


def load(pointer_file: str, algorithm: str = DEFAULT_ALGORITHM) -> Pointer:
    try:
        with open(pointer_file, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise PointerError(f"`{pointer_file}` does not exist") from None
    except IsADirectoryError:
        raise PointerError(f"`{pointer_file}` is a folder, not a pointer") from None
    return decode(data, source=pointer_file, algorithm=algorithm)


def pointer_file_for(data_path: str) -> str:
    return data_path + SUFFIX


def data_path_for(pointer_file: str, pointer: Pointer) -> str:
    return os.path.join(os.path.dirname(pointer_file), *pointer.path.split("/"))
