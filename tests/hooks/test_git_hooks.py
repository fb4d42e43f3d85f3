"""The installed hooks fired by real git commands: commit, checkout, merge, push to a bare repo
with a folder dvlite remote."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.checkout import checkout
from dvlite.ops.hooks import hook_script, install, uninstall
from dvlite.ops.init import config_set, remote_remove
from dvlite.repo import Repo
from tests.hooks.conftest import V1, V2, as_files, run_git
from tests.ops.support import drop_object

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo
    from tests.hooks.conftest import Project

pytestmark = pytest.mark.e2e


def head(project: Project) -> str:
    return project.ok("rev-parse", "HEAD").stdout.strip()


# --- pre-commit -------------------------------------------------------------------------------


def test_commit_refused_naming_the_data_changed_but_not_added(project: Project) -> None:
    before = head(project)
    project.write(V2, add=False)
    (project.root / "notes.txt").write_text("code change\n")
    project.ok("add", "notes.txt")
    result = project.git("commit", "-q", "-m", "forgot dvlite add")
    assert result.returncode == 1
    assert "commit refused" in result.stderr
    assert "`data`" in result.stderr
    assert "`model.bin`" in result.stderr
    assert "dvlite add" in result.stderr
    assert head(project) == before
    project.t.dvl_add("data", "model.bin")
    project.ok("add", "-A")
    project.ok("commit", "-q", "-m", "v2")
    assert head(project) != before


def test_commit_refused_when_a_staged_pointer_has_no_data_in_the_cache(
    project: Project,
) -> None:
    project.t.gen({"extra.bin": b"extra data"})
    oid = project.t.dvl_add("extra.bin").stored[0].oid
    drop_object(project.t, oid)
    project.ok("add", "extra.bin.dvl", ".gitignore")
    result = project.git("commit", "-q", "-m", "pointer without data")
    assert result.returncode == 1
    assert "`extra.bin`" in result.stderr
    assert "not in the cache" in result.stderr


def test_commit_all_checks_the_index_git_commits_from(project: Project) -> None:
    """`git commit -a` commits from a temporary index that git names to the hook."""
    project.write(V2, add=False)
    stored = project.t.dvl_add("data", "model.bin").stored  # pointers changed, not staged
    model = next(s for s in stored if s.path == "model.bin")
    drop_object(project.t, model.oid)
    result = project.git("commit", "-q", "-a", "-m", "model data dropped")
    assert result.returncode == 1
    assert "`model.bin`" in result.stderr


def test_commit_works_in_a_clone_without_the_data(project: Project, tmp_path: Path) -> None:
    """A pointer whose data was never fetched is not a change: code can still be committed."""
    project.ok("push", "-q", "origin", "main")
    clone = tmp_path / "clone"
    project.ok("clone", "-q", str(project.origin), str(clone))
    install_in(clone)
    (clone / "code.py").write_text("print('hi')\n")
    project.ok("-C", str(clone), "add", "code.py")
    project.ok("-C", str(clone), "commit", "-q", "-m", "code only")


def install_in(root: Path) -> None:
    with Repo.discover(str(root)) as repo:
        install(repo, python=sys.executable)


def test_skip_variable_and_no_verify_let_the_commit_through(project: Project) -> None:
    project.write(V2, add=False)
    project.ok("commit", "-q", "--allow-empty", "-m", "skipped",
               env={"DVLITE_SKIP_HOOKS": "1"})
    project.ok("commit", "-q", "--allow-empty", "--no-verify", "-m", "not verified")


def test_hooks_do_nothing_during_a_rebase(project: Project) -> None:
    (project.root / "code.py").write_text("pass\n")
    project.ok("add", "code.py")
    project.ok("commit", "-q", "-m", "code")
    project.write(V2, add=False)  # ignored by git, so the rebase does not mind it
    # each `exec` commit fires pre-commit while the rebase is in progress
    project.ok("rebase", "-q", "--exec", "git commit -q --allow-empty -m during-rebase",
               "HEAD~1")
    assert project.git("commit", "-q", "--allow-empty", "-m", "after").returncode == 1


def test_hooks_do_nothing_outside_a_dvlite_project(git_dir: Path) -> None:
    hook = git_dir / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(hook_script("pre-commit", sys.executable))
    hook.chmod(0o755)
    (git_dir / "f.txt").write_text("f\n")
    run_git(git_dir, "add", "-A")
    result = run_git(git_dir, "commit", "-q", "-m", "plain")
    assert (result.returncode, result.stderr) == (0, "")


# --- post-checkout, post-merge ----------------------------------------------------------------


@pytest.fixture
def branches(project: Project) -> Project:
    """`main` has V1, `v2` has V2; `main` is checked out."""
    quiet = {"DVLITE_SKIP_HOOKS": "1"}  # setting up, not testing: spare the hooks' start-up
    project.ok("checkout", "-q", "-b", "v2", env=quiet)
    project.write(V2)
    project.ok("commit", "-q", "-m", "v2", env=quiet)
    project.ok("checkout", "-q", "main", env=quiet)
    checkout(project.t.repo)  # what the skipped hook would have done
    return project


def test_branch_checkout_brings_the_data_along(branches: Project) -> None:
    assert branches.read() == as_files(V1)
    result = branches.ok("checkout", "v2")
    assert branches.read() == as_files(V2)
    assert "data checked out" in result.stderr
    branches.ok("switch", "-q", "main")
    assert branches.read() == as_files(V1)


def test_file_checkout_leaves_the_data_alone(branches: Project) -> None:
    branches.ok("checkout", "v2", "--", "model.bin.dvl")
    assert branches.read() == as_files(V1)


def test_checkout_over_local_edits_warns_and_keeps_them(branches: Project) -> None:
    (branches.root / "model.bin").write_bytes(b"my unsaved edit")
    result = branches.ok("checkout", "-q", "v2")
    assert "warning" in result.stderr
    assert "`model.bin`" in result.stderr
    assert (branches.root / "model.bin").read_bytes() == b"my unsaved edit"


def test_merge_brings_the_data_along(branches: Project) -> None:
    branches.ok("merge", "-q", "--ff-only", "v2")
    assert branches.read() == as_files(V2)


# --- pre-push ---------------------------------------------------------------------------------


def test_push_sends_the_data_of_the_pushed_commits(branches: Project) -> None:
    branches.ok("push", "-q", "origin", "main")
    v1_objects = branches.stored()
    assert len(v1_objects) == 4  # a.csv, b.bin, the folder's manifest, model.bin
    assert branches.remote_head() == head(branches)
    branches.ok("push", "-q", "origin", "v2")
    assert len(branches.stored() - v1_objects) == 4  # a.csv v2, c.csv, manifest, model.bin v2
    assert branches.remote_head("v2") is not None


def test_push_stops_when_the_dvlite_remote_cannot_be_written(
    project: Project, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    config_set(project.t.repo, "remote.store.url", str(blocker / "store"))
    result = project.git("push", "-q", "origin", "main")
    assert result.returncode != 0
    assert "git push stopped" in result.stderr
    assert "DVLITE_SKIP_HOOKS=1" in result.stderr
    assert project.remote_head() is None
    project.ok("push", "-q", "origin", "main", env={"DVLITE_SKIP_HOOKS": "1"})


def test_push_stops_when_no_dvlite_remote_is_set(project: Project) -> None:
    remote_remove(project.t.reopen(), "store")
    result = project.git("push", "-q", "origin", "main")
    assert result.returncode != 0
    assert "no default remote" in result.stderr
    assert project.remote_head() is None


def test_push_of_commits_without_data_needs_no_dvlite_remote(tmp_repo: TmpRepo,
                                                              tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    run_git(tmp_path, "init", "-q", "--bare", str(origin))
    install(tmp_repo.repo, python=sys.executable)
    tmp_repo.gen({"code.py": "pass\n"})
    tmp_repo.git_commit("code only")
    result = run_git(tmp_repo.root, "push", "-q", str(origin), "main")
    assert (result.returncode, result.stderr) == (0, "")


def test_deleting_a_remote_branch_pushes_no_data(branches: Project, tmp_path: Path) -> None:
    branches.ok("push", "-q", "origin", "v2")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    config_set(branches.t.repo, "remote.store.url", str(blocker / "store"))
    branches.ok("push", "-q", "origin", ":v2")
    assert branches.remote_head("v2") is None


# --- chaining, interpreter ------------------------------------------------------------------


def _recording_hook(path: Path, log: Path, *, exit_code: int = 0) -> None:
    """A user's hook that appends its name, its arguments and its stdin to ``log``."""
    path.write_text(
        "#!/bin/sh\n"
        f'{{ echo "$(basename "$0") $*"; cat; }} >> "{log}"\n'
        f"exit {exit_code}\n"
    )
    path.chmod(0o755)


