"""dvlite.toml parsing: every field, and errors that name the file, line and stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.errors import DvliteError, PipelineError
from dvlite.pipeline.params import ParamRef
from dvlite.pipeline.stage import Out, Stage, load_stages

if TYPE_CHECKING:
    from pathlib import Path

FULL = """\
[stages.prepare]
cmd = "python src/prepare.py"
deps = ["src/prepare.py", "data/raw/"]
params = ["prepare.split"]
outs = ["data/prepared"]

[stages.train]
cmd = ["python", "train.py"]
wdir = "src"
deps = ["train.py"]
params = ["train", "other.json:model.depth"]
outs = ["model.pkl", {path = "logs", cache = false}, {path = "ckpt"}]
metrics = ["metrics.json"]
always_changed = true
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dvlite.toml"
    path.write_text(text)
    return str(path)


def test_full_pipeline_is_parsed(tmp_path: Path) -> None:
    stages = load_stages(write(tmp_path, FULL))
    assert list(stages) == ["prepare", "train"]
    assert stages["prepare"] == Stage(
        name="prepare",
        cmd="python src/prepare.py",
        deps=("src/prepare.py", "data/raw"),
        outs=(Out("data/prepared"),),
        params=(ParamRef("params.toml", "prepare.split"),),
    )
    train = stages["train"]
    assert train.cmd == ("python", "train.py")
    assert train.wdir == "src"
    assert train.params == (ParamRef("params.toml", "train"), ParamRef("other.json", "model.depth"))
    assert train.outs == (Out("model.pkl"), Out("logs", cache=False), Out("ckpt", cache=True))
    assert train.metrics == ("metrics.json",)
    assert train.always_changed is True
    assert stages["prepare"].always_changed is False


def test_paths_in_repo_are_joined_with_wdir(tmp_path: Path) -> None:
    stages = load_stages(write(tmp_path, FULL))
    assert stages["train"].dep_paths == ("src/train.py",)
    assert stages["train"].out_paths == (
        "src/model.pkl", "src/logs", "src/ckpt", "src/metrics.json",
    )
    assert stages["prepare"].out_paths == ("data/prepared",)


def test_stage_is_frozen(tmp_path: Path) -> None:
    stage = load_stages(write(tmp_path, FULL))["prepare"]
    with pytest.raises(AttributeError):
        stage.cmd = "other"  # type: ignore[misc]


def test_empty_file_has_no_stages(tmp_path: Path) -> None:
    assert load_stages(write(tmp_path, "")) == {}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="does not exist"):
        load_stages(str(tmp_path / "dvlite.toml"))


