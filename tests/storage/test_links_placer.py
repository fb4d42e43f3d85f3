"""Placer: many objects put into workspace files by one command, and copy_bytes."""

from __future__ import annotations

import os
import stat
import tempfile
from typing import TYPE_CHECKING

import pytest

from dvlite.storage.links import Placer, copy_bytes
from dvlite.storage.odb import ObjectStore
from tests.storage.test_links import reflink_error

if TYPE_CHECKING:
    from pathlib import Path

    from dvlite.storage.hashing import Oid


@pytest.fixture
def odb(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def _objects(odb: ObjectStore, count: int) -> dict[Oid, bytes]:
    contents = [f"file {i}\n".encode() * (i + 1) for i in range(count)]
    return {odb.add_bytes(data): data for data in contents}


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


def test_many_files_through_one_placer(odb: ObjectStore, tmp_path: Path, tmp_dir: Path) -> None:
    objects = _objects(odb, 30)
    placer = Placer(odb, ("reflink", "copy"), tmp_dir=str(tmp_dir))
    ws = tmp_path / "ws"

    for i, (oid, data) in enumerate(objects.items()):
        dest = ws / f"d{i % 3}" / f"f{i}.txt"
        _, st = placer.place(oid, str(dest), executable=i == 0)
        assert dest.read_bytes() == data
        now = os.stat(dest)
        assert (st.st_ino, st.st_mtime_ns, st.st_size) == (now.st_ino, now.st_mtime_ns, len(data))
        assert stat.S_IMODE(now.st_mode) == (0o755 if i == 0 else 0o644)
        assert now.st_ino != os.stat(odb.path(oid)).st_ino

    assert len(_all_files(ws)) == 30, "no temp file left beside the data"
    assert os.listdir(tmp_dir) == []


def test_a_hardlink_reports_the_object_stat(odb: ObjectStore, tmp_path: Path) -> None:
    (oid, data), = _objects(odb, 1).items()
    dest = tmp_path / "ws" / "f"

    used, st = Placer(odb, ("hardlink", "copy")).place(oid, str(dest))

    assert used == "hardlink"
    assert st.st_ino == os.stat(odb.path(oid)).st_ino == os.stat(dest).st_ino
    assert dest.read_bytes() == data


def test_a_failed_reflink_is_remembered_and_reported_again(
    odb: ObjectStore, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    probe = reflink_error(ws)
    if probe is None:
        pytest.skip("this filesystem can reflink")
    placer = Placer(odb, ("reflink",))
    for i, oid in enumerate(_objects(odb, 2)):
        with pytest.raises(OSError) as exc:  # noqa: PT011 - the errno is what matters
            placer.place(oid, str(ws / f"f{i}"))
        assert exc.value.errno == probe.errno
    assert os.listdir(ws) == []


def test_temp_files_go_beside_the_file_when_tmp_dir_is_elsewhere(
    odb: ObjectStore, tmp_path: Path
) -> None:
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem")
    objects = _objects(odb, 3)
    ws = tmp_path / "ws"
    with tempfile.TemporaryDirectory(dir=shm) as other:
        placer = Placer(odb, ("copy",), tmp_dir=other)
        for i, oid in enumerate(objects):
            placer.place(oid, str(ws / f"f{i}"))
        assert os.listdir(other) == []
    assert _all_files(ws) == ["f0", "f1", "f2"]
    assert [(ws / f"f{i}").read_bytes() for i in range(3)] == list(objects.values())


@pytest.mark.parametrize("size", [0, 1, 65_537, 3 * 1024 * 1024 + 5])
def test_copy_bytes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(data)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        copy_bytes(fin.fileno(), fout.fileno(), size)
    assert dst.read_bytes() == data

