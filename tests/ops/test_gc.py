"""``dvlite gc``: what is referenced survives, in the cache and on a remote; the rest goes."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import MissingObjectError
from dvlite.ops.gc import DEFAULT_SCOPE, collect, plan
from dvlite.ops.init import remote_add
from dvlite.ops.sync import Scope, push
from dvlite.storage.hashing import Oid
from dvlite.storage.manifest import Entry, Manifest
from tests.ops.support import cache_oids, cache_root, drop_object, read_pointer, set_config, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

A, B, B2 = b"a v1\n", b"b v1\n", b"b v2\n"
M1, M2, M3 = b"model v1\n", b"model v2\n", b"model v3 (experiment)\n"
WORKSPACE = Scope()


def _manifest_oid(*files: tuple[str, bytes]) -> str:
    entries = [Entry(name, Oid(xxh(data)), len(data)) for name, data in files]
    return xxh(Manifest.build(entries).to_bytes())


V1_DATA = _manifest_oid(("a.csv", A), ("b.csv", B))
V2_DATA = _manifest_oid(("a.csv", A), ("b.csv", B2))


@pytest.fixture
def history(tmp_repo: TmpRepo) -> TmpRepo:
    """Two commits on main: v1 (data with b v1, model v1), then v2 (b v2, model v2)."""
    tmp_repo.gen({"data": {"a.csv": A, "b.csv": B}, "model.bin": M1})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v1")
    tmp_repo.gen({"data": {"b.csv": B2}, "model.bin": M2})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("v2")
    assert read_pointer(tmp_repo.root / "data.dvl")["oid"] == V2_DATA
    return tmp_repo


def _gc(repo: TmpRepo, scope: Scope = DEFAULT_SCOPE, **kwargs: object) -> set[str]:
    """Plan and collect; returns what the plan listed for the cache."""
    found = plan(repo.repo, scope=scope, **kwargs)  # type: ignore[arg-type]
    collect(repo.repo, found)
    return set(found.cache.unreferenced)


def test_old_commit_objects_survive_default_scope(history: TmpRepo) -> None:
    everything = cache_oids(history)
    assert {xxh(M1), xxh(B), V1_DATA} <= everything

    assert _gc(history) == set()

    assert cache_oids(history) == everything


def test_workspace_scope_deletes_what_only_old_commits_reference(history: TmpRepo) -> None:
    found = plan(history.repo, scope=WORKSPACE)

    assert set(found.cache.unreferenced) == {xxh(M1), xxh(B), V1_DATA}
    assert found.cache.size == len(M1) + len(B) + os.path.getsize(
        cache_root(history) / V1_DATA[:2] / V1_DATA[2:])
    assert found.cache.listed == 7
    collect(history.repo, found)
    assert cache_oids(history) == {xxh(A), xxh(B2), xxh(M2), V2_DATA}


def test_rev_scope_keeps_that_revision(history: TmpRepo) -> None:
    history.git("tag", "v1", "HEAD~1")
    history.gen({"model.bin": M3})
    history.dvl_add("model.bin")  # workspace only, not committed
    history.git_commit("v3")

    assert _gc(history, Scope(revs=("v1",))) == {xxh(M2)}
    assert cache_oids(history) == {xxh(A), xxh(B), xxh(B2), xxh(M1), xxh(M3), V1_DATA, V2_DATA}


def test_all_tags_scope_keeps_tagged_commits(history: TmpRepo) -> None:
    history.git("tag", "v1", "HEAD~1")

    assert _gc(history, Scope(all_tags=True)) == set()
    assert _gc(history, Scope(all_branches=True)) == {xxh(M1), xxh(B), V1_DATA}


def test_objects_of_a_deleted_branch_are_collected(history: TmpRepo) -> None:
    history.git("checkout", "-q", "-b", "experiment")
    history.gen({"model.bin": M3})
    history.dvl_add("model.bin")
    history.git_commit("try a bigger model")
    history.git("checkout", "-q", "main")
    history.gen({"model.bin": M2})  # what `dvlite checkout` would do

    assert _gc(history) == set()  # the branch still holds it
    assert xxh(M3) in cache_oids(history)

    history.git("branch", "-q", "-D", "experiment")
    assert _gc(history) == {xxh(M3)}
    assert xxh(M3) not in cache_oids(history)
    assert {xxh(M1), xxh(M2)} <= cache_oids(history)


def test_uncommitted_workspace_objects_are_never_deleted(history: TmpRepo) -> None:
    history.gen({"new": {"x.bin": b"x"}, "model.bin": M3})
    history.dvl_add("new", "model.bin")  # pointers in the work tree only
    new_dir = str(read_pointer(history.root / "new.dvl")["oid"])
    wanted = {xxh(b"x"), new_dir, xxh(M3)}

    for scope in (DEFAULT_SCOPE, Scope(revs=("HEAD~1",)), Scope(all_tags=True), WORKSPACE):
        assert not wanted & _gc(history, scope)
        assert wanted <= cache_oids(history)


def test_a_repo_without_commits_keeps_its_workspace(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"model.bin": M1, "old.bin": M2})
    tmp_repo.dvl_add("model.bin", "old.bin")
    (tmp_repo.root / "old.bin.dvl").unlink()

    assert _gc(tmp_repo) == {xxh(M2)}
    assert cache_oids(tmp_repo) == {xxh(M1)}


def test_symlinked_workspace_file_keeps_its_object(history: TmpRepo) -> None:
    set_config(history, "cache.link", "symlink")
    history.gen({"model.bin": M3})
    history.dvl_add("model.bin")  # now a symlink into the cache
    history.git_commit("v3")
    assert os.path.islink(history.root / "model.bin")
    # the pointer goes back to v2, the workspace file still links to v3's object
    history.git("checkout", "HEAD~1", "--", "model.bin.dvl")

    found = plan(history.repo, scope=WORKSPACE)

    assert xxh(M3) not in found.cache.unreferenced
    collect(history.repo, found)
    assert (history.root / "model.bin").read_bytes() == M3


def test_plan_alone_deletes_nothing(history: TmpRepo) -> None:
    before = cache_oids(history)

    found = plan(history.repo, scope=WORKSPACE)

    assert len(found.cache.unreferenced) == 3
    assert not found.empty
    assert cache_oids(history) == before


def test_missing_manifest_refuses(history: TmpRepo) -> None:
    drop_object(history, V1_DATA)  # an old version of `data`: its files are unknown now
    before = cache_oids(history)

    with pytest.raises(MissingObjectError, match="`data`") as info:
        plan(history.repo)

    assert V1_DATA in info.value.message
    assert "--cloud" in (info.value.hint or "")
    assert cache_oids(history) == before
    assert set(plan(history.repo, scope=WORKSPACE).cache.unreferenced) == {xxh(M1), xxh(B)}


def test_collect_keeps_what_became_referenced_after_the_plan(history: TmpRepo) -> None:
    found = plan(history.repo, scope=WORKSPACE)
    assert xxh(M1) in found.cache.unreferenced
    history.gen({"model.bin": M1})
    history.dvl_add("model.bin")  # while the user was reading the question

    result = collect(history.repo, found)

    assert result.kept == (xxh(M1),)
    assert result.cache_deleted == 2
    assert xxh(M1) in cache_oids(history)
    assert not {xxh(B), V1_DATA} & cache_oids(history)


def test_stale_temp_files_go_fresh_ones_stay(history: TmpRepo) -> None:
    tmp = cache_root(history) / "tmp"
    tmp.mkdir(exist_ok=True)
    old, fresh = tmp / "crashed", tmp / "in-progress"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))

    found = plan(history.repo)
    assert found.temp_files == {str(old): 7}
    assert not found.empty
    result = collect(history.repo, found)

    assert result.temp_files_deleted == 1
    assert not old.exists()
    assert fresh.exists()


# --- --cloud ------------------------------------------------------------------------------


@pytest.fixture
def pushed(history: TmpRepo, tmp_path: Path) -> tuple[TmpRepo, Path]:
    """``history`` with every version pushed to a folder remote."""
    store = tmp_path / "store"
    remote_add(history.repo, "store", str(store), default=True)
    history.reopen()
    push(history.repo, scope=DEFAULT_SCOPE)
    return history, store


def _remote_oids(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in store.glob("??/*")}


def test_cloud_deletes_only_unreferenced_remote_objects(pushed: tuple[TmpRepo, Path]) -> None:
    repo, store = pushed
    on_remote = _remote_oids(store)
    assert {xxh(M1), xxh(B), V1_DATA, xxh(M2), V2_DATA} <= on_remote

    found = plan(repo.repo, scope=WORKSPACE, cloud=True)
    assert found.remote is not None
    assert set(found.remote.unreferenced) == {xxh(M1), xxh(B), V1_DATA}
    assert found.remote.size == found.cache.size
    assert found.remote.listed == len(on_remote)
    result = collect(repo.repo, found)

    assert result.remote_deleted == 3
    assert _remote_oids(store) == {xxh(A), xxh(B2), xxh(M2), V2_DATA}
    assert cache_oids(repo) == {xxh(A), xxh(B2), xxh(M2), V2_DATA}


def test_cloud_default_scope_keeps_history_on_the_remote(pushed: tuple[TmpRepo, Path]) -> None:
    repo, store = pushed
    repo.git("checkout", "-q", "-b", "gone")
    repo.gen({"model.bin": M3})
    repo.dvl_add("model.bin")
    repo.git_commit("v3")
    push(repo.repo)
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "gone")
    before = _remote_oids(store)

    found = plan(repo.repo, cloud=True, remote="store")
    assert found.remote is not None
    assert set(found.remote.unreferenced) == {xxh(M3)}
    collect(repo.repo, found)

    assert _remote_oids(store) == before - {xxh(M3)}


def test_cloud_plan_alone_deletes_nothing(pushed: tuple[TmpRepo, Path]) -> None:
    repo, store = pushed
    before = _remote_oids(store)

    found = plan(repo.repo, scope=WORKSPACE, cloud=True)

    assert found.remote is not None
    assert len(found.remote.unreferenced) == 3
    assert _remote_oids(store) == before


def test_cloud_reads_a_missing_manifest_from_the_remote(pushed: tuple[TmpRepo, Path]) -> None:
    repo, _ = pushed
    drop_object(repo, V1_DATA)
    with pytest.raises(MissingObjectError, match="`data`"):
        plan(repo.repo)

    found = plan(repo.repo, cloud=True)

    assert found.remote is not None
    assert found.remote.unreferenced == {}
    assert found.cache.unreferenced == {}
    assert V1_DATA not in cache_oids(repo)  # read, not fetched into the cache


def test_cloud_refuses_when_the_remote_lacks_the_manifest_too(
    pushed: tuple[TmpRepo, Path],
) -> None:
    repo, store = pushed
    drop_object(repo, V1_DATA)
    (store / V1_DATA[:2] / V1_DATA[2:]).unlink()
    before = _remote_oids(store)

    with pytest.raises(MissingObjectError, match=r"`data`.*remote"):
        plan(repo.repo, cloud=True)

    assert _remote_oids(store) == before
