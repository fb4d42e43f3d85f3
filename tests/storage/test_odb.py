"""The object store: layout, immutability, verification, quarantine."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.odb import READ_ONLY, ObjectStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def odb(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def tmp_litter(store: ObjectStore) -> list[str]:
    folder = os.path.join(store.root, "tmp")
    return os.listdir(folder) if os.path.isdir(folder) else []


def overwrite(path: str, data: bytes) -> None:
    """Change an object's bytes in place, as bit rot or a careless tool would."""
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, READ_ONLY)


def test_add_bytes_layout_and_mode(odb: ObjectStore) -> None:
    data = b"hello object store\n"
    oid = odb.add_bytes(data)
    assert oid == hash_bytes(data)
    expected = os.path.join(odb.root, oid[:2], oid[2:])
    assert odb.path(oid) == expected
    assert len(oid[:2]) == 2
    assert len(oid[2:]) == 30
    with open(expected, "rb") as f:
        assert f.read() == data
    assert mode_of(expected) == 0o444
    assert READ_ONLY == 0o444
    assert odb.exists(oid)
    assert tmp_litter(odb) == []


def test_add_file_hashes_while_copying(odb: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(3000)
    src.write_bytes(data)
    oid = odb.add_file(str(src))
    assert oid == hash_bytes(data)
    with open(odb.path(oid), "rb") as f:
        assert f.read() == data
    assert mode_of(odb.path(oid)) == 0o444
    # a copy, not the source itself
    assert os.stat(odb.path(oid)).st_ino != os.stat(src).st_ino
    assert src.read_bytes() == data
    assert tmp_litter(odb) == []


def test_add_file_leaves_source_writable(odb: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_bytes(b"x")
    os.chmod(src, 0o644)
    odb.add_file(str(src))
    assert mode_of(str(src)) == 0o644


def test_add_file_with_correct_known_oid(odb: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_bytes(b"known")
    oid = hash_bytes(b"known")
    assert odb.add_file(str(src), oid) == oid
    with open(odb.path(oid), "rb") as f:
        assert f.read() == b"known"
    assert mode_of(odb.path(oid)) == 0o444
    assert tmp_litter(odb) == []


def test_add_file_with_wrong_known_oid_stores_nothing(odb: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_bytes(b"the bytes changed after they were hashed")
    stale = hash_bytes(b"what the stat index remembered")
    actual = hash_bytes(src.read_bytes())
    with pytest.raises(CorruptObjectError) as exc:
        odb.add_file(str(src), stale)
    assert str(src) in exc.value.message
    assert not odb.exists(stale)
    assert not odb.exists(actual)
    assert list(odb.iter_oids()) == []
    assert tmp_litter(odb) == []


def test_add_existing_object_is_success(odb: ObjectStore, tmp_path: Path) -> None:
    oid = odb.add_bytes(b"same")
    before = os.stat(odb.path(oid))
    assert odb.add_bytes(b"same") == oid
    src = tmp_path / "same.txt"
    src.write_bytes(b"same")
    assert odb.add_file(str(src)) == oid  # hashed, then found already in place
    assert odb.add_file(str(src), oid) == oid  # known oid: one stat
    assert odb.read_verified(oid) == b"same"
    assert mode_of(odb.path(oid)) == 0o444
    assert os.stat(odb.path(oid)).st_size == before.st_size
    assert list(odb.iter_oids()) == [oid]
    assert tmp_litter(odb) == []


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("known", [False, True])
def test_add_file_of_missing_source_leaks_nothing(
    odb: ObjectStore, tmp_path: Path, known: bool
) -> None:
    odb.add_bytes(b"warm up")  # make tmp/ and the first prefix folder
    (tmp_path / "folder").mkdir()
    before = open_fds()
    try:
        for src in (tmp_path / "missing", tmp_path / "folder"):
            with pytest.raises(OSError, match=str(src.name)):
                odb.add_file(str(src), hash_bytes(b"anything") if known else None)
        leaked = {
            fd: target
            for fd in open_fds() - before
            if (target := os.readlink(f"/proc/self/fd/{fd}")).startswith(odb.root)
        }
        assert leaked == {}  # no file descriptor left open on a temp file
    finally:
        for fd in open_fds() - before:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}").startswith(odb.root):
                    os.close(int(fd))
    assert tmp_litter(odb) == []
    assert len(list(odb.iter_oids())) == 1


def test_add_file_with_known_existing_oid_does_not_read_source(
    odb: ObjectStore, tmp_path: Path
) -> None:
    oid = odb.add_bytes(b"cached")
    # The source is gone: an existing object must be answered from the cache alone.
    assert odb.add_file(str(tmp_path / "deleted-since"), oid) == oid


def test_add_empty_object(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"")
    assert oid == "99aa06d3014798d86001c324468d497f"
    assert odb.read_verified(oid) == b""


def test_sha256_store(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "s"), algorithm="sha256")
    oid = store.add_bytes(b"abc")
    assert oid == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert store.path(oid) == os.path.join(store.root, "ba", oid[2:])
    assert store.hash_of(b"abc") == oid
    assert list(store.iter_oids()) == [oid]
    assert store.verify(oid)


def test_open_and_read_verified(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"payload")
    with odb.open(oid) as f:
        assert f.read() == b"payload"
    assert odb.read_verified(oid) == b"payload"
    assert odb.verify(oid) is True


def test_missing_object(odb: ObjectStore) -> None:
    oid = hash_bytes(b"never stored")
    assert not odb.exists(oid)
    with pytest.raises(MissingObjectError) as exc:
        odb.open(oid)
    assert oid in exc.value.message
    assert odb.root in exc.value.message
    with pytest.raises(MissingObjectError):
        odb.read_verified(oid)
    with pytest.raises(MissingObjectError):
        odb.verify(oid)


def test_missing_set(odb: ObjectStore) -> None:
    a = odb.add_bytes(b"a")
    b = hash_bytes(b"b")
    assert odb.missing([a, b]) == {b}
    assert odb.missing([]) == set()


def test_missing_many_lists_folders_and_agrees_with_exists(odb: ObjectStore) -> None:
    stored = [odb.add_bytes(f"object {i}".encode()) for i in range(600)]
    for oid in stored[:3]:
        os.unlink(odb.path(oid))
    never = [hash_bytes(b"never stored"), hash_bytes(b"nor this")]
    assert odb.missing(stored + never) == set(stored[:3]) | set(never)
    assert odb.missing(stored[3:]) == set()


def test_corrupt_object_is_detected_and_quarantined(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"good bytes")
    overwrite(odb.path(oid), b"rotten bytes")
    assert odb.verify(oid) is False
    with pytest.raises(CorruptObjectError) as exc:
        odb.read_verified(oid)
    assert oid in exc.value.message
    assert exc.value.hint is not None
    assert "fsck" in exc.value.hint
    dest = odb.quarantine(oid)
    assert not odb.exists(oid)
    assert os.path.dirname(dest) == os.path.join(odb.root, "quarantine")
    assert os.path.basename(dest).startswith(oid + ".")
    with open(dest, "rb") as f:
        assert f.read() == b"rotten bytes"
    assert list(odb.iter_oids()) == []
    # the good bytes can be stored again under the same name
    assert odb.add_bytes(b"good bytes") == oid
    assert odb.read_verified(oid) == b"good bytes"


def test_quarantine_twice_keeps_both_copies(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"v")
    overwrite(odb.path(oid), b"bad 1")
    first = odb.quarantine(oid)
    odb.add_bytes(b"v")
    overwrite(odb.path(oid), b"bad 2")
    second = odb.quarantine(oid)
    assert first != second
    assert sorted(os.listdir(os.path.join(odb.root, "quarantine"))) == sorted(
        [os.path.basename(first), os.path.basename(second)]
    )


def test_truncated_object_fails_verification(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"0123456789")
    overwrite(odb.path(oid), b"01234")
    assert odb.verify(oid) is False


def test_iter_oids_skips_tmp_quarantine_and_strays(odb: ObjectStore) -> None:
    oids = sorted({odb.add_bytes(bytes([i]) * (i + 1)) for i in range(20)})
    bad = odb.add_bytes(b"to quarantine")
    overwrite(odb.path(bad), b"x")
    odb.quarantine(bad)
    # litter a crash could leave, and foreign files
    os.makedirs(os.path.join(odb.root, "tmp"), exist_ok=True)
    with open(os.path.join(odb.root, "tmp", "0" * 32), "wb") as f:
        f.write(b"partial")
    os.makedirs(os.path.join(odb.root, "zz"))
    with open(os.path.join(odb.root, "zz", "0" * 30), "wb"):
        pass
    prefix_dir = os.path.join(odb.root, oids[0][:2])
    with open(os.path.join(prefix_dir, "not-an-object"), "wb"):
        pass
    with open(os.path.join(prefix_dir, "A" * 30), "wb"):
        pass
    listed = list(odb.iter_oids())
    assert listed == oids  # sorted, each once, nothing else
    assert bad not in listed


def test_iter_oids_of_absent_store(tmp_path: Path) -> None:
    assert list(ObjectStore(str(tmp_path / "nowhere")).iter_oids()) == []


def test_delete(odb: ObjectStore) -> None:
    oid = odb.add_bytes(b"gone soon")
    odb.delete(oid)
    assert not odb.exists(oid)
    odb.delete(oid)  # deleting twice is fine
    assert list(odb.iter_oids()) == []


def test_tmp_litter_does_not_block_writes(odb: ObjectStore) -> None:
    os.makedirs(os.path.join(odb.root, "tmp"))
    with open(os.path.join(odb.root, "tmp", "leftover"), "wb") as f:
        f.write(b"half an object")
    oid = odb.add_bytes(b"fresh")
    assert odb.read_verified(oid) == b"fresh"
    assert tmp_litter(odb) == ["leftover"]


def test_repr_names_root(odb: ObjectStore) -> None:
    assert odb.root in repr(odb)


# --- stateful -------------------------------------------------------------------------------


class ObjectStoreMachine(RuleBasedStateMachine):
    """The store against a dict model: what exists, what reads back, what is corrupt."""

    oids = Bundle("oids")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="odb-machine-")
        self.store = ObjectStore(os.path.join(self.tmp, "cache"))
        self.model: dict[Oid, bytes] = {}
        self.corrupt: set[Oid] = set()
        self.sources = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp)

    def _added(self, oid: Oid, data: bytes) -> Oid:
        assert oid == hash_bytes(data)
        self.model[oid] = data
        if oid in self.corrupt and self.store.verify(oid):
            # An existing object counts as written; a store may also rewrite it with the
            # good bytes. Either is fine, as long as reads stay verified.
            self.corrupt.discard(oid)
        return oid

    @rule(target=oids, data=st.binary(max_size=200))
    def add_bytes(self, data: bytes) -> Oid:
        return self._added(self.store.add_bytes(data), data)

    @rule(target=oids, data=st.binary(max_size=200), known=st.booleans())
    def add_file(self, data: bytes, known: bool) -> Oid:
        self.sources += 1
        src = os.path.join(self.tmp, f"src{self.sources}")
        with open(src, "wb") as f:
            f.write(data)
        return self._added(self.store.add_file(src, hash_bytes(data) if known else None), data)

    @rule(target=oids, data=st.binary(min_size=1, max_size=50))
    def add_file_with_stale_oid(self, data: bytes) -> Oid:
        self.sources += 1
        src = os.path.join(self.tmp, f"src{self.sources}")
        with open(src, "wb") as f:
            f.write(data)
        stale = hash_bytes(data + b"!")
        if stale in self.model:
            return stale
        with pytest.raises(CorruptObjectError):
            self.store.add_file(src, stale)
        assert not self.store.exists(stale)
        return stale

    @rule(oid=consumes(oids))
    def delete(self, oid: Oid) -> None:
        self.store.delete(oid)
        self.model.pop(oid, None)
        self.corrupt.discard(oid)

    @rule(oid=oids, junk=st.binary(max_size=20))
    def corrupt_on_disk(self, oid: Oid, junk: bytes) -> None:
        if oid not in self.model or hash_bytes(junk) == oid:
            return
        overwrite(self.store.path(oid), junk)
        self.corrupt.add(oid)

    @rule()
    def fsck(self) -> None:
        for oid in list(self.store.iter_oids()):
            if not self.store.verify(oid):
                assert oid in self.corrupt
                dest = self.store.quarantine(oid)
                assert os.path.exists(dest)
                del self.model[oid]
                self.corrupt.discard(oid)
        assert not self.corrupt

    @invariant()
    def exists_iff_in_model(self) -> None:
        assert set(self.store.iter_oids()) == set(self.model)
        for oid in self.model:
            assert self.store.exists(oid)

    @invariant()
    def reads_are_verified(self) -> None:
        for oid, data in self.model.items():
            if oid in self.corrupt:
                assert self.store.verify(oid) is False
                with pytest.raises(CorruptObjectError):
                    self.store.read_verified(oid)
            else:
                assert self.store.read_verified(oid) == data
                assert mode_of(self.store.path(oid)) == 0o444

    @invariant()
    def no_partial_objects(self) -> None:
        assert tmp_litter(self.store) == []


ObjectStoreMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25)
TestObjectStoreMachine = ObjectStoreMachine.TestCase
