"""Content-defined chunks of large files, and the recipes that list them.

A large file travels to remotes as chunks (each an object under its own oid) plus a recipe
naming them in order; its own oid stays the hash of its whole bytes, so nothing above the
store notices. FastCDC cuts where the content says, not at fixed offsets, so bytes inserted
or removed in the middle of a file change only the chunks around the edit. The chunk sizes
were chosen by measurement: docs/chunks-and-packs.md, "Choosing chunk sizes".
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.fsutil import atomic_write
from dvlite.storage.hashing import CHUNK_SIZE, Oid, hash_bytes, is_oid, new_hasher

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
    from concurrent.futures import Future

    from dvlite.storage.odb import ObjectStore

# FastCDC's minimum, average and maximum chunk sizes. With a minimum of half the average
# FastCDC scans about half of each chunk rather than three quarters: a fifth less CPU than a
# 1 MiB minimum, for the same sharing (measured in docs/chunks-and-packs.md)
CHUNK_MIN = 2 << 20
CHUNK_AVG = 4 << 20
CHUNK_MAX = 16 << 20
DEFAULT_CHUNK_MIN_SIZE = 8 << 20  # files from this size are pushed as chunks

_MAGIC = "dvlite-recipe 1"
_SIZE = re.compile(r"0|[1-9][0-9]*")  # one spelling per number: recipes are canonical


@dataclass(frozen=True)
class Chunk:
    oid: Oid
    offset: int  # in the whole file
    size: int


@dataclass(frozen=True)
class Recipe:
    """The chunks a file's bytes are made of: in file order, contiguous, adding up to it."""

    oid: Oid  # the whole file's
    size: int
    chunks: tuple[Chunk, ...]

    def to_bytes(self, algorithm: str) -> bytes:
        lines = [f"{_MAGIC} {algorithm}", f"{self.oid} {self.size}"]
        lines += [f"{chunk.oid} {chunk.size}" for chunk in self.chunks]
        return "".join(line + "\n" for line in lines).encode("ascii")

    @classmethod
    def parse(cls, data: bytes, oid: Oid, *, algorithm: str, source: str) -> Recipe:
        """The recipe of ``oid`` in ``data``, checked line by line; anything else is a
        CorruptObjectError naming ``source``."""

        def corrupt(why: str) -> CorruptObjectError:
            return CorruptObjectError(
                f"recipe of {oid} from {source} is corrupt: {why}",
                hint="`dvlite fsck --remote --repair` takes it off the remote; then push the "
                     "file again from a clone that has it",
            )

        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise corrupt("it is not ASCII text") from None
        if not text.endswith("\n"):
            raise corrupt("it does not end with a newline")
        lines = text[:-1].split("\n")
        if lines[0] != f"{_MAGIC} {algorithm}":
            raise corrupt(f"its first line is not `{_MAGIC} {algorithm}`")
        pairs = [_pair(line, algorithm) for line in lines[1:]]
        if not pairs:
            raise corrupt("it names no file")
        for number, pair in enumerate(pairs, start=2):
            if pair is None:
                raise corrupt(f"line {number} is not `<oid> <size>`")
        (whole, size), *rest = (pair for pair in pairs if pair is not None)
        if whole != oid:
            raise corrupt(f"it is the recipe of {whole}")
        chunks: list[Chunk] = []
        offset = 0
        for chunk_oid, chunk_size in rest:
            if chunk_size == 0:
                raise corrupt(f"chunk {chunk_oid} is empty")
            chunks.append(Chunk(chunk_oid, offset, chunk_size))
            offset += chunk_size
        if offset != size:
            raise corrupt(f"its chunks add up to {offset} bytes, not {size}")
        return cls(oid, size, tuple(chunks))


def _pair(line: str, algorithm: str) -> tuple[Oid, int] | None:
    """``<oid> <size>`` read strictly, or None."""
    oid, space, size = line.partition(" ")
    if not space or not is_oid(oid, algorithm) or not _SIZE.fullmatch(size):
        return None
    return Oid(oid), int(size)


