"""``dvlite ls``: tracked data in the workspace or at a revision, with cache presence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.errors import MissingObjectError, PathError
from dvlite.ops.init import remote_add
from dvlite.ops.ls import LsEntry, ls
from dvlite.ops.sync import push
from tests.ops.support import drop_object, read_pointer, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

A, B, D = b"a\n", b"bb\n", b"ddd\n"
M = b"model bytes"


@pytest.fixture
def listed(tmp_repo: TmpRepo) -> TmpRepo:
    tmp_repo.gen({"data": {"a.csv": A, "b.csv": B, "sub": {"d.csv": D}}, "models": {"m.bin": M}})
    tmp_repo.dvl_add("data", "models/m.bin")
    tmp_repo.git_commit("v1")
    return tmp_repo


def _data_oid(repo: TmpRepo) -> str:
    return str(read_pointer(repo.root / "data.dvl")["oid"])


def test_ls_workspace_lists_tracked_paths(listed: TmpRepo) -> None:
    assert ls(listed.repo) == [
        LsEntry("data", "dir", len(A + B + D), _data_oid(listed), True, files=3),
        LsEntry("models/m.bin", "file", len(M), xxh(M), True),
    ]


def test_ls_inside_folder_lists_its_files(listed: TmpRepo) -> None:
    assert ls(listed.repo, "data") == [
        LsEntry("data/a.csv", "file", len(A), xxh(A), True),
        LsEntry("data/b.csv", "file", len(B), xxh(B), True),
        LsEntry("data/sub/d.csv", "file", len(D), xxh(D), True),
    ]
    assert ls(listed.repo, "data/sub") == [LsEntry("data/sub/d.csv", "file", len(D), xxh(D), True)]
    assert ls(listed.repo, "data/b.csv") == [LsEntry("data/b.csv", "file", len(B), xxh(B), True)]


def test_ls_tracked_file(listed: TmpRepo) -> None:
    assert ls(listed.repo, "models/m.bin") == [
        LsEntry("models/m.bin", "file", len(M), xxh(M), True),
    ]


def test_ls_folder_holding_pointers(listed: TmpRepo) -> None:
    listed.gen({"models": {"other.bin": b"o"}})
    listed.dvl_add("models/other.bin")

    assert [e.path for e in ls(listed.repo, "models")] == ["models/m.bin", "models/other.bin"]


def test_ls_in_cache_flags(listed: TmpRepo) -> None:
    drop_object(listed, xxh(B))
    drop_object(listed, xxh(M))

    assert [(e.path, e.in_cache) for e in ls(listed.repo)] == [
        ("data", False),  # its manifest is cached, but not all of its files
        ("models/m.bin", False),
    ]
    assert [(e.path, e.in_cache) for e in ls(listed.repo, "data")] == [
        ("data/a.csv", True),
        ("data/b.csv", False),
        ("data/sub/d.csv", True),
    ]


def test_ls_folder_without_cached_manifest(listed: TmpRepo) -> None:
    drop_object(listed, _data_oid(listed))

    assert next((e.path, e.in_cache) for e in ls(listed.repo)) == ("data", False)
    with pytest.raises(MissingObjectError, match="data"):
        ls(listed.repo, "data")


def test_ls_at_revision(listed: TmpRepo) -> None:
    v1_oid = _data_oid(listed)
    (listed.root / "data" / "a.csv").write_bytes(b"a v2\n")
    listed.gen({"extra.bin": b"e"})
    listed.dvl_add("data", "extra.bin")
    listed.git_commit("v2")
    listed.gen({"later.bin": b"l"})
    listed.dvl_add("later.bin")  # in the workspace only

    old = ls(listed.repo, rev="HEAD~1")
    head = ls(listed.repo, rev="HEAD")

    assert old == [
        LsEntry("data", "dir", len(A + B + D), v1_oid, True, files=3),
        LsEntry("models/m.bin", "file", len(M), xxh(M), True),
    ]
    assert [e.path for e in head] == ["data", "extra.bin", "models/m.bin"]
    assert ls(listed.repo, "data/a.csv", rev="HEAD~1") == [
        LsEntry("data/a.csv", "file", len(A), xxh(A), True),
    ]
    assert ls(listed.repo, "data/a.csv", rev="HEAD") == [
        LsEntry("data/a.csv", "file", len(b"a v2\n"), xxh(b"a v2\n"), True),
    ]


def test_ls_at_revision_sees_paths_gone_from_the_workspace(listed: TmpRepo) -> None:
    listed.git("rm", "-q", "models/m.bin.dvl")
    listed.git_commit("drop model")

    assert [e.path for e in ls(listed.repo)] == ["data"]
    assert [e.path for e in ls(listed.repo, "models", rev="HEAD~1")] == ["models/m.bin"]


@pytest.mark.parametrize("path", ["nope", "dat", "data/nope.csv", "data/su"])
def test_ls_untracked_path_is_an_error(listed: TmpRepo, path: str) -> None:
    with pytest.raises(PathError):
        ls(listed.repo, path)


def test_ls_path_missing_at_revision_is_an_error(listed: TmpRepo) -> None:
    listed.gen({"extra.bin": b"e"})
    listed.dvl_add("extra.bin")

    with pytest.raises(PathError, match="HEAD"):
        ls(listed.repo, "extra.bin", rev="HEAD")


def test_ls_says_what_the_remote_holds(listed: TmpRepo, tmp_path: Path) -> None:
    remote_add(listed.repo, "store", str(tmp_path / "store"), default=True)
    listed.reopen()
    assert [e.on_remote for e in ls(listed.repo)] == [None, None]  # not asked
    assert [e.on_remote for e in ls(listed.repo, on_remote=True)] == [False, False]
    push(listed.repo, [str(listed.root / "models")])
    assert [(e.path, e.on_remote) for e in ls(listed.repo, on_remote=True)] == [
        ("data", False), ("models/m.bin", True)]
    push(listed.repo)
    assert all(e.on_remote for e in ls(listed.repo, "data", on_remote=True))
    store = tmp_path / "store"
    (store / xxh(A)[:2] / xxh(A)[2:]).unlink()
    assert [(e.path, e.on_remote) for e in ls(listed.repo, "data", on_remote=True)] == [
        ("data/a.csv", False), ("data/b.csv", True), ("data/sub/d.csv", True)]
