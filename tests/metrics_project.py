"""A small committed pipeline project for the params and metrics tests: two stages, params
in TOML and JSON, metrics in JSON and (in a wdir) TOML."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

PIPELINE = """\
[stages.train]
cmd = "python train.py"
params = ["train", "other.json:seed"]
metrics = ["metrics.json"]

[stages.eval]
cmd = "python eval.py"
wdir = "sub"
metrics = ["scores.toml"]
"""
PARAMS = """\
[train]
lr = 0.5
epochs = 10
[train.opt]
name = "adam"
[unused]
x = 1
"""
OTHER = json.dumps({"seed": 1, "other": 2})
METRICS = json.dumps(
    {"acc": 0.75, "loss": {"train": 0.5, "val": 0.625}, "tag": "v1", "hist": [1, 2], "none": None}
)
SCORES = "f1 = 0.5\nok = true\n"


def make_project(tmp_repo: TmpRepo) -> TmpRepo:
    tmp_repo.gen({"dvlite.toml": PIPELINE, "params.toml": PARAMS, "other.json": OTHER,
                  "metrics.json": METRICS, "sub": {"scores.toml": SCORES}})
    tmp_repo.git_commit("v1")
    return tmp_repo
