"""``dvlite checkout`` and ``unprotect``: the workspace brought back to what pointers record."""

from __future__ import annotations

import os
import shutil
import stat
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PathError, UnsafeOperationError
from dvlite.ops.checkout import checkout, unprotect
from dvlite.ops.status import status
from tests.ops.support import drop_object, object_path, read_pointer, set_config, snapshot, xxh

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

V1 = {"a.csv": "a version 1\n", "b.csv": "b only in v1\n", "sub": {"s.csv": "s1\n"}}
V2 = {
    "a.csv": "a version 2, longer\n",
    "c.csv": "c only in v2\n",
    "sub": {"s.csv": "s1\n", "deep": {"x.csv": "x only in v2\n"}},
}


@pytest.fixture
def two_commits(tmp_repo: TmpRepo) -> TmpRepo:
    """data/ and model.bin committed twice with different content; HEAD is v2."""
    tmp_repo.gen({"data": V1, "model.bin": b"model v1"})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v1")
    shutil.rmtree(tmp_repo.root / "data")
    tmp_repo.gen({"data": V2, "model.bin": b"model v2!"})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v2")
    return tmp_repo


def _files(root: os.PathLike[str], under: str) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if k == under or k.startswith(under + "/")}


def _as_bytes(tree: dict[str, object], prefix: str) -> dict[str, bytes]:
    flat: dict[str, bytes] = {}
    for name, content in tree.items():
        if isinstance(content, dict):
            flat.update(_as_bytes(content, f"{prefix}/{name}"))
        else:
            flat[f"{prefix}/{name}"] = content.encode() if isinstance(content, str) else content
    return flat


def test_checkout_old_commit_restores_exact_bytes(two_commits: TmpRepo) -> None:
    two_commits.git("checkout", "-q", "HEAD~1")

    result = checkout(two_commits.repo)

    assert _files(two_commits.root, "data") == _as_bytes(V1, "data")
    assert (two_commits.root / "model.bin").read_bytes() == b"model v1"
    assert sorted(result.written) == ["data/a.csv", "data/b.csv", "model.bin"]
    assert sorted(result.removed) == ["data/c.csv", "data/sub/deep/x.csv"]
    assert result.missing == ()
    assert not (two_commits.root / "data" / "sub" / "deep").exists(), "emptied folders go"
    assert status(two_commits.repo).entries == ()


def test_checkout_back_to_newest_commit(two_commits: TmpRepo) -> None:
    two_commits.git("checkout", "-q", "HEAD~1")
    checkout(two_commits.repo)
    two_commits.git("checkout", "-q", "main")

    checkout(two_commits.repo)

    assert _files(two_commits.root, "data") == _as_bytes(V2, "data")
    assert (two_commits.root / "model.bin").read_bytes() == b"model v2!"


def test_checkout_restores_deleted_and_modified_files(two_commits: TmpRepo) -> None:
    shutil.rmtree(two_commits.root / "data" / "sub")
    (two_commits.root / "model.bin").unlink()
    (two_commits.root / "data" / "a.csv").write_text(V1["a.csv"])  # content that is cached

    result = checkout(two_commits.repo)

    assert _files(two_commits.root, "data") == _as_bytes(V2, "data")
    assert (two_commits.root / "model.bin").read_bytes() == b"model v2!"
    assert sorted(result.written) == [
        "data/a.csv",
        "data/sub/deep/x.csv",
        "data/sub/s.csv",
        "model.bin",
    ]


def test_checkout_restores_a_deleted_tracked_folder(two_commits: TmpRepo) -> None:
    shutil.rmtree(two_commits.root / "data")

    checkout(two_commits.repo)

    assert _files(two_commits.root, "data") == _as_bytes(V2, "data")


def test_checkout_removes_files_not_in_the_pointer_when_cached(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"keep.csv": "k"}, "spare": {"n.csv": "new"}})
    tmp_repo.dvl_add("data", "spare")  # puts new.csv's bytes in the cache
    tmp_repo.gen({"data": {"extra": {"n.csv": "new"}}})

    result = checkout(tmp_repo.repo, [tmp_repo.path("data")])

    assert result.removed == ("data/extra/n.csv",)
    assert _files(tmp_repo.root, "data") == {"data/keep.csv": b"k"}
    assert not (tmp_repo.root / "data" / "extra").exists()


