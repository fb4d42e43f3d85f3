"""Moving objects between the cache and a remote: only what the other side lacks, largest
first, in parallel, each retried on transient faults, every download verified.

Going up, big files travel as the chunks the remote lacks plus a recipe, and many small
objects as packs (``Layout``); coming down, every form is read (``remote_index``).

A failure of one object does not stop the others; the result says which
failed and why, and a rerun moves only what is still missing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from dvlite.errors import (
    CorruptObjectError,
    DiskFullError,
    DvliteError,
    MissingObjectError,
    RemoteError,
)
from dvlite.fsutil import NO_PROGRESS, Progress, run_parallel
from dvlite.storage.chunks import RecipeStore, assemble
from dvlite.storage.packs import (
    PACK_MIN_OBJECTS,
    PACK_OBJECT_MAX,
    PackWriter,
    batches,
    spans,
    split,
)
from dvlite.storage.remote_index import RemoteIndex

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dvlite.storage.chunks import Chunk
    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.packs import Span
    from dvlite.storage.remote_store import RemoteStore

T = TypeVar("T")

RETRIES = 3  # attempts per object after the first, for transient faults only
_BACKOFF = 0.25  # seconds before the first retry; doubles each time
REPAIR_HINT = ("`dvlite fsck --remote --repair` takes the damage off the remote; then push the "
               "data again from a clone that has it")
# a read of a pack's neighbours goes up to this: each range is held whole in memory, and
# twice for a moment (s3fs joins the body's pieces), LARGE_AT_ONCE of them at a time. 64 MiB
# (a default pack in one request) pulled 20,000 small files from moto_server in about half
# the time, but peaked at 287 MiB, against DVC's 153 MiB; 16 MiB at 185 MiB, 8 MiB at 139 MiB
RANGE_MOST = 8 << 20
# ... and a read from a folder remote is a system call: short reads hide no latency and hold
# little memory (a pull of 20,000 small files peaked at 151 MiB with 64 MiB reads, 68 MiB
# with 4 MiB ones, 57 MiB with these)
RANGE_ON_DISK = 1 << 20
LARGE_AT_ONCE = 3  # chunks or packs moving in parallel: enough to fill a link, memory bounded


@dataclass(frozen=True)
class TransferResult:
    transferred: tuple[Oid, ...]
    skipped: tuple[Oid, ...]  # already on the other side
    failed: dict[Oid, str]  # oid → why

    def __add__(self, other: TransferResult) -> TransferResult:
        return TransferResult(self.transferred + other.transferred,
                              self.skipped + other.skipped, {**self.failed, **other.failed})


EMPTY = TransferResult((), (), {})


@dataclass(frozen=True)
class Layout:
    """How objects go up to a remote: files from ``chunk_min_size`` bytes as chunks and a
    recipe, small objects in packs of about ``pack_size`` bytes (0 turns either off)."""

    chunk_min_size: int = 0
    pack_size: int = 0


@dataclass(frozen=True)
class _Unit:
    """One piece of work that moves ``oids`` (an object, a pack, a chunk), retried whole."""

    oids: tuple[Oid, ...]
    size: int
    move: Callable[[], None]


def upload(
    cache: ObjectStore, remote: RemoteStore, sizes: Mapping[Oid, int], *, jobs: int,
    progress: Progress = NO_PROGRESS, retries: int = RETRIES, layout: Layout = Layout(),
    index: RemoteIndex | None = None,
) -> TransferResult:
    """Copy objects (oid → size) the remote lacks from the cache to it. ``index``: what a
    previous call of this command learnt of the remote's packs and recipes."""
    index = index or RemoteIndex(remote, cache)
    # asking the remote what it has meets the same transient faults as the transfers
    todo = _with_retries(lambda: index.missing(sizes, jobs=jobs), retries)
    chunked = {oid for oid in todo if 0 < layout.chunk_min_size <= sizes[oid]}
    small = {oid for oid in todo - chunked if sizes[oid] < PACK_OBJECT_MAX}
    if not layout.pack_size or len(small) < PACK_MIN_OBJECTS:
        small = set()
    plain = [_Unit((oid,), sizes[oid], partial(remote.put_file, cache.path(oid), oid))
             for oid in todo - chunked - small]
    packed = [_Unit(tuple(batch), sum(sizes[oid] for oid in batch),
                    partial(_put_pack, cache, index, batch, sizes))
              for batch in (batches({oid: sizes[oid] for oid in small}, layout.pack_size)
                            if small else [])]
    recipes = RecipeStore(cache)
    recipe_of = {oid: recipes.of(oid) for oid in sorted(chunked)}  # chunked here, once
    sources = {chunk.oid: (cache.path(recipe.oid), chunk)
               for recipe in recipe_of.values() for chunk in recipe.chunks}
    absent = _with_retries(lambda: index.missing(sources, jobs=jobs), retries) if sources else set()
    chunks = [_Unit((oid,), sources[oid][1].size,
                    partial(remote.put_range, sources[oid][0], sources[oid][1].offset,
                            sources[oid][1].size, oid))
              for oid in absent]
    progress.set_size(len(plain) + len(small) + len(chunks) + len(chunked))
    done, failed = _run(plain, jobs=jobs, progress=progress, retries=retries)
    # a chunk or a pack in flight is held in memory, whole or in parts, and some backends copy
    # it once more: a few at a time fill a link
    sent, failed_big = _run(packed + chunks, jobs=min(jobs, LARGE_AT_ONCE), progress=progress,
                            retries=retries)
    done += sent
    failed.update(failed_big)
    # a recipe goes up only once every chunk it lists is there
    whole = []
    for oid, recipe in recipe_of.items():
        lost = next((c.oid for c in recipe.chunks if c.oid in failed), None)
        if lost is None:
            whole.append(_Unit((oid,), 0, partial(index.put_recipe, recipe)))
        else:
            failed[oid] = f"chunk {lost}: {failed[lost]}"
    only_chunks = absent - todo
    for oid in only_chunks:
        failed.pop(oid, None)  # said of the files they belong to
    sent, failed_recipes = _run(whole, jobs=jobs, progress=progress, retries=retries)
    done = [oid for oid in done if oid not in only_chunks] + sent
    return TransferResult(tuple(done), tuple(sorted(set(sizes) - todo)),
                          {**failed, **failed_recipes})


