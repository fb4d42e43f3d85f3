"""``dvlite repro --rev``: a past commit's pipeline rebuilt in a temporary worktree, in real git
repos with real Python stages, and the user's workspace and git state left exactly as they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import tomllib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from dvlite.errors import GitError, MissingObjectError, PipelineError, StageFailedError
from dvlite.ops import sync
from dvlite.ops.init import remote_add
from dvlite.ops.rebuild import OutputCheck, rebuild
from dvlite.ops.repro import repro
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline.environment import Environment
from dvlite.repo import Repo
from dvlite.scm import plumbing
from tests.helpers import git
from tests.ops.support import cache_oids, drop_object, snapshot, xxh
from tests.ops.test_repro import PARAMS, PIPELINE, PREPARE, TRAIN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dvlite.ops.repro import StageReport
    from tests.helpers import TmpRepo

PY = sys.executable

NOISE = """\
import os
print("noise stage says hi")
with open("noise.bin", "wb") as f:
    f.write(os.urandom(16))
"""
NOISY_PIPELINE = f'[stages.noise]\ncmd = [{json.dumps(PY)}, "noise.py"]\nouts = ["noise.bin"]\n'


def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make temporary worktrees go to a folder of the test's own, so it can check they left."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return private_tempdir(tmp_path, monkeypatch)


def make_history(t: TmpRepo) -> None:
    """v1, then v2 with another param: a two-stage pipeline over `.dvl`-tracked raw data."""
    t.gen({"prepare.py": PREPARE, "train.py": TRAIN, "dvlite.toml": PIPELINE,
           "params.toml": PARAMS, "data": {"raw.txt": "hello\n"}})
    t.dvl_add("data/raw.txt")
    repro(t.repo)
    t.git_commit("v1")
    t.git("tag", "v1")
    (t.root / "params.toml").write_text(PARAMS.replace("factor = 2", "factor = 3"))
    repro(t.repo)
    t.git_commit("v2")


def make_noisy(t: TmpRepo) -> None:
    """v1 of a stage whose output is different bytes on every run."""
    t.gen({"noise.py": NOISE, "dvlite.toml": NOISY_PIPELINE})
    repro(t.repo)
    t.git_commit("v1")
    t.git("tag", "v1")


def lock_outs(t: TmpRepo, rev: str) -> dict[str, str]:
    """path -> oid of every out the lock at ``rev`` records, read without dvlite."""
    doc = tomllib.loads(t.git("show", f"{rev}:dvlite.lock"))
    return {o["path"]: o["oid"] for stage in doc["stages"].values() for o in stage["outs"]}


def _git_quiet(root: Path, *args: str) -> str:
    """git without optional locks, so that looking (``git status``) never rewrites the index."""
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                         check=True, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    return out.stdout


def state(root: Path) -> dict[str, Any]:
    """Everything of the user's a rebuild must leave alone: workspace files (dvlite.lock
    included), the index file's bytes, HEAD, branch, stash, refs, reflog and worktrees."""
    return {
        "index": (root / ".git" / "index").read_bytes(),
        "files": snapshot(root),
        "status": [line for line in _git_quiet(root, "status", "--porcelain", "--ignored")
                   .splitlines() if not line.startswith("!! .dvlite/")],  # dvlite's own
        "head": _git_quiet(root, "rev-parse", "HEAD"),
        "branch": _git_quiet(root, "symbolic-ref", "HEAD"),
        "refs": _git_quiet(root, "for-each-ref"),
        "reflog": _git_quiet(root, "reflog"),
        "stash": _git_quiet(root, "stash", "list"),
        "worktrees": _git_quiet(root, "worktree", "list", "--porcelain"),
    }


def assert_no_worktree_left(root: Path, temp_root: Path) -> None:
    assert _git_quiet(root, "worktree", "list").count("\n") == 1
    assert not (root / ".git" / "worktrees").exists() or not any(
        (root / ".git" / "worktrees").iterdir())
    assert list(temp_root.iterdir()) == []


