"""LinkingStore: files taken into the object store by hard link, or copied where a link
would not be safe or cannot be made."""

from __future__ import annotations

import os
import stat
import tempfile
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import CorruptObjectError
from dvlite.storage.hashing import hash_bytes
from dvlite.storage.link_store import LinkingStore

if TYPE_CHECKING:
    from pathlib import Path

DATA = b"workspace bytes\n" * 1000


@pytest.fixture
def store(tmp_path: Path) -> LinkingStore:
    return LinkingStore(str(tmp_path / "cache"))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(DATA)
    path.chmod(0o644)
    return path


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _temps(store: LinkingStore) -> list[str]:
    folder = os.path.join(store.root, "tmp")
    return os.listdir(folder) if os.path.isdir(folder) else []


def test_a_file_becomes_its_object(store: LinkingStore, src: Path) -> None:
    inode = os.stat(src).st_ino

    oid = store.add_file(str(src))

    assert oid == hash_bytes(DATA)
    obj = store.path(oid)
    assert os.stat(obj).st_ino == inode
    assert os.stat(src).st_nlink == 2
    assert _mode(obj) == 0o444
    assert store.verify(oid)
    assert _temps(store) == []


def test_a_known_oid_is_checked_and_a_changed_file_is_not_stored(
    store: LinkingStore, src: Path
) -> None:
    expected = hash_bytes(b"what the index remembered")

    with pytest.raises(CorruptObjectError, match="changed while it was being stored"):
        store.add_file(str(src), expected)

    assert not store.exists(expected)
    assert not store.exists(hash_bytes(DATA))
    assert _temps(store) == []
    assert _mode(src) == 0o644, "the file is left as the user had it"
    assert os.stat(src).st_nlink == 1


def test_a_known_oid_that_matches_is_stored_by_link(store: LinkingStore, src: Path) -> None:
    oid = store.add_file(str(src), hash_bytes(DATA))
    assert os.path.samefile(store.path(oid), src)


def test_an_executable_file_is_copied(store: LinkingStore, src: Path) -> None:
    src.chmod(0o755)

    oid = store.add_file(str(src))

    assert not os.path.samefile(store.path(oid), src)
    assert _mode(src) == 0o755
    assert _mode(store.path(oid)) == 0o444
    assert store.verify(oid)


def test_a_file_with_other_names_is_copied(store: LinkingStore, src: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-name"
    os.link(src, other)

    oid = store.add_file(str(src))

    assert not os.path.samefile(store.path(oid), src)
    assert _mode(other) == 0o644
    other.write_bytes(b"edited through the other name")
    assert store.verify(oid)


def test_a_file_with_other_names_already_in_the_store_is_read_once(
    store: LinkingStore, src: Path
) -> None:
    oid = store.add_file(str(src))  # linked: src now has two names, one of them the object
    assert store.add_file(str(src)) == oid
    assert os.path.samefile(store.path(oid), src)
    assert os.stat(src).st_nlink == 2


def test_a_symlink_is_stored_as_the_bytes_it_points_to(
    store: LinkingStore, src: Path, tmp_path: Path
) -> None:
    link = tmp_path / "ws" / "link.bin"
    os.symlink(src, link)

    oid = store.add_file(str(link))

    obj = store.path(oid)
    assert not os.path.islink(obj)
    assert not os.path.samefile(obj, src)
    assert store.verify(oid)
    assert _mode(src) == 0o644


def test_a_store_on_another_filesystem_gets_a_copy(src: Path) -> None:
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(src).st_dev:
        pytest.skip("needs a second filesystem")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        store = LinkingStore(os.path.join(other, "cache"))

        oid = store.add_file(str(src))

        assert store.verify(oid)
        assert os.stat(src).st_nlink == 1
        assert _mode(src) == 0o644
