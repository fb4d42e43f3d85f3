"""``dvlite fsck``: every cached object checked against its oid; bad ones moved aside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dvlite.ops.fsck import fsck
from dvlite.ops.status import StatusEntry, status
from tests.ops.support import (
    age,
    cache_oids,
    cache_root,
    corrupt_object,
    object_path,
    xxh,
)

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


def _tracked(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"data": {"a.csv": "a\n", "b.csv": "b\n"}, "model.bin": b"weights"})
    age(tmp_repo.root / "data")
    age(tmp_repo.root / "model.bin")
    tmp_repo.dvl_add("data", "model.bin")


def test_empty_cache(tmp_repo: TmpRepo) -> None:
    assert fsck(tmp_repo.repo).checked == 0


def test_clean_cache(tmp_repo: TmpRepo) -> None:
    _tracked(tmp_repo)
    objects = cache_oids(tmp_repo)

    result = fsck(tmp_repo.repo)

    assert result.checked == len(objects) == 4  # two files, a manifest, the model
    assert result.quarantined == ()
    assert cache_oids(tmp_repo) == objects


def test_litter_beside_objects_is_not_checked(tmp_repo: TmpRepo) -> None:
    _tracked(tmp_repo)
    (cache_root(tmp_repo) / "tmp").mkdir(exist_ok=True)
    (cache_root(tmp_repo) / "tmp" / "half-written").write_bytes(b"partial")

    result = fsck(tmp_repo.repo)

    assert (result.checked, result.quarantined) == (4, ())


def test_corrupt_object_is_quarantined_and_reported(tmp_repo: TmpRepo) -> None:
    _tracked(tmp_repo)
    bad = xxh(b"weights")
    corrupt_object(tmp_repo, bad, b"bit rot")

    result = fsck(tmp_repo.repo)

    assert result.checked == 4
    ((oid, where),) = result.quarantined
    assert oid == bad
    assert Path(where).read_bytes() == b"bit rot"
    assert not object_path(tmp_repo, bad).exists()
    assert bad not in cache_oids(tmp_repo)
    assert status(tmp_repo.repo).entries == (StatusEntry("model.bin", "not in cache"),)
    assert (tmp_repo.root / "model.bin").read_bytes() == b"weights", "workspace untouched"

    again = fsck(tmp_repo.repo)
    assert (again.checked, again.quarantined) == (3, ())


def test_corrupt_object_inside_folder(tmp_repo: TmpRepo) -> None:
    _tracked(tmp_repo)
    bad = xxh(b"b\n")
    corrupt_object(tmp_repo, bad, b"c\n")  # same size, wrong bytes

    result = fsck(tmp_repo.repo)

    assert [oid for oid, _ in result.quarantined] == [bad]
    assert status(tmp_repo.repo).entries == (StatusEntry("data", "not in cache"),)


def test_re_add_after_quarantine_repairs_the_cache(tmp_repo: TmpRepo) -> None:
    _tracked(tmp_repo)
    bad = xxh(b"weights")
    corrupt_object(tmp_repo, bad)
    fsck(tmp_repo.repo)

    tmp_repo.dvl_add("model.bin")

    assert object_path(tmp_repo, bad).read_bytes() == b"weights"
    assert fsck(tmp_repo.repo).quarantined == ()
    assert status(tmp_repo.repo).entries == ()
