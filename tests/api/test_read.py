"""dvlite.api.read and open: any revision, the workspace, files inside folders, text and
bytes, objects from the cache or the remote, always verified."""

from __future__ import annotations

import io
import shutil
import tracemalloc
from typing import TYPE_CHECKING

import pytest

import dvlite.api
from dvlite.errors import ConfigError, CorruptObjectError, TransferError, UsageError
from tests.api.conftest import M1, M2, RAW1, RAW2, A, B
from tests.ops.support import cache_oids, corrupt_object, read_pointer, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo


def test_read_at_head_and_older_revisions(project: TmpRepo) -> None:
    assert dvlite.api.read("data/raw.csv", rev="HEAD") == RAW2
    assert dvlite.api.read("data/raw.csv", rev="v1") == RAW1
    assert dvlite.api.read("data/raw.csv", rev="HEAD~1", mode="r") == RAW1
    assert dvlite.api.read("models/model.pkl", rev="v1", repo=".", mode="rb") == M1
    sha = project.git("rev-parse", "v1").strip()
    assert dvlite.api.read("models/model.pkl", rev=sha, mode="rb") == M1


def test_no_rev_reads_what_the_workspace_records(project: TmpRepo) -> None:
    project.gen({"data": {"raw.csv": "added, not committed\n"}})
    project.dvl_add("data/raw.csv")
    project.gen({"models": {"model.pkl": b"edited, not added"}})

    assert dvlite.api.read("data/raw.csv") == "added, not committed\n"
    assert dvlite.api.read("data/raw.csv", rev="HEAD") == RAW2
    # the pointer's version, from the cache: not the edited file in the workspace
    assert dvlite.api.read("models/model.pkl", mode="rb") == M2


def test_paths_are_relative_to_the_top_folder_from_any_folder(
        project: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root / "data" / "raw" / "sub")

    assert dvlite.api.read("./data/raw.csv", rev="v1") == RAW1


def test_a_file_inside_a_tracked_folder(project: TmpRepo) -> None:
    assert dvlite.api.read("data/raw/sub/b.txt", rev="v1") == B
    with dvlite.api.open("data/raw/a.csv", rev="HEAD~1") as f:
        assert f.readline() == "x,y\n"
        assert f.read() == A.splitlines(keepends=True)[1]


def test_text_by_default_bytes_with_rb(project: TmpRepo) -> None:
    with dvlite.api.open("data/raw.csv") as text:
        assert isinstance(text, io.TextIOWrapper)
        assert text.read() == RAW2
    with dvlite.api.open("models/model.pkl", mode="rb") as binary:
        assert binary.read(1) == M2[:1]
        assert binary.read() == M2[1:]
    assert dvlite.api.read("models/model.pkl", encoding="latin-1") == M2.decode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        dvlite.api.read("models/model.pkl")  # UTF-8 unless told otherwise


@pytest.mark.parametrize(("mode", "encoding"), [("w", None), ("a", None), ("r+", None),
                                                ("rb", "utf-8")])
def test_only_reading_modes(project: TmpRepo, mode: str, encoding: str | None) -> None:
    with pytest.raises(UsageError) as info:
        dvlite.api.open("data/raw.csv", mode=mode, encoding=encoding)  # type: ignore[call-overload]
    assert info.value.hint


def test_open_streams_the_file_instead_of_loading_it(project: TmpRepo) -> None:
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB
    project.gen({"big.bin": big})
    project.dvl_add("big.bin")
    del big

    tracemalloc.start()
    try:
        with dvlite.api.open("big.bin", mode="rb") as f:
            assert f.read(4) == b"\0\1\2\3"
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # verified in chunks; the reader is the cache file itself


def test_objects_missing_from_the_cache_come_from_the_remote(project: TmpRepo) -> None:
    folder_oid = str(read_pointer(project.root / "data" / "raw.dvl")["oid"])
    shutil.rmtree(project.repo.cache_dir)

    assert dvlite.api.read("data/raw/sub/b.txt", rev="v1") == B  # the manifest, then the file
    assert dvlite.api.read("models/model.pkl", rev="v1", remote="store", mode="rb") == M1
    assert cache_oids(project) == {folder_oid, xxh(B.encode()), xxh(M1)}  # only what was read


def test_a_missing_object_and_no_remote(project: TmpRepo) -> None:
    shutil.rmtree(project.repo.cache_dir)
    (project.root / ".dvlite" / "config.toml").write_text("")  # no remote at all

    with pytest.raises(ConfigError, match=r"`data/raw\.csv` is not in the cache") as info:
        dvlite.api.read("data/raw.csv")
    assert info.value.hint
    with pytest.raises(ConfigError, match="remote `nope` is not configured"):
        dvlite.api.read("data/raw.csv", remote="nope")


def test_a_corrupt_object_on_the_remote_is_not_served(project: TmpRepo, tmp_path: Path,
                                                      no_backoff: None) -> None:
    shutil.rmtree(project.repo.cache_dir)
    obj = tmp_path / "store" / xxh(M1)[:2] / xxh(M1)[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")

    with pytest.raises(TransferError, match=r"models/model\.pkl"):
        dvlite.api.read("models/model.pkl", rev="v1", mode="rb")
    assert cache_oids(project) == set()


def test_a_corrupt_cache_object_raises_before_any_byte(project: TmpRepo) -> None:
    corrupt_object(project, xxh(RAW2.encode()))

    with pytest.raises(CorruptObjectError, match=r"`data/raw\.csv`") as info:
        dvlite.api.open("data/raw.csv")
    assert "fsck" in (info.value.hint or "")
    assert dvlite.api.read("data/raw.csv", rev="v1") == RAW1  # other objects still read


def test_stage_outputs_read_like_tracked_files(pipeline: TmpRepo) -> None:
    assert dvlite.api.read("models/model.pkl", rev="v1", mode="rb") == b"model:alpha"
    assert dvlite.api.read("models/model.pkl", mode="rb") == b"model:beta"
