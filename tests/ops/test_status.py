"""``dvlite status``: workspace against pointers and cache, down to files inside folders."""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PathError
from dvlite.ops.status import StatusEntry, status
from tests.ops.support import PAST, age, drop_object, read_pointer, xxh

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


@pytest.fixture
def data_repo(tmp_repo: TmpRepo) -> TmpRepo:
    """A folder and a file, tracked, with mtimes old enough for the stat index to trust."""
    tmp_repo.gen(
        {
            "data": {"a.csv": "a\n", "b.csv": "b\n", "c.csv": "c\n", "sub": {"d.csv": "d\n"}},
            "model.bin": b"\x00model",
        }
    )
    age(tmp_repo.root / "data")
    age(tmp_repo.root / "model.bin")
    tmp_repo.dvl_add("data", "model.bin")
    return tmp_repo


def test_clean_workspace_reports_nothing(data_repo: TmpRepo) -> None:
    result = status(data_repo.repo)

    assert result.entries == ()
    assert result.checked == 2


def test_modified_file(data_repo: TmpRepo) -> None:
    (data_repo.root / "model.bin").write_bytes(b"retrained")

    (entry,) = status(data_repo.repo).entries

    assert (entry.path, entry.state) == ("model.bin", "modified")


def test_same_size_edit_is_seen(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "a.csv").write_text("A\n")

    (entry,) = status(data_repo.repo).entries

    assert entry == StatusEntry("data", "modified", modified=("a.csv",))


def test_folder_lists_added_modified_and_deleted_files(data_repo: TmpRepo) -> None:
    data = data_repo.root / "data"
    (data / "a.csv").write_text("a changed\n")
    (data / "b.csv").unlink()
    data_repo.gen({"data": {"new.csv": "n\n", "sub": {"e.csv": "e\n"}}})

    result = status(data_repo.repo)

    assert result.entries == (
        StatusEntry(
            "data",
            "modified",
            added=("new.csv", "sub/e.csv"),
            modified=("a.csv",),
            deleted=("b.csv",),
        ),
    )


def test_executable_bit_change_inside_folder_is_a_modification(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "c.csv").chmod(0o755)

    (entry,) = status(data_repo.repo).entries

    assert entry == StatusEntry("data", "modified", modified=("c.csv",))


def test_deleted_folder_and_file(data_repo: TmpRepo) -> None:
    shutil.rmtree(data_repo.root / "data")
    (data_repo.root / "model.bin").unlink()

    result = status(data_repo.repo)

    assert result.entries == (StatusEntry("data", "deleted"), StatusEntry("model.bin", "deleted"))


def test_file_object_missing_from_cache(data_repo: TmpRepo) -> None:
    drop_object(data_repo, xxh(b"\x00model"))

    assert status(data_repo.repo).entries == (StatusEntry("model.bin", "not in cache"),)


def test_folder_file_object_missing_from_cache(data_repo: TmpRepo) -> None:
    drop_object(data_repo, xxh(b"d\n"))

    assert status(data_repo.repo).entries == (StatusEntry("data", "not in cache"),)


def test_folder_manifest_missing_from_cache(data_repo: TmpRepo) -> None:
    drop_object(data_repo, read_pointer(data_repo.root / "data.dvl")["oid"])

    assert status(data_repo.repo).entries == (StatusEntry("data", "not in cache"),)


def test_folder_manifest_missing_and_folder_changed(data_repo: TmpRepo) -> None:
    drop_object(data_repo, read_pointer(data_repo.root / "data.dvl")["oid"])
    (data_repo.root / "data" / "a.csv").write_text("changed\n")

    (entry,) = status(data_repo.repo).entries

    assert (entry.path, entry.state) == ("data", "modified")


def test_target_file_inside_tracked_folder(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "a.csv").write_text("a changed\n")
    (data_repo.root / "data" / "b.csv").unlink()

    changed = status(data_repo.repo, [data_repo.path("data/a.csv")])
    gone = status(data_repo.repo, [data_repo.path("data/b.csv")])
    same = status(data_repo.repo, [data_repo.path("data/c.csv")])

    assert [(e.path, e.state) for e in changed.entries] == [("data/a.csv", "modified")]
    assert gone.entries == (StatusEntry("data/b.csv", "deleted"),)
    assert (same.entries, same.checked) == ((), 1)


