"""``dvlite init --template``: the built-in ML project runs end to end; a team's own
template comes from a folder or a git URL; nothing existing is overwritten."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import assert_error
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli

ML_FILES = [".gitignore", ".pre-commit-config.yaml", "README.md", "data/raw/sensors.csv",
            "dvlite.toml", "params.toml", "src/common.py", "src/evaluate.py", "src/prepare.py",
            "src/train.py"]


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_ml_template_in_an_empty_folder_runs_end_to_end(empty: Path, cli: Cli) -> None:
    made = cli("-C", str(empty), "init", "--template", "ml", "--json")
    assert made.code == 0, made
    doc = json.loads(made.out)
    assert doc["git_initialized"] is True
    assert doc["files"] == ML_FILES
    assert doc["added"] == ["data/raw"]
    assert (empty / ".git").is_dir()
    assert (empty / ".dvlite" / "config.toml").is_file()
    assert (empty / "data" / "raw.dvl").is_file()
    assert "/raw" in (empty / "data" / ".gitignore").read_text().splitlines()
    assert not (empty / "dvlite-template.toml").exists()  # the manifest is not copied

    ran = cli("-C", str(empty), "repro")
    assert ran.code == 0, ran
    metrics = json.loads((empty / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "loss", "precision", "recall"}
    assert 0.6 < metrics["accuracy"] <= 1.0
    assert (empty / "models" / "model.json").is_file()
    assert cli("-C", str(empty), "status", "--exit-code").code == 0

    git(empty, "add", "-A")
    git(empty, "commit", "-q", "-m", "baseline")
    assert git(empty, "status", "--porcelain") == ""  # outputs and caches are ignored
    tracked = git(empty, "ls-files").split()
    assert {"dvlite.lock", "metrics.json", "data/raw.dvl"} <= set(tracked)
    assert not any(p.startswith(("models/", "data/raw/", "data/prepared/"))
                   for p in tracked if not p.endswith(".gitignore"))
    rebuilt = cli("-C", str(empty), "repro", "--rev", "HEAD")  # bit for bit, from the commit
    assert rebuilt.code == 0, rebuilt
    assert rebuilt.out.split() == ["matches", "data/prepared", "matches", "models/model.json",
                                   "matches", "metrics.json"]

    # the metric tooling works on it: a parameter change, then a CI check of the result
    params = empty / "params.toml"
    params.write_text(params.read_text().replace("epochs = 150", "epochs = 2"))
    assert cli("-C", str(empty), "repro").code == 0
    check = cli("-C", str(empty), "metrics", "diff", "--fail-if", "accuracy < -0.01")
    assert check.code in (0, 1), check
    assert cli("-C", str(empty), "metrics", "diff", "--fail-if", "accuracy < 2").code == 1


def test_ml_template_pre_commit_config_is_valid(empty: Path, cli: Cli) -> None:
    pytest.importorskip("pre_commit")
    assert cli("-C", str(empty), "init", "-t", "ml").code == 0
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config",
                           ".pre-commit-config.yaml"], cwd=empty, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = (empty / ".pre-commit-config.yaml").read_text()
    for hook_id in ("dvlite-status", "dvlite-push", "dvlite-checkout"):  # .pre-commit-hooks.yaml
        assert f"id: {hook_id}" in config


def test_inside_an_existing_repo_it_applies_at_the_top(git_dir: Path, cli: Cli) -> None:
    (git_dir / "sub").mkdir()
    result = cli("-C", str(git_dir / "sub"), "init", "--template", "ml")
    assert result.code == 0, result
    assert "initialized a git repository" not in result.err
    assert "next: `dvlite repro`" in result.err
    assert (git_dir / "dvlite.toml").is_file()


def test_refuses_to_overwrite_and_writes_nothing(empty: Path, cli: Cli) -> None:
    (empty / "params.toml").write_text("mine\n")
    (empty / "src").mkdir()
    (empty / "src" / "train.py").write_text("mine\n")
    result = cli("-C", str(empty), "init", "--template", "ml")
    assert_error(result, "params.toml", "src/train.py")
    assert "hint: " in result.err
    assert (empty / "params.toml").read_text() == "mine\n"
    assert sorted(p.name for p in empty.iterdir()) == ["params.toml", "src"]  # no .git either


def _team_template(where: Path) -> Path:
    where.mkdir()
    (where / "data" / "images").mkdir(parents=True)
    (where / "data" / "images" / "a.bin").write_bytes(b"\x00" * 64)
    (where / "notes.md").write_text("team notes\n")
    (where / "__pycache__").mkdir()
    (where / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (where / "dvlite-template.toml").write_text('add = ["data/images"]\n')
    return where


def test_a_folder_template(git_dir: Path, tmp_path: Path, cli: Cli) -> None:
    _team_template(tmp_path / "team")
    result = cli("init", "--template", "../team", "--json")  # relative to the current folder
    assert result.code == 0, result
    assert json.loads(result.out)["files"] == ["data/images/a.bin", "notes.md"]
    assert (git_dir / "data" / "images.dvl").is_file()
    assert not (git_dir / "__pycache__").exists()


def test_a_git_url_template(empty: Path, tmp_path: Path, cli: Cli) -> None:
    source = _team_template(tmp_path / "team")
    shutil.rmtree(source / "__pycache__")
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "template")
    result = cli("-C", str(empty), "init", "--template", source.as_uri())
    assert result.code == 0, result
    assert (empty / "notes.md").read_text() == "team notes\n"
    assert (empty / "data" / "images.dvl").is_file()
    no_head = subprocess.run(["git", "-C", str(empty), "rev-parse", "--verify", "-q", "HEAD"],
                             capture_output=True, check=False)
    assert no_head.returncode != 0  # the template's history stays where it came from


@pytest.mark.parametrize("template", ["nope", "./missing-folder"])
def test_unknown_template_is_a_usage_error(empty: Path, cli: Cli, template: str) -> None:
    result = cli("-C", str(empty), "init", "--template", template)
    assert_error(result, template.removeprefix("./"), code=2)
    assert "ml" in result.err  # the hint names the built-in ones
    assert list(empty.iterdir()) == []


def test_json_without_template_is_a_usage_error(git_dir: Path, cli: Cli) -> None:
    assert_error(cli("init", "--json"), "--template", code=2)
