"""``dvlite fsck``: verify every cached object against its oid, quarantine bad ones; and check
the chunk lists (recipes) kept beside them, removing those that no longer describe their file.

A recipe is derived data (a push or pull makes it again from the file), so a wrong one is
removed, not quarantined. An object with a recipe is verified in the same single read that
checks the recipe: each chunk is hashed as the whole is.

``dvlite fsck --remote`` is ``fsck_remote`` (ops/fsck_remote.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import CorruptObjectError
from dvlite.fsutil import NO_PROGRESS, Progress, run_parallel
from dvlite.storage.chunks import Recipe, RecipeStore
from dvlite.storage.hashing import CHUNK_SIZE, new_hasher
from dvlite.workspace import default_jobs

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Hasher, Oid
    from dvlite.storage.odb import ObjectStore


@dataclass(frozen=True)
class FsckResult:
    checked: int
    quarantined: tuple[tuple[Oid, str], ...]  # (oid, where the bad bytes were moved)
    recipes_checked: int = 0
    # (file oid, why): chunk lists removed because they were wrong; derived data, made again
    # from the file by the next push that needs them
    recipes_removed: tuple[tuple[Oid, str], ...] = ()


@dataclass(frozen=True)
class _Verdict:
    good: bool  # the object hashes to its oid
    recipe_wrong: str | None = None  # why its kept recipe does not describe it


def fsck(repo: Repo, *, progress: Progress = NO_PROGRESS) -> FsckResult:
    with repo.lock():
        cache = repo.cache
        recipes = RecipeStore(cache)
        oids = list(cache.iter_oids())
        kept = set(recipes.iter_oids())
        progress.set_size(len(oids))

        def check(oid: Oid) -> _Verdict:
            verdict = _check(cache, recipes, oid) if oid in kept else _Verdict(cache.verify(oid))
            progress.relative_update(1)
            return verdict

        verdicts = run_parallel(check, oids, default_jobs(repo))
        bad = [oid for oid, v in zip(oids, verdicts, strict=True) if not v.good]
        quarantined = tuple((oid, cache.quarantine(oid)) for oid in bad)
        removed = {oid: "its object was corrupt and was moved aside"
                   for oid in bad if oid in kept}
        removed.update((oid, v.recipe_wrong) for oid, v in zip(oids, verdicts, strict=True)
                       if v.good and v.recipe_wrong is not None)
        removed.update(dict.fromkeys(kept - set(oids), "its object is not in the cache"))
        for oid in removed:
            recipes.delete(oid)
        return FsckResult(len(oids), quarantined, len(kept), tuple(sorted(removed.items())))


def _check(cache: ObjectStore, recipes: RecipeStore, oid: Oid) -> _Verdict:
    """Verify an object and the recipe kept for it, in one read of the object."""
    path = recipes.path(oid)
    try:
        with open(path, "rb") as f:
            recipe = Recipe.parse(f.read(), oid, algorithm=cache.algorithm, source=f"`{path}`")
    except FileNotFoundError:  # removed since it was listed (a gc of another repo)
        return _Verdict(cache.verify(oid))
    except CorruptObjectError as exc:
        return _Verdict(cache.verify(oid), f"it does not parse ({exc.message})")
    whole = new_hasher(cache.algorithm)
    wrong: str | None = None
    with cache.open(oid) as f:
        for chunk in recipe.chunks:
            hasher = new_hasher(cache.algorithm)
            size = sum(_feed(f, chunk.size, whole, hasher))
            if wrong is None and (size != chunk.size or hasher.hexdigest() != chunk.oid):
                wrong = (f"chunk {chunk.oid} (bytes {chunk.offset}-{chunk.offset + chunk.size})"
                         " is not what the file holds there")
        extra = sum(_feed(f, None, whole))
    if whole.hexdigest() != oid:
        return _Verdict(good=False)
    if wrong is None and extra:
        wrong = f"its chunks cover {recipe.size} bytes of a longer file"
    return _Verdict(True, wrong)


def _feed(f: BinaryIO, size: int | None, *hashers: Hasher) -> Iterator[int]:
    """Read ``size`` bytes (all that is left when None) into every hasher, a block at a time;
    yields the length of each block."""
    left = size
    while left is None or left > 0:
        block = f.read(CHUNK_SIZE if left is None else min(left, CHUNK_SIZE))
        if not block:
            return
        for hasher in hashers:
            hasher.update(block)
        if left is not None:
            left -= len(block)
        yield len(block)
