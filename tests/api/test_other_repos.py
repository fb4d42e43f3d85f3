"""Reading from another git repo (a path or URL): a blobless clone of the one revision, its
objects from its remote into a temporary cache, nothing of either left behind."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

import dvlite.api
from dvlite.errors import GitError, NotARepoError, PathError
from tests.api.conftest import M1, RAW1, RAW2, B
from tests.ops.support import cache_oids, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo


def test_another_repo_by_path_from_outside_any_project(
        project: TmpRepo, elsewhere: Path, temp_root: Path) -> None:
    source = str(project.root)

    assert dvlite.api.read("data/raw.csv", repo=source) == RAW2  # its HEAD
    assert dvlite.api.read("models/model.pkl", repo=source, rev="v1", remote="store",
                           mode="rb") == M1
    assert dvlite.api.read("data/raw/sub/b.txt", repo=source, rev="HEAD~1") == B
    assert list(temp_root.iterdir()) == []  # each clone and its cache went with the read


def test_a_relative_path_is_relative_to_the_current_folder(
        project: TmpRepo, elsewhere: Path, temp_root: Path) -> None:
    assert dvlite.api.read("data/raw.csv", repo="../repo", rev="v1") == RAW1


def test_another_repo_by_url_from_inside_another_project(
        project: TmpRepo, consumer: TmpRepo, temp_root: Path) -> None:
    with dvlite.api.open("models/model.pkl", rev="HEAD~1", repo=project.root.as_uri(),
                         mode="rb") as f:
        assert list(temp_root.iterdir()) == []  # gone already: the open file keeps its bytes
        assert f.read() == M1
    assert cache_oids(consumer) == {xxh(b"mine\n")}  # only its own `own.txt`
    assert dvlite.api.read("own.txt") == "mine\n"  # repo=None is still the project here


def test_another_repo_is_read_at_a_commit_never_its_workspace(
        project: TmpRepo, consumer: TmpRepo) -> None:
    project.gen({"data": {"raw.csv": "not committed\n"}})
    project.dvl_add("data/raw.csv")

    assert dvlite.api.read("data/raw.csv", repo=str(project.root)) == RAW2


def test_a_path_inside_the_current_project_means_the_project_itself(
        project: TmpRepo, temp_root: Path) -> None:
    project.gen({"data": {"raw.csv": "not committed\n"}})
    project.dvl_add("data/raw.csv")

    assert dvlite.api.read("data/raw.csv", repo=str(project.root / "data")) == "not committed\n"
    assert list(temp_root.iterdir()) == []  # no clone


def test_stage_outputs_of_another_repo(pipeline: TmpRepo, elsewhere: Path) -> None:
    source = str(pipeline.root)

    assert dvlite.api.read("models/model.pkl", repo=source, rev="v1", mode="rb") == b"model:alpha"
    assert dvlite.api.read("models/model.pkl", repo=source, mode="rb") == b"model:beta"


def test_errors_name_the_repo_and_leave_nothing(
        project: TmpRepo, elsewhere: Path, temp_root: Path) -> None:
    source = str(project.root)
    plain = elsewhere / "plain"
    plain.mkdir()
    subprocess.run(["git", "init", "-q", str(plain)], check=True)
    (plain / "f.txt").write_text("x")
    subprocess.run(["git", "-C", str(plain), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(plain), "commit", "-qm", "one"], check=True)

    with pytest.raises(PathError, match=rf"`nope\.csv` is not tracked by dvlite in `{source}`"):
        dvlite.api.read("nope.csv", repo=source)
    with pytest.raises(GitError, match="unknown git revision `v9`"):
        dvlite.api.read("data/raw.csv", repo=source, rev="v9")
    with pytest.raises(NotARepoError, match="not a dvlite project"):
        dvlite.api.read("f.txt", repo=str(plain))
    with pytest.raises(NotARepoError, match="not inside a dvlite project"):
        dvlite.api.read("data/raw.csv")  # no repo, and none here
    assert list(temp_root.iterdir()) == []