def chunk_file(path: str, oid: Oid, algorithm: str) -> Recipe:
    """Cut the file at ``path`` (whose oid is ``oid``) into content-defined chunks.

    The file is mapped into memory and read once: FastCDC finds the cuts in the mapping and
    each chunk is hashed from it, while the whole is hashed too, so a file that is not what
    ``oid`` says (bit rot in the cache) yields a CorruptObjectError, never a wrong recipe.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < CHUNK_MIN:  # one chunk, and mmap refuses empty files
            stored = hash_bytes(f.read(), algorithm)
            chunks: tuple[Chunk, ...] = (Chunk(stored, 0, size),) if size else ()
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                mapped.madvise(mmap.MADV_SEQUENTIAL)
                chunks, stored = _cut(mapped, algorithm)
    if stored != oid:
        raise CorruptObjectError(
            f"`{path}` does not hash to {oid}: it changed or is corrupt",
            hint="run `dvlite fsck` to find and quarantine corrupt objects",
        )
    return Recipe(oid, size, chunks)


def _cut(mapped: mmap.mmap, algorithm: str) -> tuple[tuple[Chunk, ...], Oid]:
    """The chunks of a mapped file and the hash of the whole. Every slice of the mapping is
    released before this returns, so the caller can close it."""
    # 20 ms of imports (fastcdc's package pulls in click): paid by pushes only
    from fastcdc.fastcdc_cy import fastcdc_cy  # type: ignore[import-untyped]  # noqa: PLC0415

    whole = new_hasher(algorithm)
    chunks: list[Chunk] = []
    released = 0  # the mapping's pages below this were let go
    with memoryview(mapped) as view:
        for cut in fastcdc_cy(view, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, False, None):
            with view[cut.offset:cut.offset + cut.length] as piece:
                hasher = new_hasher(algorithm)
                # both hashers read any buffer; the cast spares a copy of each chunk
                hasher.update(cast("bytes", piece))
                whole.update(cast("bytes", piece))
            chunks.append(Chunk(Oid(hasher.hexdigest()), cut.offset, cut.length))
            # pages read stay mapped, and count as this process's memory, until let go: let
            # each chunk's go once it is hashed, so the mapping holds about one chunk (up to
            # CHUNK_MAX) at a time. They stay in the page cache for the upload that follows.
            done = (cut.offset + cut.length) // mmap.PAGESIZE * mmap.PAGESIZE
            if done > released:
                mapped.madvise(mmap.MADV_DONTNEED, released, done - released)
                released = done
    return tuple(chunks), Oid(whole.hexdigest())


class RecipeStore:
    """The recipes kept beside a local ObjectStore's objects: <root>/recipes/<2>/<30>."""

    def __init__(self, cache: ObjectStore) -> None:
        self.cache = cache
        self.root = os.path.join(cache.root, "recipes")

    def path(self, oid: Oid) -> str:
        return os.path.join(self.root, oid[:2], oid[2:])

    def get(self, oid: Oid) -> Recipe | None:
        """The recipe of ``oid``, or None: none kept, or a corrupt one (then removed, so that
        the next ``of`` writes a good one)."""
        try:
            with open(self.path(oid), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            return Recipe.parse(data, oid, algorithm=self.cache.algorithm,
                                source=f"`{self.path(oid)}`")
        except CorruptObjectError:
            self.delete(oid)
            return None

    def put(self, recipe: Recipe) -> None:
        path = self.path(recipe.oid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, recipe.to_bytes(self.cache.algorithm))

    def of(self, oid: Oid) -> Recipe:
        """The recipe of the cached object ``oid``: kept, or computed now and kept."""
        recipe = self.get(oid)
        if recipe is None:
            try:
                recipe = chunk_file(self.cache.path(oid), oid, self.cache.algorithm)
            except FileNotFoundError:
                raise self.cache.missing_error(oid) from None
            self.put(recipe)
        return recipe

    def delete(self, oid: Oid) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))

    def iter_oids(self) -> Iterator[Oid]:
        try:
            prefixes = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return
        for prefix in prefixes:
            with contextlib.suppress(NotADirectoryError):
                for rest in sorted(os.listdir(os.path.join(self.root, prefix))):
                    if is_oid(prefix + rest, self.cache.algorithm):
                        yield Oid(prefix + rest)

    def local_chunks(self) -> dict[Oid, tuple[Oid, int, int]]:
        """chunk oid -> (cached object holding it, offset, size), from the recipes of the
        objects in the cache: the chunks a download need not fetch."""
        oids = list(self.iter_oids())
        held: dict[Oid, tuple[Oid, int, int]] = {}
        for oid in set(oids) - self.cache.missing(oids):
            recipe = self.get(oid)
            for chunk in recipe.chunks if recipe is not None else ():
                held.setdefault(chunk.oid, (oid, chunk.offset, chunk.size))
        return held


