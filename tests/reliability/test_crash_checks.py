"""The crash harness's checks catch each broken guarantee (so a green harness means something),
and the fixes the harness led to, each pinned by a fast test:

- checkout writes a file under a temp name in ``.dvlite/tmp``, not beside it, so a kill leaves
  nothing in the user's folders (a half-written ``.name.1234abcd`` there made the rerun refuse);
- a killed ``atomic_write`` leaves ``.<name>.<pid>.tmp``, which the next write of that file
  removes;
- ``gc --cloud`` deletes folder manifests before files, and the remote's before the cache's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.fsutil import atomic_write
from dvlite.ops import gc
from dvlite.ops.checkout import checkout
from dvlite.ops.init import remote_add
from dvlite.ops.sync import push
from dvlite.storage import links
from dvlite.storage.remote_store import RemoteStore
from tests.reliability.crash_checks import (
    State,
    assert_consistent,
    assert_folders_complete,
    assert_store_sound,
    store_objects,
    xxh,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import TmpRepo

CACHE = "repo/.dvlite/cache"


@pytest.fixture
def project(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """``data`` (three files) and ``model.bin`` tracked, and pushed to a folder remote."""
    remote_add(tmp_repo.repo, "store", str(tmp_path / "remote"), default=True)
    tmp_repo.reopen()
    tmp_repo.gen({"data": {"a": "a\n", "b": "b\n", "c": "c\n"}, "model.bin": b"weights"})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v1")
    push(tmp_repo.repo)
    return tmp_repo


def consistent(base: Path, before: State) -> None:
    assert_consistent(base, "repo", (CACHE,), remotes=("remote",), before=before, kept=before)


# --- the checks fail when a guarantee is broken -----------------------------------------------


def test_a_partial_object_under_its_name_is_caught(project: TmpRepo, tmp_path: Path) -> None:
    before = State.of(tmp_path, "repo", (CACHE,))
    consistent(tmp_path, before)
    path = next(iter(store_objects(tmp_path / CACHE).values()))
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(AssertionError, match="do not hash to their name"):
        consistent(tmp_path, before)


def test_a_lost_object_is_caught(project: TmpRepo, tmp_path: Path) -> None:
    before = State.of(tmp_path, "repo", (CACHE,))
    next(iter(store_objects(tmp_path / CACHE).values())).unlink()
    with pytest.raises(AssertionError, match="objects lost"):
        consistent(tmp_path, before)


def test_lost_workspace_data_is_caught(project: TmpRepo, tmp_path: Path) -> None:
    (project.root / "notes.txt").write_text("only here\n")
    before = State.of(tmp_path, "repo", (CACHE,))
    (project.root / "notes.txt").unlink()
    with pytest.raises(AssertionError, match="workspace content lost"):
        consistent(tmp_path, before)


def test_a_folder_without_its_files_on_a_remote_is_caught(project: TmpRepo,
                                                          tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    assert_folders_complete(remote)
    store_objects(remote)[xxh((project.root / "data" / "a").read_bytes())].unlink()
    with pytest.raises(AssertionError, match="without its files"):
        assert_folders_complete(remote)


def test_a_temp_file_in_an_object_folder_is_caught(project: TmpRepo, tmp_path: Path) -> None:
    folder = next(iter(store_objects(tmp_path / CACHE).values())).parent
    (folder / "partial.tmp").write_bytes(b"x")
    with pytest.raises(AssertionError, match="not objects"):
        assert_store_sound(tmp_path / CACHE)


# --- the fixes ------------------------------------------------------------------------------


def test_checkout_writes_nothing_beside_a_file_until_it_is_whole(
    project: TmpRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.root / "data" / "a").unlink()
    seen: list[set[str]] = []  # what data/ held each time a file was given a name

    def watching(call: Callable[..., None]) -> Callable[..., None]:
        def watch(*args: object, **kwargs: object) -> None:
            seen.append(set(os.listdir(project.root / "data")))
            call(*args, **kwargs)
        return watch

    # a file is named at once when complete: linked from an unnamed file, or renamed
    monkeypatch.setattr(os, "link", watching(os.link))
    monkeypatch.setattr(os, "replace", watching(os.replace))
    assert checkout(project.repo).written == ("data/a",)
    assert seen, "data/a was named by a link or a rename"
    assert all(names == {"b", "c"} for names in seen), seen
    assert (project.root / "data" / "a").exists()


def test_gc_finds_a_stale_checkout_temp_file(project: TmpRepo) -> None:
    tmp = os.path.join(project.repo.tmp_dir, f"{links.TEMP_PREFIX}abc")
    with open(tmp, "wb") as f:
        f.write(b"half a file")
    past = time.time() - 2 * gc.STALE_AFTER
    os.utime(tmp, (past, past))
    found = gc.plan(project.repo)
    assert found.temp_files == {tmp: 11}
    gc.collect(project.repo, found)
    assert not os.path.exists(tmp)
    assert os.path.exists(os.path.join(project.repo.tmp_dir, "lock"))  # not a temp file


def test_a_killed_atomic_write_leaves_nothing_after_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "data.dvl"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead, alive = int(gone.stdout), os.getppid()
    for pid in (dead, alive):
        (tmp_path / f".data.dvl.{pid}.tmp").write_bytes(b"half")
    (tmp_path / ".other.dvl.1.tmp").write_bytes(b"someone else's")
    atomic_write(str(path), b"pointer")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".data.dvl.{alive}.tmp", ".other.dvl.1.tmp", "data.dvl"]


def test_gc_cloud_deletes_manifests_first_and_the_remote_before_the_cache(
    project: TmpRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tomllib.loads((project.root / "data.dvl").read_text())["oid"]
    project.gen({"data": {"a": "a2\n", "b": "b2\n", "c": "c2\n", "d": "d\n"}})
    project.dvl_add("data")
    push(project.repo)
    project.git("checkout", "--", "data.dvl")  # the new folder is unreferenced again
    order: list[str] = []
    delete_remote = RemoteStore.delete

    def remote(self: RemoteStore, oid: str) -> None:
        order.append(f"remote {oid}")
        delete_remote(self, oid)  # type: ignore[arg-type]

    monkeypatch.setattr(RemoteStore, "delete", remote)
    monkeypatch.setattr(type(project.repo.cache), "delete",
                        lambda self, oid: order.append(f"cache {oid}"))
    found = gc.plan(project.repo, cloud=True)
    gc.collect(project.repo, found)
    remote_deleted = [o.split()[1] for o in order if o.startswith("remote")]
    assert len(remote_deleted) == 5  # the new folder's manifest and its four files
    assert old not in remote_deleted
    with open(project.repo.cache.path(remote_deleted[0]), "rb") as f:
        assert f.read(2) == b'{"'  # the manifest went first
    assert [o.split()[0] for o in order] == ["remote"] * 5 + ["cache"] * 5
