"""DVC's formats as the importer reads them, without DVC itself: templating, stage names,
the md5 of a folder, config and remotes, lfs patterns. (test_import_dvc.py checks the same
against real DVC.)"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import ConfigError, PipelineError
from dvlite.ops.migrate import dvc_config
from dvlite.ops.migrate.dvc_files import dir_md5, dos2unix_md5
from dvlite.ops.migrate.dvc_pipeline import convert, dvlite_name
from dvlite.ops.migrate.dvc_template import expand
from dvlite.ops.migrate.lfs import matches
from dvlite.pointer import load
from dvlite.storage.hashing import hash_bytes
from tests.cli.support import run_main
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path


def test_a_folders_md5_is_dvcs() -> None:
    # DVC 3.67.1 gave this folder (a.txt, sub/b.bin) the md5 8cccd259...dir
    entries = [("sub/b.bin", "401b30e3b8b5d629635a5c613cdb7919"),
               ("a.txt", "d644a230f3ef20b00879aaceb61790af")]
    assert dir_md5(entries) == "8cccd259ce90e836d2712a6d0d0a327c"


def test_dvc2_reads_crlf_text_as_lf() -> None:
    assert dos2unix_md5(b"a\r\nb\r\n") == dos2unix_md5(b"a\nb\n")
    assert dos2unix_md5(b"\0a\r\n") != dos2unix_md5(b"\0a\n")  # binary: as it is


def test_foreach_and_matrix_are_named_as_dvc_names_them() -> None:
    ctx = {"sizes": ["s", "l"], "flag": True}
    stage = {"foreach": "${sizes}", "do": {"cmd": "run ${item} --x=${flag}",
                                           "outs": [{"out-${item}": {"cache": False}}]}}
    assert expand("g", stage, ctx, "w") == [
        ("g@s", {"cmd": "run s --x=true", "outs": [{"out-s": {"cache": False}}]}),
        ("g@l", {"cmd": "run l --x=true", "outs": [{"out-l": {"cache": False}}]}),
    ]
    composite = {"foreach": [{"a": 1}, {"a": 2}], "do": {"cmd": "echo ${item.a}"}}
    assert [n for n, _ in expand("c", composite, {}, "w")] == ["c@0", "c@1"]
    table = {"foreach": {"x": {"n": 1}}, "do": {"cmd": "echo ${key} ${item.n}"}}
    assert expand("t", table, {}, "w") == [("t@x", {"cmd": "echo x 1"})]
    matrix = {"matrix": {"n": [1, 2], "opt": [["a"]]}, "cmd": "echo ${item.n} ${key}"}
    assert expand("m", matrix, {}, "w") == [("m@1-opt0", {"cmd": "echo 1 1-opt0"}),
                                            ("m@2-opt0", {"cmd": "echo 2 2-opt0"})]
    assert dvlite_name("m@1-opt0") == "m-1-opt0"
    assert dvlite_name("t@a/b c") == "t-a_b_c"


def test_templating_errors_name_the_place() -> None:
    with pytest.raises(PipelineError, match=r"stage `s`: `\$\{nope\}` names nothing"):
        expand("s", {"cmd": "echo ${nope}"}, {}, "stage `s`")
    with pytest.raises(PipelineError, match="table or list inside a string"):
        expand("s", {"cmd": "echo ${t}"}, {"t": {"a": 1}}, "stage `s`")
    assert expand("s", {"cmd": r"echo \${HOME}"}, {}, "w") == [("s", {"cmd": "echo ${HOME}"})]


def test_stages_convert_and_say_what_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("lr: 0.5\n")
    (tmp_path / "other.json").write_text('{"seed": 1, "depth": 3}')
    doc = {
        "vars": [{"name": "base"}],
        "plots": [{"loss.csv": {}}],
        "stages": {"s": {
            "cmd": ["echo ${name}", "echo ${lr}"], "wdir": ".", "frozen": True,
            "params": ["lr", {"other.json": None}, {"conf.py": ["x"]}],
            "outs": ["out", {"logs": {"cache": False, "persist": True}}],
            "metrics": ["m.json"], "plots": ["p.csv"],
        }},
    }
    pipeline = convert(str(tmp_path), doc, {})
    [stage] = pipeline.stages
    assert stage.table == {
        "cmd": "echo base && echo 0.5",
        "params": ["params.yaml:lr", "other.json:seed", "other.json:depth"],
        "outs": ["out", {"path": "logs", "cache": False}, "p.csv"],
        "metrics": ["m.json"],
    }
    warnings = "\n".join(pipeline.warnings)
    assert "`frozen` has no dvlite equivalent" in warnings
    assert "flag `persist` of `logs`" in warnings
    assert "`conf.py` is not TOML, JSON or YAML" in warnings
    assert "DVC caches metric `m.json`" in warnings
    assert pipeline.not_converted == ("top-level `plots` of dvc.yaml",
                                      "plot `p.csv` of stage `s` (the file is kept as an out)")
    assert pipeline.render().startswith(b"# converted from dvc.yaml")


def _dvc_config(root: Path, tracked: str, local: str = "") -> None:
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(tracked)
    if local:
        (root / ".dvc" / "config.local").write_text(local)


def test_remotes_keep_their_url_and_rename_options(tmp_path: Path) -> None:
    _dvc_config(tmp_path, """[core]
    remote = box
