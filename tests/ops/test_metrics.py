"""``params diff`` and ``metrics show/diff``: read through git at revisions, or the workspace."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import GitError, PipelineError
from dvlite.ops.metrics import DiffRow, MetricRow, metrics_diff, metrics_show, params_diff
from tests.metrics_project import PARAMS, PIPELINE, make_project

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


@pytest.fixture
def pipeline(tmp_repo: TmpRepo) -> TmpRepo:
    return make_project(tmp_repo)


ALL_PARAMS = [
    DiffRow("other.json", "seed", 1, 1, 0),
    DiffRow("params.toml", "train.epochs", 10, 10, 0),
    DiffRow("params.toml", "train.lr", 0.5, 0.5, 0.0),
    DiffRow("params.toml", "train.opt.name", "adam", "adam", None),
]


def test_no_changes(pipeline: TmpRepo) -> None:
    assert params_diff(pipeline.repo) == []
    assert metrics_diff(pipeline.repo) == []


def test_all_lists_unchanged_keys_a_whole_table_counts_as_its_keys(pipeline: TmpRepo) -> None:
    # `unused` and other.json:other are not used by any stage
    assert params_diff(pipeline.repo, show_all=True) == ALL_PARAMS


def test_params_head_against_workspace(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": PARAMS.replace("lr = 0.5", "lr = 0.25\nbatch = 32")
                  .replace('"adam"', '"sgd"').replace("x = 1", "x = 2")})

    assert params_diff(pipeline.repo) == [
        DiffRow("params.toml", "train.batch", None, 32, None),
        DiffRow("params.toml", "train.lr", 0.5, 0.25, -0.25),
        DiffRow("params.toml", "train.opt.name", "adam", "sgd", None),
    ]


def test_params_two_revisions_ignore_the_workspace(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": PARAMS.replace("epochs = 10", "epochs = 12")})
    pipeline.git_commit("v2")
    pipeline.gen({"params.toml": PARAMS.replace("epochs = 10", "epochs = 99")})

    assert params_diff(pipeline.repo, "HEAD~1", "HEAD") == [
        DiffRow("params.toml", "train.epochs", 10, 12, 2)]
    assert params_diff(pipeline.repo, "HEAD", "HEAD~1") == [
        DiffRow("params.toml", "train.epochs", 12, 10, -2)]
    assert params_diff(pipeline.repo, "HEAD~1") == [
        DiffRow("params.toml", "train.epochs", 10, 99, 89)]


def test_float_delta_has_no_rounding_noise(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": PARAMS.replace("lr = 0.5", "lr = 0.8")})
    pipeline.git_commit("v2")
    pipeline.gen({"params.toml": PARAMS.replace("lr = 0.5", "lr = 0.9")})

    assert params_diff(pipeline.repo) == [DiffRow("params.toml", "train.lr", 0.8, 0.9, 0.1)]


def test_bools_and_type_changes_have_no_delta(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": PARAMS.replace("epochs = 10", 'epochs = "ten"'),
                  "sub": {"scores.toml": "f1 = 0.5\nok = false\n"}})

    assert params_diff(pipeline.repo) == [DiffRow("params.toml", "train.epochs", 10, "ten", None)]
    assert metrics_diff(pipeline.repo) == [DiffRow("sub/scores.toml", "ok", True, False, None)]


def test_int_and_equal_float_are_unchanged(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": PARAMS.replace("epochs = 10", "epochs = 10.0")})

    assert params_diff(pipeline.repo) == []


def test_params_file_missing_on_one_side_is_absent(pipeline: TmpRepo) -> None:
    (pipeline.root / "other.json").unlink()

    assert params_diff(pipeline.repo) == [DiffRow("other.json", "seed", 1, None, None)]


def test_param_added_to_the_pipeline_in_the_workspace(pipeline: TmpRepo) -> None:
    pipeline.gen({"dvlite.toml": PIPELINE.replace('"other.json:seed"', '"other.json:seed", '
                                                  '"unused.x"')})

    # read at HEAD too, where no stage used it yet
    assert params_diff(pipeline.repo) == []
    assert DiffRow("params.toml", "unused.x", 1, 1, 0) in params_diff(pipeline.repo,
                                                                      show_all=True)


def test_unparsable_params_file_names_file_and_revision(pipeline: TmpRepo) -> None:
    pipeline.gen({"params.toml": "[train\nlr = "})
    with pytest.raises(PipelineError, match=r"params file `params.toml` at the workspace"):
        params_diff(pipeline.repo)
    pipeline.git_commit("broken")
    with pytest.raises(PipelineError, match=r"params file `params.toml` at revision `HEAD`"):
        params_diff(pipeline.repo, "HEAD~1", "HEAD")
    assert params_diff(pipeline.repo, "HEAD~1", "HEAD~1") == []


def test_unknown_revision(pipeline: TmpRepo) -> None:
    with pytest.raises(GitError, match="unknown git revision `nope`"):
        params_diff(pipeline.repo, "nope")


def test_no_pipeline(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"x.txt": "x"})
    tmp_repo.git_commit("no pipeline")
    with pytest.raises(PipelineError, match="no pipeline"):
        metrics_diff(tmp_repo.repo)


SHOWN = [
    MetricRow("metrics.json", "acc", 0.75),
    MetricRow("metrics.json", "loss.train", 0.5),
    MetricRow("metrics.json", "loss.val", 0.625),
    MetricRow("metrics.json", "tag", "v1"),
    MetricRow("sub/scores.toml", "f1", 0.5),
    MetricRow("sub/scores.toml", "ok", True),
]


def test_metrics_show_flattens_leaves(pipeline: TmpRepo) -> None:
    assert metrics_show(pipeline.repo) == SHOWN  # lists and nulls are left out


def test_metrics_show_at_revision_and_missing_file(pipeline: TmpRepo) -> None:
    pipeline.gen({"metrics.json": json.dumps({"acc": 0.875})})
    (pipeline.root / "sub" / "scores.toml").unlink()

    assert metrics_show(pipeline.repo) == [MetricRow("metrics.json", "acc", 0.875)]
    assert metrics_show(pipeline.repo, "HEAD") == SHOWN


def test_metrics_diff_head_against_workspace(pipeline: TmpRepo) -> None:
    pipeline.gen({"metrics.json": json.dumps(
        {"acc": 0.875, "loss": {"train": 0.25, "val": 0.625}, "tag": "v2", "new": 3})})

    assert metrics_diff(pipeline.repo) == [
        DiffRow("metrics.json", "acc", 0.75, 0.875, 0.125),
        DiffRow("metrics.json", "loss.train", 0.5, 0.25, -0.25),
        DiffRow("metrics.json", "new", None, 3, None),
        DiffRow("metrics.json", "tag", "v1", "v2", None),
    ]


def test_metrics_diff_yaml_and_two_revisions(pipeline: TmpRepo) -> None:
    pipeline.gen({"dvlite.toml": PIPELINE.replace("scores.toml", "scores.yaml"),
                  "sub": {"scores.yaml": "f1: 0.75\nnested:\n  auc: 0.5\n"}})
    (pipeline.root / "sub" / "scores.toml").unlink()
    pipeline.git_commit("v2")

    assert metrics_diff(pipeline.repo, "HEAD~1", "HEAD") == [
        DiffRow("sub/scores.toml", "f1", 0.5, None, None),
        DiffRow("sub/scores.toml", "ok", True, None, None),
        DiffRow("sub/scores.yaml", "f1", None, 0.75, None),
        DiffRow("sub/scores.yaml", "nested.auc", None, 0.5, None),
    ]


def test_unparsable_metrics_file_names_file_and_revision(pipeline: TmpRepo) -> None:
    pipeline.gen({"metrics.json": "{not json"})
    with pytest.raises(PipelineError, match=r"metrics file `metrics.json` at the workspace"):
        metrics_diff(pipeline.repo)
    with pytest.raises(PipelineError, match=r"metrics file `metrics.json` at the workspace"):
        metrics_show(pipeline.repo)
    assert len(metrics_show(pipeline.repo, "HEAD")) == len(SHOWN)
    pipeline.gen({"metrics.json": "[1, 2]"})
    with pytest.raises(PipelineError, match="table of keys"):
        metrics_show(pipeline.repo)
