"""dvlite's `.pre-commit-hooks.yaml` used by the real pre-commit framework: it installs this
source tree into its own virtualenv (from PyPI for the dependencies, so it is slow) and runs
the hooks at git's commit, checkout and push."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.hooks.conftest import V1, V2, as_files, run_git

if TYPE_CHECKING:
    from tests.hooks.conftest import Project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("pre_commit") is None,
                       reason="needs the pre-commit package (test extra)"),
]

SOURCE = Path(__file__).resolve().parents[2]
CONFIG = """\
default_install_hook_types: [pre-commit, pre-push, post-checkout, post-merge]
repos:
  - repo: {repo}
    rev: {rev}
    hooks:
      - id: dvlite-status
      - id: dvlite-push
      - id: dvlite-checkout
"""


def hook_repo(dest: Path) -> tuple[Path, str]:
    """This source tree as a git repo of its own, as pre-commit clones hook repos: (path, sha).
    A copy, so that the tests never touch the project's own git state."""
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(SOURCE / name, dest / name)
    shutil.copytree(SOURCE / "dvlite", dest / "dvlite",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run_git(dest, "init", "-q")
    run_git(dest, "add", "-A")
    run_git(dest, "commit", "-q", "-m", "dvlite")
    return dest, run_git(dest, "rev-parse", "HEAD").stdout.strip()


def pre_commit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=root, text=True,
                          capture_output=True, check=False, timeout=900)


@pytest.mark.timeout(900)
def test_the_pre_commit_framework_runs_dvlites_hooks(project: Project, tmp_path: Path) -> None:
    from dvlite.ops.hooks import uninstall

    uninstall(project.t.repo)  # pre-commit's own hooks this time
    source = tmp_path / "dvlite-src"
    source.mkdir()
    repo, rev = hook_repo(source)
    (project.root / ".pre-commit-config.yaml").write_text(CONFIG.format(repo=repo, rev=rev))
    project.ok("add", ".pre-commit-config.yaml")
    project.ok("commit", "-q", "-m", "pre-commit config")
    installed = pre_commit(project.root, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    pre_commit(project.root, "install-hooks")  # builds the environment once, up front

    # dvlite-status: the commit is refused while data changed without `dvlite add`
    project.write(V2, add=False)
    refused = project.git("commit", "-q", "--allow-empty", "-m", "forgot")
    assert refused.returncode == 1
    assert "`model.bin`" in refused.stdout + refused.stderr
    project.t.dvl_add("data", "model.bin")
    project.ok("add", "-A")
    project.ok("commit", "-q", "-m", "v2")

    # dvlite-checkout: data follows a branch checkout
    project.ok("checkout", "-q", "HEAD~1")
    assert project.read() == as_files(V1)
    project.ok("checkout", "-q", "main")
    assert project.read() == as_files(V2)

    # dvlite-push: data reaches the dvlite remote with the commits
    project.ok("push", "-q", "origin", "main")
    assert len(project.stored()) == 8  # V1 and V2: 4 objects each
