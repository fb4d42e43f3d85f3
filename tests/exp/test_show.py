"""`dvlite exp show` and `exp diff`: the table of experiments by baseline, its formats,
sorting and column filters, through the command line."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import UsageError
from dvlite.ops.exp_run import queue, run, run_all
from dvlite.ops.exp_show import diff, show

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


@pytest.fixture
def swept(project: TmpRepo) -> TmpRepo:
    """Three experiments on the baseline (acc 0.8): lr 0.2 (0.7), epochs 10 (0.9), and lr 13
    (failed)."""
    run(project.repo, ["train.lr=0.2"], temp=True)
    run(project.repo, ["train.epochs=10"], temp=True)
    queue(project.repo, ["train.lr=13"])
    run_all(project.repo)
    return project


def test_show_groups_experiments_under_their_baseline(swept: TmpRepo) -> None:
    table = show(swept.repo, sort_by="acc")
    assert table.params == ("train.epochs", "train.lr")  # changed by some experiment
    assert table.metrics == ("acc", "loss")
    rows = [(r.name, r.kind, r.status, r.params.get("train.lr"), r.metrics.get("acc"))
            for r in table.rows]
    assert rows == [("HEAD", "baseline", "", 0.1, 0.8),
                    ("exp-epochs10", "experiment", "success", 0.1, 0.9),
                    ("exp-lr0.2", "experiment", "success", 0.2, 0.7),
                    ("exp-lr13", "experiment", "failed", 13, None)]
    assert table.rows[3].error is not None
    assert table.rows[3].error.startswith("stage `train`: stage `train` failed")
    ascending = show(swept.repo, sort_by="loss", ascending=True)
    assert [r.name for r in ascending.rows] == ["HEAD", "exp-epochs10", "exp-lr0.2", "exp-lr13"]


def test_show_on_a_new_baseline_puts_head_first(swept: TmpRepo) -> None:
    old_head = swept.git("rev-parse", "HEAD").strip()
    (swept.root / "data" / "raw.txt").write_text("xyz\n")
    swept.dvl_add("data/raw.txt")
    swept.git_commit("new data")
    run(swept.repo, ["train.lr=0.3"], temp=True)
    table = show(swept.repo)
    assert [(r.name, r.kind) for r in table.rows][:2] == [("HEAD", "baseline"),
                                                          ("exp-lr0.3", "experiment")]
    assert table.rows[2].name == old_head[:7]
    assert {r.baseline for r in table.rows[2:]} == {old_head}


def test_show_formats(swept: TmpRepo, cli: Cli) -> None:
    text = cli("exp", "show", "--sort-by", "acc")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split() == ["experiment", "rev", "status", "train.epochs", "train.lr", "acc",
                                "loss"]
    assert lines[1].split()[0] == "HEAD"
    assert lines[2].startswith("  exp-epochs10 ")
    assert lines[2].split()[2:] == ["success", "10", "0.1", "0.9", "0.1"]

    as_csv = list(csv.reader(io.StringIO(cli("exp", "show", "--csv").out)))
    assert as_csv[0][:3] == ["experiment", "rev", "status"]
    assert {row[0]: row[-2] for row in as_csv[1:]} == {
        "HEAD": "0.8", "exp-lr0.2": "0.7", "exp-epochs10": "0.9", "exp-lr13": "-"}

    md = cli("exp", "show", "--md", "--metric", "acc", "--param", "train.lr").out.splitlines()
    assert md[:2] == ["| experiment | rev | status | train.lr | acc |", "|---|---|---|---|---|"]
    assert len(md) == 6

    doc = json.loads(cli("exp", "show", "--json").out)
    assert doc["queued"] == 0
    assert doc["rows"][0]["name"] == "HEAD"  # then its experiments, oldest first
    assert sorted(r["name"] for r in doc["rows"][1:]) == ["exp-epochs10", "exp-lr0.2", "exp-lr13"]
    assert doc["rows"][1]["ref"].startswith(f"refs/exps/{doc['rows'][0]['rev']}/")


def test_show_errors(swept: TmpRepo, cli: Cli) -> None:
    with pytest.raises(UsageError, match="`--sort-by nope`: no column of that name"):
        show(swept.repo, sort_by="nope")
    result = cli("exp", "show", "--param", "nothing*")
    assert (result.code, result.out) == (2, "")
    assert result.err_lines[0] == "error: no param column matches `nothing*`"
    assert cli("exp", "show", "--md", "--csv").code == 2


def test_diff_side_by_side(swept: TmpRepo, cli: Cli) -> None:
    result = diff(swept.repo, "exp-lr0.2", "exp-epochs10")
    assert [(r.key, r.old, r.new) for r in result.params] == [
        ("train.epochs", 5, 10), ("train.lr", 0.2, 0.1)]
    assert [(r.key, r.old, r.new, r.delta) for r in result.metrics] == [
        ("acc", 0.7, 0.9, 0.2), ("loss", 0.3, 0.1, -0.2)]
    out = cli("exp", "diff", "exp-lr0.2").out.splitlines()
    head = swept.git("rev-parse", "--short=7", "HEAD").strip()
    assert out[0].split("\t") == ["kind", "path", "key", head, "exp-lr0.2", "change"]
    assert out[1].split("\t") == ["param", "params.toml", "train.lr", "0.1", "0.2", "+0.1"]
    missing = cli("exp", "diff", "exp-nope")
    assert missing.code == 1
    assert missing.err_lines[0] == "error: no experiment `exp-nope`"
