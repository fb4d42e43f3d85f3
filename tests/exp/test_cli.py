"""`dvlite exp` on the command line: what each command says, its exit codes, and its usage
errors (one `error:` line, exit 2, nothing run)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.exp_store import experiments, queued
from tests.exp.conftest import stage_runs

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


def test_run_in_the_workspace_says_so(project: TmpRepo, cli: Cli) -> None:
    result = cli("exp", "run", "-S", "train.lr=0.2", "-n", "faster")
    assert (result.code, result.out) == (0, "")
    assert result.err_lines[0].startswith("running in the workspace, as `dvlite repro` does")
    assert "faster: ran `train`: param `train` changed" in result.err_lines
    head = project.git("rev-parse", "HEAD").strip()
    assert result.err_lines[-1] == f"saved `faster` as `refs/exps/{head}/faster`"


def test_queue_then_run_all_reports_failures_and_exits_1(
    project: TmpRepo, cli: Cli, runlog: Path,
) -> None:
    queued_run = cli("exp", "run", "--queue", "-S", "train.lr=0.3,13,0.4")
    assert queued_run.code == 0
    assert queued_run.err_lines[:3] == [f"queued `exp-lr{v}` (train.lr={v})"
                                        for v in ("0.3", "13", "0.4")]
    assert stage_runs(runlog) == []
    shown = cli("exp", "show")
    assert shown.err_lines == ["3 run(s) queued: `dvlite exp run --run-all`"]

    result = cli("exp", "run", "--run-all", "-j", "2", "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert [(r["experiment"]["name"], r["experiment"]["status"]) for r in doc] == [
        ("exp-lr0.3", "success"), ("exp-lr13", "failed"), ("exp-lr0.4", "success")]
    assert "`exp-lr13` failed in stage `train`: stage `train` failed: its command exited with " \
           "code 1" in result.err_lines
    assert "error: 1 of 3 experiment(s) failed: `exp-lr13`" in result.err_lines
    assert queued(project.repo) == []


@pytest.mark.parametrize(("args", "message"), [
    (["-S", "train.lr=0.1,0.2"], "error: the settings make a grid of 2 runs, and the "
     "workspace holds one"),
    (["--run-all", "-S", "train.lr=1"], "error: `--run-all` runs the queue, and takes no `-S`"),
    (["-j", "2"], "error: `-j` applies to `--run-all`"),
    (["-S", "lr"], "error: `-S lr`: write it as `KEY=VALUE` or `FILE:KEY=VALUE`"),
])
def test_usage_errors_run_nothing(
    project: TmpRepo, cli: Cli, runlog: Path, args: list[str], message: str,
) -> None:
    result = cli("exp", "run", *args)
    assert (result.code, result.out) == (2, "")
    assert result.err_lines[0] == message
    assert stage_runs(runlog) == []
    assert experiments(project.repo) == []


def test_unknown_key_is_an_error_before_anything_runs(project: TmpRepo, cli: Cli) -> None:
    result = cli("exp", "run", "--temp", "-S", "train.momentum=0.9")
    assert result.code == 1
    assert result.err_lines[0] == ("error: `-S train.momentum=0.9`: params file `params.toml` "
                                   "has no key `train.momentum`")
    assert experiments(project.repo) == []


def test_apply_branch_remove(project: TmpRepo, cli: Cli) -> None:
    assert cli("exp", "run", "--temp", "-S", "train.epochs=10").code == 0
    applied = cli("exp", "apply", "exp-epochs10")
    assert applied.code == 0
    assert "applied params.toml" in applied.err_lines
    assert "epochs = 10" in (project.root / "params.toml").read_text()
    assert cli("exp", "branch", "exp-epochs10", "tuned").code == 0
    taken = cli("exp", "branch", "exp-epochs10", "tuned")
    assert taken.code == 1
    assert taken.err_lines[0].startswith("error: ")
    removed = cli("exp", "remove", "exp-epochs10")
    assert (removed.code, removed.err_lines) == (0, ["removed `exp-epochs10`"])
    assert experiments(project.repo) == []
