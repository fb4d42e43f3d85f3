"""The benchmark's data: deterministic trees of files, and the W3 change applied to W2.

Every byte comes from `random.Random(seed)`, so a workload is the same on every machine and
in every run. A generated tree is kept in the work folder with a stamp naming its spec, and
reused while the spec is unchanged.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
CHUNK = 16 * MIB  # a large file is written in pieces of this size


@dataclass(frozen=True)
class Change:
    """W3: a share of the files rewritten with new bytes, and some files added."""

    rewritten: int
    added: int
    seed: int = 3


@dataclass(frozen=True)
class Workload:
    name: str
    target: str  # what is added: a file or a folder at the repo root
    files: int
    min_size: int
    max_size: int
    folders: int  # 0: `target` is one file
    seed: int
    change: Change | None = None
    sync: bool = True  # push and pull it (W4 is for add and status at scale only)

    @property
    def is_file(self) -> bool:
        return self.folders == 0

    def describe(self) -> str:
        if self.is_file:
            return f"one {self.max_size / MIB:,.0f} MiB random file"
        sizes = f"{self.min_size:,}-{self.max_size:,} B"
        if self.min_size >= KIB:
            sizes = f"{self.min_size // KIB}-{self.max_size // KIB} KiB"
        elif self.max_size >= KIB:
            sizes = f"{self.min_size:,} B-{self.max_size // KIB} KiB"
        text = f"{self.files:,} files of {sizes} in {self.folders} folders"
        if self.change:
            text += (f"; W3: {self.change.rewritten:,} rewritten, "
                     f"{self.change.added:,} added")
        return text


def workloads(*, quick: bool) -> dict[str, Workload]:
    """W1, W2 (with W3 as its change) and W4, full size or `--quick` size."""
    if quick:
        return {
            "W1": Workload("W1", "big.bin", 1, 64 * MIB, 64 * MIB, 0, seed=1),
            "W2": Workload("W2", "data", 2_000, KIB, 32 * KIB, 100, seed=2,
                           change=Change(rewritten=20, added=10)),
            "W4": Workload("W4", "data", 20_000, 1, 64, 100, seed=4, sync=False),
        }
    return {
        "W1": Workload("W1", "big.bin", 1, 2 * GIB, 2 * GIB, 0, seed=1),
        "W2": Workload("W2", "data", 20_000, KIB, 32 * KIB, 100, seed=2,
                       change=Change(rewritten=200, added=100)),
        "W4": Workload("W4", "data", 200_000, 1, 64, 1_000, seed=4, sync=False),
    }


def path_of(workload: Workload, index: int, prefix: str = "f") -> str:
    if workload.is_file:
        return workload.target
    return f"{workload.target}/d{index % workload.folders:04}/{prefix}{index:07}.bin"


def _write(path: Path, rng: random.Random, size: int) -> None:
    """Write `size` random bytes to a new file at `path` (a temp name renamed into place:
    a new inode, so no stat cache can mistake it for the file it replaces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as out:
        while size:
            piece = min(size, CHUNK)
            out.write(rng.randbytes(piece))
            size -= piece
    os.replace(tmp, path)


def generate(workload: Workload, root: Path) -> Path:
    """The tree of `workload` under `root` (made, or reused when its stamp matches)."""
    stamp = root / "spec.json"
    spec = json.dumps(asdict(workload), sort_keys=True)
    if stamp.exists() and stamp.read_text() == spec:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(workload.seed)
    for index in range(workload.files):
        _write(root / path_of(workload, index), rng, rng.randint(workload.min_size,
                                                                workload.max_size))
    stamp.write_text(spec)
    return root


def apply_change(workload: Workload, repo: Path) -> list[str]:
    """Turn the W2 tree in `repo` into W3; the same bytes every time it is applied.

    Returns the paths rewritten and added, relative to `repo`.
    """
    assert workload.change is not None
    change = workload.change
    rng = random.Random(change.seed)
    picked = sorted(rng.sample(range(workload.files), change.rewritten))
    paths = [path_of(workload, index) for index in picked]
    paths += [path_of(workload, index, prefix="new") for index in range(change.added)]
    for path in paths:
        _write(repo / path, rng, rng.randint(workload.min_size, workload.max_size))
    return paths
