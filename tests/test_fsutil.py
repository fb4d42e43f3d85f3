"""Filesystem helpers: atomic writes, TOML files, locks, safe walks, reflink, parallel map."""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import ConfigError, LockTimeoutError, PathError
from dvlite.fsutil import (
    NO_PROGRESS,
    FileLock,
    FileStat,
    atomic_write,
    file_jobs,
    is_within,
    read_toml,
    reflink,
    run_parallel,
    stat_file,
    walk_records,
    write_toml,
)
from tests.helpers import lock_held_elsewhere

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


# --- atomic_write ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640, 0o755])
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_atomic_write_sets_exact_mode_and_leaves_no_temp(
    tmp_path: Path, mode: int, umask: int
) -> None:
    target = tmp_path / "out.bin"
    old = os.umask(umask)
    try:
        atomic_write(str(target), b"\x00payload\xff", mode=mode)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"\x00payload\xff"
    assert mode_of(target) == mode
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_default_mode(tmp_path: Path) -> None:
    atomic_write(str(tmp_path / "f"), b"x")
    assert mode_of(tmp_path / "f") == 0o644


def test_atomic_write_replaces_the_file_as_a_whole(tmp_path: Path) -> None:
    target = tmp_path / "pointer.dvl"
    target.write_bytes(b"old content that is long")
    os.chmod(target, 0o600)
    with open(target, "rb") as reader:  # a reader that opened the old file ...
        atomic_write(str(target), b"new", mode=0o644)
        assert reader.read() == b"old content that is long"  # ... still sees all of it
    assert target.read_bytes() == b"new"
    assert mode_of(target) == 0o644
    assert os.listdir(tmp_path) == ["pointer.dvl"]


def test_atomic_write_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    atomic_write("bare-name", b"here")
    assert (tmp_path / "bare-name").read_bytes() == b"here"
    assert os.listdir(tmp_path) == ["bare-name"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep"
    target.write_bytes(b"precious")
    with pytest.raises(TypeError):
        atomic_write(str(target), "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["keep"]


def test_atomic_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(str(tmp_path / "nope" / "f"), b"x")
    assert os.listdir(tmp_path) == []


# --- TOML files -----------------------------------------------------------------------------


def test_write_and_read_toml(tmp_path: Path) -> None:
    path = str(tmp_path / "c.toml")
    write_toml(path, {"core": {"jobs": 2}, "name": "x"}, header="# hello\n", mode=0o600)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("# hello\n")
    assert 'name = "x"' in text
    assert read_toml(path) == {"core": {"jobs": 2}, "name": "x"}
    assert mode_of(path) == 0o600


@pytest.mark.parametrize("data", [b"[core\n", b"a = \n", b"a = 1\na = 2\n", b"a = '\xff'\n"])
def test_read_toml_errors_name_the_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match="cannot parse") as exc:
        read_toml(str(path))
    assert f"`{path}`" in exc.value.message
    assert exc.value.hint is not None


# --- is_within ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        ("/a/b", "/a/b", True),
        ("/a/b", "/a/b/c", True),
        ("/a/b", "/a/b/c/d.txt", True),
        ("/a/b/", "/a/b/c", True),
        ("/a/b", "/a/b/", True),
        ("/a/b", "/a/bc", False),
        ("/a/b", "/a/bc/d", False),
        ("/a/b", "/a/b.dvl", False),
        ("/a/b", "/a", False),
        ("/a/b", "/", False),
        ("/a/b", "/a/b/../c", False),
        ("/a/b", "/a/b/c/..", True),
        ("/a/b", "/a/c/../b/x", True),
        ("/a/b/..", "/a/x", True),
        ("/", "/anything", True),
        ("/", "/", True),
        ("/a//b", "/a/b/c", True),
    ],
)
def test_is_within(root: str, path: str, expected: bool) -> None:
    assert is_within(root, path) is expected


# --- FileStat, stat_file, walk_records ------------------------------------------------------


def test_file_stat_of(tmp_path: Path) -> None:
    f = tmp_path / "x.sh"
    f.write_bytes(b"12345")
    os.chmod(f, 0o644)
    st = os.stat(f)
    assert FileStat.of(st) == FileStat(st.st_ino, st.st_mtime_ns, 5, executable=False)
    os.chmod(f, 0o744)
    assert FileStat.of(os.stat(f)).executable is True


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data" / "sub" / "deeper").mkdir(parents=True)
    (root / "data" / "empty").mkdir()
    (root / "data" / "a.csv").write_bytes(b"a")
    (root / "data" / "sub" / "b.bin").write_bytes(b"bb")
    (root / "data" / "sub" / "deeper" / "c").write_bytes(b"ccc")
    (root / "data" / "run.sh").write_bytes(b"#!")
    os.chmod(root / "data" / "run.sh", 0o755)
    (root / "elsewhere.txt").write_bytes(b"inside the repo, outside the folder")
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (tmp_path / "repo2").mkdir()
    (tmp_path / "repo2" / "f").write_bytes(b"sibling repo")
    return root


