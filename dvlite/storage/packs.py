"""Packs: many small objects in one remote file, found through an index.

A remote charges and throttles per request, so pushing a folder of 200,000
small files one object at a time is slow. A pack is the raw bytes of many
objects back to back; its index lists ``<oid> <offset> <size>`` for each, in
pack order. The pack id is the hash of the index bytes, so an index is
content-addressed like everything else and names the pack it describes.
Reading one object is one ranged read of its bytes; reading many coalesces
neighbours into a few larger reads (``spans``).

Index format (ASCII, one valid encoding)::

    dvlite-pack 1 <algorithm>
    <pack size>
    <oid> <offset> <size>        one line per object, by offset, contiguous from 0
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate
from operator import attrgetter
from typing import TYPE_CHECKING, BinaryIO, cast

from dvlite.errors import CorruptObjectError
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.links import copy_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

PACK_OBJECT_MAX = 1 << 20  # objects below this travel in packs
PACK_MIN_OBJECTS = 16  # a push with fewer small objects sends them one by one
DEFAULT_PACK_SIZE = 32 << 20

_MAGIC = "dvlite-pack 1"
# canonical decimals only (no sign, no leading zero); 19 digits bound int() work on junk
_NUMBER = rb"(?:0|[1-9][0-9]{0,18})"


@dataclass(frozen=True, slots=True)
class PackEntry:
    oid: Oid
    offset: int
    size: int


@dataclass(frozen=True)
class PackIndex:
    pack: str  # pack id = hash_bytes(to_bytes(algorithm), algorithm)
    size: int  # the pack file's length
    entries: tuple[PackEntry, ...]  # by offset, contiguous from 0, covering size; oids unique

    def to_bytes(self, algorithm: str) -> bytes:
        return _index_bytes(self.size, self.entries, algorithm)

    @classmethod
    def parse(cls, data: bytes, pack: str, *, algorithm: str, source: str) -> PackIndex:
        """The index ``data`` read from ``source``, checked strictly (it is trusted afterwards to
        locate bytes); anything wrong raises CorruptObjectError naming ``source``."""

        def corrupt(why: str) -> CorruptObjectError:
            return CorruptObjectError(
                f"pack index {pack} from {source} is corrupt: {why}",
                hint="`dvlite fsck --remote` lists what is damaged there; push again from a "
                     "clone that has the objects")

        if (actual := hash_bytes(data, algorithm)) != pack:
            raise corrupt(f"its bytes hash to {actual}")
        header, _, rest = data.partition(b"\n")
        if header != f"{_MAGIC} {algorithm}".encode():
            raise corrupt(f"the first line is not `{_MAGIC} {algorithm}`")
        size_line, newline, body = rest.partition(b"\n")
        if not newline or not re.fullmatch(_NUMBER, size_line):
            raise corrupt("the second line is not the pack size")
        entry = rb"[0-9a-f]{%d} %s %s\n" % (len(hash_bytes(b"", algorithm)), _NUMBER, _NUMBER)
        if not re.fullmatch(rb"(?:%s)*" % entry, body):
            good = cast("re.Match[bytes]", re.match(rb"(?:%s)*" % entry, body))
            line = body.count(b"\n", 0, good.end()) + 3
            raise corrupt(f"line {line} is not `<oid> <offset> <size>`")
        fields = body.decode("ascii").split()
        oids = cast("list[Oid]", fields[0::3])
        offsets = list(map(int, fields[1::3]))
        sizes = list(map(int, fields[2::3]))
        ends = list(accumulate(sizes, initial=0))
        if ends[:-1] != offsets:
            at = next(i for i, (o, e) in enumerate(zip(offsets, ends, strict=False)) if o != e)
            raise corrupt(f"{oids[at]} is at offset {offsets[at]}, not {ends[at]} (objects "
                          "lie back to back from 0)")
        size = int(size_line)
        if ends[-1] != size:
            raise corrupt(f"its objects fill {ends[-1]} bytes of a {size}-byte pack")
        if len(set(oids)) != len(oids):
            twice = next(oid for oid, n in Counter(oids).items() if n > 1)
            raise corrupt(f"{twice} is listed twice")
        with _no_gc():
            return cls(pack, size, tuple(map(PackEntry, oids, offsets, sizes)))


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while making many small objects: they hold no
    cycles, yet their allocations trigger collections that rescan the whole heap (the entries
    of a 200,000-entry index took 0.4 s to make with it on, 0.2 s with it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _index_bytes(size: int, entries: Iterable[PackEntry], algorithm: str) -> bytes:
    lines = "".join(f"{e.oid} {e.offset} {e.size}\n" for e in entries)
    return f"{_MAGIC} {algorithm}\n{size}\n{lines}".encode("ascii")


class PackWriter:
    """Writes a pack into an open binary file: add objects, then finish() -> PackIndex.

    The objects come from the trusted local cache and are not hashed again; the caller names
    the file, and uploads it before the index (only an index makes a pack visible).
    """

    def __init__(self, file: BinaryIO, algorithm: str) -> None:
        self._file = file
        self._algorithm = algorithm
        self._entries: list[PackEntry] = []
        self._oids: set[Oid] = set()
        self._size = 0
        try:
            self._fd: int | None = file.fileno()
        except io.UnsupportedOperation:  # an in-memory file: copy through Python
            self._fd = None

    def add_file(self, oid: Oid, path: str, size: int) -> None:
        """Append the object kept at ``path`` (``size`` bytes), copied in the kernel."""
        if oid in self._oids:
            return
        with open(path, "rb", buffering=0) as src:
            if (actual := os.fstat(src.fileno()).st_size) != size:
                raise CorruptObjectError(
                    f"object {oid} at `{path}` has {actual} bytes, not {size}",
                    hint="run `dvlite fsck` to find and quarantine damaged cache objects")
            if self._fd is None:
                self._file.write(src.read())
            else:
                self._file.flush()  # what add_bytes buffered goes first
                copy_bytes(src.fileno(), self._fd, size)
        self._append(oid, size)

    def add_bytes(self, oid: Oid, data: bytes) -> None:
        if oid in self._oids:
            return
        self._file.write(data)
        self._append(oid, len(data))

    def _append(self, oid: Oid, size: int) -> None:
        self._entries.append(PackEntry(oid, self._size, size))
        self._oids.add(oid)
        self._size += size

    def finish(self) -> PackIndex:
        """The index of what was added (the file is flushed, not closed)."""
        self._file.flush()
        entries = tuple(self._entries)
        data = _index_bytes(self._size, entries, self._algorithm)
        return PackIndex(hash_bytes(data, self._algorithm), self._size, entries)


def batches(sizes: Mapping[Oid, int], target: int) -> list[list[Oid]]:
    """The oids of ``sizes`` in oid order, cut into batches of about ``target`` bytes, one pack
    each; the same objects always give the same packs.

    A batch is closed when the next object would take it past ``target``, so a batch never
    holds more than ``target`` bytes, except a batch of one object bigger than ``target``
    alone. With objects below PACK_OBJECT_MAX and the default target, each closed batch is
    within 1 MiB of the target; the last batch may be small.
    """
    if target <= 0:
        raise ValueError(f"target must be positive, not {target}")
    out: list[list[Oid]] = []
    batch: list[Oid] = []
    filled = 0
    for oid in sorted(sizes):
        size = sizes[oid]
        if batch and filled + size > target:
            out.append(batch)
            batch, filled = [], 0
        batch.append(oid)
        filled += size
    if batch:
        out.append(batch)
    return out


@dataclass(frozen=True)
class PackLocation:
    pack: str
    entry: PackEntry


class PackCatalog:
    """Which pack holds what, merged from many indexes.

    An oid in several packs (a pack being rewritten by gc still exists beside its successor,
    or two clones packed the same object) is located in the pack with the smallest id: either
    copy is right, and choosing by id rather than by the order indexes were listed makes every
    reader pick the same pack, so the reads ``spans`` plans are reproducible.
    """

    def __init__(self, indexes: Iterable[PackIndex]) -> None:
        self.indexes: dict[str, PackIndex] = {index.pack: index for index in indexes}
        # two flat maps built in C (no object per oid): cheap for hundreds of thousands
        self._entry: dict[Oid, PackEntry] = {}
        self._pack: dict[Oid, str] = {}
        for pack in sorted(self.indexes, reverse=True):  # smaller ids overwrite larger
            entries = self.indexes[pack].entries
            oids = list(map(attrgetter("oid"), entries))
            self._entry.update(zip(oids, entries, strict=True))
            self._pack.update(dict.fromkeys(oids, pack))

    def where(self, oid: Oid) -> PackLocation | None:
        entry = self._entry.get(oid)
        return None if entry is None else PackLocation(self._pack[oid], entry)

    def __contains__(self, oid: object) -> bool:
        return oid in self._entry

    def oids(self) -> set[Oid]:
        return set(self._entry)


@dataclass(frozen=True)
class Span:
    pack: str
    start: int
    end: int  # exclusive
    entries: tuple[PackEntry, ...]  # those wanted, inside [start, end), by offset


def spans(catalog: PackCatalog, oids: Iterable[Oid], *, gap: int = 1 << 20,
          most: int = 16 << 20) -> list[Span]:
    """One ranged read per Span, covering the wanted ``oids`` that are in packs.

    Wanted objects of one pack whose gap is at most ``gap`` bytes share a read (reading the
    unwanted bytes between them is cheaper than another request), but no read is longer than
    ``most`` unless one object alone is. Oids no pack holds are left out: the caller reads them
    another way (plain objects or recipes). Spans come by pack id, then offset. A span of
    zero-size objects only is empty (start == end): it needs no read, ``split(span, b"")``.
    """
    by_pack: dict[str, list[PackEntry]] = {}
    for oid in set(oids):
        if (found := catalog.where(oid)) is not None:
            by_pack.setdefault(found.pack, []).append(found.entry)
    out: list[Span] = []
    for pack in sorted(by_pack):
        run: list[PackEntry] = []
        # an empty object shares its offset with the next one: size second keeps ends rising
        for entry in sorted(by_pack[pack], key=lambda e: (e.offset, e.size)):
            if run and (entry.offset - _end(run[-1]) > gap
                        or _end(entry) - run[0].offset > most):
                out.append(Span(pack, run[0].offset, _end(run[-1]), tuple(run)))
                run = []
            run.append(entry)
        out.append(Span(pack, run[0].offset, _end(run[-1]), tuple(run)))
    return out


def _end(entry: PackEntry) -> int:
    return entry.offset + entry.size


def split(span: Span, data: bytes) -> Iterator[tuple[Oid, bytes]]:
    """The wanted objects' bytes out of the bytes of ``span`` (the length is checked at once,
    before any is given). Not hashed here: callers store them through
    ``ObjectStore.add_bytes(data, oid)``, which verifies each."""
    if len(data) != span.end - span.start:
        raise CorruptObjectError(
            f"pack {span.pack} gave {len(data)} bytes for range {span.start}-{span.end}, "
            f"not {span.end - span.start}",
            hint="the pack does not match its index: push its objects again")
    view = memoryview(data)
    return ((e.oid, bytes(view[e.offset - span.start:_end(e) - span.start]))
            for e in span.entries)
