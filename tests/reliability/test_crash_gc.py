"""`dvlite gc --force` killed while it deletes: nothing referenced is ever deleted, and
running it again deletes exactly what an uninterrupted run does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.ops import gc
from dvlite.repo import Repo
from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

CACHE = "repo/.dvlite/cache"


def nothing_left(cloud: bool) -> Callable[[Path], None]:
    def check(base: Path) -> None:
        status_clean(base)
        with Repo.discover(str(base / "repo")) as repo:
            assert gc.plan(repo, cloud=cloud).empty

    return check


@pytest.mark.parametrize(("cloud", "timed", "progress"), [(False, 5, 8), (True, 4, 7)])
def test_gc(tmp_path: Path, crash_counts: Path, cloud: bool, timed: int, progress: int) -> None:
    projects.collectable(tmp_path / "template", files=200)
    args = ("gc", "--force", "--cloud") if cloud else ("gc", "--force")
    scenario = Scenario(" ".join(args), args, watch=(CACHE, "remote") if cloud else (CACHE,),
                        stores=(CACHE, "remote"), remotes=("remote",), done=nothing_left(cloud))
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=timed, progress=progress, interrupts=3)
