"""`dvlite add` and `dvlite commit` killed anywhere: the cache holds only whole objects, the
workspace keeps its data, and running the command again tracks everything."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

CACHE = "repo/.dvlite/cache"


def test_add_of_many_small_files(tmp_path: Path, crash_counts: Path) -> None:
    projects.add_many(tmp_path / "template", files=400)
    scenario = Scenario("add folder", ("add", "many"), watch=(CACHE,), stores=(CACHE,),
                        done=status_clean)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=6, progress=10, interrupts=4)


def test_add_of_a_large_file(tmp_path: Path, crash_counts: Path) -> None:
    projects.add_big(tmp_path / "template")
    scenario = Scenario("add large file", ("add", "big.bin"), watch=(CACHE,), stores=(CACHE,),
                        done=status_clean)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=3, progress=5, interrupts=2)


def test_commit_of_edited_data(tmp_path: Path, crash_counts: Path) -> None:
    projects.commit_edits(tmp_path / "template", files=200)
    scenario = Scenario("commit", ("commit",), watch=(CACHE,), stores=(CACHE,),
                        done=status_clean)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=5, progress=9, interrupts=3)