['remote "box"']
    url = ssh://host/srv/data
    user = ana
    keyfile = /home/ana/.ssh/id
    password = hunter2
['remote "blob"']
    url = azure://container/path/
['remote "near"']
    url = ../../shared
""", """['remote "blob"']
    connection_string = "DefaultEndpoints=x"
""")
    config = dvc_config.load(str(tmp_path))
    settings = {(s.key, s.level): s.value for s in config.settings}
    assert settings == {
        ("core.remote", "project"): "box",
        ("remote.box.url", "project"): "ssh://host/srv/data/dvlite",
        ("remote.box.username", "project"): "ana",
        ("remote.box.client_keys", "project"): '["/home/ana/.ssh/id"]',
        ("remote.box.password", "local"): "hunter2",  # a secret never goes to git
        ("remote.blob.url", "project"): "az://container/path/dvlite",
        ("remote.blob.connection_string", "local"): "DefaultEndpoints=x",
        ("remote.near.url", "project"): "../shared/dvlite",  # DVC reads it from .dvc/
    }
    assert config.warnings == ("remote `box`: credential `password` was in the tracked "
                               "`.dvc/config`; written to `.dvlite/config.local.toml` only",)
    only = dvc_config.load(str(tmp_path), only="near")
    assert [(s.key, s.value) for s in only.settings] == [
        ("remote.near.url", "../shared/dvlite"), ("core.remote", "near")]
    with pytest.raises(ConfigError, match="DVC has no remote `gone`"):
        dvc_config.load(str(tmp_path), only="gone")


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    ("a.bin", "*.bin", True), ("deep/down/a.bin", "*.bin", True), ("a.bin.txt", "*.bin", False),
    ("models/x/w.pt", "models/**", True), ("data/x", "data/", True), ("data/x", "data", False),
    ("sub/top.bin", "/top.bin", False), ("top.bin", "/top.bin", True),
])
def test_lfs_patterns_match_as_gitattributes_does(path: str, pattern: str,
                                                  expected: bool) -> None:
    assert matches(path, pattern) is expected


def test_dvc2_files_convert(git_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `.dvc` file of DVC 2 (no `hash: md5`) records the md5 of text read with CRLF as LF,
    and DVC 2's cache keeps objects at its top level."""
    crlf = b"a,b\r\n1,2\r\n"
    (git_dir / ".dvc" / "cache").mkdir(parents=True)
    (git_dir / "table.csv").write_bytes(crlf)
    md5 = dos2unix_md5(crlf)
    (git_dir / "table.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  size: 8\n  path: table.csv\n")
    (git_dir / ".gitignore").write_text("/table.csv\n")
    git(git_dir, "add", "-A")
    git(git_dir, "commit", "-q", "-m", "dvc 2")
    result = run_main(capsys, "import-dvc", "--json")
    assert result.code == 0, result.err
    assert load("table.csv.dvl").oid == hash_bytes(crlf)  # the bytes as they are

    # from DVC 2's cache, where the workspace lacks it
    (git_dir / ".dvc" / "cache" / md5[:2]).mkdir()
    (git_dir / ".dvc" / "cache" / md5[:2] / md5[2:]).write_bytes(crlf)
    (git_dir / "table.csv").unlink()
    (git_dir / "table.csv.dvl").unlink()
    result = run_main(capsys, "import-dvc", "--json")
    assert result.code == 0, result.err
    assert [c["source"] for c in json.loads(result.out)["converted"]] == ["DVC cache"]
    assert load("table.csv.dvl").oid == hash_bytes(crlf)


def test_a_pipeline_in_a_subfolder_is_listed_as_not_converted(
    git_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (git_dir / ".dvc").mkdir()
    (git_dir / "sub").mkdir()
    (git_dir / "sub" / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo\n")
    result = run_main(capsys, "import-dvc", "--dry-run", "--json")
    assert result.code == 0, result.err
    [note] = json.loads(result.out)["not_converted"]
    assert note.startswith("the pipeline in `sub/dvc.yaml`")
    assert not (git_dir / ".dvlite").exists()  # a dry run sets nothing up
