"""The stat index: remembered oids, trusted only for provably unchanged, non-racy files."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.fsutil import FileStat
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.stat_index import StatIndex

if TYPE_CHECKING:
    from pathlib import Path

SECOND = 1_000_000_000
OID_A = Oid("a" * 32)
OID_B = Oid("b" * 32)


def write_old(path: Path, data: bytes, *, age_s: int = 10) -> FileStat:
    """Write a file whose mtime lies safely in the past; return its stat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = os.stat(path).st_mtime_ns - age_s * SECOND
    os.utime(path, ns=(past, past))
    return FileStat.of(os.stat(path))


def current(path: Path) -> FileStat:
    return FileStat.of(os.stat(path))


def remembered(index: StatIndex, key: str, path: Path) -> Oid | None:
    return StatIndex.trusted_oid(index.lookup(key).get(key), current(path))


def fake_stat(size: int = 1) -> FileStat:
    return FileStat(inode=1, mtime_ns=1, size=size, executable=False)


def test_unchanged_file_is_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "data" / "a.csv"
    st = write_old(f, b"a,b\n")
    oid = hash_bytes(b"a,b\n")
    stamp = index.fs_clock()
    index.record([("data/a.csv", st, oid)], stamp)
    assert set(index.lookup("data")) == {"data/a.csv"}
    assert remembered(index, "data/a.csv", f) == oid


def test_nothing_known_is_not_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "x"
    write_old(f, b"x")
    assert index.lookup("x") == {}
    assert StatIndex.trusted_oid(None, current(f)) is None
    assert remembered(index, "x", f) is None


@pytest.mark.parametrize("offset_ns", [0, 1, SECOND])
def test_racy_entry_is_not_trusted(index: StatIndex, tmp_path: Path, offset_ns: int) -> None:
    f = tmp_path / "racy.bin"
    write_old(f, b"payload")
    stamp = index.fs_clock()
    os.utime(f, ns=(stamp + offset_ns, stamp + offset_ns))  # mtime >= stamp
    index.record([("racy.bin", current(f), hash_bytes(b"payload"))], stamp)
    assert remembered(index, "racy.bin", f) is None


def test_mtime_just_before_stamp_is_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "edge.bin"
    write_old(f, b"payload")
    stamp = index.fs_clock()
    os.utime(f, ns=(stamp - 1, stamp - 1))
    index.record([("edge.bin", current(f), hash_bytes(b"payload"))], stamp)
    assert remembered(index, "edge.bin", f) == hash_bytes(b"payload")


def test_file_written_after_the_stamp_is_racy(index: StatIndex, tmp_path: Path) -> None:
    stamp = index.fs_clock()
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"just written")
    assert os.stat(f).st_mtime_ns >= stamp
    index.record([("fresh.bin", current(f), hash_bytes(b"just written"))], stamp)
    assert remembered(index, "fresh.bin", f) is None


def test_changed_mtime_is_not_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "m"
    st = write_old(f, b"same size")
    index.record([("m", st, OID_A)], index.fs_clock())
    os.utime(f, ns=(st.mtime_ns + 1, st.mtime_ns + 1))
    assert remembered(index, "m", f) is None


def test_changed_size_is_not_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "s"
    st = write_old(f, b"1234")
    index.record([("s", st, OID_A)], index.fs_clock())
    f.write_bytes(b"12345")
    os.utime(f, ns=(st.mtime_ns, st.mtime_ns))  # same mtime, other size
    assert current(f).mtime_ns == st.mtime_ns
    assert remembered(index, "s", f) is None


def test_replaced_file_is_not_trusted(index: StatIndex, tmp_path: Path) -> None:
    f = tmp_path / "r"
    st = write_old(f, b"abcd")
    index.record([("r", st, OID_A)], index.fs_clock())
    other = tmp_path / "r.new"
    other.write_bytes(b"wxyz")  # same size
    os.utime(other, ns=(st.mtime_ns, st.mtime_ns))  # same mtime
    keep_inode_busy = tmp_path / "r.old"
    os.link(f, keep_inode_busy)  # so the new file cannot reuse the old inode number
    os.replace(other, f)
    now = current(f)
    assert (now.mtime_ns, now.size) == (st.mtime_ns, st.size)
    assert now.inode != st.inode
    assert remembered(index, "r", f) is None


