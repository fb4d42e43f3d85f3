"""Many dvlite processes on one repo at once: add, commit, checkout, push, pull, status and
`gc --force` interleave without corrupting anything (each waits for the repo lock), a wait
that runs out is one clear `error:` line, and a lock holder killed with SIGKILL releases the
lock at once, even while a stage's command it started lives on.

tests/e2e/test_entrypoints.py has the basics (a second process waits, times out, two adds);
these run a crowd of real processes with every writing command in the mix."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import read_pointer
from tests.helpers import gen, git, lock_held_elsewhere, run_dvlite
from tests.reliability.processes import assert_clean_finish, assert_repo_sound, run_together

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

WORKERS = 6  # processes at once, per round


def ok(args: list[str], cwd: Path) -> None:
    result = run_dvlite(args, cwd)
    assert result.returncode == 0, f"dvlite {' '.join(args)}: {result.stderr}"


@pytest.fixture
def busy_repo(git_dir: Path) -> Path:
    """Data committed and pushed to a folder remote."""
    root = git_dir
    ok(["init"], root)
    ok(["remote", "add", "-d", "store", str(root.parent / "remote")], root)
    gen(root, {"shared": {f"f{i}.txt": f"shared {i}\n" for i in range(20)},
               "model.bin": os.urandom(3000)})
    ok(["add", "shared", "model.bin"], root)
    ok(["push"], root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "data")
    return root


def test_a_crowd_of_writing_commands_on_one_repo(busy_repo: Path) -> None:
    root = busy_repo
    rounds = [
        [("add", "w0"), ("add", "w1"), ("push",), ("gc", "--workspace", "--force"),
         ("checkout", "--force"), ("status",)],
        [("add", "shared"), ("add", "w2"), ("pull",), ("gc", "--force"), ("commit",),
         ("push",)],
        [("add", "w3"), ("checkout",), ("gc", "--workspace", "--force"), ("add", "w0"),
         ("pull", "--force"), ("push",)],
    ]
    for number, commands in enumerate(rounds):
        # each round brings new folders and changes to tracked ones, for the adds to store
        for i in range(4):
            gen(root, {f"w{i}": {f"r{number}-{j}.txt": f"{i} {number} {j}\n" for j in range(8)}})
        (root / "shared" / f"f{number}.txt").write_text(f"edited in round {number}\n")
        assert len(commands) == WORKERS
        for result in run_together([(root, list(args)) for args in commands]):
            if result.args in (("checkout",), ("pull",)):  # new files in a tracked folder:
                # without --force they refuse to delete them (SPEC's safety rules)
                assert_clean_finish(result, refusal="would overwrite or delete")
            else:  # 90 s is long enough for all of them to get the lock
                assert result.code == 0, str(result)

    ignored = (root / ".gitignore").read_text().splitlines()
    for i in range(4):  # adds of different folders, at once, each kept its .gitignore line
        assert f"/w{i}" in ignored
        assert read_pointer(root / f"w{i}.dvl")["kind"] == "dir"
    ok(["add", "shared", "w0", "w1", "w2", "w3"], root)
    assert_repo_sound(root, root / ".dvlite" / "cache", root.parent / "remote")


def test_a_wait_for_the_cache_lock_times_out_with_a_clear_error(
    busy_repo: Path, tmp_path: Path,
) -> None:
    """Another repo's gc holds the cache both use: an add here waits, then gives up with one
    `error:` line naming the lock and a hint, having written nothing."""
    root = busy_repo
    shared = tmp_path / "shared-cache"
    ok(["config", "cache.dir", str(shared)], root)
    ok(["checkout"], root)  # registers the repo on the new cache, creates its lock
    gen(root, {"new": {"a.txt": "a\n"}})
    with lock_held_elsewhere(str(shared / "lock")):
        started = time.monotonic()
        result = run_dvlite(["add", "new"], root, env={"DVLITE_CORE_LOCK_TIMEOUT": "1"})
        waited = time.monotonic() - started
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert f"`{shared / 'lock'}`" in errors[0]
    assert "sharing the cache" in errors[0]
    assert any("core.lock_timeout" in line for line in lines if line.startswith("hint: "))
    assert "Traceback" not in result.stderr
    assert waited >= 1.0
    assert not (root / "new.dvl").exists()


SLOW_STAGE = """\
[stages.slow]
cmd = "python slow.py"
deps = ["slow.py"]
outs = ["out.txt"]
"""
SLOW = """\
import os, pathlib, time
pathlib.Path("stage.pid").write_text(str(os.getpid()))
time.sleep(120)
pathlib.Path("out.txt").write_text("done\\n")
"""


def test_a_killed_lock_holder_releases_the_lock_at_once(busy_repo: Path) -> None:
    """`repro` holds the repo and cache locks while its stage runs. SIGKILL it: the kernel
    drops its flocks, and the stage's process, still running, never had them (the lock
    files are not inherited), so the next command takes the lock without waiting."""
    root = busy_repo
    gen(root, {"dvlite.toml": SLOW_STAGE, "slow.py": SLOW})
    # no pipes: the orphaned stage would hold them open after dvlite is gone
    repro = subprocess.Popen([sys.executable, "-m", "dvlite", "repro"], cwd=root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = root / "stage.pid"
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert repro.poll() is None, "repro ended before its stage started"
            assert time.monotonic() < deadline, "the stage never started"
            time.sleep(0.05)
        stage_pid = int(pid_file.read_text())
        repro.kill()
        assert repro.wait(timeout=30) == -signal.SIGKILL
        os.kill(stage_pid, 0)  # the stage's command outlived dvlite

        gen(root, {"after": {"a.txt": "a\n"}})
        started = time.monotonic()
        result = run_dvlite(["add", "after"], root, env={"DVLITE_CORE_LOCK_TIMEOUT": "60"})
        took = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert "waiting" not in result.stderr  # the lock was free at once
        assert took < 30
    finally:
        if repro.poll() is None:
            repro.kill()
            repro.wait()
        if pid_file.exists() and pid_file.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert read_pointer(root / "after.dvl")["files"] == 1
