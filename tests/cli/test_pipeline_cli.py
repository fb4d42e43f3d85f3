"""``dvlite repro`` and ``dvlite dag`` on the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.ops.test_repro import PARAMS, PIPELINE, PREPARE, TRAIN

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


def _pipeline(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({
        "prepare.py": PREPARE, "train.py": TRAIN, "dvlite.toml": PIPELINE, "params.toml": PARAMS,
        "data": {"raw.txt": "hello\n"},
    })


def test_repro_reports_running_then_skipped(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    first = cli("repro")
    assert first.code == 0, first.err
    assert "running `prepare`: no lock entry: never run" in first.err_lines
    assert "running `train`: no lock entry: never run" in first.err_lines
    assert first.out == ""
    second = cli("repro", "--json")
    assert second.code == 0, second.err
    assert "skipped `prepare`: unchanged" in second.err_lines
    doc = json.loads(second.out)
    assert doc["dry_run"] is False
    assert [(s["name"], s["action"]) for s in doc["stages"]] == [
        ("prepare", "skipped"), ("train", "skipped")]


def test_repro_dry_run_and_targets(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    result = cli("repro", "--dry-run", "prepare")
    assert result.code == 0, result.err
    assert result.err_lines == ["would run `prepare`: no lock entry: never run"]
    assert not (tmp_repo.root / "dvlite.lock").exists()


def test_repro_failure_is_one_error_line(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"dvlite.toml": '[stages.boom]\ncmd = "exit 4"\n'})
    result = cli("repro")
    assert result.code == 1
    assert "error: stage `boom` failed: its command exited with code 4" in result.err_lines
    assert "Traceback" not in result.err


def test_repro_without_pipeline_is_an_error(tmp_repo: TmpRepo, cli: Cli) -> None:
    result = cli("repro")
    assert result.code == 1
    assert result.err_lines[0].startswith("error: no pipeline: `dvlite.toml`")


def test_dag_prints_stages_with_upstream(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    result = cli("dag")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["prepare", "train <- prepare"]
    doc = json.loads(cli("dag", "--json").out)
    assert doc == [{"name": "prepare", "upstream": []},
                   {"name": "train", "upstream": ["prepare"]}]
