"""``dvlite params diff`` and ``dvlite metrics show/diff`` on the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.metrics_project import PARAMS, make_project

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


def _change(repo: TmpRepo) -> None:
    repo.gen({"params.toml": PARAMS.replace("lr = 0.5", "lr = 0.25").replace('"adam"', '"a|b"'),
              "metrics.json": json.dumps({"acc": 0.875, "loss": {"train": 0.5, "val": 0.625},
                                          "tag": "v1"})})



@pytest.fixture
def pipeline(tmp_repo: TmpRepo) -> TmpRepo:
    return make_project(tmp_repo)

def test_params_diff_plain_table(pipeline: TmpRepo, cli: Cli) -> None:
    _change(pipeline)
    result = cli("params", "diff")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "path\tkey\told\tnew\tchange",
        "params.toml\ttrain.lr\t0.5\t0.25\t-0.25",
        "params.toml\ttrain.opt.name\tadam\ta|b\t-",
    ]


def test_params_diff_all_and_two_revisions(pipeline: TmpRepo, cli: Cli) -> None:
    _change(pipeline)
    pipeline.git_commit("v2")
    result = cli("params", "diff", "HEAD~1", "HEAD", "--all")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1:] == [
        "other.json\tseed\t1\t1\t0",
        "params.toml\ttrain.epochs\t10\t10\t0",
        "params.toml\ttrain.lr\t0.5\t0.25\t-0.25",
        "params.toml\ttrain.opt.name\tadam\ta|b\t-",
    ]
    assert cli("params", "diff").out.splitlines() == ["path\tkey\told\tnew\tchange"]


def test_metrics_diff_json_and_md(pipeline: TmpRepo, cli: Cli) -> None:
    _change(pipeline)
    result = cli("metrics", "diff", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {"path": "metrics.json", "key": "acc", "old": 0.75, "new": 0.875, "delta": 0.125}]
    md = cli("metrics", "diff", "--md")
    assert md.out.splitlines() == [
        "| Path | Key | Old | New | Change |",
        "|---|---|---|---|---|",
        "| metrics.json | acc | 0.75 | 0.875 | +0.125 |",
    ]
    escaped = cli("params", "diff", "--md").out.splitlines()
    assert escaped[-1] == "| params.toml | train.opt.name | adam | a\\|b | - |"


def test_metrics_show_plain_json_and_rev(pipeline: TmpRepo, cli: Cli) -> None:
    _change(pipeline)
    (pipeline.root / "sub" / "scores.toml").unlink()
    result = cli("metrics", "show")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "path\tkey\tvalue",
        "metrics.json\tacc\t0.875",
        "metrics.json\tloss.train\t0.5",
        "metrics.json\tloss.val\t0.625",
        "metrics.json\ttag\tv1",
    ]
    doc = json.loads(cli("metrics", "show", "--rev", "HEAD", "--json").out)
    assert {"path": "sub/scores.toml", "key": "ok", "value": True} in doc
    assert {"path": "metrics.json", "key": "acc", "value": 0.75} in doc


def test_missing_file_shows_dash(pipeline: TmpRepo, cli: Cli) -> None:
    (pipeline.root / "metrics.json").unlink()
    result = cli("metrics", "diff")
    assert result.code == 0, result.err
    assert "metrics.json\tacc\t0.75\t-\t-" in result.out.splitlines()


def test_unparsable_file_is_one_error_line(pipeline: TmpRepo, cli: Cli) -> None:
    pipeline.gen({"sub": {"scores.toml": "f1 = = 2\n"}})
    pipeline.git_commit("broken")
    result = cli("metrics", "diff", "HEAD~1", "HEAD")
    assert result.code == 1
    assert result.out == ""
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith(
        "error: cannot parse metrics file `sub/scores.toml` at revision `HEAD`: ")
