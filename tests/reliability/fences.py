"""A fence around a test repo: sentinel files outside it that no dvlite command may read,
change or add to, and checks that every command either works or fails with one ``error:``
line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.cli.support import CliResult, assert_error, cache_objects, run_main, snapshot

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.cli.support import Snapshot

SECRET = b"outside the repo: never read, never written\n"


@dataclass
class Fence:
    """``outside``: a folder beside the repo with sentinel files; ``before``: a snapshot of
    everything beside the repo but the folders in ``skip`` (a remote that push may write
    to), sentinels included (bytes and permission bits)."""

    repo: Path
    outside: Path
    skip: tuple[str, ...] = ()
    before: Snapshot = field(default_factory=dict)

    @classmethod
    def around(cls, repo: Path, *, skip: tuple[str, ...] = ()) -> Fence:
        outside = repo.parent / "outside"
        (outside / "dir").mkdir(parents=True)
        (outside / "secret.txt").write_bytes(SECRET)
        (outside / "dir" / "x.bin").write_bytes(SECRET * 2)
        fence = cls(repo, outside, skip)
        fence.settle()
        return fence

    def settle(self) -> None:
        """Take what is outside now as the state to keep (after the test's own setup)."""
        self.before = self.state()

    def state(self) -> Snapshot:
        return snapshot(self.repo.parent, skip=(self.repo.name, *self.skip))

    def assert_intact(self) -> None:
        assert self.state() == self.before, "a command wrote outside the repo"
        cached = b"".join(p.read_bytes() for p in cache_objects(self.repo / ".dvlite/cache")
                          .values())
        assert SECRET not in cached, "a command read a file outside the repo into the cache"


def run(capsys: pytest.CaptureFixture[str], fence: Fence, *args: str) -> CliResult:
    """Run a command; it must work, or fail with one ``error:`` line and exit 1, and leave
    everything outside the repo as it was."""
    result = run_main(capsys, "-C", str(fence.repo), *args)
    assert result.code in (0, 1), result
    if result.code == 1:
        assert_error(result, after_messages=True)
    assert "Traceback" not in result.err
    assert SECRET.decode().strip() not in result.out + result.err
    fence.assert_intact()
    return result


def refused(capsys: pytest.CaptureFixture[str], fence: Fence, *args: str,
            naming: str) -> str:
    """Run a command that must refuse, naming ``naming``; returns its error line."""
    result = run(capsys, fence, *args)
    assert result.code == 1, f"dvlite {' '.join(args)} should have refused: {result}"
    line = next(line for line in result.err.splitlines() if line.startswith("error: "))
    assert naming in line, line
    return line


def symlink(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
