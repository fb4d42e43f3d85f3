"""`dvlite import-dvc` on a project built with real DVC, then used with dvlite alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.repro import repro
from dvlite.ops.status import status
from dvlite.pipeline.params import ParamRef
from dvlite.pipeline.stage import load_stages
from dvlite.pointer import load
from dvlite.repo import Repo
from dvlite.storage.hashing import hash_bytes
from dvlite.workspace import manifest_of
from tests.cli.support import run_main, snapshot
from tests.helpers import git
from tests.migrate.conftest import DATA_TXT, IMAGES, SECRET
from tests.migrate.support import assert_older_commit_comes_back

if TYPE_CHECKING:
    from pathlib import Path

    from tests.migrate.conftest import Run

# slow: real DVC and git-lfs; the first test may wait for DVC's venv to be made
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STAGES = {"prepare", "train", "report-small", "report-large", "grid-1-fast", "grid-2-fast"}


def _import(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, object]:
    result = run_main(capsys, "import-dvc", "--json", *flags)
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def _skipped_everywhere(root: Path) -> None:
    with Repo.discover(str(root)) as repo:
        report = repro(repo, dry_run=True)
    assert {s.name: s.action for s in report.stages} == dict.fromkeys(STAGES, "skipped")


def test_converts_data_pipeline_lock_and_remotes(
    dvc_project: Path, capsys: pytest.CaptureFixture[str], dvc: Run,
) -> None:
    doc = _import(capsys)

    converted = {c["path"]: c for c in doc["converted"]}  # type: ignore[attr-defined]
    assert {p: c["source"] for p, c in converted.items()} == {"data.txt": "workspace",
                                                              "images": "workspace"}
    assert load("data.txt.dvl").oid == hash_bytes(DATA_TXT)
    images = load("images.dvl")
    with Repo.discover(".") as repo:
        files = {e.path: e.oid for e in manifest_of(repo, images).entries}
        assert status(repo).entries == ()
    assert files == {name: hash_bytes(content) for name, content in IMAGES.items()}
    assert (images.kind, images.files, images.size) == ("dir", 2, sum(map(len, IMAGES.values())))

    stages = load_stages("dvlite.toml")
    assert set(stages) == STAGES
    assert stages["prepare"].params == (ParamRef("params.yaml", "prepare.split"),)
    assert stages["prepare"].cmd == ("mkdir -p prepared && cp data.txt prepared/data.txt && "
                                     "echo 0.25 > prepared/split.txt")
    assert [(o.path, o.cache) for o in stages["train"].outs] == [("model.bin", True),
                                                                 ("train.log", False)]
    assert stages["train"].metrics == ("metrics.json",)
    assert set(doc["locked"]) == STAGES  # type: ignore[arg-type]
    _skipped_everywhere(dvc_project)

    project = tomllib.loads((dvc_project / ".dvlite/config.toml").read_text())
    local = tomllib.loads((dvc_project / ".dvlite/config.local.toml").read_text())
    assert project["core"]["remote"] == "storage"
    assert project["remote"]["storage"]["url"] == "../dvc-remote/dvlite"
    assert project["remote"]["cloud"] == {"url": "s3://bucket/project/dvlite",
                                          "endpoint_url": "http://127.0.0.1:9"}
    assert local["remote"]["cloud"] == {"secret": SECRET}
    tracked = [*git(dvc_project, "ls-files").split(), "dvlite.toml", "dvlite.lock"]
    assert not [p for p in tracked if SECRET in (dvc_project / p).read_text(errors="replace")]
    assert any("`jobs` has no dvlite equivalent" in w for w in doc["warnings"])  # type: ignore[attr-defined]

    # DVC keeps working on the same tree during the switch
    assert "up to date" in dvc(dvc_project, "status")
    assert (dvc_project / "data.txt.dvc").exists()
    assert (dvc_project / "dvc.lock").exists()


def test_a_second_run_changes_nothing(dvc_project: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _import(capsys)
    before = snapshot(dvc_project, skip=(".dvlite/tmp", ".git"))
    doc = _import(capsys)  # not refused: the changes in the tree are the import's own
    assert doc["written"] == []
    assert {c["action"] for c in doc["converted"]} == {"unchanged"}  # type: ignore[attr-defined]
    assert snapshot(dvc_project, skip=(".dvlite/tmp", ".git")) == before


def test_dry_run_writes_nothing(dvc_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(dvc_project)
    doc = _import(capsys, "--dry-run", "--remove-dvc")
    assert doc["dry_run"] is True
    assert {c["path"]: c["action"] for c in doc["converted"]} == {  # type: ignore[attr-defined]
        "data.txt": "would write", "images": "would write"}
    assert set(doc["stages"]) == STAGES  # type: ignore[arg-type]
    assert "dvc.yaml" in doc["removed"]  # type: ignore[operator]
    assert snapshot(dvc_project) == before


def test_day_to_day_use_after_the_import(dvc_project: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _import(capsys)
    fresh = tmp_path / "fresh-remote"
    assert run_main(capsys, "remote", "add", "fresh", str(fresh)).code == 0
    git(dvc_project, "add", "-A")
    git(dvc_project, "commit", "-q", "-m", "move to dvlite")
    assert run_main(capsys, "push", "-r", "fresh").code == 0

    # a clone gets everything from the fresh remote, and its pipeline is up to date
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(dvc_project), str(clone)], check=True)
    assert run_main(capsys, "-C", str(clone), "pull", "-r", "fresh").code == 0
    assert (clone / "data.txt").read_bytes() == DATA_TXT
    assert {n: (clone / "images" / n).read_bytes() for n in IMAGES} == IMAGES
    assert (clone / "model.bin").read_bytes() == (dvc_project / "model.bin").read_bytes()
    _skipped_everywhere(clone)

    assert_older_commit_comes_back(capsys, dvc_project, "data.txt", DATA_TXT)


def test_bytes_come_from_dvcs_cache_when_the_workspace_lacks_them(
    dvc_project: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (dvc_project / "data.txt").unlink()
    shutil.rmtree(dvc_project / "images")
    (dvc_project / "model.bin").unlink()
    doc = _import(capsys)
    sources = {c["path"]: c["source"] for c in doc["converted"]}  # type: ignore[attr-defined]
    assert sources == {"data.txt": "DVC cache", "images": "DVC cache"}
    assert not (dvc_project / "data.txt").exists()  # the workspace is left as it was
    assert set(doc["locked"]) == STAGES  # type: ignore[arg-type]

    assert run_main(capsys, "checkout").code == 0
    assert (dvc_project / "data.txt").read_bytes() == DATA_TXT
    assert {n: (dvc_project / "images" / n).read_bytes() for n in IMAGES} == IMAGES
    _skipped_everywhere(dvc_project)


def test_a_modified_file_keeps_what_dvc_recorded(dvc_project: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (dvc_project / "images" / "a.png").write_bytes(b"edited\n")
    _import(capsys, "--force")  # the edit is ignored by git, so the tree is clean anyway
    with Repo.discover(".") as repo:
        files = {e.path: e.oid for e in manifest_of(repo, load("images.dvl")).entries}
        changed = [(e.path, e.state) for e in status(repo).entries]
    assert files["a.png"] == hash_bytes(IMAGES["a.png"])
    assert changed == [("images", "modified")]


def test_missing_bytes_stop_the_import_before_anything_is_written(
    dvc_project: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (dvc_project / "data.txt").unlink()
    shutil.rmtree(dvc_project / ".dvc" / "cache")
    result = run_main(capsys, "import-dvc")
    assert result.code == 1
    assert result.err_lines[0].startswith("error: the data of `data.txt` is neither")
    assert "hint: get it with `dvc pull`" in result.err
    assert not list(dvc_project.glob("*.dvl"))
    assert not (dvc_project / "dvlite.toml").exists()


def test_a_dirty_tree_is_refused_unless_forced(dvc_project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with (dvc_project / "params.yaml").open("a") as f:
        f.write("extra: 1\n")
    result = run_main(capsys, "import-dvc")
    assert result.code == 1
    assert result.err_lines[0] == "error: the git work tree has uncommitted changes: `params.yaml`"
    assert "`--force` imports anyway" in result.err
    assert not (dvc_project / "data.txt.dvl").exists()
    assert run_main(capsys, "import-dvc", "--force").code == 0
    assert (dvc_project / "data.txt.dvl").exists()


def test_remove_dvc_deletes_dvcs_files_but_not_its_cache(
    dvc_project: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _import(capsys, "--remove-dvc")
    assert set(doc["removed"]) == {  # type: ignore[arg-type]
        "data.txt.dvc", "images.dvc", "dvc.yaml", "dvc.lock", ".dvcignore", ".dvc/config"}
    assert not (dvc_project / "dvc.yaml").exists()
    assert (dvc_project / ".dvc" / "cache").is_dir()
    _skipped_everywhere(dvc_project)
    rerun = _import(capsys)  # nothing of DVC's left to convert, and nothing lost
    assert rerun["written"] == []
    assert load("data.txt.dvl").oid == hash_bytes(DATA_TXT)


def test_a_failure_half_way_leaves_a_state_a_second_run_finishes(
    dvc_project: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (dvc_project / "images.dvl").mkdir()  # the second pointer cannot be written
    result = run_main(capsys, "import-dvc")
    assert result.code == 1
    folder = dvc_project / "images.dvl"
    assert result.err_lines[0] == f"error: `{folder}` is a folder, not a pointer"
    assert load("data.txt.dvl").oid == hash_bytes(DATA_TXT)  # the first one is whole
    (dvc_project / "images.dvl").rmdir()
    doc = _import(capsys)
    assert {c["path"]: c["action"] for c in doc["converted"]} == {  # type: ignore[attr-defined]
        "data.txt": "unchanged", "images": "written"}
    _skipped_everywhere(dvc_project)


def test_the_summary_goes_to_stderr_and_one_remote_can_be_chosen(
    dvc_project: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_main(capsys, "import-dvc", "--remote", "storage")
    assert result.code == 0
    assert result.out == ""
    assert "converted `images` (2 files, 1.2 KiB) from workspace -> `images.dvl`" in result.err
    assert "converted remotes: storage" in result.err
    # data.txt 1, images 3 (its manifest too), prepared 3, model.bin 1, four small outs 4; but
    # prepared/data.txt is data.txt's object
    assert "verified: 11 objects hash to their pointers" in result.err
    project = tomllib.loads((dvc_project / ".dvlite/config.toml").read_text())
    assert set(project["remote"]) == {"storage"}
    assert not (dvc_project / ".dvlite/config.local.toml").exists()
