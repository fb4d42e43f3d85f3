"""`dvlite checkout` killed while it switches the workspace to another commit's data: no
file's bytes are lost (each old version is in the cache), no half-written file is left under a
tracked name, and running it again brings the whole workspace to the commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

CACHE = "repo/.dvlite/cache"


# (cache.link, kill points: timed, progress, Ctrl-C)
@pytest.mark.parametrize(("link", "points"),
                         [("", (5, 10, 4)), ("hardlink", (2, 5, 2)), ("symlink", (2, 4, 1))])
def test_checkout_of_another_commit(tmp_path: Path, crash_counts: Path, link: str,
                                    points: tuple[int, int, int]) -> None:
    timed, progress, interrupts = points
    projects.checkout_back(tmp_path / "template", files=200, link=link)
    scenario = Scenario(f"checkout ({link or 'copy'})", ("checkout",),
                        watch=("repo/data", "repo/.dvlite/tmp"), stores=(CACHE,),
                        done=status_clean)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=timed, progress=progress, interrupts=interrupts)