def test_rebuild_of_an_older_commit_matches_its_lock(tmp_repo: TmpRepo, temp_root: Path) -> None:
    make_history(tmp_repo)
    expected = lock_outs(tmp_repo, "v1")
    assert expected != lock_outs(tmp_repo, "HEAD")  # the param change changed the outputs
    drop_object(tmp_repo, expected["model.bin"])  # v1's model is in no cache: only a rebuild
    before = state(tmp_repo.root)

    result = rebuild(tmp_repo.repo, "v1")

    assert result.rev == tmp_repo.git("rev-parse", "v1").strip()
    assert result.outputs == tuple(
        OutputCheck(path, stage, "matches", expected[path], expected[path])
        for path, stage in (("data/prepared.txt", "prepare"), ("metrics.json", "train"),
                            ("model.bin", "train"))
    )
    assert result.ok
    assert result.environment == {}
    assert state(tmp_repo.root) == before
    assert_no_worktree_left(tmp_repo.root, temp_root)
    # the rebuilt model went to the user's cache: checking v1 out needs no remote now
    assert expected["model.bin"] in cache_oids(tmp_repo)


def test_targets_rebuild_only_those_stages_and_their_upstream(tmp_repo: TmpRepo,
                                                             temp_root: Path) -> None:
    make_history(tmp_repo)
    ran: list[str] = []

    def seen(report: StageReport) -> None:
        ran.append(report.name)

    result = rebuild(tmp_repo.repo, "v1", ["prepare"], notify=seen)
    assert ran == ["prepare"]
    assert [(o.path, o.status) for o in result.outputs] == [("data/prepared.txt", "matches")]
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_non_deterministic_stage_differs_with_both_oids(tmp_repo: TmpRepo,
                                                        temp_root: Path) -> None:
    make_noisy(tmp_repo)
    recorded = lock_outs(tmp_repo, "v1")["noise.bin"]
    before = state(tmp_repo.root)

    result = rebuild(tmp_repo.repo, "v1")

    [check] = result.outputs
    assert (check.path, check.stage, check.status, check.expected) == (
        "noise.bin", "noise", "differs", recorded)
    assert check.actual is not None
    assert check.actual != recorded
    assert not result.ok
    assert check.actual in cache_oids(tmp_repo)
    assert state(tmp_repo.root) == before
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_outputs_the_lock_lacks_or_records_in_vain_are_missing_and_environment_is_noted(
    tmp_repo: TmpRepo, temp_root: Path,
) -> None:
    make_history(tmp_repo)
    path = str(tmp_repo.root / "dvlite.lock")
    lock = lockfiles.load(path)
    train = lock.stages["train"]
    outs = {p: o for p, o in train.outs.items() if p != "metrics.json"}
    outs["gone.bin"] = train.outs["model.bin"]
    old_env = Environment("2.7.18", "plan9-mips", {"uv.lock": train.outs["model.bin"].oid})
    lockfiles.dump(path, lock.with_stage("train", replace(train, outs=outs, env=old_env)))
    tmp_repo.git_commit("a lock that no rebuild can agree with")

    result = rebuild(tmp_repo.repo, "HEAD", ["train"])

    by_path = {o.path: o for o in result.outputs}
    assert by_path["gone.bin"].status == "missing"
    assert by_path["gone.bin"].actual is None
    assert by_path["metrics.json"].status == "missing"
    assert by_path["metrics.json"].expected is None
    assert by_path["metrics.json"].actual == xxh((tmp_repo.root / "metrics.json").read_bytes())
    assert by_path["model.bin"].status == "matches"
    assert not result.ok
    now = Environment.current(str(tmp_repo.root), tmp_repo.repo.cache.algorithm)
    assert result.environment == {"train": (f"python {now.python} (was 2.7.18)",
                                            f"platform {now.platform} (was plan9-mips)",
                                            "`uv.lock` removed")}
    assert_no_worktree_left(tmp_repo.root, temp_root)


@pytest.fixture
def clone(tmp_repo: TmpRepo, tmp_path: Path) -> Iterator[Repo]:
    """A fresh clone (empty cache) of a history pushed to a folder remote that the committed
    config names by a relative path, as teams do."""
    remote_add(tmp_repo.repo, "store", "../remote")
    tmp_repo.reopen()
    make_history(tmp_repo)
    assert sync.push(tmp_repo.repo, remote="store", scope=sync.Scope(revs=("v1",))).failed == {}
    git(tmp_path, "clone", "-q", str(tmp_repo.root), "clone")
    with Repo.discover(str(tmp_path / "clone")) as repo:
        yield repo


def cache_oids_at(root: Path) -> set[str]:
    return {p.parent.name + p.name for p in (root / ".dvlite" / "cache").glob("??/*")}


def test_data_missing_from_the_cache_is_fetched_from_the_remote(
    clone: Repo, tmp_path: Path, temp_root: Path,
) -> None:
    root = tmp_path / "clone"
    before = state(root)

    result = rebuild(clone, "v1", remote="store")

    assert result.ok
    assert [o.status for o in result.outputs] == ["matches"] * 3
    assert xxh(b"hello\n") in cache_oids_at(root)
    assert state(root) == before
    assert_no_worktree_left(root, temp_root)


