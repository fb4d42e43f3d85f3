"""Big files: streamed in chunks, never whole in memory, restored byte for byte."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import xxhash

from dvlite.ops.checkout import checkout

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

SIZE = 128 * 1024 * 1024  # many hashing chunks, and well above what add may hold in memory
MAX_RSS_KIB = 100 * 1024  # dvlite itself needs about 45 MiB
_REPORT_PEAK = """
import atexit, sys

def report() -> None:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(sys.argv[1], "w").write(line.split()[1])

atexit.register(report)
from dvlite.cli import main
main(sys.argv[2:])
"""


@pytest.mark.slow
def test_big_file_round_trip_in_bounded_memory(tmp_repo: TmpRepo) -> None:
    path = tmp_repo.root / "model.bin"
    expected_xxh = xxhash.xxh3_128()
    expected_sha = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(SIZE // (4 << 20)):
            block = os.urandom(4 << 20)
            f.write(block)
            expected_xxh.update(block)
            expected_sha.update(block)

    # its own process, reporting the peak of its own memory (VmHWM starts afresh at exec,
    # unlike ru_maxrss, which keeps the forked test runner's size)
    peak_file = tmp_repo.root.parent / "peak"
    subprocess.run([sys.executable, "-c", _REPORT_PEAK, str(peak_file), "add", "-q",
                    "model.bin"], cwd=tmp_repo.root, check=True)
    peak_kib = int(peak_file.read_text())
    assert peak_kib < MAX_RSS_KIB, f"add peaked at {peak_kib} KiB: not streamed"
    pointer = (tmp_repo.root / "model.bin.dvl").read_text()
    assert f'oid = "{expected_xxh.hexdigest()}"' in pointer
    assert f"size = {SIZE}" in pointer

    path.unlink()
    checkout(tmp_repo.repo, [str(path)])
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == expected_sha.hexdigest()
