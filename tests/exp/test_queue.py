"""`exp run --queue` and `--run-all -j 2`: a grid run in parallel temporary worktrees, a
failing variant in the middle recorded as failed without stopping the others, and the
user's HEAD, branch, index, stash and workspace left exactly as they were."""

from __future__ import annotations

import json
import os
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.exp_run import queue, run_all
from dvlite.ops.exp_share import remove
from dvlite.ops.exp_store import experiments, queued
from tests.exp.conftest import stage_runs
from tests.exp.test_run import git_state
from tests.ops.support import drop_object, snapshot, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from dvlite.ops.repro import StageReport
    from tests.helpers import TmpRepo


def busy_user(t: TmpRepo) -> None:
    """A user mid-work: a stash entry, a staged new file and an unstaged edit (which queued
    runs take along)."""
    (t.root / "train.py").write_text((t.root / "train.py").read_text() + "# stashed\n")
    t.git("stash", "-q")
    (t.root / "notes.txt").write_text("staged\n")
    t.git("add", "notes.txt")
    ignore = t.root / "data" / ".gitignore"
    ignore.write_text(ignore.read_text() + "# wip\n")


def test_grid_runs_in_parallel_worktrees_and_a_failure_does_not_stop_it(
    project: TmpRepo, runlog: Path,
) -> None:
    busy_user(project)
    files, before = snapshot(project.root), git_state(project)
    names = [q.name for q in queue(project.repo, ["train.lr=0.01,13,1", "train.epochs=5,10"])]
    assert names == ["exp-lr0.01-epochs5", "exp-lr0.01-epochs10", "exp-lr13-epochs5",
                     "exp-lr13-epochs10", "exp-lr1-epochs5", "exp-lr1-epochs10"]
    assert [q.sets for q in queued(project.repo)][2] == ("train.lr=13", "train.epochs=5")
    assert stage_runs(runlog) == []  # queued, not run

    results = run_all(project.repo, jobs=2)
    assert [r.experiment.name for r in results] == names  # in queue order
    status = {r.experiment.name: r.experiment.status for r in results}
    assert status == {n: "failed" if "lr13" in n else "success" for n in names}
    failed = results[2].experiment
    assert failed.failed_stage == "train"
    assert "exited with code 1" in (failed.error or "")
    assert queued(project.repo) == []
    # each success is a commit on the baseline with its own params and metrics
    head = before[0].strip()
    for result in results:
        exp = result.experiment
        assert project.git("rev-parse", f"{exp.sha}^").strip() == head
        params = tomllib.loads(project.git("show", f"{exp.sha}:params.toml"))["train"]
        lr, epochs = (float(v.removeprefix(k)) for v, k in
                      zip(exp.name.split("-")[1:], ("lr", "epochs"), strict=True))
        assert (params["lr"], params["epochs"]) == (lr, epochs)
        assert project.git("show", f"{exp.sha}:data/.gitignore").endswith("# wip\n")
        if exp.status == "success":
            metrics = json.loads(project.git("show", f"{exp.sha}:metrics.json"))
            assert metrics["acc"] == round(1 - abs(lr - 0.1) - 1 / epochs, 6)
    assert sorted(stage_runs(runlog)) == sorted(
        f"train {lr} {e}" for lr in (0.01, 1.0) for e in (5, 10))
    assert {e.name for e in experiments(project.repo)} == set(names)
    # nothing of the user's moved, and no worktree is left behind
    assert snapshot(project.root) == files
    assert git_state(project) == before
    assert len(project.git("worktree", "list").splitlines()) == 1


def test_queued_runs_take_the_workspace_changes_as_they_were_when_queued(
    project: TmpRepo,
) -> None:
    params = project.root / "params.toml"
    params.write_text(params.read_text().replace("epochs = 5", "epochs = 50"))
    [waiting] = queue(project.repo, ["prepare.factor=3"], name="tripled")
    assert waiting.with_changes
    assert project.git("for-each-ref", "refs/exps-queue/").split()[0] == waiting.start
    # a later edit is not part of the queued run
    params.write_text(params.read_text().replace('"adam"', '"sgd"'))
    files = snapshot(project.root)
    [result] = run_all(project.repo)
    exp = result.experiment
    assert (exp.name, exp.status, result.ran) == ("tripled", "success", ("prepare", "train"))
    assert project.git("rev-parse", f"{exp.sha}^").strip() == exp.baseline == waiting.baseline
    ran_with = tomllib.loads(project.git("show", f"{exp.sha}:params.toml"))
    assert ran_with["prepare"]["factor"] == 3
    assert ran_with["train"] == {"lr": 0.1, "epochs": 50, "opt": "adam"}
    assert project.git("for-each-ref", "refs/exps-queue/") == ""
    assert snapshot(project.root) == files