def test_data_on_no_remote_is_an_error_naming_it(clone: Repo, tmp_path: Path,
                                                 temp_root: Path) -> None:
    with pytest.raises(MissingObjectError, match=r"`data/raw\.txt`") as info:
        rebuild(clone, "v1")  # no default remote, and none named
    assert "`v1`" in info.value.message
    assert_no_worktree_left(tmp_path / "clone", temp_root)


FAILS_AWAY_FROM_HOME = """\
with open("secret.txt") as f:  # ignored by git: only the user's workspace has it
    text = f.read()
with open("out.txt", "w") as f:
    f.write(text)
"""


def test_failing_stage_at_rev_is_a_clear_error_and_cleans_up(tmp_repo: TmpRepo,
                                                             temp_root: Path) -> None:
    pipeline = f'[stages.step]\ncmd = [{json.dumps(PY)}, "step.py"]\nouts = ["out.txt"]\n'
    tmp_repo.gen({"step.py": FAILS_AWAY_FROM_HOME, "secret.txt": "s3cret",
                  ".gitignore": "/secret.txt\n", "dvlite.toml": pipeline})
    repro(tmp_repo.repo)
    tmp_repo.git_commit("v1")
    before = state(tmp_repo.root)

    with pytest.raises(StageFailedError) as info:
        rebuild(tmp_repo.repo, "HEAD")

    assert info.value.message == (
        "rebuilding `HEAD`: stage `step` failed: its command exited with code 1")
    assert info.value.hint is not None
    assert "does it need a file" in info.value.hint
    assert state(tmp_repo.root) == before
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_interrupt_during_a_stage_removes_the_worktree(tmp_repo: TmpRepo,
                                                       temp_root: Path) -> None:
    make_history(tmp_repo)
    before = state(tmp_repo.root)

    def interrupt(report: StageReport) -> None:
        if report.name == "train":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuild(tmp_repo.repo, "v1", notify=interrupt)
    assert state(tmp_repo.root) == before
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_rev_without_a_lock_or_pipeline_is_an_error(tmp_repo: TmpRepo, temp_root: Path) -> None:
    tmp_repo.gen({"noise.py": NOISE})
    tmp_repo.git_commit("no pipeline")
    with pytest.raises(PipelineError, match=r"no pipeline at `HEAD`: `dvlite.toml`"):
        rebuild(tmp_repo.repo, "HEAD")
    tmp_repo.gen({"dvlite.toml": NOISY_PIPELINE})
    tmp_repo.git_commit("a pipeline, never run")
    with pytest.raises(PipelineError, match=r"`HEAD`: `dvlite.lock` is not in that commit"):
        rebuild(tmp_repo.repo, "HEAD")
    with pytest.raises(GitError, match="unknown git revision `v9`"):
        rebuild(tmp_repo.repo, "v9")
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_temporary_worktree_is_at_rev_and_goes_away_on_error(tmp_repo: TmpRepo,
                                                             temp_root: Path) -> None:
    tmp_repo.gen({"a.txt": "one"})
    tmp_repo.git_commit("one")
    tmp_repo.gen({"a.txt": "two"})
    tmp_repo.git_commit("two")
    seen: list[str] = []

    def look_then_fail() -> None:
        with plumbing.temporary_worktree(str(tmp_repo.root), "HEAD~1") as path:
            seen.append(os.path.relpath(path, tmp_repo.root))
            with open(os.path.join(path, "a.txt")) as f:
                seen.append(f.read())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        look_then_fail()
    assert seen[0].startswith("..")  # outside the user's work tree
    assert seen[1] == "one"
    with pytest.raises(GitError), plumbing.temporary_worktree(str(tmp_repo.root), "nope"):
        pass
    assert (tmp_repo.root / "a.txt").read_text() == "two"
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_ctrl_c_during_cleanup_waits_until_the_worktree_is_gone(
    tmp_repo: TmpRepo, temp_root: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    tmp_repo.gen({"a.txt": "one"})
    tmp_repo.git_commit("one")
    remove = plumbing._remove_worktree

    def pressed_again(*args: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C, just as cleanup starts
        remove(*args)

    monkeypatch.setattr(plumbing, "_remove_worktree", pressed_again)
    with pytest.raises(KeyboardInterrupt), plumbing.temporary_worktree(str(tmp_repo.root), "HEAD"):
        pass
    assert_no_worktree_left(tmp_repo.root, temp_root)
