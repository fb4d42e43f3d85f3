"""``dvlite diff``: data changes between revisions or HEAD and the workspace, down to files."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import GitError
from dvlite.ops.diff import DiffEntry, diff
from tests.ops.support import drop_object, read_pointer, xxh

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

A1, A2 = b"a,1\n", b"a,2 changed\n"
B, C = b"b only before\n", b"c only after\n"
M1, M2 = b"model one", b"model two!!"


@pytest.fixture
def committed(tmp_repo: TmpRepo) -> TmpRepo:
    tmp_repo.gen({"data": {"a.csv": A1, "b.csv": B, "same.csv": b"s"}, "model.bin": M1})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v1")
    return tmp_repo


def _change_workspace(repo: TmpRepo) -> None:
    data = repo.root / "data"
    (data / "a.csv").write_bytes(A2)
    (data / "b.csv").unlink()
    (data / "sub").mkdir()
    (data / "sub" / "c.csv").write_bytes(C)
    (repo.root / "model.bin").write_bytes(M2)


EXPECTED = [
    DiffEntry("data/a.csv", "modified", xxh(A1), xxh(A2), len(A1), len(A2)),
    DiffEntry("data/b.csv", "deleted", xxh(B), None, len(B), None),
    DiffEntry("data/sub/c.csv", "added", None, xxh(C), None, len(C)),
    DiffEntry("model.bin", "modified", xxh(M1), xxh(M2), len(M1), len(M2)),
]


def test_no_changes(committed: TmpRepo) -> None:
    assert diff(committed.repo) == []


def test_head_against_workspace_lists_files_inside_folders(committed: TmpRepo) -> None:
    _change_workspace(committed)

    assert diff(committed.repo) == EXPECTED


def test_head_against_re_added_workspace(committed: TmpRepo) -> None:
    _change_workspace(committed)
    committed.dvl_add("data", "model.bin")

    assert diff(committed.repo) == EXPECTED


def test_two_revisions(committed: TmpRepo) -> None:
    _change_workspace(committed)
    committed.dvl_add("data", "model.bin")
    committed.git_commit("v2")
    (committed.root / "model.bin").write_bytes(b"uncommitted, must not show")

    assert diff(committed.repo, "HEAD~1", "HEAD") == EXPECTED
    assert diff(committed.repo, "HEAD", "HEAD~1") == [
        DiffEntry("data/a.csv", "modified", xxh(A2), xxh(A1), len(A2), len(A1)),
        DiffEntry("data/b.csv", "added", None, xxh(B), None, len(B)),
        DiffEntry("data/sub/c.csv", "deleted", xxh(C), None, len(C), None),
        DiffEntry("model.bin", "modified", xxh(M2), xxh(M1), len(M2), len(M1)),
    ]
    assert diff(committed.repo, "HEAD", "HEAD") == []


def test_old_revision_against_workspace(committed: TmpRepo) -> None:
    _change_workspace(committed)
    committed.dvl_add("data", "model.bin")
    committed.git_commit("v2")

    assert diff(committed.repo, "HEAD~1") == EXPECTED
    assert diff(committed.repo) == []


def test_added_and_deleted_tracked_paths(committed: TmpRepo) -> None:
    committed.gen({"new": {"deep": {"extra.bin": b"extra"}}})
    committed.dvl_add("new/deep/extra.bin")
    committed.git("rm", "-q", "model.bin.dvl")
    (committed.root / "model.bin").unlink()

    assert diff(committed.repo) == [
        DiffEntry("model.bin", "deleted", xxh(M1), None, len(M1), None),
        DiffEntry("new/deep/extra.bin", "added", None, xxh(b"extra"), None, len(b"extra")),
    ]


def test_added_and_deleted_between_revisions(committed: TmpRepo) -> None:
    committed.gen({"extra.bin": b"extra"})
    committed.dvl_add("extra.bin")
    committed.git("rm", "-q", "model.bin.dvl")
    committed.git_commit("v2")

    assert diff(committed.repo, "HEAD~1", "HEAD") == [
        DiffEntry("extra.bin", "added", None, xxh(b"extra"), None, len(b"extra")),
        DiffEntry("model.bin", "deleted", xxh(M1), None, len(M1), None),
    ]


def test_added_folder_is_one_entry_with_its_size(committed: TmpRepo) -> None:
    committed.gen({"images": {"1.png": b"one", "2.png": b"two!"}})
    (stored,) = committed.dvl_add("images").stored

    assert diff(committed.repo) == [
        DiffEntry("images", "added", None, stored.oid, None, len(b"one") + len(b"two!")),
    ]


def test_data_deleted_from_workspace(committed: TmpRepo) -> None:
    shutil.rmtree(committed.root / "data")
    oid = read_pointer(committed.root / "data.dvl")["oid"]

    assert diff(committed.repo) == [
        DiffEntry("data", "deleted", oid, None, len(A1) + len(B) + 1, None),
    ]


def test_executable_bit_change_inside_folder(committed: TmpRepo) -> None:
    (committed.root / "data" / "same.csv").chmod(0o755)

    assert diff(committed.repo) == [
        DiffEntry("data/same.csv", "modified", xxh(b"s"), xxh(b"s"), 1, 1),
    ]


def test_folder_without_cached_manifest_is_one_entry(committed: TmpRepo) -> None:
    old = read_pointer(committed.root / "data.dvl")["oid"]
    _change_workspace(committed)
    committed.dvl_add("data")
    committed.git_commit("v2")
    new = read_pointer(committed.root / "data.dvl")["oid"]
    drop_object(committed, old)

    changes = diff(committed.repo, "HEAD~1", "HEAD")

    assert [(c.path, c.change, c.old_oid, c.new_oid) for c in changes] == [
        ("data", "modified", old, new),
    ]


def test_folder_without_cached_manifest_keeps_pointer_sizes(committed: TmpRepo) -> None:
    old = read_pointer(committed.root / "data.dvl")
    _change_workspace(committed)
    committed.dvl_add("data")
    committed.git_commit("v2")
    new = read_pointer(committed.root / "data.dvl")
    drop_object(committed, old["oid"])

    (change,) = diff(committed.repo, "HEAD~1", "HEAD")

    assert (change.old_size, change.new_size) == (old["size"], new["size"])


def test_unknown_revision_is_an_error(committed: TmpRepo) -> None:
    with pytest.raises(GitError, match="no-such-rev"):
        diff(committed.repo, "no-such-rev")