def test_an_existing_hook_runs_first_with_the_same_arguments_and_stdin(
    project: Project, tmp_path: Path
) -> None:
    hooks = project.root / ".git" / "hooks"
    uninstall(project.t.repo)
    log = tmp_path / "log"
    _recording_hook(hooks / "pre-push", log)
    install(project.t.repo, python=sys.executable)
    project.ok("push", "-q", "origin", "main")
    sha = head(project)
    lines = log.read_text().splitlines()
    assert lines[0] == f"pre-push.dvlite-chained origin {project.origin}"
    assert lines[1].split() == ["refs/heads/main", sha, "refs/heads/main", "0" * 40]
    assert len(project.stored()) == 4  # dvlite read the same ref line


def test_a_refusing_user_pre_commit_hook_still_refuses(project: Project,
                                                       tmp_path: Path) -> None:
    hooks = project.root / ".git" / "hooks"
    uninstall(project.t.repo)
    _recording_hook(hooks / "pre-commit", tmp_path / "log", exit_code=3)
    install(project.t.repo, python=sys.executable)
    result = project.git("commit", "-q", "--allow-empty", "-m", "refused by the user's hook")
    assert result.returncode == 1  # git reports any hook failure as 1


def test_missing_interpreter_is_named_with_the_fix(project: Project, tmp_path: Path) -> None:
    gone = tmp_path / "old-venv" / "bin" / "python"
    install(project.t.repo, python=str(gone))
    result = project.git("commit", "-q", "--allow-empty", "-m", "x")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(gone) in lines[0]
    assert "dvlite install" in lines[0]


def test_hooks_path_is_where_git_runs_them(project: Project) -> None:
    uninstall(project.t.repo)
    project.ok("config", "core.hooksPath", "my-hooks")
    install(project.t.repo, python=sys.executable)
    assert (project.root / "my-hooks" / "pre-commit").is_file()
    project.write(V2, add=False)
    assert project.git("commit", "-q", "--allow-empty", "-m", "x").returncode == 1
