"""`dvlite push` and `dvlite pull` killed mid-transfer: neither store ever holds a partial
object or a folder without its files, and running the command again completes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.ops.sync import remote_status
from dvlite.repo import Repo
from tests.reliability import crash_projects as projects
from tests.reliability.crash import Scenario, crash_test, status_clean

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]


def remote_complete(base: Path) -> None:
    with Repo.discover(str(base / "repo")) as repo:
        assert remote_status(repo) == []


def test_push(tmp_path: Path, crash_counts: Path) -> None:
    projects.pushable(tmp_path / "template", files=200)
    scenario = Scenario("push", ("push",), watch=("remote",),
                        stores=("repo/.dvlite/cache", "remote"), remotes=("remote",),
                        done=remote_complete)
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=5, progress=10, interrupts=4)


def test_pull(tmp_path: Path, crash_counts: Path) -> None:
    projects.pullable(tmp_path / "template", files=200)
    scenario = Scenario("pull", ("pull",),
                        watch=("clone/.dvlite/cache", "clone/.dvlite/tmp", "clone/data"),
                        stores=("clone/.dvlite/cache", "remote"), remotes=("remote",),
                        repo="clone", done=lambda base: status_clean(base, "clone"))
    crash_test(tmp_path / "template", scenario, tmp_path, counts=crash_counts,
               timed=5, progress=10, interrupts=4)
