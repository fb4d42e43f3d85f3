"""``dvlite install`` / ``uninstall``: where the hooks go, idempotence, chaining a user's hook
and putting it back."""

from __future__ import annotations

import os
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import UnsafeOperationError
from dvlite.ops.hooks import HOOKS, MARKER, hook_script, hooks_dir, install, is_ours, uninstall
from dvlite.repo import Repo
from tests.cli.support import run_main

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

PYTHON = "/opt/some venv/bin/python"  # a space: the script must quote it


def hook_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


def test_install_writes_one_executable_script_per_hook(tmp_repo: TmpRepo) -> None:
    result = install(tmp_repo.repo, python=PYTHON)
    folder = tmp_repo.root / ".git" / "hooks"
    assert result.hooks_dir == str(folder)
    assert [c.action for c in result.changes] == ["installed"] * 4
    assert sorted(hook_files(folder)) == sorted(HOOKS)
    for name in HOOKS:
        path = folder / name
        assert path.stat().st_mode & stat.S_IXUSR
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n")
        assert MARKER in text
        assert f"python='{PYTHON}'" in text
        assert f"git-hook {name} " in text


def test_install_is_idempotent(tmp_repo: TmpRepo) -> None:
    install(tmp_repo.repo, python=PYTHON)
    folder = tmp_repo.root / ".git" / "hooks"
    first = hook_files(folder)
    result = install(tmp_repo.repo, python=PYTHON)
    assert [c.action for c in result.changes] == ["updated"] * 4
    assert all(c.chained is None for c in result.changes)
    assert hook_files(folder) == first


def test_install_again_points_the_hooks_at_the_new_interpreter(tmp_repo: TmpRepo) -> None:
    install(tmp_repo.repo, python="/old/python")
    install(tmp_repo.repo, python="/new/python")
    text = (tmp_repo.root / ".git" / "hooks" / "pre-push").read_text()
    assert "/old/python" not in text
    assert "python=/new/python" in text


def test_an_existing_hook_is_chained_and_put_back(tmp_repo: TmpRepo) -> None:
    folder = tmp_repo.root / ".git" / "hooks"
    folder.mkdir(exist_ok=True)
    mine = "#!/bin/sh\necho mine\n"
    (folder / "pre-push").write_text(mine)
    (folder / "pre-push").chmod(0o750)
    result = install(tmp_repo.repo, python=PYTHON)
    change = {c.name: c for c in result.changes}["pre-push"]
    assert change.chained == str(folder / "pre-push.dvlite-chained")
    assert (folder / "pre-push.dvlite-chained").read_text() == mine
    assert is_ours(str(folder / "pre-push"))
    install(tmp_repo.repo, python=PYTHON)  # a second install keeps the chained hook as it is
    assert (folder / "pre-push.dvlite-chained").read_text() == mine

    result = uninstall(tmp_repo.repo)
    assert {c.name: c.action for c in result.changes} == {
        "pre-commit": "removed", "post-checkout": "removed", "pre-push": "restored",
        "post-merge": "removed",
    }
    assert hook_files(folder) == {"pre-push": mine}
    assert stat.S_IMODE((folder / "pre-push").stat().st_mode) == 0o750


def test_uninstall_leaves_hooks_that_are_not_ours(tmp_repo: TmpRepo) -> None:
    install(tmp_repo.repo, python=PYTHON)
    folder = tmp_repo.root / ".git" / "hooks"
    (folder / "pre-commit").write_text("#!/bin/sh\necho replaced by another tool\n")
    result = uninstall(tmp_repo.repo)
    assert {c.name: c.action for c in result.changes}["pre-commit"] == "not ours"
    assert sorted(hook_files(folder)) == ["pre-commit"]
    assert [c.action for c in uninstall(tmp_repo.repo).changes].count("absent") == 3


def test_install_refuses_to_overwrite_a_chained_hook(tmp_repo: TmpRepo) -> None:
    folder = tmp_repo.root / ".git" / "hooks"
    folder.mkdir(exist_ok=True)
    (folder / "pre-commit").write_text("#!/bin/sh\necho new\n")
    (folder / "pre-commit.dvlite-chained").write_text("#!/bin/sh\necho old\n")
    with pytest.raises(UnsafeOperationError, match=r"pre-commit\.dvlite-chained"):
        install(tmp_repo.repo, python=PYTHON)
    assert (folder / "pre-commit.dvlite-chained").read_text() == "#!/bin/sh\necho old\n"


@pytest.mark.parametrize("configured", ["relative", "absolute"])
def test_core_hooks_path_is_respected(tmp_repo: TmpRepo, tmp_path: Path,
                                      configured: str) -> None:
    target = tmp_path / "shared-hooks" if configured == "absolute" else tmp_repo.root / "hk"
    value = str(target) if configured == "absolute" else "hk"
    tmp_repo.git("config", "core.hooksPath", value)
    result = install(tmp_repo.repo, python=PYTHON)
    assert result.hooks_dir == str(target)
    assert sorted(hook_files(target)) == sorted(HOOKS)
    assert not (tmp_repo.root / ".git" / "hooks" / "pre-commit").exists()


def test_a_linked_worktree_shares_the_hooks(tmp_repo: TmpRepo, tmp_path: Path) -> None:
    tmp_repo.gen({"f.txt": "f\n"})
    tmp_repo.git_commit("first")
    other = tmp_path / "other"
    tmp_repo.git("worktree", "add", "-q", str(other))
    with Repo.discover(str(other)) as repo:
        assert hooks_dir(repo) == str(tmp_repo.root / ".git" / "hooks")


def test_the_script_is_valid_shell(tmp_path: Path) -> None:
    for name in HOOKS:
        script = tmp_path / name
        script.write_text(hook_script(name, PYTHON))
        assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0


# --- the commands -----------------------------------------------------------------------------


def test_install_and_uninstall_commands(tmp_repo: TmpRepo,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(capsys, "install")
    assert (result.code, result.out) == (0, "")
    assert len(result.err_lines) == 6  # four hooks, two merge drivers
    assert "installed the pre-push hook" in result.err
    assert "installed the dvlite-pointer merge driver for `*.dvl`" in result.err
    assert is_ours(os.path.join(tmp_repo.root, ".git", "hooks", "pre-push"))
    result = run_main(capsys, "uninstall")
    assert (result.code, result.out) == (0, "")
    assert "removed the pre-push hook" in result.err
    assert not (tmp_repo.root / ".git" / "hooks" / "pre-push").exists()


def test_git_hook_command_is_hidden_and_checks_the_name(tmp_repo: TmpRepo,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert "git-hook" not in run_main(capsys, "--help").out
    result = run_main(capsys, "git-hook", "pre-rebase")
    assert result.code == 2
    assert "unknown git hook `pre-rebase`" in result.err
