"""Packs: writing, the strict index codec, batching, the catalog, and coalesced ranged reads."""

from __future__ import annotations

import io
import itertools
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import CorruptObjectError
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.packs import (
    PackCatalog,
    PackEntry,
    PackIndex,
    PackLocation,
    PackWriter,
    Span,
    batches,
    spans,
    split,
)

if TYPE_CHECKING:
    from pathlib import Path

ALGORITHMS = ("xxh128", "sha256")
SOURCE = "remote `s3://bucket/store`"

# distinct objects, each with whether it goes in from a cached file or from memory
objects = st.lists(st.tuples(st.binary(max_size=3000), st.booleans()),
                   unique_by=lambda item: item[0], max_size=24)


def write_pack(folder: Path, blobs: list[tuple[bytes, bool]], algorithm: str = "xxh128",
               ) -> tuple[PackIndex, bytes]:
    """A pack of ``blobs`` written to a real file in ``folder``: its index and its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    pack_path = folder / "pack"
    with open(pack_path, "w+b") as f:
        writer = PackWriter(f, algorithm)
        for n, (data, from_file) in enumerate(blobs):
            oid = hash_bytes(data, algorithm)
            if from_file:
                cached = folder / f"object{n}"
                cached.write_bytes(data)
                writer.add_file(oid, str(cached), len(data))
            else:
                writer.add_bytes(oid, data)
        index = writer.finish()
    return index, pack_path.read_bytes()


def index_of(sizes: list[int], algorithm: str = "xxh128") -> bytes:
    """Canonical index bytes for objects of ``sizes`` laid out back to back."""
    lines, offset = [], 0
    for n, size in enumerate(sizes):
        lines.append(f"{hash_bytes(str(n).encode(), algorithm)} {offset} {size}\n")
        offset += size
    return f"dvlite-pack 1 {algorithm}\n{offset}\n{''.join(lines)}".encode()


def parse(data: bytes, algorithm: str = "xxh128") -> PackIndex:
    """Parse ``data`` under its own hash, so the structural checks are what decide."""
    return PackIndex.parse(data, hash_bytes(data, algorithm), algorithm=algorithm, source=SOURCE)


# --- writing and reading back ---------------------------------------------------------------


@given(blobs=objects, algorithm=st.sampled_from(ALGORITHMS))
def test_every_object_reads_back_from_its_offset(
        tmp_path_factory: pytest.TempPathFactory, blobs: list[tuple[bytes, bool]],
        algorithm: str) -> None:
    index, pack = write_pack(tmp_path_factory.mktemp("pack"), blobs, algorithm)

    data = index.to_bytes(algorithm)
    assert index.pack == hash_bytes(data, algorithm)
    assert PackIndex.parse(data, index.pack, algorithm=algorithm, source=SOURCE) == index
    assert index.size == len(pack) == sum(len(blob) for blob, _ in blobs)
    assert [e.oid for e in index.entries] == [hash_bytes(b, algorithm) for b, _ in blobs]
    for entry in index.entries:
        stored = pack[entry.offset:entry.offset + entry.size]
        assert hash_bytes(stored, algorithm) == entry.oid


def test_the_index_text_is_the_documented_format(tmp_path: Path) -> None:
    index, pack = write_pack(tmp_path, [(b"hello", True), (b"", False), (b"world!", False)])

    hello, empty, world = (hash_bytes(b) for b in (b"hello", b"", b"world!"))
    assert index.to_bytes("xxh128") == (
        f"dvlite-pack 1 xxh128\n11\n{hello} 0 5\n{empty} 5 0\n{world} 5 6\n".encode())
    assert pack == b"helloworld!"


def test_an_object_added_twice_is_stored_once(tmp_path: Path) -> None:
    index, pack = write_pack(tmp_path, [(b"same", True), (b"other", False), (b"same", False),
                                        (b"other", True)])

    assert pack == b"sameother"
    assert [(e.offset, e.size) for e in index.entries] == [(0, 4), (4, 5)]


def test_a_pack_can_be_written_to_memory() -> None:
    buffer = io.BytesIO()
    writer = PackWriter(buffer, "xxh128")
    writer.add_bytes(hash_bytes(b"abc"), b"abc")
    index = writer.finish()

    assert buffer.getvalue() == b"abc"
    assert index.entries == (PackEntry(hash_bytes(b"abc"), 0, 3),)


def test_a_memory_pack_takes_cached_files_too(tmp_path: Path) -> None:
    cached = tmp_path / "object"
    cached.write_bytes(b"from the cache")
    buffer = io.BytesIO(b"")
    writer = PackWriter(buffer, "xxh128")
    writer.add_bytes(hash_bytes(b"first "), b"first ")
    writer.add_file(hash_bytes(b"from the cache"), str(cached), 14)

    assert writer.finish().size == 20
    assert buffer.getvalue() == b"first from the cache"


def test_a_cached_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    cached = tmp_path / "object"
    cached.write_bytes(b"truncated")
    with open(tmp_path / "pack", "wb") as f:
        writer = PackWriter(f, "xxh128")
        oid = hash_bytes(b"truncated!")
        with pytest.raises(CorruptObjectError, match=f"{oid} at `.*object` has 9 bytes, not 10"):
            writer.add_file(oid, str(cached), 10)
        assert writer.finish().entries == ()


# --- strict index parsing -------------------------------------------------------------------


def test_a_well_formed_index_parses() -> None:
    data = index_of([3, 0, 5], "sha256")
    index = parse(data, "sha256")

    assert (index.size, [(e.offset, e.size) for e in index.entries]) == (8, [(0, 3), (3, 0),
                                                                              (3, 5)])
    assert index.to_bytes("sha256") == data


def test_an_empty_pack_parses() -> None:
    assert parse(b"dvlite-pack 1 xxh128\n0\n").entries == ()


OID = hash_bytes(b"x")
OID2 = hash_bytes(b"y")


@pytest.mark.parametrize(("data", "why"), [
    (b"", "first line"),
    (b"dvlite-pack 2 xxh128\n0\n", "first line"),
    (b"dvlite-pack 1 sha256\n0\n", "first line is not `dvlite-pack 1 xxh128`"),
    (b"dvlite-pack 1 xxh128\n", "second line"),
    (b"dvlite-pack 1 xxh128\n0", "second line"),
    (b"dvlite-pack 1 xxh128\n05\n", "second line"),
    (b"dvlite-pack 1 xxh128\n+5\n", "second line"),
    (b"dvlite-pack 1 xxh128\n1_0\n", "second line"),
    (b"dvlite-pack 1 xxh128\n" + b"9" * 30 + b"\n", "second line"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 0 3".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 0 3\r\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID}  0 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID}\t0 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID.upper()} 0 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID[:-1]} 0 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{hash_bytes(b'x', 'sha256')} 0 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 00 3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 0 -3\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 0 3 extra\n".encode(), "line 3 is not"),
    (f"dvlite-pack 1 xxh128\n4\n{OID} 0 3\n{OID2} 3 1\n\n".encode(), "line 5 is not"),
    (f"dvlite-pack 1 xxh128\n4\n{OID} 0 3\n{OID2} 3 1\njunk".encode(), "line 5 is not"),
    (f"dvlite-pack 1 xxh128\n3\n{OID} 1 3\n".encode(), "at offset 1, not 0"),
    (f"dvlite-pack 1 xxh128\n5\n{OID} 0 3\n{OID2} 4 1\n".encode(), "at offset 4, not 3"),
    (f"dvlite-pack 1 xxh128\n5\n{OID} 0 3\n{OID2} 2 3\n".encode(), "at offset 2, not 3"),
    (f"dvlite-pack 1 xxh128\n4\n{OID2} 3 1\n{OID} 0 3\n".encode(), "at offset 3, not 0"),
    (f"dvlite-pack 1 xxh128\n4\n{OID} 0 3\n".encode(), "fill 3 bytes of a 4-byte pack"),
    (f"dvlite-pack 1 xxh128\n2\n{OID} 0 3\n".encode(), "fill 3 bytes of a 2-byte pack"),
    (f"dvlite-pack 1 xxh128\n6\n{OID} 0 3\n{OID} 3 3\n".encode(), f"{OID} is listed twice"),
])
def test_a_malformed_index_is_corrupt(data: bytes, why: str) -> None:
    with pytest.raises(CorruptObjectError, match=why) as caught:
        parse(data)
    assert caught.value.message.startswith(
        f"pack index {hash_bytes(data)} from {SOURCE} is corrupt: ")


def test_an_index_under_another_id_is_corrupt() -> None:
    data = index_of([1, 2])
    with pytest.raises(CorruptObjectError, match=f"from {SOURCE} is corrupt: its bytes hash to "
                                                 f"{hash_bytes(data)}"):
        PackIndex.parse(data, hash_bytes(b"another index"), algorithm="xxh128", source=SOURCE)


valid_indexes = st.builds(index_of, st.lists(st.integers(0, 10**6), max_size=8),
                          st.sampled_from(ALGORITHMS))


@given(data=valid_indexes, at=st.integers(0), flip=st.integers(1, 255))
def test_a_flipped_byte_is_caught(data: bytes, at: int, flip: int) -> None:
    at %= len(data)
    algorithm = "sha256" if b"sha256" in data.partition(b"\n")[0] else "xxh128"
    damaged = bytearray(data)
    damaged[at] ^= flip
    with pytest.raises(CorruptObjectError, match="its bytes hash to"):
        PackIndex.parse(bytes(damaged), hash_bytes(data, algorithm), algorithm=algorithm,
                        source=SOURCE)
    # even under its own id, damage parses only into another canonical index (a changed oid
    # digit) or is rejected: there is one valid encoding
    try:
        index = parse(bytes(damaged), algorithm)
    except CorruptObjectError:
        return
    assert index.to_bytes(algorithm) == damaged


@given(data=valid_indexes, keep=st.integers(0))
def test_a_truncated_index_is_caught(data: bytes, keep: int) -> None:
    keep %= len(data)
    algorithm = "sha256" if b"sha256" in data.partition(b"\n")[0] else "xxh128"
    with pytest.raises(CorruptObjectError):
        PackIndex.parse(data[:keep], hash_bytes(data, algorithm), algorithm=algorithm,
                        source=SOURCE)
    with pytest.raises(CorruptObjectError):
        parse(data[:keep], algorithm)


# --- batches --------------------------------------------------------------------------------

sized_oids = st.dictionaries(st.text("0123456789abcdef", min_size=32, max_size=32).map(Oid),
                             st.integers(0, 3000), max_size=40)


@given(sizes=sized_oids, target=st.integers(1, 5000))
def test_batches_cover_every_oid_once_in_oid_order(sizes: dict[Oid, int], target: int) -> None:
    got = batches(sizes, target)

    assert [oid for batch in got for oid in batch] == sorted(sizes)
    assert all(got)
    # the same objects, met in another order, make the same packs
    assert batches(dict(reversed(sizes.items())), target) == got


@given(sizes=sized_oids, target=st.integers(1, 5000))
def test_batches_fill_up_to_the_target(sizes: dict[Oid, int], target: int) -> None:
    got = batches(sizes, target)

    for n, batch in enumerate(got):
        filled = sum(sizes[oid] for oid in batch)
        assert filled <= target or len(batch) == 1  # only a lone big object goes over
        if n + 1 < len(got):  # closed only when the next object would not fit
            assert filled + sizes[got[n + 1][0]] > target


def test_an_object_bigger_than_what_is_left_starts_the_next_batch() -> None:
    a, b, c, d = (Oid(ch * 32) for ch in "abcd")

    assert batches({a: 6, b: 5, c: 12, d: 1}, 10) == [[a], [b], [c], [d]]
    assert batches({a: 4, b: 5, c: 1, d: 10}, 10) == [[a, b, c], [d]]
    with pytest.raises(ValueError, match="positive"):
        batches({a: 1}, 0)


# --- the catalog ----------------------------------------------------------------------------


def test_the_catalog_finds_each_oid_in_its_pack(tmp_path: Path) -> None:
    one, _ = write_pack(tmp_path / "one", [(b"a", False), (b"bb", False)])
    two, _ = write_pack(tmp_path / "two", [(b"ccc", False)])
    catalog = PackCatalog([one, two])

    assert catalog.indexes == {one.pack: one, two.pack: two}
    assert catalog.where(hash_bytes(b"bb")) == PackLocation(one.pack, one.entries[1])
    assert catalog.where(hash_bytes(b"ccc")) == PackLocation(two.pack, two.entries[0])
    assert catalog.where(hash_bytes(b"absent")) is None
    assert hash_bytes(b"a") in catalog
    assert hash_bytes(b"absent") not in catalog
    assert catalog.oids() == {hash_bytes(b) for b in (b"a", b"bb", b"ccc")}


def test_an_oid_in_two_packs_is_found_in_the_smaller_pack_id(tmp_path: Path) -> None:
    one, _ = write_pack(tmp_path / "one", [(b"shared", False), (b"x", False)])
    two, _ = write_pack(tmp_path / "two", [(b"y", False), (b"shared", False)])
    first = min(one, two, key=lambda index: index.pack)
    entry = next(e for e in first.entries if e.oid == hash_bytes(b"shared"))

    for order in ([one, two], [two, one]):
        assert PackCatalog(order).where(hash_bytes(b"shared")) == PackLocation(first.pack, entry)
    assert PackCatalog([]).oids() == set()


# --- spans and split ------------------------------------------------------------------------


def blobs_of(sizes: list[int], tag: str = "") -> list[bytes]:
    """Distinct objects of ``sizes`` bytes."""
    return [(f"{tag}{n}:".encode() * size)[:size] if size else b"" for n, size in
            enumerate(sizes)]


def read_spans(tmp_path: Path, sizes: list[int], wanted: list[int], *, gap: int, most: int,
               ) -> tuple[list[Span], list[bytes]]:
    """Spans over a real pack of distinct objects of ``sizes`` for the objects numbered
    ``wanted``, each span's data read by range from the pack file and split."""
    blobs = blobs_of(sizes)
    index, _ = write_pack(tmp_path, [(blob, True) for blob in blobs])
    by_oid = {hash_bytes(blob): blob for blob in blobs}
    got = spans(PackCatalog([index]), [hash_bytes(blobs[n]) for n in wanted], gap=gap, most=most)
    for span in got:
        with open(tmp_path / "pack", "rb") as f:
            f.seek(span.start)
            data = f.read(span.end - span.start)
        assert dict(split(span, data)) == {e.oid: by_oid[e.oid] for e in span.entries}
    return got, blobs


