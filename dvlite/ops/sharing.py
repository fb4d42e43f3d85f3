"""How much chunks share: what a file's chunks have in common with other files (``ls``), and
how many bytes a push would send once the chunks a remote has already are left out
(``status --remote``).

Only files from ``core.chunk_min_size`` travel as chunks; everything else counts whole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dvlite.storage.chunks import RecipeStore

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dvlite.ops.ls import LsEntry
    from dvlite.repo import Repo
    from dvlite.storage.chunks import Recipe
    from dvlite.storage.hashing import Oid
    from dvlite.storage.remote_index import RemoteIndex


def with_sharing(repo: Repo, found: Sequence[LsEntry]) -> list[LsEntry]:
    """``found`` with ``chunks`` and ``shared_bytes`` filled in for each file whose recipe is
    in the cache (a big file pushed or pulled): shared bytes are those in chunks that another
    file with a recipe in the cache uses too. Only big files have one: few recipes to read."""
    store = RecipeStore(repo.cache)
    kept = list(store.iter_oids())
    recipes: dict[Oid, Recipe] = {}
    for oid in set(kept) - repo.cache.missing(kept):
        if (recipe := store.get(oid)) is not None:
            recipes[oid] = recipe
    users: dict[Oid, set[Oid]] = {}  # chunk → the files using it
    for recipe in recipes.values():
        for chunk in recipe.chunks:
            users.setdefault(chunk.oid, set()).add(recipe.oid)

    def filled(entry: LsEntry) -> LsEntry:
        recipe = recipes.get(entry.oid) if entry.kind == "file" else None
        if recipe is None:
            return entry
        shared = sum(c.size for c in recipe.chunks if users[c.oid] - {entry.oid})
        return replace(entry, chunks=len(recipe.chunks), shared_bytes=shared)

    return [filled(entry) for entry in found]


def bytes_to_send(repo: Repo, index: RemoteIndex, groups: Sequence[Mapping[Oid, int]], *,
                  jobs: int) -> list[int]:
    """For each group of objects a remote lacks (oid → size), the bytes a push would send.

    A cached file that goes up as chunks counts only the chunks the remote lacks, and each
    object or chunk counts once, in the first group that needs it, so the numbers add up to
    what the whole push sends. Recipes not yet made are made now (a read of each such file),
    and kept: the push then reuses them.
    """
    least = repo.layout.chunk_min_size
    store = RecipeStore(repo.cache)
    recipes = {oid: store.of(oid) for group in groups for oid, size in group.items()
               if 0 < least <= size and repo.cache.exists(oid)}
    chunks = {c.oid for recipe in recipes.values() for c in recipe.chunks}
    lacking = index.missing(chunks, jobs=jobs) if chunks else set()
    counted: set[Oid] = set()

    def once(oid: Oid, size: int) -> int:
        if oid in counted:
            return 0
        counted.add(oid)
        return size

    out = []
    for group in groups:
        total = 0
        for oid, size in group.items():
            recipe = recipes.get(oid)
            if recipe is None:
                total += once(oid, size)
            else:
                total += sum(once(c.oid, c.size) for c in recipe.chunks if c.oid in lacking)
        out.append(total)
    return out
