"""Stage outputs recorded in dvlite.lock are tracked data: status, diff, ls, checkout, push,
pull and add treat them like data tracked by a pointer."""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PathError, PipelineError
from dvlite.ops.add import add, commit
from dvlite.ops.checkout import checkout
from dvlite.ops.diff import diff
from dvlite.ops.init import remote_add
from dvlite.ops.ls import ls
from dvlite.ops.repro import repro
from dvlite.ops.status import status
from dvlite.ops.sync import pull, push
from dvlite.pipeline import lockfile
from dvlite.repo import Repo
from dvlite.workspace import find_tracked, tracked_at
from tests.ops.support import object_path, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

# One stage writes a model file and a folder of features from the words of the input.
BUILD = """\
import os
text = open("input.txt").read()
os.makedirs("features", exist_ok=True)
for i, word in enumerate(text.split()):
    with open(f"features/{i}.txt", "w") as f:
        f.write(word)
with open("model.bin", "wb") as f:
    f.write(b"model:" + text.encode())
with open("log.txt", "w") as f:
    f.write("done")
"""

PIPELINE = f"""\
[stages.build]
cmd = "{shlex.quote(sys.executable)} build.py"
deps = ["build.py", "input.txt"]
outs = ["model.bin", "features", {{path = "log.txt", cache = false}}]
"""


@pytest.fixture
def built(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """Two commits: "v1" built from "alpha beta", then HEAD built from "gamma delta epsilon";
    both pushed to a folder remote."""
    tmp_repo.gen({"build.py": BUILD, "dvlite.toml": PIPELINE})
    remote_add(tmp_repo.repo, "store", str(tmp_path / "store"), default=True)
    tmp_repo.reopen()
    for text, tag in (("alpha beta", "v1"), ("gamma delta epsilon", "v2")):
        (tmp_repo.root / "input.txt").write_text(text)
        repro(tmp_repo.repo)
        push(tmp_repo.repo)
        tmp_repo.git("add", "-A")
        tmp_repo.git("commit", "-qm", tag)
        tmp_repo.git("tag", tag)
    return tmp_repo


def test_outs_are_tracked_but_uncached_outs_and_pointers_only_mode_are_not(
        built: TmpRepo) -> None:
    tracked = find_tracked(built.repo)
    assert [(t.path, t.stage, t.pointer.kind) for t in tracked] == [
        ("features", "build", "dir"), ("model.bin", "build", "file")]
    assert tracked[0].pointer.files == 3
    assert tracked[1].pointer.oid == xxh(b"model:gamma delta epsilon")
    assert find_tracked(built.repo, outs=False) == []
    old = tracked_at(built.repo, "v1")
    assert old[1].pointer.oid == xxh(b"model:alpha beta")
    assert old[0].pointer.files == 2
    assert tracked_at(built.repo, "v1", outs=False) == []


def test_status_reports_changed_and_deleted_outs(built: TmpRepo) -> None:
    assert status(built.repo).entries == ()
    (built.root / "model.bin").write_bytes(b"edited")
    (built.root / "features" / "0.txt").unlink()
    entries = {e.path: e for e in status(built.repo).entries}
    assert entries["model.bin"].state == "modified"
    assert entries["features"].deleted == ("0.txt",)
    (built.root / "model.bin").unlink()
    assert {e.path: e.state for e in status(built.repo).entries}["model.bin"] == "deleted"


def test_a_target_inside_a_folder_out_resolves(built: TmpRepo) -> None:
    (built.root / "features" / "1.txt").write_text("changed")
    [entry] = status(built.repo, [str(built.root / "features" / "1.txt")]).entries
    assert entry.path == "features/1.txt"


def test_checkout_brings_back_an_older_commits_outputs(built: TmpRepo) -> None:
    built.git("checkout", "-q", "v1")
    result = checkout(built.repo)
    assert not result.missing
    assert (built.root / "model.bin").read_bytes() == b"model:alpha beta"
    assert sorted(p.name for p in (built.root / "features").iterdir()) == ["0.txt", "1.txt"]
    assert (built.root / "features" / "1.txt").read_text() == "beta"


def test_diff_and_ls_include_outs(built: TmpRepo) -> None:
    changes = {(c.path, c.change) for c in diff(built.repo, "v1", "v2")}
    assert ("model.bin", "modified") in changes
    assert ("features/2.txt", "added") in changes
    listed = {e.path: e for e in ls(built.repo)}
    assert listed["model.bin"].oid == xxh(b"model:gamma delta epsilon")
    assert "log.txt" not in listed  # not cached, so not tracked data
    assert {e.path for e in ls(built.repo, rev="v1")} >= {"model.bin", "features"}


def test_a_clone_pulls_the_outputs_of_any_commit(built: TmpRepo, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(built.root), str(clone)], check=True)
    with Repo.discover(str(clone)) as repo:
        pull(repo)
        assert (clone / "model.bin").read_bytes() == b"model:gamma delta epsilon"
        assert (clone / "features" / "2.txt").read_text() == "epsilon"
        assert (clone / "log.txt").read_text() == "done"  # not cached: git holds it
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", "v1"], check=True)
        pull(repo)
        assert (clone / "model.bin").read_bytes() == b"model:alpha beta"
        assert status(repo).entries == ()


