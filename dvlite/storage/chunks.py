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
from typing import TYPE_CHECKING, cast

from dvlite.errors import CorruptObjectError
from dvlite.fsutil import atomic_write
from dvlite.storage.hashing import Oid, hash_bytes, is_oid, new_hasher

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping
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
            done = cut.offset // mmap.PAGESIZE * mmap.PAGESIZE
            if done - released >= _RELEASE_EVERY:
                # pages read stay mapped, and count as this process's memory, until let go;
                # they stay in the page cache, so the upload that follows still finds them
                mapped.madvise(mmap.MADV_DONTNEED, released, done - released)
                released = done
    return tuple(chunks), Oid(whole.hexdigest())


_RELEASE_EVERY = 16 << 20  # bytes of a mapping read between two releases of its pages


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
             source: str, jobs: int, local: Mapping[Oid, tuple[Oid, int, int]]) -> None:
    """Put the file of ``recipe`` back together into ``cache``.

    Each chunk is read from a cached object that holds it (``local``) or else fetched with
    ``fetch``, ``jobs`` at a time, at most ``jobs`` + 1 chunks ahead of the writing, so memory
    stays bounded whatever the file's size; copies of a chunk within that window are fetched
    once. Every chunk is checked against its oid and the whole against ``recipe.oid``; on any
    failure nothing is stored.
    """

    def checked(data: bytes, chunk: Chunk, where: str) -> bytes:
        if len(data) != chunk.size or hash_bytes(data, cache.algorithm) != chunk.oid:
            raise CorruptObjectError(
                f"chunk {chunk.oid} (bytes {chunk.offset}-{chunk.offset + chunk.size} of "
                f"{recipe.oid}) from {where} is corrupt; the file was not stored",
                hint="run `dvlite fsck` on the cache and on the remote, then pull again",
            )
        return data

    def piece(chunk: Chunk) -> bytes:
        held = local.get(chunk.oid)
        data = _read_local(cache, held) if held is not None else None
        if data is not None and len(data) == chunk.size \
                and hash_bytes(data, cache.algorithm) == chunk.oid:
            return data
        # not in the cache, or its cached copy went bad (`dvlite fsck` says which): the remote's
        return checked(fetch(chunk), chunk, source)

    def pieces(pool: ThreadPoolExecutor) -> Generator[bytes, None, None]:
        ahead: collections.deque[tuple[Oid, Future[bytes]]] = collections.deque()
        # a chunk repeated nearby (a run of zeros cuts into equal chunks) is fetched once:
        # the futures in the window and the last one written serve every copy of it
        near: dict[Oid, Future[bytes]] = {}
        todo = iter(recipe.chunks)
        try:
            while True:
                while len(ahead) <= workers and (chunk := next(todo, None)) is not None:
                    if chunk.oid not in near:
                        near[chunk.oid] = pool.submit(piece, chunk)
                    ahead.append((chunk.oid, near[chunk.oid]))
                if not ahead:
                    return
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


def _read_local(cache: ObjectStore, held: tuple[Oid, int, int]) -> bytes | None:
    """A chunk's bytes out of the cached object holding it; None if that object has gone
    (a gc since ``local`` was made): the chunk is then fetched instead."""
    holder, offset, size = held
    try:
        fd = os.open(cache.path(holder), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