def test_target_subfolder_inside_tracked_folder(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "a.csv").write_text("a changed\n")
    data_repo.gen({"data": {"sub": {"e.csv": "e\n"}}})

    result = status(data_repo.repo, [data_repo.path("data/sub")])

    assert result.entries == (StatusEntry("data/sub", "modified", added=("e.csv",)),)


def test_target_subfolder_lists_files_relative_to_it(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "sub" / "d.csv").unlink()
    data_repo.gen({"data": {"sub": {"e.csv": "e\n"}}})

    result = status(data_repo.repo, [data_repo.path("data/sub")])

    assert result.entries == (
        StatusEntry("data/sub", "modified", added=("e.csv",), deleted=("d.csv",)),
    )


def test_target_folder_holding_pointers(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"proj": {"x.bin": b"x", "inner": {"y": {"f": b"f"}}}, "other.bin": b"o"})
    tmp_repo.dvl_add("proj/x.bin", "proj/inner/y", "other.bin")
    (tmp_repo.root / "other.bin").write_bytes(b"other changed")
    (tmp_repo.root / "proj" / "x.bin").write_bytes(b"x changed")

    result = status(tmp_repo.repo, [tmp_repo.path("proj")])

    assert result.checked == 2
    assert [(e.path, e.state) for e in result.entries] == [("proj/x.bin", "modified")]


def test_target_pointer_file(data_repo: TmpRepo) -> None:
    (data_repo.root / "model.bin").write_bytes(b"retrained")

    result = status(data_repo.repo, [data_repo.path("model.bin.dvl")])

    assert [(e.path, e.state) for e in result.entries] == [("model.bin", "modified")]


@pytest.mark.parametrize("target", ["nope", "notes.txt", "docs"])
def test_untracked_target_is_an_error(data_repo: TmpRepo, target: str) -> None:
    data_repo.gen({"notes.txt": "n", "docs": {"x.md": "x"}})

    with pytest.raises(PathError, match="not tracked"):
        status(data_repo.repo, [data_repo.path(target)])


def test_target_outside_repo_is_an_error(data_repo: TmpRepo) -> None:
    with pytest.raises(PathError, match="outside the repo"):
        status(data_repo.repo, [str(data_repo.root.parent)])


def test_second_status_hashes_nothing(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {f"f{i}": f"{i}" * 100 for i in range(4)}})
    time.sleep(0.03)  # past the filesystem's timestamp tick, so the index may trust the files
    tmp_repo.dvl_add("data")
    status(tmp_repo.repo)

    again = status(tmp_repo.repo)

    assert again.entries == ()
    assert (again.hashed_files, again.hashed_bytes) == (0, 0)


def test_status_hashes_only_changed_files(data_repo: TmpRepo) -> None:
    (data_repo.root / "data" / "c.csv").write_text("c, longer now\n")

    first = status(data_repo.repo)

    assert first.hashed_files == 1
    assert first.hashed_bytes == len("c, longer now\n")


def test_stat_index_survives_reopening_the_repo(data_repo: TmpRepo) -> None:
    data_repo.reopen()

    assert status(data_repo.repo).hashed_files == 0


def test_racy_file_is_rehashed_until_its_mtime_is_old(tmp_repo: TmpRepo) -> None:
    """A file whose mtime is not older than the index stamp could change unseen: rehash it."""
    path = tmp_repo.root / "m.bin"
    path.write_bytes(b"aaaa")
    future = time.time() + 3600
    os.utime(path, (future, future))
    tmp_repo.dvl_add("m.bin")
    path.write_bytes(b"bbbb")  # same inode, same size ...
    os.utime(path, (future, future))  # ... and the same mtime

    result = status(tmp_repo.repo)

    assert result.hashed_files == 1
    assert [(e.path, e.state) for e in result.entries] == [("m.bin", "modified")]


def test_stale_index_entry_is_not_trusted_after_edit_in_the_past(data_repo: TmpRepo) -> None:
    path = data_repo.root / "model.bin"
    path.write_bytes(b"\x01model")  # same size
    os.utime(path, (PAST + 10, PAST + 10))

    (entry,) = status(data_repo.repo).entries

    assert (entry.path, entry.state) == ("model.bin", "modified")