def test_a_clean_workspace_queues_the_baseline_itself(project: TmpRepo) -> None:
    [waiting] = queue(project.repo, ["train.lr=0.3"])
    assert (waiting.start, waiting.with_changes) == (waiting.baseline, False)
    assert project.git("for-each-ref", "refs/exps-queue/") == ""


def test_run_all_with_an_empty_queue_runs_nothing(project: TmpRepo) -> None:
    assert run_all(project.repo, jobs=2) == []
    assert not os.path.exists(project.root / ".dvlite" / "tmp" / "exps" / "queue") or not list(
        (project.root / ".dvlite" / "tmp" / "exps" / "queue").iterdir())


@pytest.mark.parametrize("jobs", [1, 2])
def test_repeated_variants_restore_from_the_run_cache(
    project: TmpRepo, runlog: Path, jobs: int,
) -> None:
    queue(project.repo, ["train.epochs=7"])
    run_all(project.repo, jobs=jobs)
    queue(project.repo, ["train.epochs=7"])
    [again] = run_all(project.repo, jobs=jobs)
    assert (again.experiment.name, again.ran, again.restored) == (
        "exp-epochs7-2", (), ("train",))
    assert stage_runs(runlog) == ["train 0.1 7"]


def test_remove_takes_runs_off_the_queue(project: TmpRepo, runlog: Path) -> None:
    (project.root / "train.py").write_text((project.root / "train.py").read_text() + "#\n")
    queue(project.repo, ["train.lr=0.2,0.3"])
    assert project.git("for-each-ref", "--format=%(refname)", "refs/exps-queue/").split() == [
        "refs/exps-queue/exp-lr0.2", "refs/exps-queue/exp-lr0.3"]
    dropped = remove(project.repo, ["exp-lr0.2"])
    assert ([q.name for q in dropped.queued], dropped.experiments) == (["exp-lr0.2"], ())
    assert [q.name for q in queued(project.repo)] == ["exp-lr0.3"]
    assert [q.name for q in remove(project.repo, queue=True).queued] == ["exp-lr0.3"]
    assert queued(project.repo) == []
    assert project.git("for-each-ref", "refs/exps-queue/") == ""
    assert run_all(project.repo) == []
    assert stage_runs(runlog) == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_run_all_puts_unfinished_runs_back(project: TmpRepo, jobs: int) -> None:
    names = [q.name for q in queue(project.repo, ["train.lr=0.2,0.3,0.4"])]
    files = snapshot(project.root)

    def interrupt(exp: str, report: StageReport) -> None:
        if exp == "exp-lr0.3":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_all(project.repo, jobs=jobs, notify=interrupt)
    finished = [e.name for e in experiments(project.repo)]
    assert "exp-lr0.3" not in finished
    # what did not finish is back on the queue, in its place; nothing is left behind
    assert [q.name for q in queued(project.repo)] == [n for n in names if n not in finished]
    assert len(project.git("worktree", "list").splitlines()) == 1
    assert snapshot(project.root) == files
    results = run_all(project.repo, jobs=jobs)
    assert sorted([*finished, *(r.experiment.name for r in results)]) == names


def test_a_run_whose_data_is_not_in_the_cache_fails_saying_so(project: TmpRepo) -> None:
    drop_object(project, xxh(b"abc\n"))
    queue(project.repo, ["train.lr=0.2"])
    [result] = run_all(project.repo)
    exp = result.experiment
    assert (exp.status, exp.failed_stage) == ("failed", "-")
    assert exp.error == "the cache lacks data the run needs: `data/raw.txt`"
