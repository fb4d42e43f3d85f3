"""Moving objects between the cache and a remote: only what the other side lacks, largest
first, in parallel, each retried on transient faults, every download verified.

A failure of one object does not stop the others; the result says which
failed and why, and a rerun moves only what is still missing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from dvlite.errors import DiskFullError, DvliteError, RemoteError
from dvlite.fsutil import NO_PROGRESS, Progress, run_parallel

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dvlite.storage.hashing import Oid
    from dvlite.storage.odb import ObjectStore
    from dvlite.storage.remote_store import RemoteStore

T = TypeVar("T")

RETRIES = 3  # attempts per object after the first, for transient faults only
_BACKOFF = 0.25  # seconds before the first retry; doubles each time


@dataclass(frozen=True)
class TransferResult:
    transferred: tuple[Oid, ...]
    skipped: tuple[Oid, ...]  # already on the other side
    failed: dict[Oid, str]  # oid → why

    def __add__(self, other: TransferResult) -> TransferResult:
        return TransferResult(self.transferred + other.transferred,
                              self.skipped + other.skipped, {**self.failed, **other.failed})


EMPTY = TransferResult((), (), {})


def upload(
    cache: ObjectStore, remote: RemoteStore, sizes: Mapping[Oid, int], *, jobs: int,
    progress: Progress = NO_PROGRESS, retries: int = RETRIES,
) -> TransferResult:
    """Copy objects (oid → size) the remote lacks from the cache to it."""
    # asking the remote what it has meets the same transient faults as the transfers
    todo = _with_retries(lambda: remote.missing(sizes, jobs=jobs), retries)
    return _run(sizes, todo, lambda oid: remote.put_file(cache.path(oid), oid),
                jobs=jobs, progress=progress, retries=retries)


def download(
    remote: RemoteStore, cache: ObjectStore, sizes: Mapping[Oid, int], *, jobs: int,
    progress: Progress = NO_PROGRESS, retries: int = RETRIES,
) -> TransferResult:
    """Copy objects (oid → size) the cache lacks from the remote, verifying each."""
    todo = cache.missing(sizes)

    def fetch(oid: Oid) -> None:
        if remote.local:  # hashed as it is copied: each byte read once
            with remote.open(oid) as stream:
                cache.add_stream(stream, oid, source=remote.name, size=sizes[oid] or None)
        else:
            cache.add_download(lambda tmp: remote.get_file(oid, tmp), oid, source=remote.name,
                               size=sizes[oid] or None)

    return _run(sizes, todo, fetch, jobs=jobs, progress=progress, retries=retries)


def _run(
    sizes: Mapping[Oid, int], todo: set[Oid], move: Callable[[Oid], None], *, jobs: int,
    progress: Progress, retries: int,
) -> TransferResult:
    ordered = sorted(todo, key=lambda oid: (-sizes[oid], oid))  # the long poles start first
    progress.set_size(len(ordered))

    def one(oid: Oid) -> str | None:
        try:
            _with_retries(lambda: move(oid), retries)
        except DiskFullError:
            raise  # the other objects would fail alike: stop, and say it once
        except DvliteError as exc:
            return exc.message
        finally:
            progress.relative_update(1)
        return None

    outcomes = run_parallel(one, ordered, jobs)
    failed = {oid: why for oid, why in zip(ordered, outcomes, strict=True) if why is not None}
    return TransferResult(
        tuple(oid for oid in ordered if oid not in failed),
        tuple(sorted(set(sizes) - todo)),
        failed,
    )


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
