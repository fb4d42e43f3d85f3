"""A committed two-stage pipeline whose metric depends on its params, for the experiment
tests: `prepare` (params `prepare.factor`) feeds `train` (params `train`), which writes
`model.bin` and `metrics.json`; `train.lr = 13` makes `train` fail. Every stage run is logged
outside the repo, so a test can tell a run from a run-cache restore."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.repro import repro
from tests.cli.conftest import cli  # noqa: F401  (the `cli` fixture, for these tests too)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

PREPARE = """\
import sys, tomllib
factor = tomllib.load(open("params.toml", "rb"))["prepare"]["factor"]
open("data/prepared.txt", "w").write(open("data/raw.txt").read() * factor)
open(sys.argv[1], "a").write("prepare\\n")
"""
TRAIN = """\
import json, sys, tomllib
p = tomllib.load(open("params.toml", "rb"))["train"]
if p["lr"] == 13:
    sys.exit("unlucky learning rate")
text = open("data/prepared.txt").read()
open("model.bin", "w").write(f"{text}|{p['lr']}|{p['epochs']}")
acc = round(1 - abs(p["lr"] - 0.1) - 1 / p["epochs"], 6)
json.dump({"acc": acc, "loss": round(1 - acc, 6)}, open("metrics.json", "w"))
open(sys.argv[1], "a").write(f"train {p['lr']} {p['epochs']}\\n")
"""
PARAMS = '[prepare]\nfactor = 2\n\n[train]\nlr = 0.1\nepochs = 5\nopt = "adam"\n'


def pipeline(log: Path) -> str:
    py, out = json.dumps(sys.executable), json.dumps(str(log))
    return f"""\
[stages.prepare]
cmd = [{py}, "prepare.py", {out}]
deps = ["prepare.py", "data/raw.txt"]
params = ["prepare.factor"]
outs = ["data/prepared.txt"]

[stages.train]
cmd = [{py}, "train.py", {out}]
deps = ["train.py", "data/prepared.txt"]
params = ["train"]
outs = ["model.bin"]
metrics = ["metrics.json"]
"""


def stage_runs(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def runlog(tmp_path: Path) -> Path:
    return tmp_path / "stage-runs.log"


@pytest.fixture
def project(tmp_repo: TmpRepo, runlog: Path) -> TmpRepo:
    """The pipeline, run once and committed with its `.dvl`-tracked raw data."""
    tmp_repo.gen({"prepare.py": PREPARE, "train.py": TRAIN, "params.toml": PARAMS,
                  "dvlite.toml": pipeline(runlog), "data": {"raw.txt": "abc\n"}})
    tmp_repo.dvl_add("data/raw.txt")
    repro(tmp_repo.repo)
    tmp_repo.git_commit("baseline")
    runlog.unlink()
    return tmp_repo
