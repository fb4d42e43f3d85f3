"""`-S` settings: checked against TOML, JSON and YAML params files, typed as the file types
the key, expanded to a grid, and written back."""

from __future__ import annotations

import json
import tomllib
from typing import TYPE_CHECKING

import pytest
import yaml

from dvlite.errors import PipelineError, UsageError
from dvlite.ops.exp_params import apply_sets, name_of, parse_sets

if TYPE_CHECKING:
    from pathlib import Path

TOML = '[model]\nlayers = [1, 2]\nname = "cnn"\nuse_bias = true\n\n[model.opt]\nlr = 0.5\n' \
       '"a.b" = 1\n'
JSON = '{\n    "seed": 1,\n    "data": {"split": 0.2}\n}\n'
YAML = "train:\n  epochs: 3\n  tags: [x, y]\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "params.toml").write_text(TOML)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "p.json").write_text(JSON)
    (tmp_path / "p.yaml").write_text(YAML)
    return tmp_path


def test_sets_are_typed_and_written_in_each_format(files: Path) -> None:
    [sets] = parse_sets(str(files), [
        "model.opt.lr=1", "model.opt.a.b=7", "model.use_bias=FALSE", "model.name='a,b'",
        "model.layers=[3, 4]", "conf/p.json:data.split=0.5", "p.yaml:train.epochs=10",
        'p.yaml:train.tags=["z"]'])
    assert [(s.key, s.value) for s in sets] == [
        ("model.opt.lr", 1.0), ("model.opt.a.b", 7), ("model.use_bias", False),
        ("model.name", "a,b"), ("model.layers", [3, 4]), ("data.split", 0.5),
        ("train.epochs", 10), ("train.tags", ["z"])]
    assert type(sets[0].value) is float  # the file holds a float there
    apply_sets(str(files), sets)
    doc = tomllib.loads((files / "params.toml").read_text())
    assert doc["model"] == {"layers": [3, 4], "name": "a,b", "use_bias": False,
                            "opt": {"lr": 1.0, "a.b": 7}}
    text = (files / "conf" / "p.json").read_text()
    assert json.loads(text) == {"seed": 1, "data": {"split": 0.5}}
    assert text.startswith('{\n    "seed": 1')  # its indent kept
    assert yaml.safe_load((files / "p.yaml").read_text()) == {
        "train": {"epochs": 10, "tags": ["z"]}}


def test_commas_make_a_grid_except_inside_brackets_and_quotes(files: Path) -> None:
    grid = parse_sets(str(files), ["model.opt.lr=0.1,0.2,0.3", "model.layers=[1, 2],[3]",
                                   "model.name=\"x,y\",z"])
    assert len(grid) == 3 * 2 * 2
    assert [s.text for s in grid[0]] == ["0.1", "[1, 2]", '"x,y"']
    assert [s.value for s in grid[0]] == [0.1, [1, 2], "x,y"]
    assert [s.value for s in grid[-1]] == [0.3, [3], "z"]
    assert name_of(grid[1]) == "exp-lr0.1-layers_1_2-namez"
    assert parse_sets(str(files), []) == [()]


@pytest.mark.parametrize(("spec", "error", "message"), [
    ("model.opt.momentum=1", PipelineError, "has no key `model.opt.momentum`"),
    ("model.use_bias=maybe", UsageError, "is not `true` or `false`"),
    ("model.layers=3", UsageError, "is not a list written as a TOML value"),
    ("=1", UsageError, "write it as `KEY=VALUE`"),
    ("../p.toml:a=1", UsageError, "must be a relative path inside the repo"),
    ("p.txt:a=1", UsageError, "must end in one of"),
])
def test_bad_settings(files: Path, spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_sets(str(files), [spec])
    assert (files / "params.toml").read_text() == TOML
