"""Switching commits: checkout touches only the files that differ, and fills an empty
workspace without leaving anything behind."""

from __future__ import annotations

import os
import shutil
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import UnsafeOperationError
from dvlite.ops.checkout import checkout
from dvlite.ops.status import status
from tests.ops.support import set_config

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

FILES = {f"d{i % 4}/f{i}.csv": f"row {i}\n" * (i + 1) for i in range(40)}
CHANGED = {"d0/f0.csv": "rewritten\n", "d1/f5.csv": "also rewritten\n",
           "d2/new.csv": "added in v2\n"}
GONE = "d3/f7.csv"


def _write(tmp_repo: TmpRepo, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tmp_repo.root / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()  # a hardlinked file is read-only: write a new one
        path.write_text(text)


def _stats(tmp_repo: TmpRepo) -> dict[str, tuple[int, int]]:
    root = tmp_repo.root / "data"
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


@pytest.fixture(params=["copy", "hardlink"])
def versions(tmp_repo: TmpRepo, request: pytest.FixtureRequest) -> TmpRepo:
    """data/ at v1 (FILES) and v2 (three files changed or added, one removed); HEAD is v2."""
    set_config(tmp_repo, "cache.link", request.param)
    _write(tmp_repo, FILES)
    tmp_repo.dvl_add("data")
    tmp_repo.git_commit("v1")
    _write(tmp_repo, CHANGED)
    (tmp_repo.root / "data" / GONE).unlink()
    tmp_repo.dvl_add("data")
    tmp_repo.git_commit("v2")
    return tmp_repo


def test_a_switch_writes_only_the_files_that_differ(versions: TmpRepo) -> None:
    before = _stats(versions)
    versions.git("checkout", "-q", "HEAD~1")

    result = checkout(versions.repo)

    assert sorted(result.written) == ["data/d0/f0.csv", "data/d1/f5.csv", f"data/{GONE}"]
    assert result.removed == ("data/d2/new.csv",)
    after = _stats(versions)
    untouched = set(FILES) - {"d0/f0.csv", "d1/f5.csv", GONE}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}, (
        "unchanged files keep their inode and mtime"
    )
    assert {k: (versions.root / "data" / k).read_text() for k in FILES} == FILES

    versions.git("checkout", "-q", "main")
    back = checkout(versions.repo)

    assert sorted(back.written) == ["data/d0/f0.csv", "data/d1/f5.csv", "data/d2/new.csv"]
    assert back.removed == (f"data/{GONE}",)
    again = _stats(versions)
    assert {k: again[k] for k in untouched} == {k: before[k] for k in untouched}
    assert status(versions.repo).entries == ()


def test_an_empty_workspace_is_filled_without_litter(versions: TmpRepo) -> None:
    shutil.rmtree(versions.root / "data")

    result = checkout(versions.repo)

    expected = {**FILES, **CHANGED}
    del expected[GONE]
    assert len(result.written) == len(expected)
    assert {k: (versions.root / "data" / k).read_text() for k in expected} == expected
    assert sorted(_stats(versions)) == sorted(expected)
    assert [n for n in os.listdir(versions.repo.tmp_dir) if n.startswith("materialize-")] == []
    assert status(versions.repo).entries == ()
    assert checkout(versions.repo).written == (), "the stat index vouches for what was written"


def test_a_changed_folder_matching_a_pointer_without_its_manifest_is_unchanged(
    versions: TmpRepo,
) -> None:
    """checkout does not build a changed folder's manifest to compare it; when the pointer's
    file list is not cached it still finds, by the folder's oid, that nothing is to do."""
    _write(versions, {"d0/f0.csv": CHANGED["d0/f0.csv"]})  # same bytes, a new inode
    pointer_oid = tomllib.loads((versions.root / "data.dvl").read_text())["oid"]
    os.chmod(versions.repo.cache.path(pointer_oid), 0o644)
    os.remove(versions.repo.cache.path(pointer_oid))

    result = checkout(versions.repo)

    assert (result.written, result.removed, result.missing) == ((), (), ())
    assert result.unchanged == 1


def test_what_checkout_hashed_is_not_hashed_again(versions: TmpRepo) -> None:
    """A file edited before a checkout is hashed to see whether it is in the cache; the
    checkout refuses to overwrite it, and the status that follows trusts that hash."""
    _write(versions, {"d0/f0.csv": "an edit nobody added\n"})
    edited = versions.root / "data/d0/f0.csv"
    past = edited.stat().st_mtime_ns - 10**10  # not racy: the hash is trusted at once
    os.utime(edited, ns=(past, past))
    versions.git("checkout", "-q", "HEAD~1")

    with pytest.raises(UnsafeOperationError, match=r"data/d0/f0\.csv"):
        checkout(versions.repo)

    result = status(versions.repo)
    assert result.hashed_files == 0
    assert [(e.path, e.added, e.modified, e.deleted) for e in result.entries] == [
        ("data", ("d2/new.csv",), ("d0/f0.csv", "d1/f5.csv"), (GONE,))]