def assemble(recipe: Recipe, cache: ObjectStore, fetch: Callable[[Chunk], bytes], *,
             source: str, jobs: int, local: Mapping[Oid, tuple[Oid, int, int]],
             open_chunk: Callable[[Oid], BinaryIO] | None = None) -> None:
    """Put the file of ``recipe`` back together into ``cache``.

    A chunk a file on this machine holds is copied into place a block at a time: from a cached
    object (``local``; checked first, and fetched instead if that copy went bad or went) or,
    with ``open_chunk``, from a folder remote's own object (checked as it is copied; one the
    folder keeps otherwise, in a pack, is fetched). The others are fetched with ``fetch``,
    ``jobs`` at a time, at most ``jobs`` + 1 chunks ahead of the writing. Either way memory
    stays bounded whatever the file's size; copies of a chunk within the window are fetched
    once. Every chunk is checked against its oid and the whole against ``recipe.oid``; on any
    failure nothing is stored.
    """

    def corrupt(chunk: Chunk, where: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"chunk {chunk.oid} (bytes {chunk.offset}-{chunk.offset + chunk.size} of "
            f"{recipe.oid}) from {where} is corrupt; the file was not stored",
            hint="run `dvlite fsck` on the cache and on the remote, then pull again",
        )

    def fetched(chunk: Chunk) -> bytes:
        data = fetch(chunk)
        if len(data) != chunk.size or hash_bytes(data, cache.algorithm) != chunk.oid:
            raise corrupt(chunk, source)
        return data

    def at_hand(chunk: Chunk) -> Iterator[bytes] | None:
        """The chunk's bytes read from disk, block by block, or None: fetch it."""
        held = local.get(chunk.oid)
        # read twice, to check it before any of it is written: a bad copy is then fetched
        if held is not None and _digest(_cached_range(cache, held), cache.algorithm) == chunk.oid:
            return _cached_range(cache, held)
        # not in the cache, or its cached copy went bad (`dvlite fsck` says which): the remote's
        if open_chunk is None:
            return None
        try:
            stream = open_chunk(chunk.oid)
        except MissingObjectError:
            return None
        return copied(_blocks(stream, chunk.size), chunk)

    def copied(blocks: Iterator[bytes], chunk: Chunk) -> Iterator[bytes]:
        """``blocks`` passed on as they come, and checked once all have (a mismatch drops
        the file being written)."""
        hasher = new_hasher(cache.algorithm)
        for block in blocks:
            hasher.update(block)
            yield block
        if hasher.hexdigest() != chunk.oid:
            raise corrupt(chunk, source)

    def pieces(pool: ThreadPoolExecutor) -> Generator[bytes, None, None]:
        # the window holds fetches only: what is at hand on disk is read when its turn comes
        wanted = iter(()) if open_chunk is not None else \
            (c for c in recipe.chunks if c.oid not in local)
        ahead: collections.deque[tuple[Oid, Future[bytes]]] = collections.deque()
        # a chunk repeated nearby (a run of zeros cuts into equal chunks) is fetched once:
        # the futures in the window and the last one written serve every copy of it
        near: dict[Oid, Future[bytes]] = {}
        try:
            for chunk in recipe.chunks:
                while len(ahead) <= workers and (more := next(wanted, None)) is not None:
                    if more.oid not in near:
                        near[more.oid] = pool.submit(fetched, more)
                    ahead.append((more.oid, near[more.oid]))
                if open_chunk is not None or chunk.oid in local:
                    blocks = at_hand(chunk)
                    yield from (blocks if blocks is not None else [fetched(chunk)])
                    continue
                oid, future = ahead.popleft()
                near = {**dict(ahead), oid: future}  # what the window still holds
                yield future.result()
        finally:  # a failure: drop what has not started
            for _, future in ahead:
                future.cancel()

    if cache.exists(recipe.oid):
        return
    workers = max(1, jobs)
    # closing() stops the window on a failure in add_pieces too (a full disk), before the
    # pool waits for its threads
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            contextlib.closing(pieces(pool)) as stream:
        cache.add_pieces(recipe.oid, stream, source=source, size=recipe.size)


def _cached_range(cache: ObjectStore, held: tuple[Oid, int, int]) -> Iterator[bytes]:
    """A chunk's bytes out of the cached object holding it, block by block; none if that
    object has gone (a gc since ``local`` was made): the chunk is then fetched instead."""
    holder, offset, size = held
    try:
        f = open(cache.path(holder), "rb", buffering=0)  # noqa: SIM115  (_blocks closes it)
    except FileNotFoundError:
        return iter(())
    return _blocks(f, size, offset)


def _blocks(f: BinaryIO, size: int, offset: int = 0) -> Iterator[bytes]:
    """Up to ``size`` bytes of ``f`` from ``offset``, a block at a time; then closes it.

    Every block is read into the same buffer, so each must be used up before the next is
    asked for (``add_pieces`` hashes and writes it first): with a new buffer for each block,
    a page fault per page, a 2 GiB fetch to tmpfs took 2.4 to 4.0 s, against 1.9 to 2.2 s."""
    buffer = memoryview(bytearray(min(size, CHUNK_SIZE)))
    with f:
        while size > 0 and (got := os.preadv(f.fileno(), [buffer[:size]], offset)):
            size -= got
            offset += got
            # hashers and files take any buffer: the cast spares a copy of each block
            yield cast("bytes", buffer[:got])


def _digest(blocks: Iterable[bytes], algorithm: str) -> Oid:
    hasher = new_hasher(algorithm)
    for block in blocks:
        hasher.update(block)
    return Oid(hasher.hexdigest())
