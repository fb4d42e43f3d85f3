"""``dvlite repro`` and ``dvlite dag`` on the command line."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from tests.ops.test_repro import PARAMS, PIPELINE, PREPARE, TRAIN

if TYPE_CHECKING:
    from pathlib import Path

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


def test_repro_says_which_stages_it_restored(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    assert cli("repro").code == 0
    (tmp_repo.root / "model.bin").unlink()
    result = cli("repro")
    assert result.code == 0, result.err
    assert "restored `train` from the run cache: out `model.bin` missing" in result.err_lines
    assert result.err_lines[-1] == "commit dvlite.lock (and the changed .gitignore files) with git"
    (tmp_repo.root / "model.bin").unlink()
    doc = json.loads(cli("repro", "--json").out)
    assert [(s["name"], s["action"]) for s in doc["stages"]] == [
        ("prepare", "skipped"), ("train", "restored")]
    (tmp_repo.root / "model.bin").unlink()
    dry = cli("repro", "--dry-run")
    assert "would restore `train` from the run cache: out `model.bin` missing" in dry.err_lines
    forced = cli("repro", "--no-run-cache", "train")
    assert "running `train`: out `model.bin` missing" in forced.err_lines


def test_repro_single_item(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    assert cli("repro").code == 0
    (tmp_repo.root / "data/raw.txt").write_text("new\n")
    result = cli("repro", "--single-item", "--dry-run", "train")
    assert result.code == 0, result.err
    assert result.err_lines == ["skipped `train`: unchanged"]
    missing = cli("repro", "-s")
    assert missing.code == 2
    assert missing.err_lines[0] == "error: `--single-item` runs the stages it is given, and none is"


def test_repro_refuses_an_out_tracked_by_git(tmp_repo: TmpRepo, cli: Cli) -> None:
    _pipeline(tmp_repo)
    tmp_repo.gen({"model.bin": "in git"})
    tmp_repo.git("add", "model.bin")
    result = cli("repro")
    assert result.code == 1
    assert result.err_lines[0].startswith(
        "error: `model.bin` is tracked by git; stop tracking it with `git rm --cached model.bin`")
    assert "hint: then run `dvlite repro` again" in result.err


DIAMOND = """\
[stages.a]
cmd = "true"
outs = ["a.txt"]

[stages.b-1]
cmd = "true"
deps = ["a.txt"]
outs = ["b.txt"]

[stages.end]
cmd = "true"
deps = ["a.txt"]
outs = ["c.txt"]

[stages.d]
cmd = "true"
deps = ["b.txt", "c.txt"]
outs = ["d.txt"]
"""


def test_dag_as_graphviz_and_mermaid(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"dvlite.toml": DIAMOND})
    dot = cli("dag", "--dot")
    assert dot.code == 0, dot.err
    assert dot.out == (
        'digraph pipeline {\n'
        '    "a";\n'
        '    "b-1";\n'
        '    "end";\n'
        '    "d";\n'
        '    "a" -> "b-1";\n'
        '    "a" -> "end";\n'
        '    "b-1" -> "d";\n'
        '    "end" -> "d";\n'
        '}\n'
    )
    mermaid = cli("dag", "--mermaid")
    assert mermaid.code == 0, mermaid.err
    assert mermaid.out == (
        'flowchart TD\n'
        '    s1["a"]\n'
        '    s2["b-1"]\n'
        '    s3["end"]\n'
        '    s4["d"]\n'
        '    s1 --> s2\n'
        '    s1 --> s3\n'
        '    s2 --> s4\n'
        '    s3 --> s4\n'
    )
    assert cli("dag", "--dot", "--mermaid").code == 2


def test_push_and_pull_run_cache_flags(tmp_repo: TmpRepo, cli: Cli, tmp_path: Path) -> None:
    _pipeline(tmp_repo)
    assert cli("remote", "add", "-d", "store", str(tmp_path / "store")).code == 0
    assert cli("repro").code == 0
    pushed = json.loads(cli("push", "--run-cache", "--json").out)
    assert pushed["failed"] == {}
    assert (tmp_path / "store" / "runs").is_dir()
    shutil.rmtree(tmp_repo.root / ".dvlite" / "cache")
    for name in ("model.bin", "metrics.json", "data/prepared.txt"):
        (tmp_repo.root / name).unlink()
    pulled = cli("pull", "--run-cache")
    assert pulled.code == 0, pulled.err
    assert (tmp_repo.root / "model.bin").exists()  # pull checks out what the lock records
    result = cli("repro")
    # metrics are not checked out from the cache: the run cache brings them back
    assert result.err_lines[:2] == [
        "skipped `prepare`: unchanged",
        "restored `train` from the run cache: out `metrics.json` missing"]
    assert (tmp_repo.root / "runs.log").read_text() == "prepare\ntrain\n"