def test_push_sends_the_outputs(built: TmpRepo, tmp_path: Path) -> None:
    store = tmp_path / "store"
    model = xxh(b"model:gamma delta epsilon")
    assert (store / model[:2] / model[2:]).read_bytes() == b"model:gamma delta epsilon"
    word = xxh(b"alpha")
    assert (store / word[:2] / word[2:]).read_bytes() == b"alpha"


@pytest.mark.parametrize(("path", "message"), [
    ("model.bin", r"`model\.bin` is an output of stage `build` in dvlite\.lock"),
    ("features/0.txt", r"`features/0\.txt` is inside an output of stage `build`"),
])
def test_add_refuses_a_stage_output(built: TmpRepo, path: str, message: str) -> None:
    with pytest.raises(PathError, match=message) as info:
        add(built.repo, [str(built.root / path)])
    assert "dvlite repro build" in (info.value.hint or "")
    assert not (built.root / f"{path}.dvl").exists()


def test_add_refuses_a_folder_holding_an_output(built: TmpRepo) -> None:
    (built.root / "sub").mkdir()
    (built.root / "sub" / "x").write_text("x")
    built.gen({"dvlite.toml": PIPELINE.replace('"features"', '"sub/features"')})
    (built.root / "features").rename(built.root / "sub" / "features")
    repro(built.repo)
    with pytest.raises(PathError, match=r"`sub` holds tracked data `sub/features` \(stage"):
        add(built.repo, [str(built.root / "sub")])


def test_commit_of_an_output_records_its_whole_stage(built: TmpRepo) -> None:
    (built.root / "model.bin").write_bytes(b"tuned by hand")
    (built.root / "build.py").write_text(BUILD + "# a comment changes no output\n")
    result = commit(built.repo, [str(built.root / "model.bin")])
    assert result.stages == ("build",)
    assert result.stored == ()
    entry = lockfile.load(str(built.root / "dvlite.lock")).stages["build"]
    assert entry.outs["model.bin"].oid == xxh(b"tuned by hand")
    assert entry.deps["build.py"] == xxh((BUILD + "# a comment changes no output\n").encode())
    assert (built.root / "model.bin").read_bytes() == b"tuned by hand"
    assert object_path(built, xxh(b"tuned by hand")).read_bytes() == b"tuned by hand"
    assert status(built.repo).entries == ()
    assert [r.action for r in repro(built.repo).stages] == ["skipped"]


def test_commit_without_targets_records_only_changed_stages(built: TmpRepo) -> None:
    before = (built.root / "dvlite.lock").read_bytes()
    assert commit(built.repo).stages == ()
    assert (built.root / "dvlite.lock").read_bytes() == before
    (built.root / "features" / "0.txt").write_text("edited")
    assert commit(built.repo).stages == ("build",)
    assert lockfile.load(str(built.root / "dvlite.lock")).stages["build"].outs[
        "features"].oid != lockfile.decode(before, source="old").stages["build"].outs[
        "features"].oid


def test_commit_of_a_missing_output_says_to_run_the_stage(built: TmpRepo) -> None:
    (built.root / "log.txt").unlink()
    with pytest.raises(PipelineError, match=r"cannot commit stage `build`: its out `log\.txt`"):
        commit(built.repo, [str(built.root / "model.bin")])