def test_adjacent_and_near_objects_share_a_read(tmp_path: Path) -> None:
    # offsets: 0 +10, 10 +10, 20 +5 (unwanted), 25 +10, 35 +100 (unwanted), 135 +10
    got, blobs = read_spans(tmp_path, [10, 10, 5, 10, 100, 10], [0, 1, 3, 5], gap=5, most=1000)

    assert [(s.start, s.end) for s in got] == [(0, 35), (135, 145)]
    assert [[e.oid for e in s.entries] for s in got] == [
        [hash_bytes(blobs[0]), hash_bytes(blobs[1]), hash_bytes(blobs[3])],
        [hash_bytes(blobs[5])]]


def test_a_read_stops_at_most_unless_one_object_is_bigger(tmp_path: Path) -> None:
    got, _ = read_spans(tmp_path, [10, 10, 10, 50, 10], [0, 1, 2, 3, 4], gap=0, most=25)

    assert [(s.start, s.end, len(s.entries)) for s in got] == [
        (0, 20, 2), (20, 30, 1), (30, 80, 1), (80, 90, 1)]


def test_an_empty_object_at_the_offset_of_the_next_shares_its_read(tmp_path: Path) -> None:
    got, _ = read_spans(tmp_path, [16, 0, 16], [0, 1, 2], gap=0, most=100)

    assert [(s.start, s.end, [e.size for e in s.entries]) for s in got] == [(0, 32, [16, 0, 16])]