def walked(root: Path, allowed: tuple[str, ...] = ()) -> dict[str, FileStat]:
    return {rel: FileStat(*st) for rel, *st in walk_records(str(root / "data"), allowed=allowed)}


def test_walk_records_yields_every_file_with_posix_paths(tree: Path) -> None:
    files = walked(tree)
    assert set(files) == {"a.csv", "sub/b.bin", "sub/deeper/c", "run.sh"}
    assert files["sub/deeper/c"].size == 3
    assert files["run.sh"].executable is True
    assert files["a.csv"].executable is False
    assert files["a.csv"].inode == os.stat(tree / "data" / "a.csv").st_ino


def test_walk_records_follows_links_inside_allowed_roots(tree: Path) -> None:
    os.symlink(tree / "elsewhere.txt", tree / "data" / "abs-link")
    os.symlink("../a.csv", tree / "data" / "sub" / "rel-link")
    files = walked(tree, allowed=(str(tree),))
    target = os.stat(tree / "elsewhere.txt")
    assert files["abs-link"] == FileStat.of(target)  # the target's stat, not the link's
    assert files["sub/rel-link"].size == 1
    assert files["sub/rel-link"].inode == os.stat(tree / "data" / "a.csv").st_ino


@pytest.mark.parametrize("target", ["outside.txt", "repo2/f"])
def test_walk_records_rejects_links_out_of_the_repo(tree: Path, target: str) -> None:
    link = tree / "data" / "sub" / "escape"
    os.symlink(tree.parent / target, link)
    with pytest.raises(PathError, match="outside the repo") as exc:
        walked(tree, allowed=(str(tree),))
    assert f"`{link}`" in exc.value.message
    assert str(tree.parent / target) in exc.value.message
    assert exc.value.hint is not None


def test_walk_records_rejects_every_link_when_nothing_is_allowed(tree: Path) -> None:
    os.symlink(tree / "data" / "a.csv", tree / "data" / "inner-link")
    with pytest.raises(PathError, match="inner-link"):
        walked(tree)


def test_walk_records_allows_a_second_root(tree: Path) -> None:
    cache = tree.parent / "cache"
    cache.mkdir()
    (cache / "obj").write_bytes(b"cached")
    os.symlink(cache / "obj", tree / "data" / "linked")
    files = walked(tree, allowed=(str(tree), str(cache)))
    assert files["linked"].size == 6


def test_walk_records_rejects_a_link_through_a_link_out(tree: Path) -> None:
    os.symlink(tree.parent / "outside.txt", tree / "hop")
    os.symlink(tree / "hop", tree / "data" / "two-hops")
    with pytest.raises(PathError, match="two-hops"):
        walked(tree, allowed=(str(tree),))


def test_walk_records_rejects_broken_links(tree: Path) -> None:
    os.symlink(tree / "data" / "gone", tree / "data" / "dangling")
    with pytest.raises(PathError, match="broken symlink") as exc:
        walked(tree, allowed=(str(tree),))
    assert "dangling" in exc.value.message


def test_walk_records_rejects_links_to_folders(tree: Path) -> None:
    os.symlink(tree / "data" / "sub", tree / "data" / "dirlink")
    with pytest.raises(PathError, match="folder") as exc:
        walked(tree, allowed=(str(tree),))
    assert "dirlink" in exc.value.message


def test_stat_file(tree: Path) -> None:
    f = tree / "data" / "a.csv"
    assert stat_file(str(f), allowed=()) == FileStat.of(os.stat(f))
    with pytest.raises(PathError, match="not a regular file"):
        stat_file(str(tree / "data"), allowed=(str(tree),))
    fifo = tree / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PathError, match="not a regular file") as exc:
        stat_file(str(fifo), allowed=(str(tree),))
    assert str(fifo) in exc.value.message
    with pytest.raises(FileNotFoundError):
        stat_file(str(tree / "missing"), allowed=(str(tree),))


# --- FileLock -------------------------------------------------------------------------------

