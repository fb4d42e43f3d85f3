"""Killing a real `dvlite push` or `pull` in the middle (SIGKILL, Ctrl-C) leaves the remote and
the cache valid, with no partial object under a final name, and running it again finishes
the job: a fresh clone then pulls every byte back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.ops import sync
from dvlite.ops.add import add
from dvlite.ops.init import config_set, remote_add
from dvlite.repo import CACHE_LOCK, CACHE_USERS, Repo
from tests.cli.support import assert_cache_valid, cache_objects
from tests.helpers import git, run_dvlite

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import Run

pytestmark = pytest.mark.e2e

FILES = 2000
OBJECTS = FILES + 1  # every file differs, plus the folder's manifest


def ok(args: list[str], cwd: Path) -> Run:
    result = run_dvlite(args, cwd)
    assert result.returncode == 0, f"dvlite {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dvlite", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt_when(proc: subprocess.Popen[str], filling: Callable[[], bool], sig: int,
                   ) -> str:
    """Send ``sig`` to ``proc`` as soon as ``filling()`` holds; return its stderr."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and not filling():
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the store never started filling")
        time.sleep(0.002)
    assert proc.poll() is None, "the command finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return err


def stored(store: Path) -> int:
    """How many objects are under their final names (all checked to hash to them)."""
    return assert_cache_valid(store)


def assert_only_objects_and_temp_files(store: Path) -> None:
    """A store holds its 2/30 objects and, after a crash, temp files in tmp/: nothing else
    (besides, in a cache, the lock and list of repos that every repo on it shares)."""
    for path in store.rglob("*"):
        rel = path.relative_to(store).parts
        if rel == (CACHE_LOCK,):
            continue
        if rel[0] in ("recipes", "packs"):  # how big files were chunked, remotes' pack lists
            continue
        assert len(rel[0]) == 2 or rel[0] in ("tmp", CACHE_USERS), path
        assert len(rel) == (1 if path.is_dir() else 2), path


@pytest.fixture
def project(git_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A repo tracking ``many`` (2000 small files), committed, whose default remote is the
    local folder ``<tmp>/remote`` (still empty). Set up in-process: only the commands under
    test run in subprocesses."""
    remote = tmp_path / "remote"
    many = git_dir / "many"
    many.mkdir()
    for i in range(FILES):
        (many / f"f{i:05d}.txt").write_text(f"file {i}\n" * 4)
    repo, _ = Repo.init(str(git_dir))
    try:
        # one object at a time, so that a kill lands between two of them (packed pushes are
        # killed in tests/reliability/test_crash_chunks_packs.py)
        config_set(repo, "core.pack_size", "0")
        add(repo, [str(many)])
        remote_add(repo, "store", str(remote), default=True)
    finally:
        repo.close()
    git(git_dir, "add", "-A")
    git(git_dir, "commit", "-q", "-m", "track many")
    return git_dir, remote


def push_json(root: Path) -> dict[str, object]:
    doc = json.loads(ok(["push", "--json"], root).stdout)
    assert isinstance(doc, dict)
    return doc


def clone_and_pull(root: Path, dest: Path) -> Path:
    git(root.parent, "clone", "-q", str(root), str(dest))
    ok(["pull"], dest)
    return dest


def test_sigkill_during_push_then_a_rerun_completes(project: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    root, remote = project
    proc = start(["push"], root)
    interrupt_when(proc, lambda: len(cache_objects(remote)) >= 20, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL

    before = stored(remote)  # every object there hashes to its name: none is partial
    assert 0 < before < OBJECTS, "the kill should land in the middle of the push"
    assert_only_objects_and_temp_files(remote)

    doc = push_json(root)
    assert doc["failed"] == {}
    assert doc["skipped"] == before  # what made it is not sent again
    assert doc["transferred"] == OBJECTS - before
    assert stored(remote) == OBJECTS

    clone = clone_and_pull(root, tmp_path / "clone")
    assert tree(clone / "many") == tree(root / "many")
    ok(["status", "--exit-code"], clone)


def test_sigkill_during_pull_then_a_rerun_completes(project: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    root, remote = project
    with Repo.discover(str(root)) as repo:
        assert sync.push(repo).transferred == OBJECTS
    clone = tmp_path / "clone"
    git(root.parent, "clone", "-q", str(root), str(clone))
    cache = clone / ".dvlite" / "cache"

    proc = start(["pull"], clone)
    interrupt_when(proc, lambda: len(cache_objects(cache)) >= 20, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL

    before = stored(cache)
    assert 0 < before < OBJECTS, "the kill should land in the middle of the fetch"
    assert_only_objects_and_temp_files(cache)

    ok(["pull"], clone)
    assert stored(cache) == OBJECTS
    assert tree(clone / "many") == tree(root / "many")
    ok(["status", "--exit-code"], clone)
    assert stored(remote) == OBJECTS


def test_ctrl_c_during_push_exits_130_then_a_rerun_completes(
    project: tuple[Path, Path],
) -> None:
    root, remote = project
    proc = start(["push"], root)
    err = interrupt_when(proc, lambda: len(cache_objects(remote)) >= 20, signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err

    before = stored(remote)
    assert 0 < before < OBJECTS, "Ctrl-C should stop the push before it is done"
    assert_only_objects_and_temp_files(remote)

    doc = push_json(root)
    assert doc["failed"] == {}
    assert doc["skipped"] == before
    assert doc["transferred"] == OBJECTS - before
    assert stored(remote) == OBJECTS


BIG = 48 << 20


def partly_written(store: Path) -> bool:
    """Some file in the store has started to receive the big object's bytes."""
    return any(0 < p.stat().st_size < BIG for p in store.rglob("*") if p.is_file())


@pytest.fixture
def big_project(git_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A repo tracking one 48 MiB file, committed, with an empty local-folder remote."""
    remote = tmp_path / "remote"
    (git_dir / "big.bin").write_bytes(os.urandom(BIG))
    repo, _ = Repo.init(str(git_dir))
    try:
        config_set(repo, "core.chunk_min_size", "0")  # one object, killed while it is sent
        add(repo, [str(git_dir / "big.bin")])
        remote_add(repo, "store", str(remote), default=True)
    finally:
        repo.close()
    git(git_dir, "add", "-A")
    git(git_dir, "commit", "-q", "-m", "track big")
    return git_dir, remote


def test_sigkill_in_the_middle_of_an_object_leaves_no_partial_object(
    big_project: tuple[Path, Path], tmp_path: Path
) -> None:
    root, remote = big_project
    proc = start(["push"], root)
    interrupt_when(proc, lambda: partly_written(remote), signal.SIGKILL)
    assert stored(remote) == 0, "a partly sent object is under its final name"
    ok(["push"], root)
    assert stored(remote) == 1

    clone = tmp_path / "clone"
    git(root.parent, "clone", "-q", str(root), str(clone))
    cache = clone / ".dvlite" / "cache"
    proc = start(["pull"], clone)
    interrupt_when(proc, lambda: partly_written(cache), signal.SIGKILL)
    assert stored(cache) == 0, "a partly fetched object is under its final name"
    assert not (clone / "big.bin").exists()
    ok(["pull"], clone)
    assert (clone / "big.bin").read_bytes() == (root / "big.bin").read_bytes()
    ok(["status", "--exit-code"], clone)
