"""``dvlite gc --cloud`` on the remote's side: plain objects, recipes of chunked files, packs.

A chunk is live while a live file's recipe lists it, and a packed object while anything live
names it. A pack with nothing live goes; one that is mostly dead is rewritten: its live
objects go into a new pack, uploaded in full before the old one is deleted, so no moment
lacks them. Deletions run in the order that keeps a remote readable if gc is killed: recipes
before the chunks they list, an index before its pack, manifests before their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import CorruptObjectError
from dvlite.fsutil import Progress, run_parallel
from dvlite.storage.manifest import MAGIC
from dvlite.storage.packs import PackCatalog, PackWriter, spans, split
from dvlite.storage.remote_index import RemoteIndex

if TYPE_CHECKING:
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid
    from dvlite.storage.packs import PackIndex
    from dvlite.storage.remote_store import RemoteStore

REWRITE_ABOVE = 0.5  # a pack is rewritten once more than this share of its bytes is dead


@dataclass(frozen=True)
class RemotePlan:
    """What a remote holds that nothing in scope references."""

    name: str
    listed: int  # objects on the remote, plain and packed
    unreferenced: dict[Oid, int]  # oid → bytes that go: plain objects, entries of dropped packs
    size: int
    recipes: tuple[Oid, ...] = ()  # recipes of files nothing references
    packs: tuple[str, ...] = ()  # packs to drop or rewrite
    stray_packs: tuple[str, ...] = ()  # pack files with no index, left by a killed push
    packed_only: frozenset[Oid] = frozenset()  # unreferenced oids with no plain copy

    @property
    def empty(self) -> bool:
        """Nothing to delete: stray packs and recipes count, though they hold no live object."""
        return not (self.unreferenced or self.recipes or self.packs or self.stray_packs)


def live_chunks(index: RemoteIndex, refs: set[Oid], jobs: int) -> set[Oid]:
    """The chunks listed by the recipes of referenced files."""
    wanted = sorted(index.recipe_oids() & refs)
    recipes = run_parallel(index.recipe, wanted, jobs)
    return {chunk.oid for recipe in recipes for chunk in recipe.chunks}


def plan_remote(repo: Repo, store: RemoteStore, refs: set[Oid], *, now: float,
                stale_after: float) -> RemotePlan:
    index = RemoteIndex(store, repo.cache)
    refs = refs | live_chunks(index, refs, store.jobs)
    listed = list(store.iter_oids())
    plain = sorted(oid for oid in listed if oid not in refs)
    sizes = run_parallel(store.size, plain, store.jobs)
    unreferenced = dict(zip(plain, sizes, strict=True))
    catalog = index.catalog(fresh=True)
    packs = []
    packed: dict[Oid, int] = {}
    for pack in catalog.indexes.values():
        dead = sum(e.size for e in pack.entries if e.oid not in refs)
        if dead > REWRITE_ABOVE * pack.size or dead == pack.size:
            packs.append(pack.pack)
            packed.update({e.oid: e.size for e in pack.entries if e.oid not in refs})
    packed_only = frozenset(packed.keys() - unreferenced.keys() - set(listed))
    unreferenced.update({oid: packed[oid] for oid in packed_only})
    stray = tuple(sorted(
        pack for pack, mtime in index.pack_files().items()
        if pack not in catalog.indexes and mtime is not None and now - mtime > stale_after))
    recipes = tuple(sorted(index.recipe_oids() - refs))
    return RemotePlan(store.name, len(listed) + len(catalog.oids()), unreferenced,
                      sum(unreferenced.values()), recipes, tuple(sorted(packs)), stray,
                      packed_only)


def collect_remote(repo: Repo, store: RemoteStore, remote_plan: RemotePlan, refs: set[Oid],
                   progress: Progress) -> list[Oid]:
    """Delete what the plan lists and ``refs`` (worked out again) does not; the oids deleted."""
    index = RemoteIndex(store, repo.cache)
    refs = refs | live_chunks(index, refs, store.jobs)
    run_parallel(index.delete_recipe, [o for o in remote_plan.recipes if o not in refs],
                 store.jobs)
    plain = [oid for oid in remote_plan.unreferenced
             if oid not in refs and oid not in remote_plan.packed_only]
    manifests, others = _manifests_first(repo, plain)
    _delete_plain(store, manifests, progress)  # before any file they list, packed or plain
    catalog = index.catalog(fresh=True)
    deleted: set[Oid] = set()
    for pack in remote_plan.packs:
        found = catalog.indexes.get(pack)
        if found is not None:
            _drop_pack(repo, index, found, refs)
            deleted.update(e.oid for e in found.entries if e.oid not in refs)
    run_parallel(index.delete_pack, list(remote_plan.stray_packs), store.jobs)
    _delete_plain(store, others, progress)
    return sorted(deleted.union(plain))


def _drop_pack(repo: Repo, index: RemoteIndex, pack: PackIndex, refs: set[Oid]) -> None:
    """Delete a pack, first uploading its live objects (checked) in a new one."""
    rewrite_pack(repo, index, pack, {e.oid for e in pack.entries if e.oid in refs},
                 skip_bad=False)


def rewrite_pack(repo: Repo, index: RemoteIndex, pack: PackIndex, keep: set[Oid], *,
                 skip_bad: bool) -> None:
    """Replace a pack by a new one holding only its objects in ``keep`` (none: just delete
    it), each read and checked first. A corrupt or unreadable object stops it with an error,
    the pack kept; with ``skip_bad`` (a repair), it is left out instead."""
    source = f"pack {pack.pack} on {index.remote.name}"
    kept = [e for e in pack.entries if e.oid in keep]

    def fill(writer: PackWriter) -> None:
        # this pack's copies: the catalog may name another pack, which may go too
        for span in spans(PackCatalog([pack]), [e.oid for e in kept]):
            try:
                pieces = list(split(span, index.read_span(span)))
            except CorruptObjectError:
                if skip_bad:
                    continue
                raise
            for oid, data in pieces:
                if repo.cache.hash_of(data) == oid:
                    writer.add_bytes(oid, data)
                elif not skip_bad:
                    raise CorruptObjectError(
                        f"object {oid} in {source} is corrupt; the pack was kept",
                        hint="push the data again from a clone that has it, then run gc")

    if kept:
        index.send_pack(fill, sum(e.size for e in kept))
    index.delete_pack(pack.pack)


def _manifests_first(repo: Repo, oids: list[Oid]) -> tuple[list[Oid], list[Oid]]:
    """The folder manifests among ``oids`` (those the cache holds), and the rest. Manifests
    are deleted first, so a killed gc never leaves a remote that lists a folder whose files
    it lacks, as uploads send them after the files for the same reason."""
    manifests: list[Oid] = []
    others: list[Oid] = []
    for oid in oids:
        try:
            with open(repo.cache.path(oid), "rb") as f:
                head = f.read(len(MAGIC))
        except FileNotFoundError:
            head = b""
        (manifests if head == MAGIC else others).append(oid)
    return manifests, others


def _delete_plain(store: RemoteStore, oids: list[Oid], progress: Progress) -> None:
    def delete(oid: Oid) -> None:
        store.delete(oid)
        progress.relative_update(1)

    run_parallel(delete, oids, store.jobs)
