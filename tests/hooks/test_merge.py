"""``ops/merge.py``: three-way merges of pointers, folder manifests and ``dvlite.lock``, over
bytes and a real object store."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.ops.merge import conflict_text, merge_lock, merge_maps, merge_pointer
from dvlite.pipeline.lockfile import Lockfile, StageLock
from dvlite.pointer import Pointer, decode
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.manifest import Entry, Manifest
from dvlite.storage.odb import ObjectStore

if TYPE_CHECKING:
    from pathlib import Path

OIDS = [Oid(hash_bytes(str(i).encode())) for i in range(4)]


# --- strategies ---------------------------------------------------------------------------------

extras = st.dictionaries(st.sampled_from(["note", "owner", "labels"]),
                         st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"])), max_size=2)


@st.composite
def pointers(draw: st.DrawFn) -> Pointer:
    kind = draw(st.sampled_from(["file", "dir"]))
    return Pointer(draw(st.sampled_from(["data", "model.bin"])), draw(st.sampled_from(OIDS)),
                   draw(st.integers(0, 9)), kind,
                   draw(st.integers(0, 3)) if kind == "dir" else None, draw(extras))


maps = st.dictionaries(st.sampled_from("abcde"), st.integers(0, 2), max_size=5)


def nested(paths: set[str]) -> bool:
    """Whether some path is inside another: no folder has a file `x` and a file `x/y`."""
    return any(q.startswith(p + "/") for p in paths for q in paths)


manifests = st.dictionaries(st.sampled_from(["a.csv", "b.csv", "sub", "sub/c.bin", "sub/d"]),
                            st.sampled_from(OIDS), max_size=4).filter(
    lambda files: not nested(set(files))).map(
    lambda files: Manifest.build(Entry(p, oid, 1) for p, oid in files.items()))
stage_locks = st.builds(StageLock, st.sampled_from(["python a.py", "python b.py"]),
                        params=st.dictionaries(st.sampled_from(["lr", "seed"]),
                                               st.integers(0, 2), max_size=2))
lockfiles = st.dictionaries(st.sampled_from(["prepare", "train", "eval"]), stage_locks,
                            max_size=3).map(Lockfile)


# --- merge_maps: the rule every merge here follows -------------------------------------------


@given(maps, maps)
def test_maps_changed_on_one_side_or_identically_take_that_change(
        base: dict[str, int], x: dict[str, int]) -> None:
    for ours, theirs in ((x, x), (base, x), (x, base)):
        result = merge_maps(base, ours, theirs)
        assert (result.merged, result.conflicts) == (x, ())


@given(maps, maps, maps)
def test_maps_merge_is_symmetric(base: dict[str, int], ours: dict[str, int],
                                 theirs: dict[str, int]) -> None:
    one, other = merge_maps(base, ours, theirs), merge_maps(base, theirs, ours)
    assert one.merged == other.merged
    assert set(one.conflicts) == set(other.conflicts)
    for name in one.conflicts:  # a conflict is a key both sides changed, differently
        assert base.get(name) != ours.get(name) != theirs.get(name) != base.get(name)


def test_maps_merge_disjoint_edits() -> None:
    base = {"keep": 1, "edit": 1, "drop": 1}
    result = merge_maps(base, {"keep": 1, "edit": 2, "drop": 1}, {"keep": 1, "edit": 1, "new": 3})
    assert result.merged == {"keep": 1, "edit": 2, "new": 3}
    assert result.conflicts == ()


# --- pointers ---------------------------------------------------------------------------------


@given(pointers(), pointers())
def test_pointer_changed_on_one_side_or_identically_takes_that_side(base: Pointer,
                                                                     x: Pointer) -> None:
    for ours, theirs in ((x, x), (base, x), (x, base)):
        result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=None)
        assert result.conflict is None
        assert result.data == x.encode()


@given(pointers())
def test_pointer_added_identically_on_both_sides(x: Pointer) -> None:
    assert merge_pointer(b"", x.encode(), x.encode(), cache=None).data == x.encode()


def test_the_same_data_written_differently_merges_to_canonical_bytes() -> None:
    ours = Pointer("model.bin", OIDS[1], 5, "file")
    theirs = b'kind = "file"\nsize = 5\noid = "%s"\npath = "model.bin"\nversion = 1\n' % \
        OIDS[1].encode()
    base = Pointer("model.bin", OIDS[0], 3, "file").encode()
    result = merge_pointer(base, theirs, ours.encode(), cache=None)
    assert (result.how, result.data) == ("same", ours.encode())


def test_unknown_keys_keep_ours_unless_only_theirs_changed_them() -> None:
    base = Pointer("m", OIDS[0], 1, "file", extra={"a": 1, "b": 1, "c": 1})
    ours = Pointer("m", OIDS[1], 2, "file", extra={"a": 2, "b": 1, "c": 1})
    theirs = Pointer("m", OIDS[0], 1, "file", extra={"a": 3, "b": 3, "d": 4})
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=None)
    assert decode(result.data, source="merged") == Pointer(
        "m", OIDS[1], 2, "file", extra={"a": 2, "b": 3, "d": 4})
    assert result.how == "ours"


def test_file_changed_on_both_sides_is_a_conflict_with_both_texts() -> None:
    base, ours, theirs = (Pointer("m", oid, 1, "file").encode() for oid in OIDS[:3])
    result = merge_pointer(base, ours, theirs, cache=None)
    assert result.how == "conflict"
    assert result.conflict is not None
    assert "changed on both sides" in result.conflict
    assert result.data == b"<<<<<<< ours\n" + ours + b"=======\n" + theirs + b">>>>>>> theirs\n"


def test_conflict_text_ends_each_side_with_a_newline() -> None:
    assert conflict_text(b"a", b"") == b"<<<<<<< ours\na\n=======\n>>>>>>> theirs\n"


def test_an_unreadable_pointer_merges_only_when_git_would() -> None:
    good = Pointer("m", OIDS[0], 1, "file").encode()
    assert merge_pointer(good, good, b"garbage = [", cache=None).data == b"garbage = ["
    assert merge_pointer(b"", b"junk", b"junk", cache=None).how == "same"
    result = merge_pointer(good, b"garbage = [", Pointer("m", OIDS[1], 1, "file").encode(),
                           cache=None)
    assert result.how == "conflict"
    assert result.conflict is not None
    assert "`ours` is not a valid pointer" in result.conflict


# --- folders: a three-way merge of manifests in the cache ----------------------------------------


def folder(cache: ObjectStore, files: dict[str, bytes]) -> Pointer:
    manifest = Manifest.build(Entry(p, cache.add_bytes(b), len(b)) for p, b in files.items())
    oid = cache.add_bytes(manifest.to_bytes())
    return Pointer("data", oid, manifest.size, "dir", len(manifest.entries))


def merged_files(cache: ObjectStore, data: bytes) -> dict[str, bytes]:
    ptr = decode(data, source="merged")
    manifest = Manifest.from_bytes(cache.read_verified(ptr.oid), source=ptr.oid)
    assert (ptr.size, ptr.files) == (manifest.size, len(manifest.entries))
    return {e.path: cache.read_verified(e.oid) for e in manifest.entries}


@pytest.fixture
def cache(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


def test_files_added_and_changed_on_different_sides_merge(cache: ObjectStore) -> None:
    base = folder(cache, {"a.csv": b"a", "b.csv": b"b", "gone.csv": b"g"})
    ours = folder(cache, {"a.csv": b"A", "b.csv": b"b", "left/x": b"x"})
    theirs = folder(cache, {"a.csv": b"a", "b.csv": b"B", "right.csv": b"r"})
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=cache)
    assert (result.how, result.conflict) == ("merged", None)
    assert merged_files(cache, result.data) == {
        "a.csv": b"A", "b.csv": b"B", "left/x": b"x", "right.csv": b"r"}


def test_folders_added_on_both_sides_merge_against_an_empty_base(cache: ObjectStore) -> None:
    ours, theirs = folder(cache, {"a": b"1", "same": b"s"}), folder(cache, {"b": b"2",
                                                                             "same": b"s"})
    result = merge_pointer(b"", ours.encode(), theirs.encode(), cache=cache)
    assert merged_files(cache, result.data) == {"a": b"1", "b": b"2", "same": b"s"}


def test_a_file_changed_differently_on_both_sides_is_a_conflict(cache: ObjectStore) -> None:
    base = folder(cache, {"a.csv": b"a", "b.csv": b"b"})
    ours = folder(cache, {"a.csv": b"left", "b.csv": b"b", "new": b"n"})
    theirs = folder(cache, {"a.csv": b"right", "b.csv": b"b"})
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=cache)
    assert result.how == "conflict"
    assert result.conflict == "file(s) in the folder changed differently on both sides: `a.csv`"


def test_a_file_on_one_side_and_a_folder_of_that_name_on_the_other_conflict(
        cache: ObjectStore) -> None:
    base = folder(cache, {"a": b"a"})
    ours, theirs = folder(cache, {"a": b"a", "x": b"file"}), folder(cache, {"a": b"a",
                                                                             "x/y": b"in"})
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=cache)
    assert result.conflict is not None
    assert "do not fit together" in result.conflict


def test_without_the_manifests_a_folder_changed_on_both_sides_conflicts(
        cache: ObjectStore, tmp_path: Path) -> None:
    other = ObjectStore(str(tmp_path / "elsewhere"))
    base, ours = folder(cache, {"a": b"a"}), folder(cache, {"a": b"a", "b": b"b"})
    theirs = folder(other, {"a": b"a", "c": b"c"})  # its manifest is not in `cache`
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=cache)
    assert result.conflict is not None
    assert "the cache lacks" in result.conflict
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=None)
    assert result.conflict is not None
    assert "outside a dvlite project" in result.conflict


def test_a_folder_on_one_side_and_a_file_on_the_other_conflict(cache: ObjectStore) -> None:
    base = folder(cache, {"a": b"a"})
    ours = folder(cache, {"a": b"b"})
    theirs = Pointer("data", OIDS[0], 1, "file")
    result = merge_pointer(base.encode(), ours.encode(), theirs.encode(), cache=cache)
    assert result.conflict is not None
    assert "the data changed on both sides (dir" in result.conflict


@given(manifests, manifests, manifests)
def test_folder_merges_follow_the_map_rule(base: Manifest, ours: Manifest,
                                           theirs: Manifest) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = ObjectStore(root)
        p = [Pointer("data", store.add_bytes(m.to_bytes()), m.size, "dir", len(m.entries))
             for m in (base, ours, theirs)]
        result = merge_pointer(p[0].encode(), p[1].encode(), p[2].encode(), cache=store)
        expected = merge_maps(base.by_path(), ours.by_path(), theirs.by_path())
        if expected.conflicts or nested(set(expected.merged)):
            assert result.how == "conflict"
            return
        merged = Manifest.from_bytes(store.read_verified(decode(result.data,
                                                                source="m").oid), source="m")
        assert merged.by_path() == expected.merged


# --- dvlite.lock ------------------------------------------------------------------------------


def lock(**stages: dict[str, int]) -> Lockfile:
    return Lockfile({name: StageLock(f"python {name}.py", params=params)
                     for name, params in stages.items()})


@given(lockfiles, lockfiles)
def test_lock_changed_on_one_side_or_identically_takes_that_side(base: Lockfile,
                                                                  x: Lockfile) -> None:
    for ours, theirs in ((x, x), (base, x), (x, base)):
        result = merge_lock(base.encode(), ours.encode(), theirs.encode())
        assert (result.data, result.conflict) == (x.encode(), None)
    assert merge_lock(b"", x.encode(), x.encode()).data == x.encode()


def test_lock_stages_changed_on_different_sides_merge() -> None:
    base = lock(prepare={"split": 1}, train={"lr": 1}, old={})
    ours = lock(prepare={"split": 2}, train={"lr": 1}, old={})
    theirs = lock(prepare={"split": 1}, train={"lr": 3}, new={})
    result = merge_lock(base.encode(), ours.encode(), theirs.encode())
    assert result.how == "merged"
    assert result.data == lock(prepare={"split": 2}, train={"lr": 3}, new={}).encode()


def test_lock_stage_changed_differently_on_both_sides_is_a_conflict() -> None:
    base = lock(prepare={"split": 1}, train={"lr": 1})
    ours, theirs = lock(prepare={"split": 1}, train={"lr": 2}), lock(prepare={"split": 5},
                                                                      train={"lr": 3})
    result = merge_lock(base.encode(), ours.encode(), theirs.encode())
    assert result.conflict == "stage(s) changed differently on both sides: `train`"
    assert result.data == conflict_text(ours.encode(), theirs.encode())


def test_lock_params_of_another_type_are_another_value() -> None:
    base = Lockfile({"s": StageLock("c", params={"lr": 0})})
    ours = Lockfile({"s": StageLock("c", params={"lr": 1})})
    theirs = Lockfile({"s": StageLock("c", params={"lr": 1.0})})
    assert merge_lock(base.encode(), ours.encode(), theirs.encode()).how == "conflict"


def test_an_unreadable_lock_is_a_conflict_naming_why() -> None:
    good = lock(train={"lr": 1}).encode()
    result = merge_lock(good, b"version = 7\n", lock(train={"lr": 2}).encode())
    assert result.conflict == "`ours` has unsupported version 7"