def test_spans_come_by_pack_then_offset_and_skip_unpacked_oids(tmp_path: Path) -> None:
    one, _ = write_pack(tmp_path / "one", [(b, False) for b in blobs_of([4, 4, 4], "one")])
    two, _ = write_pack(tmp_path / "two", [(b, False) for b in blobs_of([4, 4], "two")])
    wanted = [e.oid for e in reversed(one.entries + two.entries)] + [hash_bytes(b"loose")]

    got = spans(PackCatalog([one, two]), wanted, gap=0, most=8)

    assert [(s.pack, s.start) for s in got] == sorted([(one.pack, 0), (one.pack, 8),
                                                       (two.pack, 0)])


@given(sizes=st.lists(st.integers(0, 60), min_size=1, max_size=20), data=st.data(),
       gap=st.integers(0, 80), most=st.integers(1, 150))
def test_spans_read_each_wanted_object_once_and_nothing_unwanted(
        tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject,
        gap: int, most: int) -> None:
    wanted = data.draw(st.lists(st.integers(0, len(sizes) - 1), unique=True))
    folder = tmp_path_factory.mktemp("spans")
    got, blobs = read_spans(folder, sizes, wanted, gap=gap, most=most)

    wanted_oids = {hash_bytes(blobs[n]) for n in wanted}
    read = [e.oid for s in got for e in s.entries]
    assert sorted(read) == sorted(wanted_oids)
    for span in got:
        assert (span.start, span.end) == (span.entries[0].offset,
                                          span.entries[-1].offset + span.entries[-1].size)
        assert span.end - span.start <= most or len(span.entries) == 1
        for before, after in itertools.pairwise(span.entries):
            assert before.offset + before.size <= after.offset  # by offset
            assert after.offset - (before.offset + before.size) <= gap
    for before, after in itertools.pairwise(got):  # split only when it had to be
        assert after.start - before.end > gap or after.end - before.start > most


def test_a_short_read_is_corrupt() -> None:
    span = Span("f" * 32, 100, 110, (PackEntry(hash_bytes(b"x" * 10), 100, 10),))

    with pytest.raises(CorruptObjectError, match=f"pack {'f' * 32} gave 7 bytes for range "
                                                 "100-110, not 10"):
        split(span, b"x" * 7)
    assert list(split(span, b"x" * 10)) == [(hash_bytes(b"x" * 10), b"x" * 10)]
