"""The stat index's trees: a whole path vouched for by one comparison, or file by file."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

import pytest

from dvlite.fsutil import FileStat, walk_records
from dvlite.storage.hashing import Oid
from dvlite.storage.stat_index import StatIndex
from dvlite.storage.tree import Tree
from tests.storage.test_stat_index import SECOND

if TYPE_CHECKING:
    from pathlib import Path

TREE_OID = Oid("f" * 32)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three files whose mtimes lie well before any stamp the index takes now."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (root / name).write_bytes(name.encode())
        past = os.stat(root / name).st_mtime_ns - 10 * SECOND
        os.utime(root / name, ns=(past, past))
    return root


def oid_of(name: str) -> Oid:
    return Oid(name.replace("/", "").ljust(32, "0"))


def saved(index: StatIndex, folder: Path) -> Tree:
    """Walk ``folder``, remember it as `data` (every file hashed), return what was walked."""
    stamp = index.fs_clock()
    records = walk_records(str(folder))
    tree = Tree(records, [oid_of(r[0]) for r in records])
    index.save("data", tree, TREE_OID, stamp, range(len(records)), stored=True)
    return tree


def test_an_unchanged_walk_is_vouched_for_as_a_whole(index: StatIndex, folder: Path) -> None:
    tree = saved(index, folder)

    oid, oids = index.known_oids("data", walk_records(str(folder)))

    assert oid == TREE_OID
    assert oids == tree.oids


def test_a_changed_file_leaves_the_others_vouched_for(index: StatIndex, folder: Path) -> None:
    saved(index, folder)
    (folder / "b").write_bytes(b"bb")
    records = walk_records(str(folder))

    oid, oids = index.known_oids("data", records)

    assert oid is None
    assert {r[0]: o for r, o in zip(records, oids, strict=True)} == {
        "a": oid_of("a"), "b": None, "sub/c": oid_of("sub/c"),
    }


def test_added_and_removed_files_break_the_whole(index: StatIndex, folder: Path) -> None:
    saved(index, folder)
    (folder / "a").unlink()
    (folder / "new").write_bytes(b"new")
    records = walk_records(str(folder))

    oid, oids = index.known_oids("data", records)

    assert oid is None
    assert sorted((r[0], o) for r, o in zip(records, oids, strict=True)) == [
        ("b", oid_of("b")), ("new", None), ("sub/c", oid_of("sub/c")),
    ]


def test_a_racy_file_spoils_the_whole_and_is_not_vouched_for(
    index: StatIndex, folder: Path
) -> None:
    """A file whose mtime is not older than the stamp could be rewritten in the same tick
    without its stat moving: neither the tree nor its own entry may vouch for it."""
    stamp = index.fs_clock()
    os.utime(folder / "b", ns=(stamp, stamp))
    records = walk_records(str(folder))
    index.save("data", Tree(records, [oid_of(r[0]) for r in records]), TREE_OID, stamp,
               range(len(records)), stored=False)

    oid, oids = index.known_oids("data", walk_records(str(folder)))

    assert oid is None
    assert {r[0]: o for r, o in zip(records, oids, strict=True)}["b"] is None
    assert sorted(o for o in oids if o is not None) == [oid_of("a"), oid_of("sub/c")]


def test_files_are_vouched_for_by_their_own_entries_without_a_tree(
    index: StatIndex, folder: Path
) -> None:
    """What checkout records file by file counts for a folder it never scanned."""
    stamp = index.fs_clock()
    records = walk_records(str(folder))
    index.record(
        [(f"data/{rel}", FileStat.of(os.stat(folder / rel)), oid_of(rel)) for rel, *_ in records],
        stamp,
    )

    oid, oids = index.known_oids("data", records)

    assert oid is None
    assert oids == [oid_of(r[0]) for r in records]


def test_a_path_inside_a_tree_is_known_file_by_file(index: StatIndex, folder: Path) -> None:
    """Trees are kept per scanned path; entries per repo path, shared by every scan."""
    saved(index, folder)

    oid, oids = index.known_oids("data/sub", walk_records(str(folder / "sub")))

    assert (oid, oids) == (None, [oid_of("sub/c")])


def test_forget_drops_trees_and_entries(index: StatIndex, folder: Path) -> None:
    saved(index, folder)
    index.known_oids("data", walk_records(str(folder)))  # the tree read once by this process
    assert index.tree_of("data", TREE_OID) is not None

    index.forget("data")

    assert index.lookup("data") == {}
    assert index.tree_of("data", TREE_OID) is None
    oid, oids = index.known_oids("data", walk_records(str(folder)))
    assert (oid, set(oids)) == (None, {None})


def test_a_tree_read_to_compare_a_walk_lists_its_files(index: StatIndex, folder: Path) -> None:
    """The tree that known_oids read is the one tree_of gives (read once per process), with
    every file's path, oid, size and mode."""
    stored = saved(index, folder)
    (folder / "b").write_bytes(b"changed")

    index.known_oids("data", walk_records(str(folder)))
    with sqlite3.connect(index.db_path) as db:  # tree_of does not read the table again
        db.execute("DELETE FROM trees")

    tree = index.tree_of("data", TREE_OID)
    assert tree == stored
    assert tree.file_map() == {"a": (oid_of("a"), 1, False), "b": (oid_of("b"), 1, False),
                               "sub/c": (oid_of("subc"), 5, False)}


