"""A check both importers' tests end with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.cli.support import run_main
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def assert_older_commit_comes_back(capsys: pytest.CaptureFixture[str], root: Path, rel: str,
                                   converted: bytes) -> None:
    """Add a new version of ``rel`` with dvlite and commit it; then `git checkout HEAD~1` and
    `dvlite checkout` bring back the ``converted`` bytes."""
    (root / rel).write_bytes(b"version two\n")
    assert run_main(capsys, "add", str(root / rel)).code == 0
    git(root, "commit", "-q", "-am", "v2")
    git(root, "checkout", "-q", "HEAD~1")
    assert run_main(capsys, "-C", str(root), "checkout").code == 0
    assert (root / rel).read_bytes() == converted
