"""`dvlite import-lfs` on a clone of a real git-lfs repo, then used with dvlite alone."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from dvlite.pointer import load
from dvlite.storage.hashing import hash_bytes
from tests.cli.support import run_main, snapshot
from tests.helpers import git
from tests.migrate.support import assert_older_commit_comes_back

if TYPE_CHECKING:
    from pathlib import Path

    from tests.migrate.conftest import Run

pytestmark = pytest.mark.slow  # real git-lfs

A_BIN = bytes(range(256)) * 40
C_BIN = b"\x00second binary\xff" * 30
WEIGHTS = b"model weights v1\n"
ATTRIBUTES = ("*.bin filter=lfs diff=lfs merge=lfs -text\n"
              "models/** filter=lfs diff=lfs merge=lfs -text\n")


@pytest.fixture
def lfs_clone(git_lfs: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone, without LFS content (GIT_LFS_SKIP_SMUDGE), of a repo whose `*.bin` and
    `models/**` files git-lfs tracks; as the current folder."""
    origin, work, clone = tmp_path / "origin.git", tmp_path / "work", tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / ".gitattributes").write_text(ATTRIBUTES)  # what `git lfs track` writes
    assert "*.bin" in git_lfs(work, "track")
    (work / "sub").mkdir()
    (work / "models").mkdir()
    (work / "a.bin").write_bytes(A_BIN)
    (work / "sub" / "c.bin").write_bytes(C_BIN)
    (work / "models" / "w.pt").write_bytes(WEIGHTS)
    (work / "readme.txt").write_text("plain git\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "lfs")
    git(work, "remote", "add", "origin", origin.as_uri())  # git-lfs's file:// transfer
    git(work, "push", "-q", "origin", "main")
    subprocess.run(["git", "clone", "-q", origin.as_uri(), str(clone)], check=True,
                   env={**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"})
    assert (clone / "a.bin").read_bytes().startswith(b"version https://git-lfs")
    assert (clone / ".gitattributes").read_text() == ATTRIBUTES
    monkeypatch.chdir(clone)
    return clone


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    result = run_main(capsys, "import-lfs", "--json", *args)
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def test_lfs_files_become_dvlite_data(lfs_clone: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = _import(capsys, "*.bin")
    assert {c["path"]: c["action"] for c in doc["converted"]} == {  # type: ignore[attr-defined]
        "a.bin": "written", "sub/c.bin": "written"}
    assert doc["verified_objects"] == 2
    assert doc["unindexed"] == ["a.bin", "sub/c.bin"]
    assert load("a.bin.dvl").oid == hash_bytes(A_BIN)
    assert load("sub/c.bin.dvl").oid == hash_bytes(C_BIN)
    assert (lfs_clone / "a.bin").read_bytes() == A_BIN  # the content, through git lfs pull
    assert (lfs_clone / "sub" / "c.bin").read_bytes() == C_BIN
    index = git(lfs_clone, "ls-files").split()
    assert "a.bin" not in index
    assert "sub/c.bin" not in index
    assert "models/w.pt" in index
    assert (lfs_clone / ".gitattributes").read_text() == (
        "models/** filter=lfs diff=lfs merge=lfs -text\n")
    assert "/a.bin" in (lfs_clone / ".gitignore").read_text().splitlines()
    assert (lfs_clone / "sub" / ".gitignore").read_text().splitlines() == ["/c.bin"]

    before = snapshot(lfs_clone, skip=(".dvlite/tmp", ".git"))
    again = _import(capsys, "*.bin")  # not refused: the tree's changes are the import's
    assert again["converted"] == []
    assert again["written"] == []
    assert snapshot(lfs_clone, skip=(".dvlite/tmp", ".git")) == before


def test_day_to_day_use_after_the_import(lfs_clone: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _import(capsys, "*.bin", "models/**")
    assert not (lfs_clone / ".gitattributes").exists()  # nothing left in it
    assert run_main(capsys, "remote", "add", "-d", "store", str(tmp_path / "store")).code == 0
    git(lfs_clone, "add", "-A")
    git(lfs_clone, "commit", "-q", "-m", "move to dvlite")
    assert run_main(capsys, "push").code == 0

    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(lfs_clone), str(other)], check=True)
    assert run_main(capsys, "-C", str(other), "pull").code == 0
    assert (other / "a.bin").read_bytes() == A_BIN
    assert (other / "models" / "w.pt").read_bytes() == WEIGHTS
    assert_older_commit_comes_back(capsys, lfs_clone, "a.bin", A_BIN)


def test_dry_run_writes_nothing(lfs_clone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(lfs_clone, skip=(".git",)), git(lfs_clone, "ls-files", "-s")
    doc = _import(capsys, "--dry-run", "models/**")
    assert [(c["path"], c["size"]) for c in doc["converted"]] == [  # type: ignore[attr-defined]
        ("models/w.pt", len(WEIGHTS))]
    # git-lfs keeps temp files of its own in .git/lfs: the work tree and the index are as they were
    assert (snapshot(lfs_clone, skip=(".git",)), git(lfs_clone, "ls-files", "-s")) == before


def test_a_dirty_tree_is_refused(lfs_clone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (lfs_clone / "readme.txt").write_text("edited\n")
    result = run_main(capsys, "import-lfs", "*.bin")
    assert result.code == 1
    assert result.err_lines[0] == "error: the git work tree has uncommitted changes: `readme.txt`"
    assert "hint: commit or stash them first" in result.err
    assert "a.bin" in git(lfs_clone, "ls-files").split()
    assert not (lfs_clone / "a.bin.dvl").exists()