def _put_pack(cache: ObjectStore, index: RemoteIndex, batch: list[Oid],
              sizes: Mapping[Oid, int]) -> None:
    def fill(writer: PackWriter) -> None:
        for oid in batch:
            writer.add_file(oid, cache.path(oid), sizes[oid])

    index.send_pack(fill, sum(sizes[oid] for oid in batch))


def download(
    remote: RemoteStore, cache: ObjectStore, sizes: Mapping[Oid, int], *, jobs: int,
    progress: Progress = NO_PROGRESS, retries: int = RETRIES, index: RemoteIndex | None = None,
) -> TransferResult:
    """Copy objects (oid → size) the cache lacks from the remote, verifying each: out of packs
    a ranged read per run of neighbours, files with a recipe from their chunks (those the
    cache holds in other files are not fetched), the rest one by one."""
    todo = cache.missing(sizes)
    if not todo:
        return TransferResult((), tuple(sorted(sizes)), {})
    index = index or RemoteIndex(remote, cache)
    catalog = _with_retries(index.catalog, retries)
    packed = {oid for oid in todo if oid in catalog}
    rest = todo - packed
    chunked = _with_retries(index.recipe_oids, retries) & rest if rest else set()

    def fetch(oid: Oid) -> None:
        if remote.local:  # hashed as it is copied: each byte read once
            with remote.open(oid) as stream:
                cache.add_stream(stream, oid, source=remote.name, size=sizes[oid] or None)
        else:
            cache.add_download(lambda tmp: remote.get_file(oid, tmp), oid, source=remote.name,
                               size=sizes[oid] or None)

    def unpack(span: Span) -> None:
        source = f"pack {span.pack} on {remote.name}"
        corrupt: list[CorruptObjectError] = []
        for oid, data in split(span, index.read_span(span)):
            try:
                cache.add_bytes(data, oid, source=source)
            except CorruptObjectError as exc:  # its sound neighbours in the pack are kept
                corrupt.append(exc)
        if corrupt:
            raise corrupt[0]

    most = RANGE_ON_DISK if remote.local else RANGE_MOST
    ranges = [_Unit(tuple(e.oid for e in span.entries), span.end - span.start,
                    partial(unpack, span)) for span in spans(catalog, packed, most=most)]
    progress.set_size(len(todo))
    done, failed = _run([_Unit((oid,), sizes[oid], partial(fetch, oid))
                         for oid in rest - chunked], jobs=jobs, progress=progress, retries=retries)
    # each range is read whole into memory; from a folder no thread waits on a network, and
    # storing a pack's small objects is the metadata work that threads only fight over
    unpacked, failed_ranges = _run(ranges, jobs=1 if remote.local else min(jobs, LARGE_AT_ONCE),
                                   progress=progress, retries=retries)
    done += unpacked
    failed.update(failed_ranges)
    stored = set(failed) - cache.missing(failed)  # sound entries of a span with a corrupt one
    done += sorted(stored)
    failed = {oid: why for oid, why in failed.items() if oid not in stored}
    if chunked:  # one file at a time, its chunks in parallel (or, from a folder, in order)
        recipes = RecipeStore(cache)
        local = recipes.local_chunks()

        def rebuild(oid: Oid) -> None:
            recipe = index.recipe(oid)
            recipes.put(recipe)
            assemble(recipe, cache, lambda chunk: _chunk(index, chunk, retries),
                     source=remote.name, jobs=min(jobs, LARGE_AT_ONCE), local=local,
                     open_chunk=remote.open if remote.local else None)
            for chunk in recipe.chunks:  # the next version of this file shares most of them
                local.setdefault(chunk.oid, (oid, chunk.offset, chunk.size))

        more, more_failed = _run([_Unit((oid,), sizes[oid], partial(rebuild, oid))
                                  for oid in chunked], jobs=1, progress=progress, retries=retries)
        done += more
        failed.update(more_failed)
    return TransferResult(tuple(done), tuple(sorted(set(sizes) - todo)), failed)