def test_a_damaged_tree_is_only_ignored(index: StatIndex, folder: Path) -> None:
    saved(index, folder)
    with sqlite3.connect(index.db_path) as db:  # the blobs as a bit flip could leave them
        db.execute("UPDATE trees SET records = ?, oids = ? WHERE path = 'data'", (b"\xff", b""))

    oid, oids = index.known_oids("data", walk_records(str(folder)))

    assert oid is None  # still vouched for file by file, by the entries saved with the tree
    assert None not in oids


def test_the_stored_tree_outlives_scans_that_do_not_store(index: StatIndex, folder: Path) -> None:
    """add keeps the tree whose manifest it stored; a later status of a changed folder keeps
    its own beside it, so the pointer's files stay known without reading its manifest."""
    stored = saved(index, folder)
    (folder / "b").write_bytes(b"bb")
    stamp = index.fs_clock()
    seen = Tree(walk_records(str(folder)), [Oid("e" * 32)] * 3)
    index.save("data", seen, Oid("d" * 32), stamp, [], stored=False)

    assert index.tree_of("data", TREE_OID) == stored
    assert index.tree_of("data", Oid("d" * 32)) == seen
    assert index.tree_of("data", Oid("c" * 32)) is None
    assert index.tree_of("data/sub", TREE_OID) is None
    (folder / "b").write_bytes(b"b")  # back to what was stored, with another old mtime
    past = os.stat(folder / "a").st_mtime_ns - 12_345
    os.utime(folder / "b", ns=(past, past))
    records = walk_records(str(folder))
    assert index.known_oids("data", records)[1] == [
        oid_of(r[0]) if r[0] != "b" else None for r in records
    ]


def test_an_index_of_another_version_keeps_its_entries_and_remakes_the_rest(
    tmp_path: Path, folder: Path
) -> None:
    db_path = str(tmp_path / "old.sqlite")
    with sqlite3.connect(db_path) as db:  # as an earlier dvlite left it, with a stray table
        db.execute("CREATE TABLE entries (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, "
                   "mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, oid TEXT NOT NULL, "
                   "stamp_ns INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("CREATE TABLE trees (path TEXT PRIMARY KEY, oid TEXT)")
        db.execute("INSERT INTO trees VALUES ('data', 'x')")
        st = FileStat.of(os.stat(folder / "a"))
        db.execute("INSERT INTO entries VALUES ('data/a', ?, ?, ?, ?, ?)",
                   (st.inode, st.mtime_ns, st.size, oid_of("a"), st.mtime_ns + SECOND))
    db.close()
    index = StatIndex(db_path)
    try:
        records = walk_records(str(folder))
        assert index.known_oids("data", records) == (
            None, [oid_of("a") if r[0] == "a" else None for r in records])
        assert saved(index, folder).oids == [oid_of(r[0]) for r in records]
        assert index.known_oids("data", records)[0] == TREE_OID
    finally:
        index.close()


def test_a_watched_tree_is_read_back_as_saved_with_its_token(index: StatIndex,
                                                              folder: Path) -> None:
    """What the watcher's client reads: the token saved with a tree, and that very tree,
    whose size is known before its records are unpacked."""
    stamp = index.fs_clock()
    records = walk_records(str(folder))
    walked = Tree(records, [oid_of(r[0]) for r in records])
    index.save("data", walked, TREE_OID, stamp, [], stored=False, token="run:7")
    index.save("data", walked, Oid("e" * 32), stamp, [], stored=True)  # no token

    assert index.watched("data") == [("run:7", TREE_OID, False)]
    assert index.tree_in("data", True, TREE_OID) is None  # that slot holds another oid
    tree = index.tree_in("data", False, TREE_OID)
    assert tree is not None
    assert tree.size == 1 + 1 + 5
    assert tree == walked
    assert tree.size == walked.size
