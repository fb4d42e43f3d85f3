"""Content hashes: xxh3-128 by default, sha256 on request, identical over any chunking."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvlite.storage import hashing
from dvlite.storage.hashing import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    hash_bytes,
    hash_file,
    hash_stream,
    is_oid,
    new_hasher,
)

if TYPE_CHECKING:
    from pathlib import Path

EMPTY_XXH128 = "99aa06d3014798d86001c324468d497f"
ABC_XXH128 = "06b05ab6733a618578af5f94892f3950"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


class ShortReads(io.RawIOBase):
    """A stream that hands out its bytes in the given piece sizes, however much is asked."""

    def __init__(self, data: bytes, pieces: list[int]) -> None:
        self._data = data
        self._pos = 0
        self._pieces = list(pieces)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._data):
            return b""
        want = self._pieces.pop(0) if self._pieces else len(self._data)
        want = max(1, want)
        if size is not None and size >= 0:
            want = min(want, size)
        chunk = self._data[self._pos : self._pos + want]
        self._pos += len(chunk)
        return chunk


def test_default_is_xxh128_with_known_vectors() -> None:
    assert DEFAULT_ALGORITHM == "xxh128"
    assert hash_bytes(b"") == EMPTY_XXH128
    assert hash_bytes(b"abc") == ABC_XXH128
    assert hash_bytes(b"abc") == xxhash.xxh3_128_hexdigest(b"abc")


def test_sha256_matches_hashlib() -> None:
    assert hash_bytes(b"", "sha256") == EMPTY_SHA256
    data = b"dvlite" * 1000
    assert hash_bytes(data, "sha256") == hashlib.sha256(data).hexdigest()


def test_algorithms_listed() -> None:
    assert set(ALGORITHMS) == {"xxh128", "sha256"}


def test_unknown_algorithm_is_rejected() -> None:
    with pytest.raises(ValueError, match="md5"):
        new_hasher("md5")
    with pytest.raises(ValueError, match="md5"):
        hash_bytes(b"x", "md5")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EMPTY_XXH128, True),
        (EMPTY_SHA256, True),
        (EMPTY_XXH128.upper(), False),
        (EMPTY_XXH128[:-1], False),
        (EMPTY_XXH128 + "0", False),
        (EMPTY_SHA256 + "0", False),
        ("g" * 32, False),
        ("0" * 48, False),
        ("", False),
        (" " + EMPTY_XXH128, False),
        (EMPTY_XXH128 + "\n", False),
        (None, False),
        (123, False),
        (EMPTY_XXH128.encode(), False),
    ],
)
def test_is_oid(value: object, expected: bool) -> None:
    assert is_oid(value) is expected


@pytest.mark.parametrize(
    ("value", "algorithm", "expected"),
    [
        (EMPTY_XXH128, "xxh128", True),
        (EMPTY_XXH128, "sha256", False),
        (EMPTY_SHA256, "sha256", True),
        (EMPTY_SHA256, "xxh128", False),
        (EMPTY_SHA256.upper(), "sha256", False),
        (EMPTY_XXH128, None, True),
        (EMPTY_SHA256, None, True),
        (None, "xxh128", False),
    ],
)
def test_is_oid_for_one_algorithm(value: object, algorithm: str | None, expected: bool) -> None:
    assert is_oid(value, algorithm) is expected


def test_oids_are_lowercase_hex_of_fixed_length() -> None:
    for algorithm, length in (("xxh128", 32), ("sha256", 64)):
        oid = hash_bytes(b"some bytes", algorithm)
        assert len(oid) == length
        assert oid == oid.lower()
        assert is_oid(oid)


def test_hash_stream_returns_size_and_feeds_sink() -> None:
    data = bytes(range(256)) * 50
    seen: list[bytes] = []
    oid, size = hash_stream(io.BytesIO(data), sink=seen.append)
    assert oid == hash_bytes(data)
    assert size == len(data)
    assert b"".join(seen) == data


def test_hash_stream_of_empty_stream() -> None:
    seen: list[bytes] = []
    assert hash_stream(io.BytesIO(b""), sink=seen.append) == (EMPTY_XXH128, 0)
    assert seen == []


def test_hash_file_reads_past_one_chunk(tmp_path: Path) -> None:
    data = b"\x00\xff" * (hashing.CHUNK_SIZE // 2) + b"tail"
    assert len(data) > hashing.CHUNK_SIZE
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert hash_file(str(path)) == xxhash.xxh3_128_hexdigest(data)
    assert hash_file(str(path), "sha256") == hashlib.sha256(data).hexdigest()


def test_hash_file_of_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(str(tmp_path / "nope"))


@_fixture_ok
@given(
    data=st.binary(max_size=4096),
    chunk=st.integers(min_value=1, max_value=700),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_hash_file_equals_hash_bytes_for_any_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, chunk: int, algorithm: str
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with monkeypatch.context() as m:
        m.setattr(hashing, "CHUNK_SIZE", chunk)
        seen: list[bytes] = []
        with open(path, "rb") as f:
            oid, size = hash_stream(f, algorithm, sink=seen.append)
        assert hash_file(str(path), algorithm) == hash_bytes(data, algorithm)
    assert oid == hash_bytes(data, algorithm)
    assert size == len(data)
    assert all(len(c) <= chunk for c in seen)
    assert b"".join(seen) == data


@given(
    data=st.binary(max_size=4096),
    pieces=st.lists(st.integers(min_value=1, max_value=600), max_size=30),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_hash_stream_is_independent_of_how_reads_split(
    data: bytes, pieces: list[int], algorithm: str
) -> None:
    seen: list[bytes] = []
    oid, size = hash_stream(ShortReads(data, pieces), algorithm, sink=seen.append)  # type: ignore[arg-type]
    assert oid == hash_bytes(data, algorithm)
    assert size == len(data)
    assert b"".join(seen) == data


@given(parts=st.lists(st.binary(max_size=300), max_size=10))
def test_incremental_updates_equal_one_shot(parts: list[bytes]) -> None:
    for algorithm in ALGORITHMS:
        hasher = new_hasher(algorithm)
        for part in parts:
            hasher.update(part)
        assert hasher.hexdigest() == hash_bytes(b"".join(parts), algorithm)


@given(a=st.binary(max_size=64), b=st.binary(max_size=64))
def test_different_bytes_give_different_oids(a: bytes, b: bytes) -> None:
    if a != b:
        assert hash_bytes(a) != hash_bytes(b)
    else:
        assert hash_bytes(a) == hash_bytes(b)