def _chunk(index: RemoteIndex, chunk: Chunk, retries: int) -> bytes:
    # assemble checks every chunk it gets: no need to hash it here too
    data = _with_retries(lambda: index.read_object(chunk.oid, checked=False), retries)
    if data is None:
        raise MissingObjectError(f"chunk {chunk.oid} is not on {index.remote.name}",
                                 hint=REPAIR_HINT)
    return data


def _run(units: Sequence[_Unit], *, jobs: int, progress: Progress,
         retries: int) -> tuple[list[Oid], dict[Oid, str]]:
    """Do the units, largest first, in parallel: the oids moved, and those that failed → why."""
    ordered = sorted(units, key=lambda unit: (-unit.size, unit.oids))  # long poles start first

    def one(unit: _Unit) -> str | None:
        try:
            _with_retries(unit.move, retries)
        except DiskFullError:
            raise  # the other objects would fail alike: stop, and say it once
        except DvliteError as exc:
            return exc.message
        finally:
            progress.relative_update(len(unit.oids))
        return None

    outcomes = run_parallel(one, ordered, jobs)
    done: list[Oid] = []
    failed: dict[Oid, str] = {}
    for unit, why in zip(ordered, outcomes, strict=True):
        if why is None:
            done.extend(unit.oids)
        else:
            failed.update(dict.fromkeys(unit.oids, why))
    return done, failed


def _with_retries(action: Callable[[], T], retries: int) -> T:
    attempt = 0
    while True:
        try:
            return action()
        except RemoteError as exc:
            if not exc.retriable or attempt == retries:
                raise
        time.sleep(_BACKOFF * 2**attempt * random.uniform(0.5, 1.5))  # noqa: S311
        attempt += 1
