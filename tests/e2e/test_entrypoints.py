"""The installed entry points in subprocesses with real git: `git dvlite`, the whole user
story across commits, two processes at once, SIGKILL and Ctrl-C in the middle of `add`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

import dvlite
from tests.cli.support import assert_cache_valid, cache_objects, read_pointer, snapshot
from tests.helpers import gen, git, lock_held_elsewhere, run_dvlite

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from tests.helpers import Run

pytestmark = pytest.mark.e2e


def ok(
    args: list[str], cwd: Path, *, entry: str = "dvlite", env: Mapping[str, str] | None = None
) -> Run:
    result = run_dvlite(args, cwd, entry=entry, env=env)
    assert result.returncode == 0, f"dvlite {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def data_tree(root: Path, names: tuple[str, ...] = ("data", "model.bin")) -> dict[str, bytes]:
    """Relative path -> bytes of every file under the given tracked paths."""
    files: dict[str, bytes] = {}
    for name in names:
        path = root / name
        if path.is_file():
            files[name] = path.read_bytes()
        for sub in sorted(path.rglob("*")) if path.is_dir() else []:
            if sub.is_file():
                files[sub.relative_to(root).as_posix()] = sub.read_bytes()
    return files


def dvlite_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvlite", *args]


def many_files(root: Path, folder: str, count: int) -> None:
    target = root / folder
    target.mkdir(parents=True)
    for i in range(count):
        (target / f"f{i:05d}.txt").write_text(f"{folder} file {i}\n" * 3)


def wait_for(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- git dvlite ----------------------------------------------------------------------------


def test_git_dvlite_works_like_dvlite(git_dir: Path) -> None:
    ok(["init"], git_dir, entry="git")
    assert (git_dir / ".dvlite" / "config.toml").is_file()
    gen(git_dir, {"data": {"a.csv": "a\n", "b": {"c.bin": b"\x00" * 100}}})
    ok(["add", "data"], git_dir, entry="git")
    assert read_pointer(git_dir / "data.dvl")["files"] == 2
    via_git = ok(["status", "--json"], git_dir, entry="git")
    via_dvlite = ok(["status", "--json"], git_dir)
    assert json.loads(via_git.stdout) == json.loads(via_dvlite.stdout)
    assert json.loads(via_git.stdout) == {"changed": [], "checked": 1}

    (git_dir / "data" / "a.csv").unlink()
    dirty = run_dvlite(["status", "--exit-code"], git_dir, entry="git")
    assert dirty.returncode == 1
    assert dirty.stdout == run_dvlite(["status"], git_dir).stdout
    assert "data" in dirty.stdout
    ok(["checkout"], git_dir, entry="git")
    assert (git_dir / "data" / "a.csv").read_text() == "a\n"
    ok(["status", "--exit-code"], git_dir, entry="git")

    failed = run_dvlite(["add", "nope"], git_dir, entry="git")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: ")
    assert "nope" in failed.stderr.splitlines()[0]
    sub = git_dir / "data" / "b"
    assert ok(["ls", "c.bin"], sub, entry="git").stdout.startswith("data/b/c.bin\t100\t")


def test_version_flag_through_both_entry_points(git_dir: Path) -> None:
    """`--version` is answered before the CLI is loaded, by `dvlite` and `git dvlite` alike;
    `-h` lists it."""
    for entry in ("dvlite", "git"):
        result = ok(["--version"], git_dir, entry=entry)
        assert (result.stdout, result.stderr) == (f"dvlite {dvlite.__version__}\n", "")
        assert "--version" in ok(["-h"], git_dir, entry=entry).stdout
    assert ok(["version"], git_dir).stdout.splitlines()[0] == f"dvlite {dvlite.__version__}"


# --- the user story ------------------------------------------------------------------------


def test_user_story_across_commits(git_dir: Path) -> None:
    root = git_dir
    ok(["init"], root)
    git(root, "add", ".dvlite")
    git(root, "commit", "-q", "-m", "dvlite init")
    gen(
        root,
        {
            "data": {
                "train.csv": "id,x\n1,0.5\n",
                "test.csv": "id,x\n2,0.7\n",
                "images": {"cat.png": os.urandom(3000), "dog.png": os.urandom(2000)},
            },
            "model.bin": os.urandom(5000),
        },
    )
    v1 = data_tree(root)
    ok(["add", "data", "model.bin"], root)
    assert git(root, "status", "--porcelain", "--", "data", "model.bin") == ""  # ignored
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")

    (root / "data" / "train.csv").write_text("id,x\n1,0.5\n3,0.9\n")
    (root / "data" / "images" / "dog.png").unlink()
    (root / "data" / "images" / "bird.png").write_bytes(os.urandom(1000))
    (root / "model.bin").write_bytes(os.urandom(6000))
    v2 = data_tree(root)
    assert run_dvlite(["status", "--exit-code"], root).returncode == 1
    ok(["add", "data", "model.bin"], root)
    ok(["status", "--exit-code"], root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v2")

    changes = json.loads(ok(["diff", "--json", "HEAD~1", "HEAD"], root).stdout)
    assert {(c["path"], c["change"]) for c in changes} == {
        ("data/train.csv", "modified"),
        ("data/images/dog.png", "deleted"),
        ("data/images/bird.png", "added"),
        ("model.bin", "modified"),
    }

    git(root, "checkout", "-q", "HEAD~1")
    assert run_dvlite(["status", "--exit-code"], root).returncode == 1
    ok(["checkout"], root)
    assert data_tree(root) == v1
    ok(["status", "--exit-code"], root)

    git(root, "checkout", "-q", "main")
    ok(["checkout"], root)
    assert data_tree(root) == v2
    ok(["status", "--exit-code"], root)
    assert git(root, "status", "--porcelain") == ""


# --- two processes at once -------------------------------------------------------------------

@pytest.fixture
def lock_holder(git_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding the repo lock until its stdin is closed."""
    ok(["init"], git_dir)
    with lock_held_elsewhere(str(git_dir / ".dvlite" / "tmp" / "lock")) as proc:
        yield proc


