"""`dvlite push` of chunked files and packs, and `dvlite gc --cloud` rewriting packs, killed at
many points (tests/reliability/crash.py): after every kill the remote, read by hand, shows no
chunk list whose chunks are not all there and no pack index whose pack is incomplete, and
(gc) every live object stays reachable; a rerun completes, and a pull in a fresh clone then
restores every byte.
"""

from __future__ import annotations

import shutil
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.ops import gc
from dvlite.ops.add import add
from dvlite.ops.fsck_remote import fsck_remote
from dvlite.ops.init import config_set
from dvlite.ops.sync import pull, push, remote_status
from dvlite.repo import Repo
from tests.helpers import git
from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean
from tests.reliability.crash_checks import (
    assert_folders_complete,
    remote_contents,
    store_objects,
    workspace_files,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

MIB = 1 << 20
PACK = 16 << 10  # a dozen packs for the small files
CACHE = "repo/.dvlite/cache"


# --- the remote, read by hand (crash_checks) -----------------------------------------------

def available(remote: Path) -> set[str]:
    """The oids a folder remote shows, plain, packed or chunked, each checked by hand: no
    pack index without its whole pack, no chunk list without all its chunks, no folder
    without its files."""
    assert_folders_complete(remote)
    return set(remote_contents(remote))


def pack_of(remote: Path) -> dict[str, str]:
    """oid → the pack holding it, from the indexes read as text."""
    return {line.split()[0]: index.stem for index in (remote / "packs").glob("*.idx")
            for line in index.read_text().splitlines()[2:]}


def live(base: Path) -> set[str]:
    """The objects the workspace's data needs, hashed by hand: every file, and the folder's
    manifest (named by its pointer)."""
    files = workspace_files(base / "repo")
    data = {h for p, h in files.items() if p.startswith("data/") or p.endswith(".bin")}
    pointer = tomllib.loads((base / "repo" / "data.dvl").read_text())
    return data | {pointer["oid"]}


def whole_on_remote(base: Path) -> None:
    assert live(base) <= available(base / "remote")
    with Repo.discover(str(base / "repo")) as repo:
        assert remote_status(repo) == []
        assert fsck_remote(repo).bad == ()


def pulls_back(base: Path) -> None:
    """A fresh clone pulls every byte of the workspace's data."""
    clone = base / "clone"
    git(base, "clone", "-q", str(base / "repo"), str(clone))
    with Repo.discover(str(clone)) as repo:
        fetched, checked_out = pull(repo)
    assert (fetched.failed, checked_out.missing) == ({}, ())
    assert workspace_files(clone) == workspace_files(base / "repo")
    shutil.rmtree(clone)


# --- projects ------------------------------------------------------------------------------

def layout(base: Path) -> Repo:
    """A new repo with the remote ``../remote``, pushing files from 2 MiB as chunks and small
    ones in packs of PACK bytes."""
    repo = projects.with_remote(projects.new_repo(base))
    config_set(repo, "core.chunk_min_size", str(2 * MIB))
    config_set(repo, "core.pack_size", str(PACK))
    return repo


def edited(content: bytes, seed: str) -> bytes:
    """``content`` with one MiB in the middle rewritten: most chunks stay the same."""
    middle = len(content) // 2
    return content[:middle] + projects.data(seed, MIB) + content[middle + MIB:]


def chunks_and_packs(base: Path, *, files: int) -> None:
    """Small files (a dozen packs), and two big files sharing most of their chunks; committed,
    nothing pushed."""
    repo = layout(base)
    root = base / "repo"
    projects.folder(root / "data", files=files)
    model = projects.data("model-1", projects.MODEL)
    projects.write(root / "model.bin", model)
    projects.write(root / "tuned.bin", edited(model, "tuned"))
    add(repo, [str(root / "data"), str(root / "model.bin"), str(root / "tuned.bin")])
    repo.close()
    projects.commit(root, "v1")


def rewritable(base: Path, *, files: int) -> None:
    """A remote whose packs are mostly dead: v1 (the folder, an older folder and the model)
    was pushed but never committed; v2 replaces a third of the folder, drops the older one
    and edits the model. Some packs hold live objects among the dead: gc rewrites those."""
    repo = layout(base)
    root = base / "repo"
    projects.folder(root / "data", files=files)
    projects.folder(root / "old", files=files)
    model = projects.data("model-1", projects.MODEL)
    projects.write(root / "model.bin", model)
    add(repo, [str(root / "data"), str(root / "old"), str(root / "model.bin")])
    assert push(repo).failed == {}
    shutil.rmtree(root / "old")
    (root / "old.dvl").unlink()
    projects.folder(root / "data", files=files, version=2, changed_every=3)
    projects.write(root / "model.bin", edited(model, "model-2"))
    add(repo, [str(root / "data"), str(root / "model.bin")])
    assert push(repo).failed == {}
    repo.close()
    projects.commit(root, "v2")
    with Repo.discover(str(root)) as repo:
        plan = gc.plan(repo, cloud=True).remote
    assert plan is not None
    assert plan.packs, "no pack to drop or rewrite"
    where = pack_of(base / "remote")
    rewritten = {where[oid] for oid in live(base) if oid in where}
    assert rewritten & set(plan.packs), "no pack with live objects to rewrite"


# --- the tests ------------------------------------------------------------------------------

def test_push_chunks_and_packs(tmp_path: Path, crash_counts: Path) -> None:
    chunks_and_packs(tmp_path / "template", files=200)

    def done(base: Path) -> None:
        whole_on_remote(base)
        pulls_back(base)

    scenario = Scenario("push chunks+packs", ("push",), watch=("remote",), stores=(CACHE,),
                        remotes=("remote",), done=done)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=4, progress=8, interrupts=2)


