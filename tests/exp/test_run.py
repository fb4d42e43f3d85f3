"""`dvlite exp run` now: in the workspace (results left there, as `repro` leaves them) and in a
temporary worktree (`--temp`), saved as commits under refs/exps/ on their baseline."""

from __future__ import annotations

import json
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PipelineError, StageFailedError, UsageError
from dvlite.ops.exp_run import run
from dvlite.ops.exp_store import experiments
from tests.exp.conftest import PARAMS, stage_runs
from tests.ops.support import snapshot, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo


def show_file(t: TmpRepo, rev: str, path: str) -> str:
    return t.git("show", f"{rev}:{path}")


def git_state(t: TmpRepo) -> tuple[str, str, bytes, str]:
    """HEAD's sha, the branch, the index's bytes and the stash list."""
    return (t.git("rev-parse", "HEAD"), t.git("symbolic-ref", "HEAD"),
            (t.root / ".git" / "index").read_bytes(), t.git("stash", "list"))


def test_workspace_run_saves_a_commit_on_the_baseline_and_leaves_results(
    project: TmpRepo, runlog: Path,
) -> None:
    head = project.git("rev-parse", "HEAD").strip()
    before = git_state(project)
    [result] = run(project.repo, ["train.lr=0.2"])
    exp = result.experiment
    assert (exp.name, exp.baseline, exp.status, exp.sets) == (
        "exp-lr0.2", head, "success", ("train.lr=0.2",))
    assert exp.ref == f"refs/exps/{head}/exp-lr0.2"
    assert project.git("rev-parse", exp.ref).strip() == exp.sha
    assert project.git("rev-parse", f"{exp.sha}^").strip() == head
    assert (result.where, result.ran, result.restored) == ("workspace", ("train",), ())
    assert stage_runs(runlog) == ["train 0.2 5"]
    # the commit holds the new params, lock and metrics; the model's bytes are in the cache
    assert tomllib.loads(show_file(project, exp.sha, "params.toml"))["train"]["lr"] == 0.2
    lock = tomllib.loads(show_file(project, exp.sha, "dvlite.lock"))["stages"]["train"]
    model = (project.root / "model.bin").read_bytes()
    assert model == b"abc\nabc\n|0.2|5"
    assert {o["path"]: o["oid"] for o in lock["outs"]}["model.bin"] == xxh(model)
    assert json.loads(show_file(project, exp.sha, "metrics.json")) == {"acc": 0.7, "loss": 0.3}
    # as after `repro`, the workspace holds the run's params and results; git did not move
    assert tomllib.loads((project.root / "params.toml").read_text())["train"]["lr"] == 0.2
    assert git_state(project) == before
    assert [e.name for e in experiments(project.repo)] == ["exp-lr0.2"]


def test_temp_run_leaves_the_workspace_alone_and_repeats_come_from_the_run_cache(
    project: TmpRepo, runlog: Path,
) -> None:
    files, before = snapshot(project.root), git_state(project)
    [first] = run(project.repo, ["train.epochs=10"], temp=True)
    assert first.where == "temporary worktree"
    assert first.ran == ("train",)
    assert json.loads(show_file(project, first.experiment.sha, "metrics.json"))["acc"] == 0.9
    assert snapshot(project.root) == files
    assert git_state(project) == before
    # the same settings again: restored from the run cache, nothing runs
    [again] = run(project.repo, ["train.epochs=10"], temp=True, name="same-again")
    assert (again.ran, again.restored) == ((), ("train",))
    assert stage_runs(runlog) == ["train 0.1 10"]
    lock_a, lock_b = (show_file(project, r.experiment.sha, "dvlite.lock") for r in (first, again))
    assert lock_a == lock_b
    assert snapshot(project.root) == files


def test_names_are_given_generated_and_never_reused(project: TmpRepo) -> None:
    [named] = run(project.repo, ["prepare.factor=3"], name="triple", temp=True)
    assert named.experiment.name == "triple"
    with pytest.raises(UsageError, match="an experiment called `triple` exists already"):
        run(project.repo, [], name="triple", temp=True)
    [plain] = run(project.repo, [], temp=True)
    assert plain.experiment.name.startswith("exp-")
    [one, two] = [run(project.repo, ["train.lr=0.3"], temp=True)[0] for _ in range(2)]
    assert (one.experiment.name, two.experiment.name) == ("exp-lr0.3", "exp-lr0.3-2")
    with pytest.raises(UsageError, match="cannot name an experiment"):
        run(project.repo, [], name="../up", temp=True)


@pytest.mark.parametrize(("spec", "error", "message"), [
    ("train.nope=1", PipelineError, "params file `params.toml` has no key `train.nope`"),
    ("train.lr", UsageError, "write it as `KEY=VALUE`"),
    ("train.lr=fast", UsageError, "`fast` is not a number"),
    ("missing.toml:a=1", PipelineError, "does not exist"),
    ("train.lr=0.1,", UsageError, "a value is empty"),
])
def test_bad_settings_fail_before_anything_runs(
    project: TmpRepo, runlog: Path, spec: str, error: type[Exception], message: str,
) -> None:
    files = snapshot(project.root)
    with pytest.raises(error, match=message):
        run(project.repo, [spec])
    assert snapshot(project.root) == files
    assert stage_runs(runlog) == []
    assert experiments(project.repo) == []


def test_a_grid_needs_the_queue_or_temporary_worktrees(project: TmpRepo) -> None:
    with pytest.raises(UsageError, match="grid of 2 runs"):
        run(project.repo, ["train.lr=0.1,0.2"])
    assert (project.root / "params.toml").read_text() == PARAMS


def test_failed_workspace_run_is_recorded_with_its_stage(project: TmpRepo) -> None:
    with pytest.raises(StageFailedError, match="experiment `exp-lr13` failed: stage `train`"):
        run(project.repo, ["train.lr=13"])
    [exp] = experiments(project.repo)
    assert (exp.name, exp.status, exp.failed_stage) == ("exp-lr13", "failed", "train")
    assert exp.error is not None
    assert "exited with code 1" in exp.error
    assert tomllib.loads(show_file(project, exp.sha, "params.toml"))["train"]["lr"] == 13


def test_no_pipeline_is_an_error_and_records_nothing(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"params.toml": PARAMS})
    tmp_repo.git_commit("params only")
    for temp in (False, True):
        with pytest.raises(PipelineError, match=r"no pipeline: `dvlite\.toml` does not exist"):
            run(tmp_repo.repo, ["train.lr=0.2"], temp=temp)
    assert experiments(tmp_repo.repo) == []
    assert (tmp_repo.root / "params.toml").read_text() == PARAMS