def test_checkout_refuses_to_lose_uncached_changes(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "a.csv").write_text("precious edit\n")
    two_commits.gen({"data": {"sub": {"fresh.csv": "precious new file\n"}}})
    (two_commits.root / "model.bin").write_bytes(b"precious model")
    before = snapshot(two_commits.root)

    with pytest.raises(UnsafeOperationError) as info:
        checkout(two_commits.repo)

    message = str(info.value)
    for path in ("data/a.csv", "data/sub/fresh.csv", "model.bin"):
        assert f"`{path}`" in message
    assert "--force" in (info.value.hint or "")
    assert snapshot(two_commits.root) == before


def test_refusal_after_going_back_in_history_changes_nothing(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "c.csv").write_text("edited, never added\n")
    two_commits.git("checkout", "-q", "HEAD~1")
    before = snapshot(two_commits.root)

    with pytest.raises(UnsafeOperationError, match=r"data/c\.csv"):
        checkout(two_commits.repo)

    assert snapshot(two_commits.root) == before


def test_force_overwrites_uncached_changes(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "a.csv").write_text("precious edit\n")
    two_commits.gen({"data": {"fresh.csv": "precious new file\n"}})
    (two_commits.root / "model.bin").write_bytes(b"precious model")

    result = checkout(two_commits.repo, force=True)

    assert _files(two_commits.root, "data") == _as_bytes(V2, "data")
    assert (two_commits.root / "model.bin").read_bytes() == b"model v2!"
    assert "data/fresh.csv" in result.removed


def test_target_file_inside_folder_restores_only_that_file(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "a.csv").unlink()
    (two_commits.root / "data" / "c.csv").unlink()
    (two_commits.root / "model.bin").unlink()

    result = checkout(two_commits.repo, [two_commits.path("data/a.csv")])

    assert (two_commits.root / "data" / "a.csv").read_text() == V2["a.csv"]
    assert result.written == ("data/a.csv",)
    assert not (two_commits.root / "data" / "c.csv").exists()
    assert not (two_commits.root / "model.bin").exists()


def test_target_subfolder_inside_folder(two_commits: TmpRepo) -> None:
    shutil.rmtree(two_commits.root / "data" / "sub")
    (two_commits.root / "data" / "c.csv").unlink()

    result = checkout(two_commits.repo, [two_commits.path("data/sub")])

    assert _files(two_commits.root, "data/sub") == _as_bytes(V2["sub"], "data/sub")
    assert sorted(result.written) == ["data/sub/deep/x.csv", "data/sub/s.csv"]
    assert not (two_commits.root / "data" / "c.csv").exists()


def test_target_unsafe_file_inside_folder_is_refused_by_name(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "a.csv").write_text("precious edit\n")

    with pytest.raises(UnsafeOperationError, match=r"`data/a\.csv`"):
        checkout(two_commits.repo, [two_commits.path("data/a.csv")])

    assert (two_commits.root / "data" / "a.csv").read_text() == "precious edit\n"


def test_untracked_target_is_an_error(two_commits: TmpRepo) -> None:
    two_commits.gen({"notes.txt": "n"})

    with pytest.raises(PathError, match="not tracked"):
        checkout(two_commits.repo, [two_commits.path("notes.txt")])


def test_missing_objects_are_reported_and_the_rest_written(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "a.csv").unlink()
    (two_commits.root / "data" / "c.csv").unlink()
    (two_commits.root / "model.bin").unlink()
    drop_object(two_commits, xxh(V2["c.csv"].encode()))
    drop_object(two_commits, xxh(b"model v2!"))

    result = checkout(two_commits.repo)

    assert sorted(result.missing) == ["data/c.csv", "model.bin"]
    assert result.written == ("data/a.csv",)
    assert (two_commits.root / "data" / "a.csv").read_text() == V2["a.csv"]
    assert not os.path.lexists(two_commits.root / "data" / "c.csv")
    assert not os.path.lexists(two_commits.root / "model.bin"), "nothing stands in for it"


def test_missing_object_for_target_file_inside_folder(two_commits: TmpRepo) -> None:
    (two_commits.root / "data" / "c.csv").unlink()
    drop_object(two_commits, xxh(V2["c.csv"].encode()))

    result = checkout(two_commits.repo, [two_commits.path("data/c.csv")])

    assert (result.written, result.missing) == ((), ("data/c.csv",))
    assert not os.path.lexists(two_commits.root / "data" / "c.csv")


def test_missing_manifest_is_reported_as_the_whole_folder(two_commits: TmpRepo) -> None:
    shutil.rmtree(two_commits.root / "data")
    drop_object(two_commits, read_pointer(two_commits.root / "data.dvl")["oid"])

    result = checkout(two_commits.repo)

    assert result.missing == ("data",)
    assert result.written == ()
    assert not (two_commits.root / "data").exists()


