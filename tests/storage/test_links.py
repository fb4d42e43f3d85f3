"""Putting cached objects into the workspace with each link strategy, and unprotect."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import MissingObjectError
from dvlite.fsutil import reflink
from dvlite.storage.hashing import hash_bytes
from dvlite.storage.links import (
    DEFAULT_STRATEGIES,
    STRATEGIES,
    is_linked,
    materialize,
    unprotect,
)
from dvlite.storage.odb import ObjectStore

if TYPE_CHECKING:
    from pathlib import Path

    from dvlite.storage.hashing import Oid

DATA = b"cached bytes\n" * 100


@pytest.fixture
def odb(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


@pytest.fixture
def oid(odb: ObjectStore) -> Oid:
    return odb.add_bytes(DATA)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def reflink_error(folder: Path) -> OSError | None:
    """What reflinking fails with in ``folder``, or None where it works."""
    src, dst = folder / ".probe-src", folder / ".probe-dst"
    src.write_bytes(b"probe")
    try:
        reflink(str(src), str(dst))
    except OSError as exc:
        return exc
    finally:
        src.unlink()
    dst.unlink()
    return None


def reflink_supported(folder: Path) -> bool:
    return reflink_error(folder) is None


def assert_cache_intact(odb: ObjectStore, oid: Oid) -> None:
    assert odb.read_verified(oid) == DATA
    assert mode_of(odb.path(oid)) == 0o444
    assert not os.path.islink(odb.path(oid))


def leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def test_strategy_names() -> None:
    assert STRATEGIES == ("reflink", "hardlink", "symlink", "copy")
    assert DEFAULT_STRATEGIES == ("reflink", "copy")


def test_copy_is_a_private_writable_file(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "data.bin"
    assert materialize(odb, oid, str(dest), ("copy",)) == "copy"
    assert dest.read_bytes() == DATA
    st = os.lstat(dest)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert st.st_ino != os.stat(odb.path(oid)).st_ino
    assert st.st_nlink == 1
    assert is_linked(str(dest)) is False
    with open(dest, "ab") as f:  # editing the copy ...
        f.write(b"edit")
    assert_cache_intact(odb, oid)  # ... leaves the cache alone
    assert leftovers(ws) == []


def test_copy_honours_the_executable_flag(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    run = ws / "run.sh"
    plain = ws / "plain.txt"
    assert materialize(odb, oid, str(run), ("copy",), executable=True) == "copy"
    assert materialize(odb, oid, str(plain), ("copy",), executable=False) == "copy"
    assert mode_of(run) == 0o755
    assert mode_of(plain) == 0o644
    assert_cache_intact(odb, oid)


def test_copy_mode_ignores_the_umask(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    old = os.umask(0o077)
    try:
        materialize(odb, oid, str(ws / "f"), ("copy",), executable=True)
    finally:
        os.umask(old)
    assert mode_of(ws / "f") == 0o755


def test_hardlink_shares_the_read_only_cache_file(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "data.bin"
    assert materialize(odb, oid, str(dest), ("hardlink", "copy")) == "hardlink"
    st, cached = os.lstat(dest), os.stat(odb.path(oid))
    assert (st.st_ino, st.st_dev) == (cached.st_ino, cached.st_dev)
    assert st.st_nlink == 2
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert dest.read_bytes() == DATA
    assert is_linked(str(dest)) is True
    assert leftovers(ws) == []


@pytest.mark.parametrize(
    "strategies", [("hardlink",), ("symlink",), ("symlink", "hardlink"), ("hardlink", "copy")]
)
def test_executable_files_are_never_linked(
    odb: ObjectStore, oid: Oid, ws: Path, strategies: tuple[str, ...]
) -> None:
    # a link would share the cache object's read-only, non-executable mode
    dest = ws / "run.sh"
    assert materialize(odb, oid, str(dest), strategies, executable=True) == "copy"
    assert not os.path.islink(dest)
    assert os.stat(dest).st_ino != os.stat(odb.path(oid)).st_ino
    assert mode_of(dest) == 0o755
    assert_cache_intact(odb, oid)


def test_hardlink_over_the_same_hardlink(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "data.bin"
    materialize(odb, oid, str(dest), ("hardlink",))
    assert materialize(odb, oid, str(dest), ("hardlink",)) == "hardlink"
    assert os.stat(dest).st_ino == os.stat(odb.path(oid)).st_ino
    assert os.stat(odb.path(oid)).st_nlink == 2  # no third name left behind
    assert sorted(os.listdir(ws)) == ["data.bin"]


def test_symlink_points_at_the_cache_object(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "sub" / "data.bin"
    assert materialize(odb, oid, str(dest), ("symlink",)) == "symlink"
    assert os.path.islink(dest)
    assert os.readlink(dest) == odb.path(oid)
    assert os.path.realpath(dest) == os.path.realpath(odb.path(oid))
    assert dest.read_bytes() == DATA
    assert mode_of(dest) == 0o444  # the target stays read-only
    assert is_linked(str(dest)) is True


def test_reflink_falls_through_when_unsupported(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "data.bin"
    used = materialize(odb, oid, str(dest), ("reflink", "copy"))
    if reflink_supported(ws):
        assert used == "reflink"
    else:
        assert used == "copy"
    assert dest.read_bytes() == DATA
    assert mode_of(dest) == 0o644  # private and writable either way
    assert os.stat(dest).st_ino != os.stat(odb.path(oid)).st_ino
    assert leftovers(ws) == []
    assert_cache_intact(odb, oid)


def test_reflink_then_hardlink(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    if reflink_supported(ws):
        pytest.skip("this filesystem can reflink")
    dest = ws / "data.bin"
    assert materialize(odb, oid, str(dest), ("reflink", "hardlink", "copy")) == "hardlink"
    assert os.stat(dest).st_ino == os.stat(odb.path(oid)).st_ino


def test_only_unsupported_strategies_raise_the_last_error(
    odb: ObjectStore, oid: Oid, ws: Path
) -> None:
    probe = reflink_error(ws)
    if probe is None:
        pytest.skip("this filesystem can reflink")
    assert probe.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY)
    dest = ws / "data.bin"
    with pytest.raises(OSError, match=os.strerror(probe.errno)) as exc:
        materialize(odb, oid, str(dest), ("reflink",))
    assert exc.value.errno == probe.errno
    assert not dest.exists()
    assert leftovers(ws) == []
    assert_cache_intact(odb, oid)


def test_symlink_from_a_store_with_a_relative_root(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = ObjectStore("cache")
    oid = store.add_bytes(DATA)
    dest = ws / "deep" / "data.bin"
    materialize(store, oid, str(dest), ("symlink",))
    assert os.path.realpath(dest) == os.path.realpath(store.path(oid))
    assert dest.read_bytes() == DATA


def test_replaces_an_existing_file(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "data.bin"
    dest.write_bytes(b"old content")
    materialize(odb, oid, str(dest), ("copy",))
    assert dest.read_bytes() == DATA
    other = odb.add_bytes(b"other")
    materialize(odb, other, str(dest), ("hardlink",))
    assert dest.read_bytes() == b"other"
    materialize(odb, oid, str(dest), ("symlink",))
    assert os.readlink(dest) == odb.path(oid)
    materialize(odb, other, str(dest), ("copy",))  # replaces the link, not its target
    assert not os.path.islink(dest)
    assert dest.read_bytes() == b"other"
    assert_cache_intact(odb, oid)
    assert leftovers(ws) == []


def test_replaces_a_folder_of_the_same_name(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "thing"
    (dest / "inner").mkdir(parents=True)
    (dest / "inner" / "f").write_bytes(b"x")
    materialize(odb, oid, str(dest), ("copy",))
    assert dest.is_file()
    assert dest.read_bytes() == DATA


def test_creates_parent_folders(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    dest = ws / "a" / "b" / "c.bin"
    materialize(odb, oid, str(dest), ("copy",))
    assert dest.read_bytes() == DATA


def test_missing_object(odb: ObjectStore, ws: Path) -> None:
    absent = hash_bytes(b"not cached")
    dest = ws / "x"
    with pytest.raises(MissingObjectError) as exc:
        materialize(odb, absent, str(dest), ("copy",))
    assert absent in exc.value.message
    assert not dest.exists()
    assert os.listdir(ws) == []


def test_is_linked(odb: ObjectStore, oid: Oid, ws: Path) -> None:
    private = ws / "private"
    private.write_bytes(b"mine")
    os.chmod(private, 0o644)
    assert is_linked(str(private)) is False
    read_only = ws / "read-only"
    read_only.write_bytes(b"mine")
    os.chmod(read_only, 0o444)
    assert is_linked(str(read_only)) is True
    os.symlink(odb.path(oid), ws / "link")
    assert is_linked(str(ws / "link")) is True


@pytest.mark.parametrize("strategy", ["hardlink", "symlink"])
def test_unprotect_makes_a_private_writable_copy(
    odb: ObjectStore, oid: Oid, ws: Path, strategy: str
) -> None:
    dest = ws / "data.bin"
    materialize(odb, oid, str(dest), (strategy,))
    assert unprotect(str(dest)) is True
    st = os.lstat(dest)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_nlink == 1
    assert st.st_ino != os.stat(odb.path(oid)).st_ino
    assert st.st_mode & stat.S_IWUSR
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert dest.read_bytes() == DATA
    assert is_linked(str(dest)) is False
    with open(dest, "ab") as f:
        f.write(b"edited")
    assert dest.read_bytes() == DATA + b"edited"
    assert_cache_intact(odb, oid)
    assert os.stat(odb.path(oid)).st_nlink == 1
    assert sorted(os.listdir(ws)) == ["data.bin"]


def test_unprotect_keeps_the_executable_bit(ws: Path) -> None:
    f = ws / "tool"
    f.write_bytes(b"#!/bin/sh\n")
    os.chmod(f, 0o555)
    assert unprotect(str(f)) is True
    assert mode_of(f) == 0o755
    assert f.read_bytes() == b"#!/bin/sh\n"


def test_unprotect_of_a_private_file_changes_nothing(ws: Path) -> None:
    f = ws / "mine"
    f.write_bytes(b"private")
    os.chmod(f, 0o640)
    before = os.stat(f)
    assert unprotect(str(f)) is False
    after = os.stat(f)
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o640,
    )
    assert f.read_bytes() == b"private"
