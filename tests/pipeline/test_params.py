"""Params: references, TOML/JSON/YAML files, dotted keys, whole tables, errors naming file+key."""

from __future__ import annotations

import builtins
import datetime
import json
import sys
from typing import TYPE_CHECKING, Any

import pytest

from dvlite.errors import PipelineError
from dvlite.pipeline.params import DEFAULT_FILE, ParamRef, load_file, lookup, read_params

if TYPE_CHECKING:
    from pathlib import Path

PARAMS_TOML = """\
seed = 7
[prepare]
split = 0.2
[train]
lr = 0.01
layers = [64, 32]
[train.optim]
name = "adam"
"""


def test_parse_ref_default_file() -> None:
    ref = ParamRef.parse("train.lr")
    assert ref == ParamRef(DEFAULT_FILE, "train.lr")
    assert DEFAULT_FILE == "params.toml"
    assert ref.spec == "train.lr"


def test_parse_ref_other_file() -> None:
    ref = ParamRef.parse("conf/other.json:model.depth")
    assert ref == ParamRef("conf/other.json", "model.depth")
    assert ref.spec == "conf/other.json:model.depth"
    assert ParamRef.parse("params.toml:x").spec == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not name a key"),
        ("a..b", "does not name a key"),
        ("p.yaml:", "does not name a key"),
        ("p.txt:a", "must end in one of"),
        ("../p.json:a", "relative path inside the repo"),
        ("/p.json:a", "relative path inside the repo"),
    ],
)
def test_parse_ref_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParamRef.parse(text)


def test_toml_dotted_keys_and_whole_tables(tmp_path: Path) -> None:
    (tmp_path / "params.toml").write_text(PARAMS_TOML)
    refs = [ParamRef.parse(s) for s in ("seed", "prepare.split", "train", "train.optim.name")]
    assert read_params(str(tmp_path), refs) == {
        "seed": 7,
        "prepare.split": 0.2,
        "train": {"lr": 0.01, "layers": [64, 32], "optim": {"name": "adam"}},
        "train.optim.name": "adam",
    }


def test_json_file_with_file_key_syntax(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "p.json").write_text(json.dumps({"model": {"depth": 3, "act": "relu"}}))
    (tmp_path / "params.toml").write_text("a = 1\n")
    refs = [ParamRef.parse("conf/p.json:model.depth"), ParamRef.parse("conf/p.json:model"),
            ParamRef.parse("a")]
    assert read_params(str(tmp_path), refs) == {
        "conf/p.json:model.depth": 3,
        "conf/p.json:model": {"depth": 3, "act": "relu"},
        "a": 1,
    }


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"p{suffix}").write_text("train:\n  lr: 0.5\n  when: 2024-01-02\n")
    ref = ParamRef.parse(f"p{suffix}:train")
    assert read_params(str(tmp_path), [ref]) == {
        f"p{suffix}:train": {"lr": 0.5, "when": datetime.date(2024, 1, 2)}
    }


def test_yaml_without_pyyaml_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.yaml").write_text("a: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # what a missing module looks like
    with pytest.raises(PipelineError, match=r"p\.yaml.*needs PyYAML") as info:
        load_file(str(tmp_path / "p.yaml"))
    assert info.value.hint is not None
    assert "pyyaml" in info.value.hint


def test_each_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "params.toml").write_text(PARAMS_TOML)
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    read_params(str(tmp_path), [ParamRef.parse("seed"), ParamRef.parse("train.lr")])
    assert opened == [str(tmp_path / "params.toml")]


def test_key_with_dots_in_it() -> None:
    doc = {"a.b": {"c": 1}, "a": {"x": 2}}
    assert lookup(doc, "a.b.c", source="f.toml") == 1
    assert lookup(doc, "a.x", source="f.toml") == 2


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("train.momentum", r"params file `f\.toml` has no key `train\.momentum`"),
        ("nope", r"params file `f\.toml` has no key `nope`"),
        ("train.lr.x", r"params file `f\.toml`: `train\.lr` is not a table, so it has no key "
                       r"`train\.lr\.x`"),
        ("empty", r"`empty` is null"),
        ("deep", r"`deep\.x` is null"),
        ("inlist", r"`inlist` is null"),
        ("intkeys", r"`intkeys` has a non-string key 1"),
        ("obj", r"`obj` has an unsupported value"),
    ],
)
def test_lookup_errors_name_file_and_key(key: str, message: str) -> None:
    doc = {"train": {"lr": 0.1}, "empty": None, "deep": {"x": None}, "inlist": [1, None],
           "intkeys": {1: "a"}, "obj": object()}
    with pytest.raises(PipelineError, match=message):
        lookup(doc, key, source="f.toml")


def test_missing_key_in_read_params_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "params.toml").write_text(PARAMS_TOML)
    with pytest.raises(PipelineError, match=r"params\.toml` has no key `train\.batch`"):
        read_params(str(tmp_path), [ParamRef.parse("train.batch")])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.toml", "a = = 1\n", r"cannot parse params file `.*p\.toml`"),
        ("p.json", "{nope", r"cannot parse params file `.*p\.json`"),
        ("p.yaml", "a: [1\n", r"cannot parse params file `.*p\.yaml`"),
        ("p.json", "[1, 2]", r"`.*p\.json` must hold a table"),
        ("p.yaml", "- 1\n", r"`.*p\.yaml` must hold a table"),
        ("p.yaml", "", r"`.*p\.yaml` must hold a table"),
        ("p.ini", "a=1", r"is not \.toml, \.json, \.yaml or \.yml"),
    ],
)
def test_bad_params_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(PipelineError, match=message):
        load_file(str(tmp_path / name))


def test_non_utf8_params_file(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(PipelineError, match="cannot parse params file"):
        load_file(str(tmp_path / "p.json"))


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"params file `.*params\.toml` does not exist"):
        read_params(str(tmp_path), [ParamRef.parse("a")])


def test_params_file_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "params.toml").mkdir()
    with pytest.raises(PipelineError, match="is a folder"):
        load_file(str(tmp_path / "params.toml"))
