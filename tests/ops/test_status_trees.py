"""status and add over the stat index's trees: nothing changed costs one comparison, and
what the trees vouch for is still checked against racy edits and an incomplete cache."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.status import StatusEntry, status
from tests.ops.support import (
    age,
    cache_oids,
    drop_object,
    manifest_files,
    object_path,
    read_pointer,
    xxh,
)

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

FILES = {"a.csv": "a\n", "b.csv": "b\n", "sub": {"c.csv": "c\n"}}


@pytest.fixture
def tracked(tmp_repo: TmpRepo) -> TmpRepo:
    """`data`, with mtimes old enough for the stat index to trust, added."""
    tmp_repo.gen({"data": FILES})
    age(tmp_repo.root / "data")
    tmp_repo.dvl_add("data")
    return tmp_repo


def test_nothing_changed_hashes_and_writes_nothing(tracked: TmpRepo) -> None:
    status(tracked.repo)  # the first one lists the cache, and remembers that it is complete
    db = sqlite3.connect(tracked.repo.index.db_path)  # PRAGMA data_version moves when
    try:  # another connection commits
        before = db.execute("PRAGMA data_version").fetchone()[0]
        result = status(tracked.repo)
        after = db.execute("PRAGMA data_version").fetchone()[0]
    finally:
        db.close()

    assert (result.entries, result.hashed_files) == ((), 0)
    assert after == before, "an unchanged folder must not rewrite the stat index"


def test_racy_rewrite_inside_a_folder_is_seen(tmp_repo: TmpRepo) -> None:
    """Same inode, size and mtime, new bytes: only the racy rule can tell. The folder's
    tree holds a file as new as its stamp, so it must not vouch for the folder."""
    tmp_repo.gen({"data": FILES})
    future = time.time() + 3600
    path = tmp_repo.root / "data" / "sub" / "c.csv"
    os.utime(path, (future, future))
    tmp_repo.dvl_add("data")
    status(tmp_repo.repo)  # a second scan, which saves the tree again
    inode = os.stat(path).st_ino
    path.write_text("C\n")  # same size, in place
    os.utime(path, (future, future))
    assert os.stat(path).st_ino == inode

    result = status(tmp_repo.repo)

    assert result.entries == (StatusEntry("data", "modified", modified=("sub/c.csv",)),)


def test_edit_after_status_is_seen_again(tracked: TmpRepo) -> None:
    (tracked.root / "data" / "new.csv").write_text("new\n")
    age(tracked.root / "data" / "new.csv")
    first = status(tracked.repo)
    (tracked.root / "data" / "new.csv").unlink()

    second = status(tracked.repo)

    assert first.entries == (StatusEntry("data", "modified", added=("new.csv",)),)
    assert second.entries == ()
    assert second.hashed_files == 0


def test_add_stores_the_manifest_of_a_folder_status_vouched_for(tracked: TmpRepo) -> None:
    """status vouches for the changed folder without storing its manifest; add must."""
    (tracked.root / "data" / "b.csv").write_text("b changed\n")
    age(tracked.root / "data" / "b.csv")
    status(tracked.repo)

    result = tracked.dvl_add("data")

    oid = read_pointer(tracked.root / "data.dvl")["oid"]
    assert result.hashed_files == 0
    assert oid in cache_oids(tracked)
    assert manifest_files(tracked, oid)["b.csv"]["oid"] == xxh(b"b changed\n")


def test_re_add_puts_back_an_object_missing_from_the_cache(tracked: TmpRepo) -> None:
    drop_object(tracked, xxh(b"a\n"))

    again = tracked.dvl_add("data")

    assert again.hashed_files == 0
    assert xxh(b"a\n") in cache_oids(tracked)
    assert status(tracked.repo).entries == ()


@pytest.mark.parametrize("dropped", [b"c\n", b"manifest"])
def test_an_object_leaving_the_cache_is_seen_after_a_clean_status(
    tracked: TmpRepo, dropped: bytes
) -> None:
    """The index vouches for the cache only while its 2-hex folders are untouched."""
    tracked.gen({"data": FILES, "model.bin": "weights"})
    age(tracked.root / "data")
    age(tracked.root / "model.bin")
    tracked.dvl_add("data", "model.bin")
    assert status(tracked.repo).entries == ()
    assert status(tracked.repo).entries == ()  # now vouched for without a listing
    oid = read_pointer(tracked.root / "data.dvl")["oid"] if dropped == b"manifest" else (
        xxh(dropped))
    drop_object(tracked, oid)
    drop_object(tracked, xxh(b"weights"))

    assert status(tracked.repo).entries == (
        StatusEntry("data", "not in cache"), StatusEntry("model.bin", "not in cache"),
    )


def test_a_cache_put_back_in_the_same_tick_is_listed_again(tracked: TmpRepo) -> None:
    """A 2-hex folder changed in the tick its stat was taken is racy: list it again."""
    folder = object_path(tracked, xxh(b"a\n")).parent
    future = time.time() + 3600
    os.utime(folder, (future, future))
    assert status(tracked.repo).entries == ()
    drop_object(tracked, xxh(b"a\n"))
    os.utime(folder, (future, future))  # as if the removal came in the same tick

    assert status(tracked.repo).entries == (StatusEntry("data", "not in cache"),)


def test_changes_are_listed_against_the_pointer_after_several_scans(tracked: TmpRepo) -> None:
    data = tracked.root / "data"
    (data / "a.csv").write_text("a1\n")
    first = status(tracked.repo)
    (data / "b.csv").write_text("b1\n")
    (data / "sub" / "new.csv").write_text("new\n")

    second = status(tracked.repo)

    assert first.entries == (StatusEntry("data", "modified", modified=("a.csv",)),)
    assert second.entries == (StatusEntry(
        "data", "modified", added=("sub/new.csv",), modified=("a.csv", "b.csv"),
    ),)
