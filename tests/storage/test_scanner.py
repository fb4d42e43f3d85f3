"""A walked folder's manifest bytes, encoded straight from its records, and what a scan and
a comparison of a changed folder give."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import PathError
from dvlite.storage.hashing import hash_bytes
from dvlite.storage.manifest import Entry, Manifest
from dvlite.storage.scanner import manifest_bytes, manifest_of
from dvlite.storage.tree import Tree
from dvlite.workspace import Target, compare, find_tracked
from tests.helpers import run_dvlite
from tests.storage.test_manifest import entry_lists

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo


def tree_of(entries: list[Entry], order: list[int]) -> Tree:
    """A tree as a walk gives it: records in no set order, made up inodes and mtimes."""
    shuffled = [entries[i] for i in order]
    return Tree([(e.path, 100 + i, 7, e.size, e.executable) for i, e in enumerate(shuffled)],
                [e.oid for e in shuffled])


@given(entry_lists, st.randoms(use_true_random=False))
def test_manifest_bytes_are_the_manifests_bytes(entries: list[Entry], rnd: object) -> None:
    order = list(range(len(entries)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    tree = tree_of(entries, order)

    data = manifest_bytes(tree)

    assert data == Manifest.build(entries).to_bytes() == manifest_of(tree).to_bytes()


@pytest.mark.parametrize(("name", "message"), [
    ("a\\b", "cannot track `a\\b`: a backslash"),
    ("c:x", "cannot track `c:x`: a backslash or drive prefix"),
    ("bad\udcff", "is not valid UTF-8"),
])
def test_a_name_no_manifest_may_hold_is_refused_by_name(name: str, message: str) -> None:
    tree = Tree([("ok", 1, 1, 1, False), (name, 2, 1, 1, False)],
                [hash_bytes(b"1"), hash_bytes(b"2")])

    with pytest.raises(PathError, match="cannot track") as caught:
        manifest_bytes(tree)

    assert message in caught.value.message


def test_add_refuses_a_folder_holding_a_backslash_name(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"ok.txt": "fine", "a\\b.txt": "not portable"}})

    run = run_dvlite(["add", "data"], tmp_repo.root)

    assert run.returncode == 1
    assert run.stderr.startswith("error: cannot track `a\\b.txt`: a backslash")
    assert "Traceback" not in run.stderr
    assert not (tmp_repo.root / "data.dvl").exists()


def test_a_changed_folder_is_compared_file_by_file(tmp_repo: TmpRepo) -> None:
    """After a scan vouched by nothing (new inodes), the comparison names exactly the files
    added, modified (content, or the executable bit) and removed, in path order."""
    tmp_repo.gen({"data": {f"d{i}": {f"f{j}.txt": f"{i}/{j}" for j in range(20)}
                           for i in range(5)}})
    tmp_repo.dvl_add("data")
    rewrite(tmp_repo.root / "data", "d1/f3.txt", "new bytes")
    rewrite(tmp_repo.root / "data", "d4/f0.txt", "4/0")  # same bytes, a new inode
    os.chmod(tmp_repo.root / "data/d2/f5.txt", 0o755)
    os.remove(tmp_repo.root / "data/d0/f9.txt")
    rewrite(tmp_repo.root / "data", "new/g.txt", "added")

    cmp = compare(tmp_repo.repo, Target(find_tracked(tmp_repo.repo)[0]))

    assert cmp.scan.hashed_files == 3  # the written ones; the stat index vouches for the rest
    assert [e.path for e in cmp.changes.added] == ["new/g.txt"]
    assert [e.path for e in cmp.changes.removed] == ["d0/f9.txt"]
    assert [(old.path, old.oid != new.oid, new.executable)
            for old, new in cmp.changes.modified] == [("d1/f3.txt", True, False),
                                                      ("d2/f5.txt", False, True)]
    assert cmp.changes.modified[0][1].oid == hash_bytes(b"new bytes")
    assert not cmp.matches


def rewrite(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)
