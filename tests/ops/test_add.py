"""``dvlite add``: hashing, storing, pointer files, .gitignore lines, links, refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import LockTimeoutError, PathError
from dvlite.ops.add import add
from dvlite.ops.status import status
from tests.ops.support import (
    age,
    cache_oids,
    drop_object,
    ignore_lines,
    manifest_files,
    object_path,
    read_pointer,
    set_config,
    snapshot,
    staged,
    xxh,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

MODEL = b"\x00weights\xff" * 100


def test_add_file_writes_pointer_named_by_content_hash(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"model.bin": MODEL})

    result = tmp_repo.dvl_add("model.bin")

    (stored,) = result.stored
    assert stored.path == "model.bin"
    assert stored.pointer_file == "model.bin.dvl"
    assert stored.oid == xxh(MODEL)
    assert stored.size == len(MODEL)
    assert stored.files is None
    assert stored.changed is True
    assert result.hashed_files == 1
    assert result.hashed_bytes == len(MODEL)
    assert read_pointer(tmp_repo.root / "model.bin.dvl") == {
        "version": 1,
        "path": "model.bin",
        "oid": xxh(MODEL),
        "size": len(MODEL),
        "kind": "file",
    }
    obj = object_path(tmp_repo, xxh(MODEL))
    assert obj.read_bytes() == MODEL
    assert obj.stat().st_mode & 0o222 == 0, "cached objects are read-only"
    assert (tmp_repo.root / "model.bin").read_bytes() == MODEL


def test_add_folder_records_manifest_with_file_count_and_size(tmp_repo: TmpRepo) -> None:
    files = {"a.csv": b"x,y\n1,2\n", "sub/b.bin": b"\x01\x02\x03", "sub/deep/c.txt": b"c" * 50}
    tmp_repo.gen(
        {
            "data": {
                "a.csv": files["a.csv"],
                "sub": {"b.bin": files["sub/b.bin"], "deep": {"c.txt": files["sub/deep/c.txt"]}},
            }
        }
    )

    (stored,) = tmp_repo.dvl_add("data").stored

    total = sum(len(b) for b in files.values())
    assert (stored.files, stored.size) == (3, total)
    ptr = read_pointer(tmp_repo.root / "data.dvl")
    assert ptr == {
        "version": 1,
        "path": "data",
        "oid": stored.oid,
        "size": total,
        "files": 3,
        "kind": "dir",
    }
    listed = manifest_files(tmp_repo, stored.oid)
    assert xxh(object_path(tmp_repo, stored.oid).read_bytes()) == stored.oid
    assert sorted(listed) == sorted(files)
    for rel, content in files.items():
        assert listed[rel]["oid"] == xxh(content)
        assert listed[rel]["size"] == len(content)
        assert object_path(tmp_repo, xxh(content)).read_bytes() == content
    assert cache_oids(tmp_repo) == {stored.oid, *(xxh(b) for b in files.values())}


def test_add_empty_folder(tmp_repo: TmpRepo) -> None:
    (tmp_repo.root / "empty").mkdir()

    (stored,) = tmp_repo.dvl_add("empty").stored

    assert (stored.files, stored.size) == (0, 0)
    assert manifest_files(tmp_repo, stored.oid) == {}
    assert read_pointer(tmp_repo.root / "empty.dvl")["files"] == 0


def test_add_ignores_data_in_git_and_leaves_pointer_visible(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a.csv": "1"}, "model.bin": MODEL})

    tmp_repo.dvl_add("data", "model.bin")

    assert ignore_lines(tmp_repo.root) == ["/data", "/model.bin"]
    untracked = tmp_repo.git("ls-files", "--others", "--exclude-standard").split()
    assert sorted(p for p in untracked if not p.startswith(".dvlite/")) == [
        ".gitignore",
        "data.dvl",
        "model.bin.dvl",
    ]


def test_nested_path_gets_its_own_gitignore(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a": {"b": {"c.bin": MODEL}}})

    (stored,) = tmp_repo.dvl_add("a/b/c.bin").stored

    assert stored.pointer_file == "a/b/c.bin.dvl"
    assert read_pointer(tmp_repo.root / "a/b/c.bin.dvl")["path"] == "c.bin"
    assert ignore_lines(tmp_repo.root / "a" / "b") == ["/c.bin"]
    assert ignore_lines(tmp_repo.root) == []
    assert ignore_lines(tmp_repo.root / "a") == []


def test_re_add_does_not_duplicate_gitignore_lines(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"sub": {".gitignore": "*.log", "m.bin": b"1"}})  # no final newline

    tmp_repo.dvl_add("sub/m.bin")
    (tmp_repo.root / "sub" / "m.bin").write_bytes(b"2")
    tmp_repo.dvl_add("sub/m.bin")
    tmp_repo.dvl_add("sub/m.bin")

    assert ignore_lines(tmp_repo.root / "sub") == ["*.log", "/m.bin"]


@pytest.mark.parametrize(
    ("name", "lookalike"),
    [
        ("a b.csv", "a  b.csv"),
        ("x*.bin", "xyz.bin"),
        ("f?.bin", "fa.bin"),
        ("[ab].bin", "a.bin"),
        ("#hash.bin", "hash.bin"),
        ("!bang.bin", "bang.bin"),
        ("trailing ", "trailing"),
    ],
)
def test_gitignore_line_matches_exactly_the_tracked_name(
    tmp_repo: TmpRepo, name: str, lookalike: str
) -> None:
    tmp_repo.gen({"d": {name: b"data", lookalike: b"other"}})

    tmp_repo.dvl_add(f"d/{name}")

    untracked = tmp_repo.git("ls-files", "--others", "--exclude-standard", "-z", "d")
    assert sorted(p for p in untracked.split("\0") if p) == sorted(
        ["d/.gitignore", f"d/{name}.dvl", f"d/{lookalike}"]
    )


def test_re_add_after_change_updates_pointer_and_keeps_unknown_keys(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"model.bin": b"v1"})
    tmp_repo.dvl_add("model.bin")
    pointer = tmp_repo.root / "model.bin.dvl"
    pointer.write_text(pointer.read_text() + 'owner = "ml-team"\n[meta]\nepochs = 3\n')
    (tmp_repo.root / "model.bin").write_bytes(b"version two")

    (stored,) = tmp_repo.dvl_add("model.bin").stored

    assert stored.changed is True
    assert stored.oid == xxh(b"version two")
    ptr = read_pointer(pointer)
    assert (ptr["oid"], ptr["size"]) == (xxh(b"version two"), len(b"version two"))
    assert ptr["owner"] == "ml-team"
    assert ptr["meta"] == {"epochs": 3}
    assert object_path(tmp_repo, xxh(b"version two")).read_bytes() == b"version two"
    assert object_path(tmp_repo, xxh(b"v1")).exists(), "the old version stays in the cache"


def test_re_add_folder_after_change_updates_count_and_size(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a": b"1", "b": b"22"}})
    tmp_repo.dvl_add("data")
    (tmp_repo.root / "data" / "b").unlink()
    tmp_repo.gen({"data": {"c": b"333", "d": b"4444"}})

    (stored,) = tmp_repo.dvl_add("data").stored

    assert (stored.changed, stored.files, stored.size) == (True, 3, 8)
    ptr = read_pointer(tmp_repo.root / "data.dvl")
    assert (ptr["oid"], ptr["files"], ptr["size"]) == (stored.oid, 3, 8)
    assert sorted(manifest_files(tmp_repo, stored.oid)) == ["a", "c", "d"]


def test_re_add_unchanged_hashes_nothing_and_keeps_pointer(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {f"f{i}.csv": f"row {i}\n" for i in range(5)}})
    age(tmp_repo.root / "data")
    first = tmp_repo.dvl_add("data")
    pointer = tmp_repo.root / "data.dvl"
    before = pointer.read_bytes()
    pointer_mtime = pointer.stat().st_mtime_ns

    second = tmp_repo.dvl_add("data")

    assert first.hashed_files == 5
    assert second.stored[0].changed is False
    assert second.stored[0].oid == first.stored[0].oid
    assert (second.hashed_files, second.hashed_bytes) == (0, 0)
    assert pointer.read_bytes() == before
    assert pointer.stat().st_mtime_ns == pointer_mtime, "an unchanged pointer is not rewritten"


def test_re_add_hashes_only_the_changed_file(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {f"f{i}.csv": f"row {i}\n" for i in range(5)}})
    age(tmp_repo.root / "data")
    tmp_repo.dvl_add("data")
    (tmp_repo.root / "data" / "f3.csv").write_text("row 3 changed\n")

    result = tmp_repo.dvl_add("data")

    assert result.hashed_files == 1
    assert result.hashed_bytes == len("row 3 changed\n")
    assert result.stored[0].changed is True
    assert manifest_files(tmp_repo, result.stored[0].oid)["f3.csv"]["oid"] == xxh(
        b"row 3 changed\n"
    )


def test_re_add_puts_back_an_object_missing_from_the_cache(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a": b"alpha", "b": b"beta"}})
    age(tmp_repo.root / "data")
    tmp_repo.dvl_add("data")
    drop_object(tmp_repo, xxh(b"alpha"))

    result = tmp_repo.dvl_add("data")

    assert result.stored[0].changed is False
    assert object_path(tmp_repo, xxh(b"alpha")).read_bytes() == b"alpha"


def test_add_several_paths_in_one_call(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a.bin": b"a", "b": {"c.bin": b"c"}})

    result = tmp_repo.dvl_add("a.bin", "b")

    assert [s.path for s in result.stored] == ["a.bin", "b"]
    assert (tmp_repo.root / "a.bin.dvl").exists()
    assert (tmp_repo.root / "b.dvl").exists()


# --- refusals: an error, and nothing written ------------------------------------------------


def _refused(tmp_repo: TmpRepo, paths: list[str], match: str) -> None:
    work_tree = snapshot(tmp_repo.root)
    objects = cache_oids(tmp_repo)
    with pytest.raises(PathError, match=match):
        add(tmp_repo.repo, paths)
    assert snapshot(tmp_repo.root) == work_tree
    assert cache_oids(tmp_repo) == objects


def test_add_missing_path_is_refused(tmp_repo: TmpRepo) -> None:
    _refused(tmp_repo, [tmp_repo.path("nope.bin")], "does not exist")


def test_add_path_outside_repo_is_refused(tmp_repo: TmpRepo) -> None:
    outside = tmp_repo.root.parent / "outside.bin"
    outside.write_bytes(b"not yours")

    _refused(tmp_repo, [str(outside)], "outside the repo")


def test_add_through_dotdot_outside_repo_is_refused(tmp_repo: TmpRepo) -> None:
    (tmp_repo.root.parent / "outside.bin").write_bytes(b"not yours")

    _refused(tmp_repo, [tmp_repo.path("../outside.bin")], "outside the repo")


def test_add_repo_root_is_refused(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a.bin": b"a"})

    _refused(tmp_repo, [str(tmp_repo.root)], "whole repo")


@pytest.mark.parametrize("inside", [".git/config", ".dvlite/config.toml"])
def test_add_inside_managed_folders_is_refused(tmp_repo: TmpRepo, inside: str) -> None:
    _refused(tmp_repo, [tmp_repo.path(inside)], "manages")


def test_add_pointer_file_is_refused(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a.bin": b"a"})
    tmp_repo.dvl_add("a.bin")

    _refused(tmp_repo, [tmp_repo.path("a.bin.dvl")], "pointer file")


def test_add_inside_tracked_folder_is_refused(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a.csv": "1", "sub": {"b.csv": "2"}}})
    tmp_repo.dvl_add("data")

    _refused(tmp_repo, [tmp_repo.path("data/a.csv")], "inside tracked folder `data`")
    _refused(tmp_repo, [tmp_repo.path("data/sub")], "inside tracked folder `data`")
    assert not (tmp_repo.root / "data" / "a.csv.dvl").exists()
    assert not (tmp_repo.root / "data" / ".gitignore").exists()


def test_add_folder_holding_tracked_data_is_refused(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"proj": {"raw": {"a.csv": "1"}, "notes.txt": "n"}})
    tmp_repo.dvl_add("proj/raw")

    _refused(tmp_repo, [tmp_repo.path("proj")], "holds tracked data `proj/raw`")
    assert not (tmp_repo.root / "proj.dvl").exists()


def test_add_overlapping_paths_in_one_call_is_refused(tmp_repo: TmpRepo) -> None:
    """A folder and a file inside it cannot both be tracked, even when named together."""
    tmp_repo.gen({"data": {"a.csv": "1", "b.csv": "2"}})

    _refused(tmp_repo, [tmp_repo.path("data"), tmp_repo.path("data/a.csv")], "data")
    _refused(tmp_repo, [tmp_repo.path("data/a.csv"), tmp_repo.path("data")], "data")


def test_add_file_tracked_by_git_is_refused(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"small.csv": "a,b\n", "big": {"x.bin": b"x"}})
    tmp_repo.git_commit("in git")

    _refused(tmp_repo, [tmp_repo.path("small.csv")], "tracked by git")
    _refused(tmp_repo, [tmp_repo.path("big")], "tracked by git")


def test_add_folder_with_symlink_out_of_repo_is_refused(tmp_repo: TmpRepo) -> None:
    secret = tmp_repo.root.parent / "secret.txt"
    secret.write_text("outside")
    tmp_repo.gen({"data": {"a.csv": "1"}})
    (tmp_repo.root / "data" / "link.txt").symlink_to(secret)

    _refused(tmp_repo, [tmp_repo.path("data")], "outside the repo")
    assert ignore_lines(tmp_repo.root) == []


def test_add_symlink_to_file_inside_repo_stores_its_bytes(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"real.txt": "real bytes", "data": {"a.csv": "1"}})
    (tmp_repo.root / "data" / "link.txt").symlink_to(tmp_repo.root / "real.txt")

    (stored,) = tmp_repo.dvl_add("data").stored

    assert manifest_files(tmp_repo, stored.oid)["link.txt"]["oid"] == xxh(b"real bytes")


# --- autostage, links, locking --------------------------------------------------------------


def test_autostage_stages_pointer_and_gitignore(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a": {"m.bin": MODEL}, "top.bin": b"t"})
    set_config(tmp_repo, "core.autostage", "true")

    tmp_repo.dvl_add("a/m.bin", "top.bin")

    assert staged(tmp_repo) == [".gitignore", "a/.gitignore", "a/m.bin.dvl", "top.bin.dvl"]


def test_without_autostage_nothing_is_staged(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"a": {"m.bin": MODEL}})

    tmp_repo.dvl_add("a/m.bin")

    assert staged(tmp_repo) == []


def _read_only(path: Path) -> bool:
    return os.stat(path).st_mode & 0o222 == 0  # tests run as root: os.access would lie


def test_hardlink_strategy_links_workspace_files_to_the_cache(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha", "s": {"b.csv": b"beta"}}, "m.bin": MODEL})

    tmp_repo.dvl_add("data", "m.bin")

    for rel, content in (("data/a.csv", b"alpha"), ("data/s/b.csv", b"beta"), ("m.bin", MODEL)):
        path = tmp_repo.root / rel
        assert not path.is_symlink()
        assert os.path.samefile(path, object_path(tmp_repo, xxh(content)))
        assert path.stat().st_nlink >= 2
        assert _read_only(path)
        assert path.read_bytes() == content
    assert status(tmp_repo.repo).entries == ()


def test_symlink_strategy_links_workspace_files_to_the_cache(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "symlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha", "s": {"b.csv": b"beta"}}, "m.bin": MODEL})

    tmp_repo.dvl_add("data", "m.bin")

    for rel, content in (("data/a.csv", b"alpha"), ("data/s/b.csv", b"beta"), ("m.bin", MODEL)):
        path = tmp_repo.root / rel
        assert path.is_symlink()
        assert os.readlink(path) == str(object_path(tmp_repo, xxh(content)))
        assert _read_only(path)
        assert path.read_bytes() == content
    assert status(tmp_repo.repo).entries == ()


def test_copy_strategy_leaves_private_writable_files(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"m.bin": MODEL})

    tmp_repo.dvl_add("m.bin")

    path = tmp_repo.root / "m.bin"
    assert not os.path.samefile(path, object_path(tmp_repo, xxh(MODEL)))
    assert path.stat().st_mode & stat.S_IWUSR


@pytest.mark.parametrize("strategy", ["hardlink", "symlink"])
def test_linked_executable_files_are_clean_after_add(tmp_repo: TmpRepo, strategy: str) -> None:
    set_config(tmp_repo, "cache.link", strategy)
    tmp_repo.gen({"tools": {"run.sh": "#!/bin/sh\necho hi\n", "readme": "r"}})
    (tmp_repo.root / "tools" / "run.sh").chmod(0o755)

    (stored,) = tmp_repo.dvl_add("tools").stored

    assert manifest_files(tmp_repo, stored.oid)["run.sh"]["exec"] is True
    assert status(tmp_repo.repo).entries == (), "data just added must not show as modified"


def test_add_waits_for_the_repo_lock_then_gives_up(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "core.lock_timeout", "0.3")
    tmp_repo.gen({"m.bin": MODEL})
    waited: list[bool] = []
    tmp_repo.repo.on_lock_wait = lambda: waited.append(True)

    with tmp_repo.repo.lock():  # another holder, on its own file descriptor
        start = time.monotonic()
        with pytest.raises(LockTimeoutError, match="another dvlite command"):
            tmp_repo.dvl_add("m.bin")
        elapsed = time.monotonic() - start

    assert waited == [True]
    assert elapsed >= 0.3
    assert not (tmp_repo.root / "m.bin.dvl").exists()
    assert cache_oids(tmp_repo) == set()
    tmp_repo.dvl_add("m.bin")  # the lock is free again
    assert (tmp_repo.root / "m.bin.dvl").exists()


def test_add_waits_for_a_lock_held_by_another_process(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "core.lock_timeout", "5")
    tmp_repo.gen({"m.bin": MODEL})
    lock_path = os.path.join(tmp_repo.repo.tmp_dir, "lock")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({lock_path!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        tmp_repo.dvl_add("m.bin")
        elapsed = time.monotonic() - start
    assert elapsed >= 0.2, "add must wait for the holder to let go"
    assert (tmp_repo.root / "m.bin.dvl").exists()
