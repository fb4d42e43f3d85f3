"""``dvlite fsck``: verify every cached object against its oid, quarantine bad ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.fsutil import NO_PROGRESS, Progress, run_parallel
from dvlite.workspace import default_jobs

if TYPE_CHECKING:
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid


@dataclass(frozen=True)
class FsckResult:
    checked: int
    quarantined: tuple[tuple[Oid, str], ...]  # (oid, where the bad bytes were moved)


def fsck(repo: Repo, *, progress: Progress = NO_PROGRESS) -> FsckResult:
    with repo.lock():
        oids = list(repo.cache.iter_oids())
        progress.set_size(len(oids))

        def check(oid: Oid) -> bool:
            good = repo.cache.verify(oid)
            progress.relative_update(1)
            return good

        verdicts = run_parallel(check, oids, default_jobs(repo))
        bad = [oid for oid, good in zip(oids, verdicts, strict=True) if not good]
        return FsckResult(len(oids), tuple((oid, repo.cache.quarantine(oid)) for oid in bad))
