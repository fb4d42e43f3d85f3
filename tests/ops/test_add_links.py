"""``dvlite add`` with hardlink or symlink first in ``cache.link``: each workspace file becomes
its cache object by a hard link, without a copy, and the shared file is protected."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.status import status
from tests.ops.support import cache_oids, manifest_files, object_path, set_config, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

BIG = bytes(range(256)) * 4096  # 1 MiB


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _append_as_ordinary_user(path: Path) -> subprocess.CompletedProcess[str]:
    """Try to append to ``path`` as its owner would without root's override of file modes
    (tests run as root, which writes to read-only files)."""
    code = f"open({str(path)!r}, 'ab').write(b'edit')"
    if os.geteuid() != 0:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to drop root's file-mode override")
    return subprocess.run(
        [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code],
        capture_output=True, text=True, check=False,
    )


def test_hardlink_add_makes_each_file_its_own_cache_object(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink,copy")
    tmp_repo.gen({"data": {"a.csv": b"alpha", "s": {"b.bin": BIG}}, "big.bin": BIG + b"!"})
    paths = [tmp_repo.root / p for p in ("data/a.csv", "data/s/b.bin", "big.bin")]
    inodes = [os.stat(p).st_ino for p in paths]

    tmp_repo.dvl_add("data", "big.bin")

    for path, inode, content in zip(paths, inodes, (b"alpha", BIG, BIG + b"!"), strict=True):
        obj = object_path(tmp_repo, xxh(content))
        st = os.stat(path)
        assert st.st_ino == inode, "the workspace file itself is the object: no copy was made"
        assert os.path.samefile(path, obj)
        assert st.st_nlink == 2
        assert _mode(obj) == 0o444
        assert obj.read_bytes() == content
    assert not os.listdir(os.path.join(tmp_repo.repo.cache_dir, "tmp"))
    assert status(tmp_repo.repo).entries == ()


def test_symlink_add_moves_each_file_into_the_cache_by_link(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "symlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha"}})
    inode = os.stat(tmp_repo.root / "data" / "a.csv").st_ino

    tmp_repo.dvl_add("data")

    path = tmp_repo.root / "data" / "a.csv"
    obj = object_path(tmp_repo, xxh(b"alpha"))
    assert path.is_symlink()
    assert os.stat(obj).st_ino == inode, "the object is the file that was added"
    assert os.stat(obj).st_nlink == 1
    assert path.read_bytes() == b"alpha"
    assert status(tmp_repo.repo).entries == ()


def test_an_edit_of_a_hardlinked_file_is_refused_and_the_cache_kept(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha"}})
    tmp_repo.dvl_add("data")
    path = tmp_repo.root / "data" / "a.csv"
    obj = object_path(tmp_repo, xxh(b"alpha"))

    edit = _append_as_ordinary_user(path)

    assert edit.returncode != 0
    assert "PermissionError" in edit.stderr
    assert obj.read_bytes() == b"alpha"
    assert path.read_bytes() == b"alpha"


def test_saving_over_a_hardlinked_file_leaves_the_cache_alone(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha"}})
    tmp_repo.dvl_add("data")
    path = tmp_repo.root / "data" / "a.csv"

    new = tmp_repo.root / "data" / ".a.csv.swp"  # how editors save: a new file renamed over
    new.write_bytes(b"alpha, edited")
    os.replace(new, path)

    assert object_path(tmp_repo, xxh(b"alpha")).read_bytes() == b"alpha"
    assert [(e.path, e.state) for e in status(tmp_repo.repo).entries] == [("data", "modified")]
    tmp_repo.dvl_add("data")
    assert os.path.samefile(path, object_path(tmp_repo, xxh(b"alpha, edited")))


def test_hardlink_add_copies_executable_files(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"tools": {"run.sh": b"#!/bin/sh\necho hi\n"}})
    script = tmp_repo.root / "tools" / "run.sh"
    script.chmod(0o755)

    (stored,) = tmp_repo.dvl_add("tools").stored

    obj = object_path(tmp_repo, xxh(b"#!/bin/sh\necho hi\n"))
    assert not os.path.samefile(script, obj)
    assert _mode(script) == 0o755, "a link would have taken the x bit away"
    assert _mode(obj) == 0o444
    assert manifest_files(tmp_repo, stored.oid)["run.sh"]["exec"] is True


def test_hardlink_add_copies_a_file_with_other_names(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha"}})
    elsewhere = tmp_repo.root / "keep.csv"  # outside the tracked folder, editable
    os.link(tmp_repo.root / "data" / "a.csv", elsewhere)

    tmp_repo.dvl_add("data")

    obj = object_path(tmp_repo, xxh(b"alpha"))
    assert not os.path.samefile(elsewhere, obj), "the other name must not reach the cache"
    assert _mode(elsewhere) == 0o644
    assert os.path.samefile(tmp_repo.root / "data" / "a.csv", obj)
    elsewhere.write_bytes(b"changed through the other name")
    assert obj.read_bytes() == b"alpha"


def test_hardlink_re_add_of_unchanged_data_changes_nothing(tmp_repo: TmpRepo) -> None:
    set_config(tmp_repo, "cache.link", "hardlink")
    tmp_repo.gen({"data": {"a.csv": b"alpha", "b.csv": b"beta"}})
    tmp_repo.dvl_add("data")
    before = {p.name: os.stat(p) for p in (tmp_repo.root / "data").iterdir()}

    tmp_repo.dvl_add("data")

    for name, st in before.items():
        now = os.stat(tmp_repo.root / "data" / name)
        assert (now.st_ino, now.st_nlink, now.st_mtime_ns) == (st.st_ino, 2, st.st_mtime_ns)
    assert len(cache_oids(tmp_repo)) == 3  # two files and the manifest
