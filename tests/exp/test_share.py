"""Keeping and sharing experiments: apply, branch, remove, push and pull between two clones
through a bare git remote and a folder dvlite remote, gc keeping experiment data, and
`repro --rev` rebuilding an experiment."""

from __future__ import annotations

import json
import subprocess
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import UnsafeOperationError, UsageError
from dvlite.ops import gc
from dvlite.ops.exp_run import run
from dvlite.ops.exp_share import apply, branch, pull, push, remove
from dvlite.ops.exp_store import experiments
from dvlite.ops.init import remote_add
from dvlite.ops.rebuild import rebuild
from dvlite.repo import Repo
from tests.helpers import git
from tests.ops.support import cache_oids, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo


def model_oid(t: TmpRepo, sha: str) -> str:
    lock = tomllib.loads(t.git("show", f"{sha}:dvlite.lock"))
    return {o["path"]: o["oid"] for o in lock["stages"]["train"]["outs"]}["model.bin"]


def test_apply_brings_params_lock_metrics_and_outputs(project: TmpRepo) -> None:
    [result] = run(project.repo, ["train.lr=0.2", "prepare.factor=3"], temp=True)
    exp = result.experiment
    applied = apply(project.repo, exp.name)
    assert sorted(applied.files) == ["dvlite.lock", "metrics.json", "params.toml"]
    assert (project.root / "model.bin").read_bytes() == b"abc\nabc\nabc\n|0.2|5"
    assert (project.root / "data" / "prepared.txt").read_text() == "abc\n" * 3
    assert (project.root / "dvlite.lock").read_bytes() == project.git(
        "show", f"{exp.sha}:dvlite.lock").encode()
    assert json.loads((project.root / "metrics.json").read_text())["acc"] == 0.7
    assert project.git("rev-parse", "HEAD").strip() == exp.baseline  # nothing committed


def test_apply_refuses_to_overwrite_edits_git_never_stored(project: TmpRepo) -> None:
    [result] = run(project.repo, ["train.lr=0.2"], temp=True)
    edited = (project.root / "params.toml").read_text().replace("adam", "sgd")
    (project.root / "params.toml").write_text(edited)
    with pytest.raises(UnsafeOperationError, match=r"`params\.toml`"):
        apply(project.repo, result.experiment.name)
    assert (project.root / "params.toml").read_text() == edited
    apply(project.repo, result.experiment.name, force=True)
    assert "sgd" not in (project.root / "params.toml").read_text()


def test_branch_and_remove(project: TmpRepo) -> None:
    results = [run(project.repo, [f"train.lr={lr}"], temp=True)[0] for lr in (0.2, 0.3, 0.4)]
    best = results[1].experiment
    branch(project.repo, best.name, "tuned")
    assert project.git("rev-parse", "tuned").strip() == best.sha
    assert project.git("symbolic-ref", "HEAD").strip() == "refs/heads/main"
    removed = remove(project.repo, all_but=[best.name])
    assert sorted(e.name for e in removed.experiments) == ["exp-lr0.2", "exp-lr0.4"]
    assert [e.name for e in experiments(project.repo)] == [best.name]
    assert project.git("for-each-ref", "refs/exps/").count("\n") == 1
    remove(project.repo, [best.name])
    assert experiments(project.repo) == []
    assert project.git("rev-parse", "tuned").strip() == best.sha  # the branch stays
    with pytest.raises(UsageError):
        remove(project.repo)


def test_gc_keeps_experiment_data_until_the_experiment_is_removed(project: TmpRepo) -> None:
    [result] = run(project.repo, ["train.lr=0.3"], temp=True)
    oid = model_oid(project, result.experiment.sha)
    assert oid in cache_oids(project)
    assert oid not in gc.plan(project.repo).cache.unreferenced
    # a narrower scope than the default leaves experiments out
    workspace_only = gc.Scope(revs=())
    assert oid in gc.plan(project.repo, scope=workspace_only).cache.unreferenced
    remove(project.repo, [result.experiment.name])
    plan = gc.plan(project.repo)
    assert oid in plan.cache.unreferenced
    gc.collect(project.repo, plan)
    assert oid not in cache_oids(project)


@pytest.mark.parametrize("by", ["ref", "name"])
def test_repro_rev_rebuilds_an_experiment_and_it_matches(project: TmpRepo, by: str) -> None:
    [result] = run(project.repo, ["train.epochs=4"], temp=True)
    experiment = result.experiment
    checked = rebuild(project.repo, experiment.ref if by == "ref" else experiment.name)
    assert checked.rev == experiment.sha
    assert checked.ok
    assert {c.path: c.status for c in checked.outputs} == {
        "data/prepared.txt": "matches", "model.bin": "matches", "metrics.json": "matches"}


def test_push_and_pull_between_two_clones(project: TmpRepo, tmp_path: Path) -> None:
    bare, store = tmp_path / "origin.git", tmp_path / "store"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    remote_add(project.repo, "store", str(store), default=True)
    project.git_commit("a dvlite remote")
    project.git("remote", "add", "origin", str(bare))
    project.git("push", "-q", "origin", "main")
    project.reopen()
    push(project.repo, "origin", [])  # nothing to share yet
    [result] = run(project.repo, ["train.lr=0.2"], temp=True)
    exp = result.experiment
    assert exp.baseline == project.git("rev-parse", "HEAD").strip()

    pushed = push(project.repo, "origin", [exp.name])
    assert [e.name for e in pushed.experiments] == [exp.name]
    assert pushed.data.failed == {}
    assert git(bare, "rev-parse", exp.ref).strip() == exp.sha
    oid = model_oid(project, exp.sha)
    assert (store / oid[:2] / oid[2:]).read_bytes() == b"abc\nabc\n|0.2|5"

    clone = tmp_path / "teammate"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    with Repo(str(clone)) as mate:
        pulled = pull(mate, "origin")
        assert [e.name for e in pulled.experiments] == [exp.name]
        assert [(e.sha, e.baseline) for e in experiments(mate)] == [(exp.sha, exp.baseline)]
        assert pulled.data.failed == {}
        apply(mate, exp.name)
    model = (clone / "model.bin").read_bytes()
    assert xxh(model) == oid
    assert json.loads((clone / "metrics.json").read_text())["acc"] == 0.7
