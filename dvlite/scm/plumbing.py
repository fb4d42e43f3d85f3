"""One-shot git commands, run through the git binary: where git keeps
hooks, what a commit or a push is about to send, temporary worktrees, and the repo's own
git config and ``.gitattributes``. Every call runs without the variables git sets for
hooks (``clean_git_env``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from typing import TYPE_CHECKING

from dvlite.errors import GitError
from dvlite.fsutil import atomic_write
from dvlite.scm import clean_git_env, git_failure, run_git

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence


# --- hooks: where git looks for them, and what a commit or a push is about to send ---


def git_path(root: str, name: str) -> str:
    """The absolute path git uses for ``name`` in its folder (``git rev-parse --git-path``):
    ``hooks`` follows ``core.hooksPath``, and a linked worktree keeps its own rebase state."""
    out = run_git("-C", root, "rev-parse", "--git-path", name).rstrip("\n")
    return os.path.normpath(os.path.join(root, out))  # relative answers are relative to root


def has_commit(root: str, sha: str) -> bool:
    try:
        run_git("-C", root, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return True


def new_commits(root: str, tips: Iterable[str], *, exclude: Iterable[str] = (),
                remote: str | None = None) -> list[str]:
    """Commits reachable from ``tips`` but neither from ``exclude`` (those of them this repo
    has) nor from a remote-tracking branch of ``remote`` (of any remote when None)."""
    tips = list(tips)
    if not tips:
        return []
    options = [tip for tip in tips if tip.startswith("-")]  # rev-list would take them as such
    if options:
        raise GitError(f"not a revision: `{options[0]}`")
    known = [sha for sha in exclude if has_commit(root, sha)]  # the remote may be ahead of us
    theirs = "--remotes" if remote is None else f"--remotes={remote}"
    out = run_git("-C", root, "rev-list", *tips, "--not", *known, theirs)
    return out.split()


def staged_files(root: str, suffix: str, *,
                 index_file: str | None = None) -> list[tuple[str, bytes]]:
    """(path, bytes) of each file ending in ``suffix`` that the index adds or changes
    against HEAD (every such file before the first commit). ``index_file`` is the index a
    commit is being made from, when git names one to a hook (``git commit -a`` does)."""
    env = {"GIT_INDEX_FILE": index_file} if index_file else {}
    pattern = f"*{suffix}"
    if has_commit(root, "HEAD"):
        out = _git_bytes(root, "diff-index", "--cached", "-z", "--no-renames",
                         "--diff-filter=AM", "HEAD", "--", pattern, env=env)
        # records are ":oldmode newmode oldsha newsha status" NUL path NUL
        fields = out.split(b"\0")
        blobs = [(fields[i + 1], fields[i].split()[3]) for i in range(0, len(fields) - 1, 2)]
    else:
        out = _git_bytes(root, "ls-files", "--stage", "-z", "--", pattern, env=env)
        records = [r.split(b"\t", 1) for r in out.split(b"\0") if r]
        blobs = [(path, meta.split()[1]) for meta, path in records]
    return [(os.fsdecode(path), _git_bytes(root, "cat-file", "blob", sha.decode()))
            for path, sha in blobs]


def _git_bytes(root: str, *args: str, env: Mapping[str, str] | None = None) -> bytes:
    """git's raw stdout, run in ``root`` without the variables git set for a hook."""
    proc = subprocess.run(["git", "-C", root, *args], capture_output=True, check=False,
                          env={**clean_git_env(dict(os.environ)), **(env or {})})
    if proc.returncode != 0:
        raise git_failure(args, proc.stderr.decode(errors="replace"))
    return proc.stdout


# --- temporary worktrees: a past commit checked out beside the user's work tree ---


@contextlib.contextmanager
def temporary_worktree(root: str, rev: str) -> Iterator[str]:
    """Yield the top of a new detached worktree of the git repo at ``root``, checked out at
    ``rev`` in a temporary folder outside the user's work tree, and remove it on every way
    out, Ctrl-C included. The user's HEAD, index, branches and stash are not touched."""
    parent = tempfile.mkdtemp(prefix="dvlite-worktree-")
    path = os.path.join(parent, "tree")
    try:
        # No hooks: a post-checkout hook (dvlite's own, say) would act on the temporary tree.
        run_git("-C", root, "-c", f"core.hooksPath={os.devnull}", "worktree", "add",
                 "--detach", "--quiet", path, rev)
        yield path
    finally:
        with _sigint_deferred():
            _remove_worktree(root, path, parent)


def _remove_worktree(root: str, path: str, parent: str) -> None:
    try:
        run_git("-C", root, "worktree", "remove", "--force", path)
    except GitError:
        # git refused (or `add` failed half-way): delete the folder, then let git forget it
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(GitError):
            run_git("-C", root, "worktree", "prune")
    shutil.rmtree(parent, ignore_errors=True)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until it ends, so that a second press
    during cleanup cannot leave a worktree behind; then hand it to the handler it was for."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals; it gets the KeyboardInterrupt
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed and callable(previous):
        previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt


# --- the repo's own git config and .gitattributes: where merge drivers are declared ---


def config_get(root: str, key: str) -> str | None:
    """``key`` in the repo's own git config (``.git/config``, not the user's), or None."""
    try:
        return run_git("-C", root, "config", "--local", "--get", key).rstrip("\n")
    except GitError:  # git exits 1 for a key that is not set
        return None


def config_set(root: str, key: str, value: str) -> None:
    run_git("-C", root, "config", "--local", key, value)


def config_unset(root: str, key: str) -> None:
    """Remove ``key`` from the repo's git config, and its section once that is empty (git
    leaves an empty ``[section]`` behind)."""
    if config_get(root, key) is not None:
        run_git("-C", root, "config", "--local", "--unset-all", key)
    section = key.rsplit(".", 1)[0]
    pattern = "^" + section.replace(".", r"\.") + r"\."
    try:
        run_git("-C", root, "config", "--local", "--get-regexp", pattern)
    except GitError:  # no key left in it
        with contextlib.suppress(GitError):  # nor the section itself
            run_git("-C", root, "config", "--local", "--remove-section", section)


def edit_attributes(root: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> list[str]:
    """Add ``add`` lines missing from ``root/.gitattributes`` (created if needed) and drop
    ``remove`` lines, leaving every other line as it is; return the lines changed. The file
    is deleted when nothing is left in it."""
    path = os.path.join(root, ".gitattributes")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.read().splitlines(keepends=True)  # a user's CRLF lines stay CRLF
    except FileNotFoundError:
        lines = []
    kept = [line for line in lines if line.strip() not in remove]
    dropped = [line.strip() for line in lines if line.strip() in remove]
    present = {line.strip() for line in kept}
    added = [line for line in dict.fromkeys(add) if line not in present]
    if not (added or dropped):
        return []
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    text = "".join(kept) + "".join(line + "\n" for line in added)
    if text.strip():
        atomic_write(path, text.encode("utf-8"))
    else:
        os.unlink(path)
    return added + dropped