@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Another process holding the lock until its stdin closes."""
    lock = str(tmp_path / "lock")
    with lock_held_elsewhere(lock) as proc:
        yield lock, proc


def test_lock_uncontended(tmp_path: Path) -> None:
    calls: list[int] = []
    lock = FileLock(str(tmp_path / "lock"), timeout=1, on_wait=lambda: calls.append(1))
    with lock as held:
        assert held is lock
        assert os.path.exists(tmp_path / "lock")
    with lock:  # reusable once released
        pass
    assert calls == []


def test_lock_times_out_against_another_process(
    holder: tuple[str, subprocess.Popen[str]],
) -> None:
    path, proc = holder
    calls: list[float] = []
    before_fds = open_fds()
    start = time.monotonic()
    with (
        pytest.raises(LockTimeoutError) as exc,
        FileLock(path, timeout=0.3, on_wait=lambda: calls.append(time.monotonic())),
    ):
        pytest.fail("the lock is held elsewhere")
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5
    assert len(calls) == 1  # told once, not once per retry
    assert f"`{path}`" in exc.value.message
    assert "0.3 s" in exc.value.message
    assert exc.value.hint is not None
    assert "core.lock_timeout" in exc.value.hint
    assert open_fds() == before_fds  # the lock file's descriptor is closed again
    # A holder that dies releases the lock: the kernel drops flocks with their process.
    proc.kill()
    proc.wait(timeout=10)
    with FileLock(path, timeout=5):
        pass


def test_lock_is_exclusive_between_descriptors_in_one_process(tmp_path: Path) -> None:
    path = str(tmp_path / "lock")
    calls: list[int] = []
    with FileLock(path, timeout=1):
        with pytest.raises(LockTimeoutError):  # noqa: SIM117
            with FileLock(path, timeout=0.2, on_wait=lambda: calls.append(1)):
                pytest.fail("two holders at once")
        assert calls == [1]
    with FileLock(path, timeout=0.2):
        pass


def test_lock_waits_for_the_holder_to_finish(tmp_path: Path) -> None:
    path = str(tmp_path / "lock")
    first = FileLock(path, timeout=1)
    first.__enter__()
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        released.set()
        first.__exit__(None, None, None)

    thread = threading.Thread(target=release_later)
    calls: list[int] = []
    start = time.monotonic()
    thread.start()
    try:
        with FileLock(path, timeout=10, on_wait=lambda: calls.append(1)):
            assert released.is_set()
            waited = time.monotonic() - start
    finally:
        thread.join()
    assert 0.25 <= waited < 5
    assert calls == [1]


def test_lock_exit_twice_is_harmless(tmp_path: Path) -> None:
    lock = FileLock(str(tmp_path / "lock"), timeout=1)
    lock.__enter__()
    lock.__exit__(None, None, None)
    lock.__exit__(None, None, None)
    with FileLock(str(tmp_path / "lock"), timeout=0.1):
        pass


# --- reflink --------------------------------------------------------------------------------


def try_reflink(src: Path, dst: Path) -> OSError | None:
    try:
        reflink(str(src), str(dst))
    except OSError as exc:
        return exc
    return None


def test_reflink_clones_or_fails_cleanly(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"clone me" * 1000)
    error = try_reflink(src, dst)
    if error is not None:
        assert error.errno is not None
        assert not dst.exists()  # no empty file left behind
    else:
        assert dst.read_bytes() == src.read_bytes()
        assert os.stat(dst).st_ino != os.stat(src).st_ino
    assert src.read_bytes() == b"clone me" * 1000


def test_reflink_never_overwrites(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"existing")
    with pytest.raises(FileExistsError):
        reflink(str(src), str(dst))
    assert dst.read_bytes() == b"existing"


def test_reflink_of_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        reflink(str(tmp_path / "nope"), str(tmp_path / "dst"))
    assert not (tmp_path / "dst").exists()


# --- run_parallel, progress -----------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2, 8])
@pytest.mark.parametrize("count", [0, 1, 7, 1000])
def test_run_parallel_keeps_order(jobs: int, count: int) -> None:
    items = list(range(count))
    assert run_parallel(lambda i: i * i, items, jobs) == [i * i for i in items]


def test_run_parallel_uses_threads() -> None:
    seen: set[int] = set()
    lock = threading.Lock()

    def work(_: int) -> None:
        with lock:
            seen.add(threading.get_ident())
        time.sleep(0.01)

    run_parallel(work, list(range(32)), 4)
    assert len(seen) > 1


def test_run_parallel_reraises() -> None:
    def work(i: int) -> int:
        if i == 37:
            raise ValueError("item 37 failed")
        return i

    for jobs in (1, 4):
        with pytest.raises(ValueError, match="item 37 failed"):
            run_parallel(work, list(range(100)), jobs)


def test_no_progress_accepts_reports() -> None:
    NO_PROGRESS.set_size(10)
    NO_PROGRESS.set_size(None)
    NO_PROGRESS.relative_update()
    NO_PROGRESS.relative_update(5)


def test_small_files_get_one_thread_and_big_ones_all() -> None:
    kib, mib = 1 << 10, 1 << 20
    assert file_jobs(20_000 * 16 * kib, 20_000, 4) == 1  # W2: threads fight over the GIL
    assert file_jobs(200 * 2 * mib, 200, 4) == 4
    assert file_jobs(mib, 1, 8) == 8  # from an average of 1 MiB
    assert file_jobs(mib - 1, 1, 8) == 1
    assert file_jobs(0, 0, 4) == 1
