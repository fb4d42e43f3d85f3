"""``dvlite fsck --remote``: check what a remote holds; with ``--repair``, take the bad
pieces off it so that the next push from a clone with the data sends them again.

Every pack index must parse and every object in a pack hash to its oid (one ranged read per
run of neighbours, as a pull reads them); every recipe must parse and list only chunks the
remote has, each of the size the recipe says and hashing right; every plain object must hash
to its name. That reads every byte the remote holds. A recipe's chunks are each read once,
however many recipes share them: the whole file's hash is checked by every pull that puts it
back together.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.fsutil import NO_PROGRESS, Progress, run_parallel
from dvlite.ops.gc_remote import rewrite_pack
from dvlite.storage.hashing import Oid, hash_stream
from dvlite.storage.packs import PackCatalog, PackIndex, spans, split
from dvlite.storage.remote_index import PACKS, RemoteIndex

if TYPE_CHECKING:
    from dvlite.repo import Repo
    from dvlite.storage.packs import Span
    from dvlite.storage.remote_store import RemoteStore

Kind = Literal["object", "pack", "recipe"]


@dataclass(frozen=True)
class BadPiece:
    """Something wrong on the remote: ``kind`` ``name`` (a plain object's oid, a pack's id, the
    oid of the file a recipe lists), and ``piece``, the object inside it when one is to blame
    (an object in the pack, a chunk of the recipe)."""

    kind: Kind
    name: str
    piece: Oid | None
    why: str

    def __str__(self) -> str:
        what = {"object": "object", "pack": "pack", "recipe": "chunk list of"}[self.kind]
        inside = "" if self.piece is None else (
            f", object {self.piece}" if self.kind == "pack" else f", chunk {self.piece}")
        return f"{what} {self.name}{inside}: {self.why}"


@dataclass(frozen=True)
class RemoteFsckResult:
    remote: str
    objects: int  # plain objects checked (chunks are among them)
    packs: int
    packed: int  # objects checked inside packs
    recipes: int
    bytes_checked: int  # bytes of objects read and hashed
    bad: tuple[BadPiece, ...]


def fsck_remote(repo: Repo, remote: str | None = None, *, jobs: int | None = None,
                progress: Progress = NO_PROGRESS) -> RemoteFsckResult:
    store = repo.remote(remote)
    jobs = jobs or store.jobs
    index = RemoteIndex(store, repo.cache)
    plain = list(store.iter_oids())
    recipe_oids = sorted(index.recipe_oids())
    progress.set_size(len(plain) + len(recipe_oids))
    check = _Checker(repo, store, index, progress)
    indexes = [i for i in run_parallel(check.pack_index, index.pack_ids(), jobs)
               if i is not None]
    packed = check.packs(indexes, jobs)
    objects = check.plain(plain, jobs)
    check.recipes(recipe_oids, jobs)
    return RemoteFsckResult(store.name, objects, len(indexes), packed, len(recipe_oids),
                            check.bytes_checked,
                            tuple(sorted(check.bad, key=lambda b: (b.kind, b.name, b.piece or ""))))


def repair(repo: Repo, result: RemoteFsckResult, remote: str | None = None) -> int:
    """Take what ``result`` found bad off the remote, losing nothing good: a corrupt plain
    object is deleted; a recipe with a missing or bad chunk is deleted (its file then counts
    as missing, and a push sends it again); a pack with a bad or missing object is rewritten
    with its good ones, and one whose index does not parse loses that index. How many pieces
    were taken off."""
    store = repo.remote(remote)
    index = RemoteIndex(store, repo.cache)
    catalog = index.catalog(fresh=True)
    for bad in result.bad:
        if bad.kind == "object":
            store.delete(Oid(bad.name))
        elif bad.kind == "recipe":
            index.delete_recipe(Oid(bad.name))
    for pack in sorted({bad.name for bad in result.bad if bad.kind == "pack"}):
        found = catalog.indexes.get(pack)
        if found is None:  # its index does not parse
            index.delete_pack(pack)
        else:
            rewrite_pack(repo, index, found, {e.oid for e in found.entries}, skip_bad=True)
    return len(result.bad)


class _Checker:
    """The checks, gathering what is wrong, which objects have a good copy, and how many bytes
    were hashed. They run on many threads: shared state changes under a lock."""

    def __init__(self, repo: Repo, store: RemoteStore, index: RemoteIndex,
                 progress: Progress) -> None:
        self.cache = repo.cache
        self.store = store
        self.index = index
        self.progress = progress
        self.bad: list[BadPiece] = []
        self.bytes_checked = 0
        self.present: set[Oid] = set()  # objects with a copy, plain or packed, good or not
        self.good: dict[Oid, int] = {}  # objects with a good copy → size
        self._lock = threading.Lock()

    def _found(self, kind: Kind, name: str, piece: Oid | None, why: str) -> None:
        with self._lock:
            self.bad.append(BadPiece(kind, name, piece, why))

    def _hashed(self, oid: Oid, data_oid: Oid, size: int) -> bool:
        """Note an object read (its bytes hash to ``data_oid``); whether it is good."""
        with self._lock:
            self.bytes_checked += size
            self.present.add(oid)
            if data_oid == oid:
                self.good[oid] = size
        return data_oid == oid

    def pack_index(self, pack: str) -> PackIndex | None:
        """The pack's index read from the remote (never the cache's copy); None if bad or gone."""
        data = self.store.read(self.store.below(PACKS, pack + ".idx"))
        if data is None:
            return None  # deleted since the listing: a gc dropped that pack
        try:
            return PackIndex.parse(data, pack, algorithm=self.cache.algorithm,
                                   source=f"pack index {pack} on {self.store.name}")
        except CorruptObjectError as exc:
            self._found("pack", pack, None, f"its index is corrupt: {_reason(exc)}")
            return None

    def packs(self, indexes: list[PackIndex], jobs: int) -> int:
        """Read every object in the packs, a span at a time (every copy, not only the one a
        pull would read); how many objects that was."""
        todo = [span for i in indexes
                for span in spans(PackCatalog([i]), (e.oid for e in i.entries))]
        self.progress.set_size(sum(len(s.entries) for s in todo))
        run_parallel(self._span, todo, jobs)
        return sum(len(i.entries) for i in indexes)

    def _span(self, span: Span) -> None:
        try:
            pieces = list(split(span, self.index.read_span(span)))
        except CorruptObjectError:
            self._found("pack", span.pack, None,
                        f"bytes {span.start}-{span.end} are missing: the pack is shorter than "
                        "its index says, or gone")
            with self._lock:
                self.present.update(e.oid for e in span.entries)
        else:
            for oid, data in pieces:
                actual = self.cache.hash_of(data)
                if not self._hashed(oid, actual, len(data)):
                    self._found("pack", span.pack, oid, f"its bytes hash to {actual}")
        self.progress.relative_update(len(span.entries))

    def plain(self, oids: list[Oid], jobs: int) -> int:
        """Hash every plain object as it streams in; how many were still there."""

        def one(oid: Oid) -> bool:
            try:
                with self.store.open(oid) as f:
                    actual, size = hash_stream(f, self.cache.algorithm)
            except MissingObjectError:
                return False  # deleted since the listing
            finally:
                self.progress.relative_update(1)
            if not self._hashed(oid, actual, size):
                self._found("object", oid, None, f"its bytes hash to {actual}")
            return True

        return sum(run_parallel(one, oids, jobs))

    def recipes(self, oids: list[Oid], jobs: int) -> None:
        """Each recipe parses and lists chunks the remote holds good, of the sizes it says."""

        def one(oid: Oid) -> None:
            try:
                recipe = self.index.recipe(oid)
            except MissingObjectError:
                return  # deleted since the listing
            except CorruptObjectError as exc:
                self._found("recipe", oid, None, f"it does not parse: {_reason(exc)}")
                return
            finally:
                self.progress.relative_update(1)
            for chunk in recipe.chunks:
                size = self.good.get(chunk.oid)
                if chunk.oid not in self.present:
                    self._found("recipe", oid, chunk.oid, "the chunk is not on the remote")
                elif size is None:
                    self._found("recipe", oid, chunk.oid, "the chunk is corrupt")
                elif size != chunk.size:
                    self._found("recipe", oid, chunk.oid,
                                f"the chunk has {size} bytes, not {chunk.size}")

        run_parallel(one, oids, jobs)


def _reason(exc: CorruptObjectError) -> str:
    """What is wrong, out of a parser's "<what> from <where> is corrupt: <reason>" (the piece
    and the remote are named already)."""
    return exc.message.partition(" is corrupt: ")[2] or exc.message
