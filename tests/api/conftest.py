"""A project with history for the API and filesystem tests: files, a folder, two versions,
everything pushed to a folder remote."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest

from dvlite.fs import DvliteFileSystem
from dvlite.ops.init import remote_add
from dvlite.ops.repro import repro
from dvlite.ops.sync import Scope, push
from tests.helpers import TmpRepo

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


RAW1, RAW2 = "a,b\n1,2\n", "a,b\n1,2\n3,4\n"
M1, M2 = b"\x80model v1\x00\xff", b"\x80model v2, bigger\x00\xff"
A, B = "x,y\n5,6\n", "deep\n"

# a pipeline whose one stage writes models/model.pkl (recorded in dvlite.lock, no pointer)
TRAIN = """\
import os
os.makedirs("models", exist_ok=True)
with open("models/model.pkl", "wb") as f:
    f.write(b"model:" + open("input.txt", "rb").read())
"""
PIPELINE = f"""\
[stages.train]
cmd = "{shlex.quote(sys.executable)} train.py"
deps = ["train.py", "input.txt"]
outs = ["models/model.pkl"]
"""


@pytest.fixture
def project(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """Tag v1: data/raw.csv (RAW1), folder data/raw (a.csv, sub/b.txt), models/model.pkl
    (M1); main, one commit later: RAW2 and M2. All of it pushed to the folder remote
    `store`; the repo serves blobless clones."""
    tmp_repo.git("config", "uploadpack.allowFilter", "true")
    remote_add(tmp_repo.repo, "store", str(tmp_path / "store"), default=True)
    tmp_repo.reopen()
    tmp_repo.gen({"data": {"raw.csv": RAW1, "raw": {"a.csv": A, "sub": {"b.txt": B}}},
                  "models": {"model.pkl": M1}})
    tmp_repo.dvl_add("data/raw.csv", "data/raw", "models/model.pkl")
    tmp_repo.git_commit("v1")
    tmp_repo.git("tag", "v1")
    tmp_repo.gen({"data": {"raw.csv": RAW2}, "models": {"model.pkl": M2}})
    tmp_repo.dvl_add("data/raw.csv", "models/model.pkl")
    tmp_repo.git_commit("v2")
    push(tmp_repo.repo, scope=Scope(all_commits=True))
    return tmp_repo


@pytest.fixture
def pipeline(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """models/model.pkl is a stage output: b"model:alpha" at tag v1, b"model:beta" at main;
    both pushed to the folder remote `store`."""
    tmp_repo.git("config", "uploadpack.allowFilter", "true")
    remote_add(tmp_repo.repo, "store", str(tmp_path / "store"), default=True)
    tmp_repo.reopen()
    tmp_repo.gen({"train.py": TRAIN, "dvlite.toml": PIPELINE})
    for text, tag in (("alpha", "v1"), ("beta", "v2")):
        tmp_repo.gen({"input.txt": text})
        repro(tmp_repo.repo)
        push(tmp_repo.repo)
        tmp_repo.git_commit(tag)
        tmp_repo.git("tag", tag)
    return tmp_repo


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where temporary folders (clones of other repos) go during the test, to look at."""
    path = tmp_path / "temp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture(autouse=True)
def fresh_filesystems() -> Iterator[None]:
    """fsspec keeps filesystem instances across tests: close them and forget them."""
    yield
    for fs in list(DvliteFileSystem._cache.values()):
        fs.close()
    DvliteFileSystem.clear_instance_cache()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside any repo, as the current folder."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmpRepo]:
    """A second dvlite project (one tracked file, `own.txt`), as the current folder."""
    path = tmp_path / "consumer"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    repo = TmpRepo.create(path)
    repo.gen({"own.txt": "mine\n"})
    repo.dvl_add("own.txt")
    monkeypatch.chdir(path)
    yield repo
    repo.close()
