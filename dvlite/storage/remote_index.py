"""What a remote holds beyond plain objects: recipes of chunked files and packs of small objects.

A file's oid can be on a remote three ways, all equivalent to a reader: a plain object
(``<2 hex>/<rest>``), a recipe (``recipes/<oid>``, listing the chunks, which are
plain objects), or an entry of a pack (``packs/<id>.pack``, whose index ``packs/<id>.idx``
says where). A recipe goes up after its chunks and an index after its pack, so whatever a
reader can see is complete; gc deletes them the other way round.

Pack indexes never change (a pack's id is the hash of its index), so each one read is kept in
the cache's ``packs/`` folder and never asked for again.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, BinaryIO, cast

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.fsutil import atomic_write, disk_full, run_parallel
from dvlite.storage.chunks import Recipe
from dvlite.storage.hashing import Oid, is_oid
from dvlite.storage.packs import PackCatalog, PackIndex, PackWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.packs import Span
    from dvlite.storage.remote_store import RemoteStore

RECIPES = "recipes"
PACKS = "packs"
_INDEX = ".idx"
_PACK = ".pack"


class RemoteIndex:
    def __init__(self, remote: RemoteStore, cache: ObjectStore) -> None:
        self.remote = remote
        self.cache = cache
        self._catalog: PackCatalog | None = None
        self._recipes: set[Oid] | None = None
        self._kept = os.path.join(cache.root, PACKS)  # the indexes already read, by id

    def missing(self, oids: Iterable[Oid], *, jobs: int) -> set[Oid]:
        """The oids the remote has in none of its three ways."""
        catalog = self.catalog()
        wanted = {oid for oid in oids if oid not in catalog}  # no copy of every packed oid
        wanted = self.remote.missing(wanted, jobs=jobs) if wanted else wanted
        return wanted - self.recipe_oids() if wanted else wanted

    # packs

    def catalog(self, *, fresh: bool = False) -> PackCatalog:
        """Every pack the remote shows (one listing), with what each holds."""
        if self._catalog is None or fresh:
            found = run_parallel(self._index, self.pack_ids(), self.remote.jobs)
            self._catalog = PackCatalog(index for index in found if index is not None)
        return self._catalog

    def pack_ids(self) -> list[str]:
        """The packs the remote shows: those with an index (one listing)."""
        names = self.remote.listing(self.remote.below(PACKS))
        return sorted(pack for name in names if name.endswith(_INDEX)
                      and is_oid(pack := name.removesuffix(_INDEX), self.cache.algorithm))

    def _index(self, pack: str) -> PackIndex | None:
        kept = os.path.join(self._kept, pack + _INDEX)
        try:
            with open(kept, "rb") as f:
                return self._parse_index(f.read(), pack, f"`{kept}`")
        except (FileNotFoundError, CorruptObjectError):
            pass  # not read before (or damaged here): the remote's copy
        data = self.remote.read(self._path(pack, _INDEX))
        if data is None:
            return None  # deleted since the listing: a gc dropped that pack
        try:
            index = self._parse_index(data, pack, f"pack index {pack} on {self.remote.name}")
        except CorruptObjectError:
            # its objects count as missing: a push sends them again, `fsck --remote` names it
            return None
        os.makedirs(self._kept, exist_ok=True)
        atomic_write(kept, data)
        return index

    def _parse_index(self, data: bytes, pack: str, source: str) -> PackIndex:
        return PackIndex.parse(data, pack, algorithm=self.cache.algorithm, source=source)

    def _path(self, pack: str, suffix: str) -> str:
        return self.remote.below(PACKS, pack + suffix)

    def send_pack(self, fill: Callable[[PackWriter], None], size: int) -> PackIndex:
        """Make a pack in a temp file in the cache (``fill`` adds its ``size`` bytes of
        objects), upload it, then its index: only then does the remote show what it holds."""
        folder = os.path.join(self.cache.root, "tmp")
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".pack") as f:
            with disk_full(f.name, size):  # the cache's disk
                writer = PackWriter(cast("BinaryIO", f), self.cache.algorithm)
                fill(writer)
                index = writer.finish()
            if not index.entries:  # nothing was worth keeping (a repair of a lost pack)
                return index
            self.remote.put_file_at(f.name, self._path(index.pack, _PACK))
        self.remote.put_bytes(self._path(index.pack, _INDEX),
                              index.to_bytes(self.cache.algorithm))
        return index

    def read_span(self, span: Span) -> bytes:
        return self.read_span_of(span.pack, span.start, span.end - span.start)

    def pack_files(self) -> dict[str, float | None]:
        """Every pack file on the remote, indexed or not → its modification time."""
        names = self.remote.listing(self.remote.below(PACKS))
        return {name.removesuffix(_PACK): mtime for name, mtime in names.items()
                if name.endswith(_PACK)}

    def delete_pack(self, pack: str) -> None:
        """Its index first: a reader never sees an index whose pack is gone."""
        self.remote.delete_at(self._path(pack, _INDEX))
        self.remote.delete_at(self._path(pack, _PACK))

    # recipes

    def recipe_oids(self, *, fresh: bool = False) -> set[Oid]:
        """The files the remote has recipes of (one listing, kept for this index's life: a
        recipe missed meanwhile only costs a second upload of it)."""
        if self._recipes is None or fresh:
            names = self.remote.listing(self.remote.below(RECIPES))
            self._recipes = {Oid(n) for n in names if is_oid(n, self.cache.algorithm)}
        return self._recipes

    def recipe(self, oid: Oid) -> Recipe:
        data = self.remote.read(self._recipe_path(oid))
        if data is None:
            raise MissingObjectError(f"the chunk list of object {oid} is not on {self.remote.name}",
                                     hint="push it again from a clone that has the file")
        return Recipe.parse(data, oid, algorithm=self.cache.algorithm,
                            source=f"the chunk list of {oid} on {self.remote.name}")

    def _recipe_path(self, oid: Oid) -> str:
        return self.remote.below(RECIPES, oid)

    def put_recipe(self, recipe: Recipe) -> None:
        self.remote.put_bytes(self._recipe_path(recipe.oid),
                              recipe.to_bytes(self.cache.algorithm))

    def delete_recipe(self, oid: Oid) -> None:
        self.remote.delete_at(self._recipe_path(oid))

    # any object

    def read_object(self, oid: Oid, *, checked: bool = True) -> bytes | None:
        """A small object's bytes (a manifest, a chunk), plain or packed, checked against its
        oid unless the caller checks them itself; None when the remote has it neither way."""
        data = self.remote.read(self.remote.path(oid))
        source = f"object {oid} on {self.remote.name}"
        if data is None:
            where = self.catalog().where(oid)
            if where is None:
                return None
            data = self.read_span_of(where.pack, where.entry.offset, where.entry.size)
            source = f"object {oid} in pack {where.pack} on {self.remote.name}"
        if checked and self.cache.hash_of(data) != oid:
            raise CorruptObjectError(
                f"{source} is corrupt",
                hint="repair the remote's copy: push it again from a clone that has it")
        return data

    def read_span_of(self, pack: str, offset: int, size: int) -> bytes:
        if size == 0:  # an empty file: no range to ask for (and some servers send all for one)
            return b""
        data = self.remote.read(self._path(pack, _PACK), offset, offset + size)
        if data is None or len(data) != size:
            raise CorruptObjectError(
                f"pack {pack} on {self.remote.name} is missing or shorter than its index says",
                hint="push the data again; `dvlite gc --cloud` then drops the bad pack")
        return data