def test_executable_bit_is_restored(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"tools": {"run.sh": "#!/bin/sh\necho hi\n", "conf.txt": "c"}})
    (tmp_repo.root / "tools" / "run.sh").chmod(0o755)
    tmp_repo.dvl_add("tools")
    (tmp_repo.root / "tools" / "run.sh").unlink()
    (tmp_repo.root / "tools" / "conf.txt").chmod(0o755)  # wrongly made executable

    result = checkout(tmp_repo.repo)

    assert sorted(result.written) == ["tools/conf.txt", "tools/run.sh"]
    assert (tmp_repo.root / "tools" / "run.sh").stat().st_mode & stat.S_IXUSR
    assert not (tmp_repo.root / "tools" / "conf.txt").stat().st_mode & stat.S_IXUSR
    assert status(tmp_repo.repo).entries == ()


def test_second_checkout_is_a_no_op(two_commits: TmpRepo) -> None:
    two_commits.git("checkout", "-q", "HEAD~1")
    checkout(two_commits.repo)
    inode = (two_commits.root / "data" / "a.csv").stat().st_ino

    again = checkout(two_commits.repo)

    assert (again.written, again.removed, again.missing) == ((), (), ())
    assert again.unchanged == 2
    assert (two_commits.root / "data" / "a.csv").stat().st_ino == inode


def test_checkout_of_clean_workspace_writes_nothing(two_commits: TmpRepo) -> None:
    result = checkout(two_commits.repo)

    assert (result.written, result.removed, result.unchanged) == ((), (), 2)


def test_checkout_file_that_became_a_folder(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"thing": b"a plain file"})
    tmp_repo.dvl_add("thing")
    tmp_repo.git_commit("file")
    (tmp_repo.root / "thing").unlink()
    tmp_repo.gen({"thing": {"inner.csv": "now a folder"}})
    tmp_repo.dvl_add("thing")
    tmp_repo.git_commit("folder")

    tmp_repo.git("checkout", "-q", "HEAD~1")
    checkout(tmp_repo.repo)
    assert (tmp_repo.root / "thing").read_bytes() == b"a plain file"

    tmp_repo.git("checkout", "-q", "main")
    checkout(tmp_repo.repo)
    assert (tmp_repo.root / "thing" / "inner.csv").read_text() == "now a folder"


@pytest.mark.parametrize("strategy", ["hardlink", "symlink"])
def test_checkout_with_links_writes_read_only_links(tmp_repo: TmpRepo, strategy: str) -> None:
    set_config(tmp_repo, "cache.link", strategy)
    tmp_repo.gen({"data": {"a.csv": "alpha"}})
    tmp_repo.dvl_add("data")
    (tmp_repo.root / "data" / "a.csv").unlink()

    checkout(tmp_repo.repo)

    path = tmp_repo.root / "data" / "a.csv"
    assert os.path.samefile(path, object_path(tmp_repo, xxh(b"alpha")))
    assert path.is_symlink() == (strategy == "symlink")
    assert os.stat(path).st_mode & 0o222 == 0
    assert path.read_text() == "alpha"


def test_checkout_with_hardlinks_leaves_no_temp_files(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"tools": {"run.sh": "#!/bin/sh\n", "conf.txt": "c"}})
    (tmp_repo.root / "tools" / "run.sh").chmod(0o755)
    tmp_repo.dvl_add("tools")

    checkout(tmp_repo.repo)
    checkout(tmp_repo.repo)

    assert sorted(os.listdir(tmp_repo.root / "tools")) == ["conf.txt", "run.sh"]


def test_unprotect_makes_private_writable_copies(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": "alpha", "b.csv": "beta"}})
    tmp_repo.dvl_add("data")

    changed = unprotect(tmp_repo.repo, [tmp_repo.path("data")])

    assert sorted(changed) == ["data/a.csv", "data/b.csv"]
    path = tmp_repo.root / "data" / "a.csv"
    obj = object_path(tmp_repo, xxh(b"alpha"))
    assert not os.path.samefile(path, obj)
    assert path.stat().st_mode & stat.S_IWUSR
    path.write_text("edited")
    assert obj.read_text() == "alpha", "editing the copy leaves the cache alone"
    assert unprotect(tmp_repo.repo, [tmp_repo.path("data")]) == [], "already private"
