"""Peak memory of chunks and packs on a folder remote, measured in a real child process.

A folder has no latency to hide, so what travels to and from it is held a little at a time: a
file being chunked keeps about one chunk of its mapping resident, a chunked file comes back
chunk by chunk straight into its temp file, and packed objects are read in short ranges. With
whole windows of chunks and whole packs in memory, as on S3, each of these took 18 to 43 MiB
more (push 60 MiB, pull of the big file 72 to 78 MiB, of the folder 69 MiB; now 42, 36, 37).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from tests.ops.support import snapshot
from tests.remote.chunks_packs import MIB, dvl
from tests.remote.test_requests import peak_rss

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import TmpRepo

    Clone = Callable[[TmpRepo], TmpRepo]

BIG = 192 * MIB  # chunked with the default settings: about 48 chunks of 2 to 16 MiB
SMALL = 1500  # files of 24 KiB in `data`: two packs of the default 32 MiB
PEAK_LIMIT = 50 * MIB


def gen(root: Path) -> None:
    rand = random.Random(7)
    with (root / "big.bin").open("wb") as f:
        for _ in range(BIG // (4 * MIB)):
            f.write(rand.randbytes(4 * MIB))
    (root / "data").mkdir()
    for i in range(SMALL):
        (root / "data" / f"f{i:04}").write_bytes(rand.randbytes(24 << 10))


@pytest.mark.slow
def test_chunks_and_packs_move_to_a_folder_remote_and_back_in_bounded_memory(
    tmp_repo: TmpRepo, clone: Clone, tmp_path: Path,
) -> None:
    remote = tmp_path / "remote"
    gen(tmp_repo.root)
    dvl(tmp_repo, "add", "big.bin", "data")
    tmp_repo.git_commit("data")
    dvl(tmp_repo, "remote", "add", "-d", "--local", "folder", str(remote))

    pushed = peak_rss(tmp_repo.root, "push")

    assert pushed < PEAK_LIMIT, f"push peaked at {pushed / MIB:.0f} MiB"
    # the push went up as chunks and packs: what the pulls below read
    assert len(list((remote / "recipes").iterdir())) == 1
    assert len([p for p in (remote / "packs").iterdir() if p.suffix == ".idx"]) == 2
    other = clone(tmp_repo)
    dvl(other, "remote", "add", "-d", "--local", "folder", str(remote))
    for target in ("big.bin", "data"):
        pulled = peak_rss(other.root, "pull", target)
        assert pulled < PEAK_LIMIT, f"pull of {target} peaked at {pulled / MIB:.0f} MiB"
    assert (other.root / "big.bin").read_bytes() == (tmp_repo.root / "big.bin").read_bytes()
    assert snapshot(other.root / "data") == snapshot(tmp_repo.root / "data")
