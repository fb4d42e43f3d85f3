"""A write that runs out of room (ENOSPC, EDQUOT) or over the file size limit (EFBIG) fails
cleanly: one `error:` line naming the path and the space it needed, exit 1, no traceback, no
partial object under a final name, no temp file left; and once there is room, running the same
command again finishes the job.

Three ways to run out of room:

- a real small filesystem: an 8 MiB tmpfs mounted for the test (the cache, a folder remote or
  a whole clone on it), grown by a remount to free space; skipped, saying why, where mounting
  is not permitted;
- the file size limit (RLIMIT_FSIZE, `ulimit -f`) of the dvlite process: always available;
- in-process, deterministic: the object store's temp file backed by ``/dev/full`` (the kernel
  answers ENOSPC), or EDQUOT raised where the object is renamed into place.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dvlite import fsutil
from dvlite.errors import DiskFullError
from dvlite.fsutil import atomic_write
from dvlite.ops.add import add
from dvlite.ops.init import config_set, remote_add
from dvlite.ops.sync import push
from dvlite.repo import Repo
from dvlite.storage.odb import ObjectStore
from tests.cli.support import CliResult, assert_error, run_main
from tests.helpers import git
from tests.reliability.crash import status_clean
from tests.reliability.crash_checks import assert_folders_complete, assert_store_sound
from tests.reliability.crash_projects import MIB, commit, data, write

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.helpers import TmpRepo

SMALL = "8m"  # the small filesystem
ROOMY = "256m"  # the same, once space is freed
BIG = 16 * MIB  # more than SMALL holds


class SmallDisk:
    """A tmpfs of SMALL bytes mounted at ``path`` for one test."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def grow(self) -> None:
        """Free space: remount with room for everything."""
        subprocess.run(["mount", "-o", f"remount,size={ROOMY}", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    path = tmp_path / "small"
    path.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs",
                                  str(path)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("no `mount` command here: the small-filesystem tests need one")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): "
                    f"{mounted.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def dvlite(cwd: Path, *args: str, file_limit: int | None = None) -> CliResult:
    """Run the real `dvlite` (optionally under a file size limit) and return its result."""

    def limit() -> None:  # runs in the child before it starts python
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    proc = subprocess.run([sys.executable, "-m", "dvlite", *args], cwd=cwd, capture_output=True,
                          text=True, preexec_fn=limit, timeout=120, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_no_temp_files(store: Path) -> None:
    tmp = store / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == [], list(tmp.iterdir())


def assert_says_no_space(result: CliResult, path: Path) -> str:
    line = assert_error(result, str(path), "no space left on device", after_messages=True)
    assert "MiB more" in line, line
    return line


def new_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    Repo.init(str(root))[0].close()
    return root


# --- a real small filesystem ----------------------------------------------------------------


def test_add_into_a_full_cache(tmp_path: Path, small_disk: SmallDisk) -> None:
    root = new_repo(tmp_path / "repo")
    cache = small_disk.path / "cache"
    with Repo.discover(str(root)) as repo:
        config_set(repo, "cache.dir", str(cache))
    write(root / "big.bin", data("big", BIG))

    result = dvlite(root, "add", "big.bin")

    line = assert_says_no_space(result, cache)
    assert "16.0 MiB for this file" in line
    assert assert_store_sound(cache) == set()
    assert_no_temp_files(cache)
    assert not (root / "big.bin.dvl").exists()
    small_disk.grow()
    assert dvlite(root, "add", "big.bin").code == 0
    status_clean(root.parent, root.name)


@pytest.fixture
def pushed(tmp_path: Path) -> Path:
    """A repo tracking ``data`` (12 files of 1 MiB) and ``model.bin`` (4 MiB), committed, on
    a folder remote on the big disk that does not have them yet."""
    root = new_repo(tmp_path / "origin")
    with Repo.discover(str(root)) as repo:
        remote_add(repo, "store", str(tmp_path / "remote"), default=True)
    with Repo.discover(str(root)) as repo:
        for i in range(12):
            write(root / "data" / f"d{i:02d}.bin", data(f"d{i}", MIB))
        write(root / "model.bin", data("model", 4 * MIB))
        add(repo, [str(root / "data"), str(root / "model.bin")])
    commit(root, "data")
    return root


def test_pull_into_a_full_cache(tmp_path: Path, pushed: Path, small_disk: SmallDisk) -> None:
    with Repo.discover(str(pushed)) as repo:
        push(repo)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(pushed), str(clone))
    cache = small_disk.path / "cache"
    with Repo.discover(str(clone)) as repo:
        config_set(repo, "cache.dir", str(cache), level="local")

    result = dvlite(clone, "pull")

    assert_says_no_space(result, cache)
    assert_store_sound(cache)
    assert_no_temp_files(cache)
    assert not (clone / "model.bin").exists()
    small_disk.grow()
    assert dvlite(clone, "pull").code == 0
    status_clean(tmp_path, "clone")
    assert (clone / "model.bin").read_bytes() == (pushed / "model.bin").read_bytes()


def test_push_to_a_full_folder_remote(pushed: Path, small_disk: SmallDisk) -> None:
    remote = small_disk.path / "remote"
    with Repo.discover(str(pushed)) as repo:
        config_set(repo, "remote.store.url", str(remote))

    result = dvlite(pushed, "push")

    assert_says_no_space(result, remote)
    sent = assert_store_sound(remote)
    assert_folders_complete(remote)
    assert_no_temp_files(remote)
    small_disk.grow()
    assert dvlite(pushed, "push").code == 0
    assert assert_store_sound(remote) > sent
    assert_folders_complete(remote)
    with Repo.discover(str(pushed)) as repo:
        assert push(repo).transferred == 0


def test_checkout_into_a_full_workspace(tmp_path: Path, pushed: Path,
                                        small_disk: SmallDisk) -> None:
    clone = small_disk.path / "clone"  # the work tree on the small disk, its cache elsewhere
    git(tmp_path, "clone", "-q", str(pushed), str(clone))
    with Repo.discover(str(clone)) as repo:
        config_set(repo, "cache.dir", str(pushed / ".dvlite" / "cache"), level="local")

    result = dvlite(clone, "checkout")

    assert_says_no_space(result, clone)
    written = [clone / "model.bin", *(clone / "data").glob("*")]
    for path in (p for p in written if p.exists()):  # a file is whole or absent, never cut short
        assert path.read_bytes() == (pushed / path.relative_to(clone)).read_bytes(), path
    small_disk.grow()
    assert dvlite(clone, "checkout").code == 0
    status_clean(small_disk.path, "clone")


# --- the file size limit ---------------------------------------------------------------------


def test_add_over_the_file_size_limit(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "repo")
    write(root / "big.bin", data("big", 4 * MIB))
    cache = root / ".dvlite" / "cache"

    result = dvlite(root, "add", "big.bin", file_limit=MIB)

    assert_error(result, str(cache), "file too large", "4.0 MiB")
    assert "ulimit -f" in result.err
    assert assert_store_sound(cache) == set()
    assert_no_temp_files(cache)
    assert not (root / "big.bin.dvl").exists()
    assert dvlite(root, "add", "big.bin").code == 0
    status_clean(root.parent, root.name)


# --- in-process, deterministic ----------------------------------------------------------------


@pytest.fixture
def full_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every object the cache writes goes to ``/dev/full``; 1 MiB is said to be free."""
    new_tmp = ObjectStore._new_tmp

    def to_dev_full(self: ObjectStore) -> tuple[str, int]:
        tmp, fd = new_tmp(self)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return tmp, fd

    monkeypatch.setattr(ObjectStore, "_new_tmp", to_dev_full)
    monkeypatch.setattr(fsutil, "_free_space", lambda folder: MIB)


@pytest.mark.usefixtures("full_cache")
def test_a_full_disk_is_one_error_line(tmp_repo: TmpRepo,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    tmp_repo.gen({"model.bin": data("model", 3 * MIB)})
    cache = tmp_repo.repo.cache_dir

    line = assert_error(run_main(capsys, "add", "model.bin"), cache, "no space left on device")

    assert "needed about 2.0 MiB more (3.0 MiB for this file, 1.0 MiB free)" in line
    assert assert_store_sound(tmp_repo.root / ".dvlite" / "cache") == set()
    assert_no_temp_files(tmp_repo.root / ".dvlite" / "cache")
    assert not (tmp_repo.root / "model.bin.dvl").exists()


def test_a_quota_is_named(tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    def over_quota(self: ObjectStore, tmp: str, oid: str) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(ObjectStore, "_finalize", over_quota)
    tmp_repo.gen({"model.bin": b"weights"})

    result = run_main(capsys, "add", "model.bin")

    assert_error(result, tmp_repo.repo.cache_dir, "disk quota exceeded")
    assert "hint: free some space there, then run the command again" in result.err
    assert_no_temp_files(tmp_repo.root / ".dvlite" / "cache")


def test_atomic_write_on_a_full_disk_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.dvl"
    path.write_bytes(b"old")

    def no_room(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_room)
    with pytest.raises(DiskFullError, match=r"no space left on device writing `.*data\.dvl`"):
        atomic_write(str(path), b"new pointer")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.dvl"]


@pytest.mark.parametrize(("pack_size", "where"), [
    ("0", r"`.*/remote/"),  # objects one by one, straight into the remote
    ("65536", r"`.*/cache/tmp/"),  # packs: each is put together in the cache first
])
def test_a_folder_remote_that_fills_up(tmp_repo: TmpRepo, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, pack_size: str,
                                       where: str) -> None:
    """A push stops at the first object (or pack) that does not fit, with that one error."""
    remote_add(tmp_repo.repo, "store", str(tmp_path / "remote"), default=True)
    config_set(tmp_repo.repo, "core.pack_size", pack_size)
    repo = tmp_repo.reopen()
    tmp_repo.gen({"data": {f"f{i}.bin": data(f"f{i}", 1000) for i in range(20)}})
    tmp_repo.dvl_add("data")

    def no_room(src: int, dst: int, count: int, *args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "copy_file_range", no_room)  # how a folder remote gets its bytes
    with pytest.raises(DiskFullError, match=r"no space left on device writing " + where):
        push(repo)
    monkeypatch.undo()
    assert push(repo).failed == {}
