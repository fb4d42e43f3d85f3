"""The dvlite:// fsspec filesystem: open, ls, info, walk, find at a revision; read-only;
found by fsspec (and pandas) through the installed entry point."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import fsspec
import pytest

from dvlite.errors import CorruptObjectError, PathError
from dvlite.fs import DvliteFileSystem, NotTrackedError, ReadOnlyError
from tests.api.conftest import M1, RAW1, RAW2, A, B
from tests.ops.support import corrupt_object, xxh

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import TmpRepo


def test_the_protocol_is_registered_by_the_entry_point(project: TmpRepo) -> None:
    assert fsspec.get_filesystem_class("dvlite") is DvliteFileSystem
    # a fresh interpreter that never imported dvlite: fsspec finds it through the installed
    # package's `fsspec.specs` entry point
    code = ("import fsspec\n"
            "with fsspec.open('dvlite://data/raw.csv', rev='v1') as f:\n"
            "    print(f.read().decode(), end='')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout == RAW1


def test_fsspec_open_reads_a_revision(project: TmpRepo) -> None:
    f = fsspec.open("dvlite://data/raw.csv", rev="v1").open()
    try:
        assert f.read() == RAW1.encode()
    finally:
        f.close()
    with fsspec.open("dvlite://data/raw/sub/b.txt", "r", rev="v1") as f:
        assert f.read() == B
    with fsspec.open("dvlite://models/model.pkl", repo=".", rev="HEAD~1") as f:
        assert f.read() == M1


def test_listing_a_revision(project: TmpRepo) -> None:
    fs = DvliteFileSystem(rev="v1")

    assert fs.ls("", detail=False) == ["data", "models"]
    assert fs.ls("dvlite://data", detail=False) == ["data/raw", "data/raw.csv"]
    assert fs.ls("data/raw/", detail=False) == ["data/raw/a.csv", "data/raw/sub"]
    assert fs.ls("data/raw.csv", detail=False) == ["data/raw.csv"]
    assert fs.find("") == ["data/raw.csv", "data/raw/a.csv", "data/raw/sub/b.txt",
                           "models/model.pkl"]
    assert list(fs.walk("data")) == [("data", ["raw"], ["raw.csv"]),
                                     ("data/raw", ["sub"], ["a.csv"]),
                                     ("data/raw/sub", [], ["b.txt"])]
    assert fs.du("data/raw") == len(A) + len(B)
    assert fs.glob("data/**/*.csv") == ["data/raw.csv", "data/raw/a.csv"]


def test_get_copies_to_a_local_folder(project: TmpRepo, tmp_path: Path) -> None:
    DvliteFileSystem(rev="v1").get("data/raw", str(tmp_path / "copy"), recursive=True)

    assert (tmp_path / "copy" / "a.csv").read_text() == A
    assert (tmp_path / "copy" / "sub" / "b.txt").read_text() == B


def test_info_of_files_and_folders(project: TmpRepo) -> None:
    fs = DvliteFileSystem(rev="v1")

    assert fs.info("data/raw.csv") == {"name": "data/raw.csv", "type": "file",
                                       "size": len(RAW1), "oid": xxh(RAW1.encode())}
    assert fs.info("data/raw/a.csv") == {"name": "data/raw/a.csv", "type": "file",
                                         "size": len(A), "oid": xxh(A.encode()),
                                         "executable": False}
    tracked_folder = fs.info("data/raw")
    assert (tracked_folder["type"], tracked_folder["size"]) == ("directory", len(A) + len(B))
    assert fs.info("data/raw/sub") == {"name": "data/raw/sub", "type": "directory", "size": 0}
    assert fs.info("data")["type"] == fs.info("")["type"] == "directory"
    assert fs.isdir("data/raw/sub")
    assert fs.isfile("data/raw/sub/b.txt")
    assert fs.exists("models/model.pkl")
    assert not fs.isdir("data/raw.csv")


@pytest.mark.parametrize("path", ["nope", "data/nope.csv", "data/raw/nope", "data/raw/sub/x/y",
                                  "models/model.pkl/inside", "../data", "data/../data/raw.csv",
                                  ".dvlite/config.toml", ".git"])
def test_what_is_not_tracked_is_not_there(project: TmpRepo, path: str) -> None:
    fs = DvliteFileSystem(rev="v1")

    assert not fs.exists(path)
    assert not fs.isdir(path)
    with pytest.raises(NotTrackedError) as info:
        fs.info(path)
    assert isinstance(info.value, PathError)
    assert isinstance(info.value, FileNotFoundError)
    assert ".." in path or path.rpartition("/")[2] in info.value.message
    with pytest.raises(FileNotFoundError):
        fs.ls(path)
    with pytest.raises(FileNotFoundError):
        fs.cat(path)


def test_opening_a_folder(project: TmpRepo) -> None:
    with pytest.raises(IsADirectoryError, match=r"`data/raw/sub` is a folder"):
        DvliteFileSystem().open("data/raw/sub")


def test_writes_are_refused(project: TmpRepo, tmp_path: Path) -> None:
    fs = DvliteFileSystem()
    (tmp_path / "local.txt").write_text("x")
    writes: list[Callable[[], Any]] = [
        lambda: fs.open("data/new.csv", "wb"),
        lambda: fs.open("data/raw.csv", "w"),
        lambda: fs.open("data/raw.csv", "ab"),
        lambda: fs.pipe_file("data/raw.csv", b"new"),
        lambda: fs.put_file(str(tmp_path / "local.txt"), "data/local.txt"),
        lambda: fs.rm("data/raw.csv"),
        lambda: fs.mv("data/raw.csv", "data/moved.csv"),
        lambda: fs.mkdir("more"),
        lambda: fs.touch("data/raw.csv"),
    ]
    for write in writes:
        with pytest.raises(ReadOnlyError, match="read-only") as info:
            write()
        assert isinstance(info.value, PermissionError)
    assert fs.cat("data/raw.csv") == RAW2.encode()


def test_no_rev_follows_the_workspace_pointers(project: TmpRepo) -> None:
    fs = fsspec.filesystem("dvlite")
    assert fs.cat("data/raw.csv") == RAW2.encode()
    assert not fs.isdir(".dvlite")  # dvlite's own folder is no data (a PathError inside)

    project.gen({"data": {"raw.csv": "newer\n"}, "extra.bin": b"more"})
    project.dvl_add("data/raw.csv", "extra.bin")

    assert fsspec.filesystem("dvlite") is fs  # fsspec's cached instance
    assert fs.cat("data/raw.csv") == b"newer\n"
    assert fs.ls("", detail=False) == ["data", "extra.bin", "models"]


def test_the_same_instance_follows_the_current_folder_to_another_project(
        project: TmpRepo, consumer: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)
    fs = fsspec.filesystem("dvlite")
    assert fs.ls("", detail=False) == ["data", "models"]

    monkeypatch.chdir(consumer.root)

    assert fsspec.filesystem("dvlite") is fs
    assert fs.ls("", detail=False) == ["own.txt"]


def test_another_repo_and_its_clone_go_with_close(project: TmpRepo, elsewhere: Path,
                                                  temp_root: Path) -> None:
    fs = DvliteFileSystem(repo=str(project.root), rev="v1")

    assert fs.find("data") == ["data/raw.csv", "data/raw/a.csv", "data/raw/sub/b.txt"]
    assert fs.cat("data/raw/sub/b.txt") == B.encode()
    assert len(list(temp_root.iterdir())) == 1  # the clone and its cache, kept for reuse
    fs.close()
    assert list(temp_root.iterdir()) == []
    assert fs.cat("models/model.pkl") == M1  # opened again on demand


def test_stage_outputs_are_files_too(pipeline: TmpRepo) -> None:
    fs = DvliteFileSystem(rev="v1")

    assert "models/model.pkl" in fs.find("")
    assert fs.cat("models/model.pkl") == b"model:alpha"


def test_a_corrupt_cache_object_is_not_served(project: TmpRepo) -> None:
    corrupt_object(project, xxh(A.encode()))

    with pytest.raises(CorruptObjectError, match=r"data/raw/a\.csv"):
        DvliteFileSystem().cat("data/raw/a.csv")


def test_pandas_reads_a_revision(project: TmpRepo) -> None:
    pd = pytest.importorskip("pandas")

    old = pd.read_csv("dvlite://data/raw.csv", storage_options={"rev": "v1"})
    now = pd.read_csv("dvlite://data/raw.csv")

    assert old.to_dict("list") == {"a": [1], "b": [2]}
    assert now.to_dict("list") == {"a": [1, 3], "b": [2, 4]}