def test_loading_never_writes_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    before = (tmp_path / "dvlite.toml").stat().st_mtime_ns
    load_stages(path)
    assert (tmp_path / "dvlite.toml").read_text() == FULL
    assert (tmp_path / "dvlite.toml").stat().st_mtime_ns == before


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[stages.a]\ncmd = "x"\ndeps = = 1\n')
    with pytest.raises(PipelineError, match=r"dvlite\.toml`: .*line 3") as info:
        load_stages(path)
    assert isinstance(info.value, DvliteError)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('cmd = "x"\ndep = ["a"]\n', 4, r"unknown key `dep`"),
        ('deps = ["a"]\n', 2, r"has no `cmd`"),
        ('cmd = "   "\n', 3, r"`cmd` is empty"),
        ("cmd = []\n", 3, r"`cmd` is an empty list"),
        ('cmd = ["python", 3]\n', 3, r"`cmd` must be a string or a list of strings"),
        ("cmd = 3\n", 3, r"`cmd` must be"),
        ('cmd = "x"\ndeps = "a"\n', 4, r"`deps` must be a list of strings"),
        ('cmd = "x"\ndeps = ["/etc/passwd"]\n', 4, r"absolute path `/etc/passwd`"),
        ('cmd = "x"\nouts = ["../up"]\n', 4, r"`outs` has a path `../up` that leaves"),
        ('cmd = "x"\nmetrics = ["a/../../b"]\n', 4, r"`metrics` has a path .* leaves"),
        ('cmd = "x"\nwdir = "../elsewhere"\n', 4, r"`wdir` has a path"),
        ('cmd = "x"\nwdir = "/abs"\n', 4, r"`wdir` has an absolute path"),
        ("cmd = \"x\"\ndeps = ['a\\\\b']\n", 4, r"unsafe path"),
        ('cmd = "x"\ndeps = ["a//b"]\n', 4, r"unsafe path"),
        ('cmd = "x"\nwdir = 3\n', 4, r"`wdir` must be a string"),
        ('cmd = "x"\nalways_changed = "yes"\n', 4, r"`always_changed` must be true or false"),
        ('cmd = "x"\ndeps = ["a", "a/"]\n', 4, r"`a` is listed twice \(in `deps` and `deps`\)"),
        ('cmd = "x"\ndeps = ["a"]\nouts = ["a"]\n', 5, r"twice \(in `deps` and `outs`"),
        ('cmd = "x"\nouts = ["m"]\nmetrics = ["m"]\n', 5, r"twice \(in `outs` and `metrics`"),
        ('cmd = "x"\nouts = [3]\n', 4, r"each of `outs` is a path or a table"),
        ('cmd = "x"\nouts = "a"\n', 4, r"`outs` must be a list"),
        ('cmd = "x"\nouts = [{path = "a", cached = false}]\n', 4, r"unknown key `cached`"),
        ('cmd = "x"\nouts = [{cache = false}]\n', 4, r"needs a string `path`"),
        ('cmd = "x"\nouts = [{path = "a", cache = "no"}]\n', 4, r"`cache` must be true or false"),
        ('cmd = "x"\nparams = ["a", "a"]\n', 4, r"`params` lists `a` twice"),
        ('cmd = "x"\nparams = ["a", "params.toml:a"]\n', 4, r"`params` lists `a` twice"),
        ('cmd = "x"\nparams = ["p.ini:a"]\n', 4, r"must end in one of"),
        ('cmd = "x"\nparams = ["p.json:"]\n', 4, r"does not name a key"),
        ('cmd = "x"\nparams = ["a..b"]\n', 4, r"does not name a key"),
        ('cmd = "x"\nparams = ["/abs.json:a"]\n', 4, r"relative path"),
        ('cmd = "x"\nparams = [1]\n', 4, r"`params` must be a list of strings"),
    ],
)
def test_bad_stage_names_file_line_and_stage(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    # the bad stage's header is line 4; errors point at the offending key's line (``line`` is
    # counted from 2 at the header, so the file line is line + 2), else at the header
    path = write(tmp_path, f'[stages.ok]\ncmd = "y"\n\n[stages.bad]\n{body}')
    with pytest.raises(PipelineError, match=message) as info:
        load_stages(path)
    text = info.value.message
    assert text.startswith(f"`{path}` line {line + 2}, stage `bad`: "), text


def test_unknown_key_hint_suggests_close_match(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as info:
        load_stages(write(tmp_path, '[stages.a]\ncmd = "x"\nouts_ = []\n'))
    assert info.value.hint == "did you mean `outs`?"


def test_stage_without_header_line_is_still_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'stages = { inl = { cmd = "" } }\n')
    with pytest.raises(PipelineError, match=r"^`.*dvlite\.toml`, stage `inl`: `cmd` is empty"):
        load_stages(path)


def test_quoted_stage_header_gets_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '# c\n[stages."q"]\ncmd = ""\n')
    with pytest.raises(PipelineError, match=r"line 3, stage `q`"):
        load_stages(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[stage.a]\ncmd = "x"\n', r"unknown top-level key `stage`"),
        ('stages = ["a"]\n', r"`stages` must be a table"),
        ("[stages]\na = 1\n", r"stage `a`: must be a table"),
        ('[stages."a b"]\ncmd = "x"\n', r"stage `a b`: a stage name may hold only"),
        ('[stages."x:y"]\ncmd = "x"\n', r"stage `x:y`: a stage name"),
    ],
)
def test_bad_file_shape(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        load_stages(write(tmp_path, text))


def test_wdir_dot_and_trailing_slashes(tmp_path: Path) -> None:
    stages = load_stages(write(tmp_path, '[stages.a]\ncmd = "x"\nwdir = "./"\nouts = ["o/"]\n'
                                         '[stages.b]\ncmd = "x"\nwdir = "sub/"\n'))
    assert stages["a"].wdir == "."
    assert stages["a"].outs == (Out("o"),)
    assert stages["b"].wdir == "sub"


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "dvlite.toml").write_bytes(b'[stages.a]\ncmd = "\xff"\n')
    with pytest.raises(PipelineError, match="UTF-8"):
        load_stages(str(tmp_path / "dvlite.toml"))
