"""``dvlite commit``: store the current content of tracked paths and update their pointers."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PathError
from dvlite.ops.add import commit
from dvlite.ops.checkout import unprotect
from dvlite.ops.status import status
from tests.ops.support import (
    age,
    manifest_files,
    object_path,
    read_pointer,
    set_config,
    xxh,
)

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


@pytest.fixture
def tracked(tmp_repo: TmpRepo) -> TmpRepo:
    tmp_repo.gen({"data": {"a.csv": "a\n", "b.csv": "b\n"}, "model.bin": b"model v1"})
    age(tmp_repo.root / "data")
    age(tmp_repo.root / "model.bin")
    tmp_repo.dvl_add("data", "model.bin")
    return tmp_repo


def test_commit_stores_modified_file_and_updates_pointer(tracked: TmpRepo) -> None:
    (tracked.root / "model.bin").write_bytes(b"model v2, retrained")

    result = commit(tracked.repo, [tracked.path("model.bin")])

    (stored,) = result.stored
    new = xxh(b"model v2, retrained")
    assert (stored.path, stored.oid, stored.changed) == ("model.bin", new, True)
    assert result.hashed_files == 1
    ptr = read_pointer(tracked.root / "model.bin.dvl")
    assert (ptr["oid"], ptr["size"]) == (new, len(b"model v2, retrained"))
    assert object_path(tracked, new).read_bytes() == b"model v2, retrained"
    assert status(tracked.repo).entries == ()


def test_commit_of_a_file_inside_a_folder_commits_the_folder(tracked: TmpRepo) -> None:
    (tracked.root / "data" / "a.csv").write_text("a changed\n")
    tracked.gen({"data": {"c.csv": "c\n"}})
    old = read_pointer(tracked.root / "data.dvl")["oid"]

    (stored,) = commit(tracked.repo, [tracked.path("data/a.csv")]).stored

    ptr = read_pointer(tracked.root / "data.dvl")
    assert stored.path == "data"
    assert ptr["oid"] == stored.oid != old
    assert (ptr["files"], ptr["size"]) == (3, len("a changed\nb\nc\n"))
    listed = manifest_files(tracked, stored.oid)
    assert listed["a.csv"]["oid"] == xxh(b"a changed\n")
    assert object_path(tracked, xxh(b"c\n")).read_bytes() == b"c\n"
    assert not (tracked.root / "data" / "a.csv.dvl").exists()


def test_commit_without_targets_commits_everything_changed(tracked: TmpRepo) -> None:
    (tracked.root / "data" / "b.csv").unlink()
    before_model = (tracked.root / "model.bin.dvl").read_bytes()

    result = commit(tracked.repo)

    by_path = {s.path: s for s in result.stored}
    assert sorted(by_path) == ["data", "model.bin"]
    assert by_path["data"].changed is True
    assert by_path["model.bin"].changed is False
    assert by_path["data"].files == 1
    assert result.hashed_files == 0, "unchanged files are vouched for by the stat index"
    assert (tracked.root / "model.bin.dvl").read_bytes() == before_model
    assert status(tracked.repo).entries == ()


def test_commit_keeps_unknown_pointer_keys(tracked: TmpRepo) -> None:
    pointer = tracked.root / "model.bin.dvl"
    pointer.write_text(pointer.read_text() + 'desc = "baseline"\n')
    (tracked.root / "model.bin").write_bytes(b"better")

    commit(tracked.repo, [tracked.path("model.bin")])

    ptr = read_pointer(pointer)
    assert (ptr["oid"], ptr["desc"]) == (xxh(b"better"), "baseline")


def test_commit_untracked_path_is_an_error(tracked: TmpRepo) -> None:
    tracked.gen({"loose.bin": b"l"})

    with pytest.raises(PathError, match="not tracked"):
        commit(tracked.repo, [tracked.path("loose.bin")])

    assert not (tracked.root / "loose.bin.dvl").exists()


def test_commit_of_deleted_data_is_an_error_and_keeps_the_pointer(tracked: TmpRepo) -> None:
    shutil.rmtree(tracked.root / "data")
    before = (tracked.root / "data.dvl").read_bytes()

    with pytest.raises(PathError, match="does not exist"):
        commit(tracked.repo, [tracked.path("data")])

    assert (tracked.root / "data.dvl").read_bytes() == before


def test_commit_relinks_an_unprotected_file(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"m.bin": b"v1"})
    tmp_repo.dvl_add("m.bin")
    unprotect(tmp_repo.repo, [tmp_repo.path("m.bin")])
    (tmp_repo.root / "m.bin").write_bytes(b"v2")

    commit(tmp_repo.repo, [tmp_repo.path("m.bin")])

    assert os.path.samefile(tmp_repo.root / "m.bin", object_path(tmp_repo, xxh(b"v2")))
    assert object_path(tmp_repo, xxh(b"v1")).read_bytes() == b"v1"
