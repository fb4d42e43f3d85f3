"""The hook handlers called directly: reading git's and the pre-commit framework's ways of
saying what happens, when a hook does nothing, and what pre-commit and pre-push decide."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import MissingObjectError, UnsafeOperationError, UsageError
from dvlite.ops.hook_handlers import (
    PushRequest,
    check_commit,
    hook_repo,
    leave_git,
    push_commits,
    push_request,
    wants_checkout,
)
from dvlite.repo import Repo
from tests.hooks.conftest import V2

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo
    from tests.hooks.conftest import Project

SHA_A, SHA_B, ZERO = "a" * 40, "b" * 40, "0" * 40


# --- reading the arguments --------------------------------------------------------------------


def test_push_request_from_git_reads_every_ref_line() -> None:
    stdin = (f"refs/heads/main {SHA_A} refs/heads/main {SHA_B}\n"
             f"refs/heads/new {SHA_B} refs/heads/new {ZERO}\n"
             f"(delete) {ZERO} refs/heads/old {SHA_A}\n")
    request = push_request(["origin", "/srv/git/x.git"], stdin, {})
    assert request == PushRequest("origin", (SHA_A, SHA_B), (SHA_B, SHA_A))


def test_push_request_rejects_a_malformed_line() -> None:
    with pytest.raises(UsageError, match="unexpected line"):
        push_request(["origin", "url"], "refs/heads/main abc\n", {})


def test_push_request_from_the_pre_commit_framework() -> None:
    env = {"PRE_COMMIT_FROM_REF": SHA_B, "PRE_COMMIT_TO_REF": SHA_A,
           "PRE_COMMIT_REMOTE_NAME": "origin", "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main"}
    assert push_request([], "", env) == PushRequest("origin", (SHA_A,), (SHA_B,))
    # a push that starts at a root commit: pre-commit names the branch only
    del env["PRE_COMMIT_FROM_REF"], env["PRE_COMMIT_TO_REF"]
    assert push_request([], "", env) == PushRequest("origin", ("refs/heads/main",), ())
    assert push_request([], "", {}) == PushRequest(None, ("HEAD",), ())


@pytest.mark.parametrize(("name", "args", "env", "expected"), [
    ("post-checkout", [SHA_A, SHA_B, "1"], {}, True),
    ("post-checkout", [SHA_A, SHA_B, "0"], {}, False),  # files checked out
    ("post-checkout", [SHA_A, SHA_A, "1"], {}, False),  # a new branch at the same commit
    ("post-merge", ["0"], {}, True),
    ("post-checkout", [], {"PRE_COMMIT_FROM_REF": SHA_A, "PRE_COMMIT_TO_REF": SHA_B,
                           "PRE_COMMIT_CHECKOUT_TYPE": "1"}, True),
    ("post-checkout", [], {"PRE_COMMIT_FROM_REF": SHA_A, "PRE_COMMIT_TO_REF": SHA_B,
                           "PRE_COMMIT_CHECKOUT_TYPE": "0"}, False),
    ("post-checkout", [], {"PRE_COMMIT_IS_SQUASH_MERGE": "0"}, True),  # pre-commit's post-merge
])
def test_wants_checkout(name: str, args: list[str], env: dict[str, str],
                        expected: bool) -> None:
    assert wants_checkout(name, args, env) is expected


def test_wants_checkout_rejects_wrong_arguments() -> None:
    with pytest.raises(UsageError):
        wants_checkout("post-checkout", [SHA_A], {})


def test_leave_git_removes_what_git_sets_for_hooks() -> None:
    env = {"GIT_DIR": ".git", "GIT_INDEX_FILE": ".git/index.lock", "GIT_PREFIX": "",
           "GIT_AUTHOR_NAME": "me", "PATH": "/bin"}
    removed = leave_git(env)
    assert env == {"GIT_AUTHOR_NAME": "me", "PATH": "/bin"}
    assert removed == {"GIT_DIR": ".git", "GIT_INDEX_FILE": ".git/index.lock", "GIT_PREFIX": ""}


# --- when a hook does nothing -----------------------------------------------------------------


def test_hook_repo_says_why_a_hook_does_nothing(tmp_repo: TmpRepo, tmp_path: Path) -> None:
    root = str(tmp_repo.root)
    assert hook_repo(root, {"DVLITE_SKIP_HOOKS": "1"}) == "DVLITE_SKIP_HOOKS is set"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert hook_repo(str(plain), {}) == "not in a dvlite project"
    (tmp_repo.root / ".git" / "rebase-apply").mkdir()
    assert hook_repo(root, {}) == "a rebase is in progress"
    (tmp_repo.root / ".git" / "rebase-apply").rmdir()
    found = hook_repo(root, {"DVLITE_SKIP_HOOKS": "0"})
    assert isinstance(found, Repo)
    found.close()


def test_a_git_repo_nested_in_a_project_is_not_the_project(tmp_repo: TmpRepo) -> None:
    nested = tmp_repo.root / "vendor" / "lib"
    nested.mkdir(parents=True)
    tmp_repo.git("init", "-q", str(nested))
    assert hook_repo(str(nested), {}) == "not in a dvlite project"


# --- pre-commit and pre-push decisions ------------------------------------------------------


def test_check_commit_passes_when_data_matches(project: Project) -> None:
    assert check_commit(project.t.repo) == 2


def test_check_commit_lists_changed_data(project: Project) -> None:
    project.write(V2, add=False)
    with pytest.raises(UnsafeOperationError, match=r"`data`, `model\.bin`"):
        check_commit(project.t.repo)


def _sha(project: Project, rev: str = "HEAD") -> str:
    return project.ok("rev-parse", rev).stdout.strip()


def test_push_commits_sends_only_what_the_git_remote_lacks(project: Project) -> None:
    repo = project.t.reopen()
    first = _sha(project)
    outcome = push_commits(repo, PushRequest("origin", (first,), ()))
    assert outcome.commits == 1
    assert outcome.synced is not None
    assert outcome.synced.transferred == 4
    project.ok("push", "-q", "--no-verify", "origin", "main")
    project.ok("fetch", "-q", "origin")
    # the framework's way: nothing new between what origin has and what is pushed
    assert push_commits(repo, push_request([], "", {"PRE_COMMIT_REMOTE_NAME": "origin",
                                                    "PRE_COMMIT_LOCAL_BRANCH": "main"})
                        ).commits == 0


def test_push_goes_on_when_the_remote_has_data_this_cache_lacks(project: Project) -> None:
    repo = project.t.reopen()
    push_commits(repo, PushRequest("origin", (_sha(project),), ()))
    shutil.rmtree(repo.cache_dir)  # a clone that never fetched the data
    (project.root / "code.py").write_text("pass\n")
    project.ok("add", "code.py")
    project.ok("commit", "-q", "--no-verify", "-m", "code")
    request = PushRequest("origin", (_sha(project),), ())
    outcome = push_commits(repo, request)
    assert outcome.synced is not None
    assert outcome.synced.not_in_cache  # nothing sent, all found on the remote
    model = next(project.store.glob("??/*"))
    model.chmod(0o644)
    model.unlink()
    with pytest.raises(MissingObjectError, match="neither in this cache nor on remote"):
        push_commits(repo, request)
