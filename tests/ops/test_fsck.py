"""``dvlite fsck``: every cached object checked against its oid; bad ones moved aside; chunk
lists kept in the cache checked with their objects, wrong ones removed."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from dvlite.ops.fsck import fsck
from dvlite.ops.status import StatusEntry, status
from dvlite.storage.chunks import Chunk, Recipe, RecipeStore
from dvlite.storage.hashing import Oid
from tests.cli.support import run_main
from tests.ops.support import (
    age,
    cache_oids,
    cache_root,
    corrupt_object,
    drop_object,
    object_path,
    xxh,
)

if TYPE_CHECKING:
    import pytest

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


# --- chunk lists (recipes) kept in the cache -------------------------------------------------

MIB = 1 << 20


def _big(tmp_repo: TmpRepo, size: int = 3 * MIB) -> tuple[str, bytes]:
    """A tracked file big enough for several chunks, and its recipe kept in the cache."""
    content = random.Random(7).randbytes(size)
    tmp_repo.gen({"big.bin": content})
    tmp_repo.dvl_add("big.bin")
    oid = xxh(content)
    RecipeStore(tmp_repo.repo.cache).of(Oid(oid))
    return oid, content


def _recipe_file(tmp_repo: TmpRepo, oid: str) -> Path:
    return cache_root(tmp_repo) / "recipes" / oid[:2] / oid[2:]


def _put_recipe(tmp_repo: TmpRepo, oid: str, chunks: list[tuple[str, int]]) -> None:
    offsets = [sum(size for _, size in chunks[:i]) for i in range(len(chunks))]
    recipe = Recipe(Oid(oid), sum(size for _, size in chunks),
                    tuple(Chunk(Oid(c), at, size) for (c, size), at in zip(chunks, offsets,
                                                                           strict=True)))
    RecipeStore(tmp_repo.repo.cache).put(recipe)


def test_good_recipe_is_checked_and_kept(tmp_repo: TmpRepo) -> None:
    oid, _ = _big(tmp_repo)
    kept = _recipe_file(tmp_repo, oid).read_bytes()

    result = fsck(tmp_repo.repo)

    assert (result.checked, result.quarantined) == (1, ())
    assert (result.recipes_checked, result.recipes_removed) == (1, ())
    assert _recipe_file(tmp_repo, oid).read_bytes() == kept


def test_recipe_whose_chunks_are_not_the_file_is_removed(tmp_repo: TmpRepo) -> None:
    oid, content = _big(tmp_repo)
    half = len(content) // 2
    # the right sizes, but the second half's hash is of other bytes
    _put_recipe(tmp_repo, oid, [(xxh(content[:half]), half),
                                (xxh(b"other bytes"), len(content) - half)])

    result = fsck(tmp_repo.repo)

    assert result.quarantined == (), "the file itself is fine"
    ((removed, why),) = result.recipes_removed
    assert removed == oid
    assert xxh(b"other bytes") in why
    assert f"bytes {half}-{len(content)}" in why
    assert not _recipe_file(tmp_repo, oid).exists()
    assert object_path(tmp_repo, oid).read_bytes() == content


def test_recipe_covering_part_of_the_file_is_removed(tmp_repo: TmpRepo) -> None:
    oid, content = _big(tmp_repo)
    _put_recipe(tmp_repo, oid, [(xxh(content[:1000]), 1000)])

    ((removed, why),) = fsck(tmp_repo.repo).recipes_removed

    assert removed == oid
    assert "longer file" in why
    assert not _recipe_file(tmp_repo, oid).exists()


def test_recipe_that_does_not_parse_is_removed(tmp_repo: TmpRepo) -> None:
    oid, _ = _big(tmp_repo)
    _recipe_file(tmp_repo, oid).write_bytes(b"not a recipe\n")

    result = fsck(tmp_repo.repo)

    assert (result.checked, result.quarantined) == (1, ())
    ((removed, why),) = result.recipes_removed
    assert removed == oid
    assert "does not parse" in why
    assert not _recipe_file(tmp_repo, oid).exists()


def test_recipe_of_an_object_not_in_the_cache_is_removed(tmp_repo: TmpRepo) -> None:
    oid, _ = _big(tmp_repo)
    drop_object(tmp_repo, oid)

    result = fsck(tmp_repo.repo)

    assert result.checked == 0
    assert result.recipes_removed == ((oid, "its object is not in the cache"),)
    assert not _recipe_file(tmp_repo, oid).exists()


def test_recipe_of_a_corrupt_object_goes_with_it(tmp_repo: TmpRepo) -> None:
    oid, content = _big(tmp_repo)
    corrupt_object(tmp_repo, oid, content[:-1] + b"!")

    result = fsck(tmp_repo.repo)

    assert [bad for bad, _ in result.quarantined] == [oid]
    assert result.recipes_removed == ((oid, "its object was corrupt and was moved aside"),)
    assert not _recipe_file(tmp_repo, oid).exists()


def test_a_removed_recipe_is_made_again_right(tmp_repo: TmpRepo) -> None:
    oid, content = _big(tmp_repo)
    _put_recipe(tmp_repo, oid, [(xxh(b"x"), len(content))])
    fsck(tmp_repo.repo)

    recipe = RecipeStore(tmp_repo.repo.cache).of(Oid(oid))

    assert b"".join(content[c.offset:c.offset + c.size] for c in recipe.chunks) == content
    assert all(xxh(content[c.offset:c.offset + c.size]) == c.oid for c in recipe.chunks)
    assert fsck(tmp_repo.repo).recipes_removed == ()


def test_cli_says_removed_recipes_are_derived(tmp_repo: TmpRepo,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    oid, _ = _big(tmp_repo)
    _recipe_file(tmp_repo, oid).write_bytes(b"not a recipe\n")

    result = run_main(capsys, "-C", str(tmp_repo.root), "fsck")

    assert (result.code, result.out) == (0, "")
    assert result.err_lines == [
        "checked 1 objects, 0 bad",
        "removed 1 of 1 chunk lists that no longer matched their file (derived data: made "
        "again when needed)",
    ]