def test_trusted_oid_compares_every_field() -> None:
    known_st = FileStat(inode=7, mtime_ns=100, size=5, executable=False)
    with tempfile.TemporaryDirectory() as d:
        idx = StatIndex(os.path.join(d, "i.sqlite"))
        try:
            idx.record([("p", known_st, OID_A)], 200)
            known = idx.lookup("p")["p"]
        finally:
            idx.close()
    assert StatIndex.trusted_oid(known, known_st) == OID_A
    assert StatIndex.trusted_oid(known, FileStat(7, 100, 5, executable=True)) == OID_A
    assert StatIndex.trusted_oid(known, FileStat(8, 100, 5, executable=False)) is None
    assert StatIndex.trusted_oid(known, FileStat(7, 101, 5, executable=False)) is None
    assert StatIndex.trusted_oid(known, FileStat(7, 99, 5, executable=False)) is None
    assert StatIndex.trusted_oid(known, FileStat(7, 100, 6, executable=False)) is None


def test_lookup_by_prefix_excludes_siblings(index: StatIndex) -> None:
    paths = [
        "data",
        "data/x",
        "data/sub/y",
        "data/ z",
        "data/!",
        "data/-",
        "data/é",
        "data2/x",
        "data.csv",
        "data-x",
        "data0",
        "data/../evil",
        "dat",
        "datb/x",
        "d",
        "other/data/x",
        "datA",
    ]
    index.record([(p, fake_stat(), OID_A) for p in paths], 10)
    assert set(index.lookup("data")) == {
        "data",
        "data/x",
        "data/sub/y",
        "data/ z",
        "data/!",
        "data/-",
        "data/é",
        "data/../evil",
    }
    assert set(index.lookup("data/sub")) == {"data/sub/y"}
    assert set(index.lookup("data/x")) == {"data/x"}
    assert set(index.lookup("data2")) == {"data2/x"}
    assert set(index.lookup("dat")) == {"dat"}
    assert index.lookup("nothing") == {}


def test_record_replaces_and_forget_removes_a_subtree(index: StatIndex, tmp_path: Path) -> None:
    files = {name: tmp_path / name.replace("/", "_") for name in ("d/a", "d/b", "d2/a", "d")}
    stats = {name: write_old(path, name.encode()) for name, path in files.items()}
    stamp = index.fs_clock()
    index.record([(name, stats[name], OID_A) for name in files], stamp)
    index.record([("d/a", stats["d/a"], OID_B)], stamp)
    assert remembered(index, "d/a", files["d/a"]) == OID_B
    assert remembered(index, "d/b", files["d/b"]) == OID_A
    index.forget("d")
    assert index.lookup("d") == {}
    assert set(index.lookup("d2")) == {"d2/a"}
    assert remembered(index, "d2/a", files["d2/a"]) == OID_A


def test_record_nothing_is_a_no_op(index: StatIndex) -> None:
    index.record([], 5)
    index.record(iter(()), 5)
    assert index.lookup("") == {}


def test_entries_survive_reopening(tmp_path: Path) -> None:
    db = str(tmp_path / "idx.sqlite")
    f = tmp_path / "kept"
    first = StatIndex(db)
    try:
        st = write_old(f, b"kept")
        first.record([("kept", st, hash_bytes(b"kept"))], first.fs_clock())
    finally:
        first.close()
    second = StatIndex(db)
    try:
        assert remembered(second, "kept", f) == hash_bytes(b"kept")
    finally:
        second.close()


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    db = str(tmp_path / "idx.sqlite")
    a, b = StatIndex(db), StatIndex(db)
    try:
        a.record([("p", fake_stat(), OID_A)], 10)
        assert set(b.lookup("p")) == {"p"}
        b.forget("p")
        assert a.lookup("p") == {}
    finally:
        a.close()
        b.close()


def test_fs_clock_follows_the_filesystem(index: StatIndex, tmp_path: Path) -> None:
    first = index.fs_clock()
    assert os.path.exists(index.db_path + ".stamp")
    f = tmp_path / "later"
    f.write_bytes(b"x")
    second = index.fs_clock()
    assert first <= os.stat(f).st_mtime_ns <= second
    assert isinstance(first, int)


# --- prefix lookup against a model -----------------------------------------------------------

_segment = st.text(st.sampled_from("ab.-0~é "), min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)
_rel = st.lists(_segment, min_size=1, max_size=3).map("/".join)


@given(paths=st.sets(_rel, max_size=15), prefix=_rel)
def test_lookup_returns_exactly_the_subtree(paths: set[str], prefix: str) -> None:
    idx = StatIndex(":memory:")  # sqlite's own in-memory database: same queries, no files
    try:
        idx.record([(p, fake_stat(len(p)), OID_A) for p in paths], 10)
        expected = {p for p in paths if p == prefix or p.startswith(prefix + "/")}
        assert set(idx.lookup(prefix)) == expected
        idx.forget(prefix)
        assert set(idx.lookup(prefix)) == set()
        for p in paths - expected:
            assert p in idx.lookup(p)  # siblings survive the forget
    finally:
        idx.close()