def test_gc_cloud_rewriting_packs(tmp_path: Path, crash_counts: Path) -> None:
    rewritable(tmp_path / "template", files=200)

    def reachable(base: Path) -> None:
        lost = live(base) - available(base / "remote")
        assert not lost, f"live objects no longer on the remote: {sorted(lost)[:5]}"

    def done(base: Path) -> None:
        status_clean(base)
        with Repo.discover(str(base / "repo")) as repo:
            assert gc.plan(repo, cloud=True).empty
        whole_on_remote(base)
        pulls_back(base)

    args = ("gc", "--force", "--cloud")
    scenario = Scenario("gc --cloud packs", args, watch=(CACHE, "remote"), stores=(CACHE,),
                        remotes=("remote",), done=done, killed=reachable)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=3, progress=6, interrupts=2)


def test_the_checks_see_incomplete_pieces(tmp_path: Path) -> None:
    """The checks above fail on the states a push must never leave: a pack index whose pack
    is short, a folder without its files, a chunk list one of whose chunks is missing."""
    chunks_and_packs(tmp_path, files=60)
    with Repo.discover(str(tmp_path / "repo")) as repo:
        assert push(repo).failed == {}
    remote = tmp_path / "remote"
    chunk = next(iter(set(store_objects(remote)) - live(tmp_path)))  # a chunk, no whole file
    assert live(tmp_path) <= available(remote)
    pack = sorted((remote / "packs").glob("*.pack"))[0]
    body = pack.read_bytes()
    pack.unlink()
    pack.write_bytes(body[:-1])
    with pytest.raises(AssertionError, match="is incomplete"):
        available(remote)
    pack.unlink()
    pack.with_suffix(".idx").unlink()  # the index goes: that pack's objects are not shown
    with pytest.raises(AssertionError, match="without its files"):
        available(remote)
    (remote / chunk[:2] / chunk[2:]).unlink()
    with pytest.raises(AssertionError, match="lacks chunk"):
        available(remote)
