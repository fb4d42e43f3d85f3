"""Content hashes. The only module that imports xxhash.

An oid is the lowercase hex digest of an object's bytes: xxh3-128 (32 digits)
by default, sha256 (64 digits) when a repo asks for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, BinaryIO, NewType, Protocol

import xxhash

if TYPE_CHECKING:
    from collections.abc import Callable

Oid = NewType("Oid", str)

DEFAULT_ALGORITHM = "xxh128"
ALGORITHMS = ("xxh128", "sha256")
CHUNK_SIZE = 1 << 20  # large reads: xxhash releases the GIL on buffers this big
_OID_RES = {"xxh128": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}
_OID_LINES_RES = {name: re.compile(f"(?:{r.pattern}\n)*") for name, r in _OID_RES.items()}


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str = DEFAULT_ALGORITHM) -> Hasher:
    if algorithm == "xxh128":
        return xxhash.xxh3_128()
    if algorithm == "sha256":
        import hashlib  # noqa: PLC0415  (the default, xxh128, needs none of it)

        return hashlib.sha256()
    raise ValueError(f"unknown hash algorithm {algorithm!r}")


def is_oid(value: object, algorithm: str | None = None) -> bool:
    """True for an oid of ``algorithm`` (of any known algorithm when None)."""
    if not isinstance(value, str):
        return False
    patterns = _OID_RES.values() if algorithm is None else (_OID_RES[algorithm],)
    return any(p.fullmatch(value) for p in patterns)


def all_oids(values: list[str], algorithm: str) -> bool:
    """``all(is_oid(v, algorithm) for v in values)``, in one regex pass over them joined."""
    return bool(_OID_LINES_RES[algorithm].fullmatch("".join(v + "\n" for v in values)))


def hash_bytes(data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Oid:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return Oid(hasher.hexdigest())


def hash_stream(
    f: BinaryIO,
    algorithm: str = DEFAULT_ALGORITHM,
    *,
    sink: Callable[[bytes], object] | None = None,
) -> tuple[Oid, int]:
    """Hash everything ``f`` yields, passing each chunk on to ``sink`` as well.

    Returns (oid, bytes read); one pass serves both hashing and copying.
    """
    hasher = new_hasher(algorithm)
    size = 0
    while chunk := f.read(CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink(chunk)
    return Oid(hasher.hexdigest()), size


def hash_file(path: str, algorithm: str = DEFAULT_ALGORITHM) -> Oid:
    with open(path, "rb", buffering=0) as f:
        return hash_stream(f, algorithm)[0]
