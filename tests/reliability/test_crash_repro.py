"""`dvlite repro` killed while its stage writes a large out or while dvlite stores it: the lock
never records outs the cache lacks, and running it again leaves the right outs, recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.ops.repro import repro
from dvlite.repo import Repo
from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean
from tests.reliability.crash_checks import file_digest, xxh

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

CACHE = "repo/.dvlite/cache"


def outs_right(base: Path) -> None:
    """The outs hold what the stage writes, the lock records them, nothing would run again."""
    root = base / "repo"
    status_clean(base)
    expected = b"".join(projects.data_chunks("stage", projects.STAGE_OUT))
    assert file_digest(root / "out" / "big.bin") == xxh(expected)
    assert len(list((root / "out" / "parts").iterdir())) == projects.STAGE_PARTS
    with Repo.discover(str(root)) as repo:
        result = repro(repo, dry_run=True)
    assert [s.action for s in result.stages] == ["skipped"]


def test_repro(tmp_path: Path, crash_counts: Path) -> None:
    projects.pipeline(tmp_path / "template")
    scenario = Scenario("repro", ("repro",), watch=("repo/out", CACHE), stores=(CACHE,),
                        done=outs_right)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=5, progress=10, interrupts=4)