def test_a_locked_repo_times_out_with_a_clear_error(
    git_dir: Path, lock_holder: subprocess.Popen[str]
) -> None:
    gen(git_dir, {"data": {"a.csv": "a\n"}})
    before = snapshot(git_dir)
    start = time.monotonic()
    result = run_dvlite(["add", "data"], git_dir, env={"DVLITE_CORE_LOCK_TIMEOUT": "1"})
    waited = time.monotonic() - start
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "lock" in errors[0]
    assert "Traceback" not in result.stderr
    assert waited >= 1.0
    assert snapshot(git_dir) == before
    assert not (git_dir / "data.dvl").exists()


def test_a_second_process_waits_for_the_lock(
    git_dir: Path, lock_holder: subprocess.Popen[str]
) -> None:
    gen(git_dir, {"data": {"a.csv": "a\n", "b.csv": "b\n"}})
    waiting = subprocess.Popen(
        dvlite_cmd("add", "data"),
        cwd=git_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        # the first line comes when add finds the lock taken, however slow the machine is
        first = waiting.stderr.readline()
        assert first.startswith("waiting for another dvlite command"), first
        time.sleep(0.5)
        assert waiting.poll() is None, "add did not wait for the lock"
        assert not (git_dir / "data.dvl").exists()
        assert lock_holder.stdin is not None
        lock_holder.stdin.close()  # release
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err
    assert out == ""
    assert read_pointer(git_dir / "data.dvl")["files"] == 2
    ok(["status", "--exit-code"], git_dir)


def test_two_adds_at_once_both_succeed(git_dir: Path) -> None:
    ok(["init"], git_dir)
    many_files(git_dir, "left", 200)
    many_files(git_dir, "right", 200)
    procs = [
        subprocess.Popen(
            dvlite_cmd("add", name),
            cwd=git_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    # both wrote the top .gitignore: with no lock one line could be lost
    ignored = (git_dir / ".gitignore").read_text().splitlines()
    assert "/left" in ignored
    assert "/right" in ignored
    assert read_pointer(git_dir / "left.dvl")["files"] == 200
    assert read_pointer(git_dir / "right.dvl")["files"] == 200
    assert assert_cache_valid(git_dir / ".dvlite" / "cache") == 402  # 400 files, 2 manifests
    ok(["status", "--exit-code"], git_dir)


# --- interruption ------------------------------------------------------------------------


def _start_add_and_wait_for_cache(root: Path, folder: str) -> subprocess.Popen[str]:
    cache = root / ".dvlite" / "cache"
    proc = subprocess.Popen(
        dvlite_cmd("add", folder),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: proc.poll() is not None or len(cache_objects(cache)) >= 20,
        20,
        "the cache to start filling",
    )
    assert proc.poll() is None, "add finished before it could be interrupted"
    return proc


def test_sigkill_during_add_leaves_a_valid_cache(git_dir: Path) -> None:
    ok(["init"], git_dir)
    many_files(git_dir, "many", 3000)
    before = data_tree(git_dir, ("many",))
    proc = _start_add_and_wait_for_cache(git_dir, "many")
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    cache = git_dir / ".dvlite" / "cache"
    stored = assert_cache_valid(cache)
    assert 0 < stored < 3001, "the kill should land in the middle of the add"
    pointer = git_dir / "many.dvl"
    if pointer.exists():  # then it is whole, and so is everything it names
        doc = read_pointer(pointer)
        assert doc["files"] == 3000
        assert isinstance(doc["oid"], str)
        assert doc["oid"] in cache_objects(cache)
    assert data_tree(git_dir, ("many",)) == before

    ok(["add", "many"], git_dir)
    assert read_pointer(pointer)["files"] == 3000
    assert assert_cache_valid(cache) == 3001  # 3000 files (all distinct) and the manifest
    ok(["status", "--exit-code"], git_dir)


def test_ctrl_c_exits_130(git_dir: Path) -> None:
    ok(["init"], git_dir)
    many_files(git_dir, "many", 1500)
    proc = _start_add_and_wait_for_cache(git_dir, "many")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().endswith("error: interrupted")
    assert_cache_valid(git_dir / ".dvlite" / "cache")
    ok(["add", "many"], git_dir)
    ok(["status", "--exit-code"], git_dir)
