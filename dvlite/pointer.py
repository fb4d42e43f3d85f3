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
from dvlite.storage.hashing import ALGORITHMS, DEFAULT_ALGORITHM, Oid, is_oid
from dvlite.storage.manifest import is_safe_relative_path

SUFFIX = ".dvl"
VERSION = 1
MAX_BYTES = 64 * 1024  # a pointer is tiny; anything bigger is not one
HEADER = "# dvlite pointer: commit this file; the data lives in the cache and remotes\n"
_KNOWN = ("version", "path", "oid", "size", "files", "kind", "hash")
# A pointer records the hash of its oid as `hash`, written only when it is not the default
# (so xxh128 pointers stay as they always were). Where it is absent the oid's length says it:
# sha256 pointers written before `hash` existed read the same.
_ALGORITHM_OF_LENGTH = {32: "xxh128", 64: "sha256"}
# git's folder and dvlite's own: data written there would replace the repo's history, config
# or cache (`checkout --force` of a pointer named `.git` deleted `.git`)
RESERVED = (".git", ".dvlite")

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
        if (algorithm := _ALGORITHM_OF_LENGTH.get(len(self.oid))) != DEFAULT_ALGORITHM:
            known["hash"] = algorithm
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
    # RecursionError: 64 KiB is room for arrays nested thousands deep (tomllib recurses)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
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
    if is_reserved(path) or path.endswith(SUFFIX):
        raise PointerError(
            f"`{source}` names `{path}`, which dvlite never writes data to",
            hint="`.git`, `.dvlite` and `.dvl` pointer files are not data; restore the pointer "
            "with `git checkout -- <file>`",
        )
    _check_oid(doc, source, algorithm)
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


def _check_oid(doc: dict[str, Any], source: str, algorithm: str) -> None:
    """The oid is one its recorded hash gives, and that hash is the repo's (``algorithm``)."""
    oid = doc.get("oid")
    default = _ALGORITHM_OF_LENGTH.get(len(oid)) if isinstance(oid, str) else None
    recorded = doc.get("hash", default)
    if recorded is not None and recorded not in ALGORITHMS:
        raise PointerError(f"`{source}` records an unknown hash {recorded!r}",
                           hint=f"dvlite knows {' and '.join(ALGORITHMS)}")
    if recorded is None or not is_oid(oid, recorded):
        raise PointerError(f"`{source}` has a malformed oid {oid!r}")
    if recorded != algorithm:
        raise PointerError(
            f"`{source}` records a {recorded} oid, but this repo hashes with {algorithm} "
            "(`core.hash`)",
            hint=f"a repo keeps one hash: set `core.hash` back to {recorded} in "
            "`.dvlite/config.toml` (and out of the user config and the environment)",
        )


def is_reserved(rel_path: str) -> bool:
    """Whether a repo-relative POSIX path is, or is inside, `.git` or `.dvlite`, in any letter
    case and with trailing dots or spaces (case-insensitive filesystems, and Windows, read
    `.GIT` and `.git.` as `.git`)."""
    return rel_path.split("/", 1)[0].rstrip(". ").lower() in RESERVED


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
