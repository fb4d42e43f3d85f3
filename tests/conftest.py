"""Every test runs in isolation: its own HOME, git config and temp repos."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from tests.helpers import TmpRepo

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.remote.faulty import FaultyRemote

settings.register_profile("ci", max_examples=50, deadline=None)
settings.register_profile("slow", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    templates = tmp_path_factory.mktemp("git-templates")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(templates))
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "dvlite tests")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "tests@dvlite.invalid")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    for name in list(os.environ):
        if name.startswith("DVLITE_") or name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def git_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repo (no dvlite yet), as the current folder."""
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def tmp_repo(git_dir: Path) -> Iterator[TmpRepo]:
    """A git repo with dvlite initialised, as the current folder."""
    repo = TmpRepo.create(git_dir)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transfers retry without waiting, so fault tests stay fast."""
    from dvlite.storage import transfer

    monkeypatch.setattr(transfer, "_BACKOFF", 0.0)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[FaultyRemote]:
    """A fault-injecting remote (tests/remote/faulty.py) over an empty folder."""
    from tests.remote.faulty import faulty_remote

    with faulty_remote(tmp_path / "remote") as remote:
        yield remote
