"""Commits and refs made beside the user's branch: a work tree's files committed on top of a
base commit through a temporary index, refs listed, created, deleted, pushed and fetched.
The user's HEAD, index, branches and stash are never read or written here: every commit is
built with ``GIT_INDEX_FILE`` pointing at a throwaway index and stored with ``update-ref``."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import TYPE_CHECKING

from dvlite.errors import GitError
from dvlite.scm import clean_git_env, git_failure, run_git

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_ZERO = "0" * 40  # `update-ref`'s "must not exist yet"


def _git(top: str, *args: str, env: Mapping[str, str] | None = None,
         stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", "-C", top, *args], input=stdin, capture_output=True,
                          check=False, env={**clean_git_env(dict(os.environ)), **(env or {})})
    if proc.returncode != 0:
        raise git_failure(args, proc.stderr.decode(errors="replace"))
    return proc.stdout


def commit_work_tree(top: str, base: str, extra: Sequence[str], message: str) -> str:
    """Commit, as a child of ``base``, the work tree at ``top`` as ``base`` plus every change
    to a file git tracks and the ``extra`` paths (relative to ``top``; ignored ones too, and
    missing ones recorded as deleted); return the new commit's sha. No ref moves."""
    with tempfile.TemporaryDirectory(prefix="dvlite-index-") as folder:
        env = {"GIT_INDEX_FILE": os.path.join(folder, "index")}
        _git(top, "read-tree", base, env=env)
        _git(top, "add", "--update", env=env)
        present = [p for p in extra if os.path.lexists(os.path.join(top, p))]
        gone = [p for p in extra if p not in present]
        if present:
            _git(top, "add", "--force", "--", *present, env=env)
        if gone:
            _git(top, "rm", "--cached", "--quiet", "--ignore-unmatch", "--", *gone, env=env)
        tree = _git(top, "write-tree", env=env).decode().strip()
    return _git(top, "commit-tree", tree, "-p", base, "-F", "-",
                stdin=message.encode("utf-8")).decode().strip()


def tree_of(top: str, sha: str) -> str:
    return run_git("-C", top, "rev-parse", "--verify", f"{sha}^{{tree}}").strip()


def create_ref(top: str, ref: str, sha: str) -> None:
    """Point the new ``ref`` at ``sha``; GitError when it exists already."""
    run_git("-C", top, "update-ref", "--no-deref", ref, sha, _ZERO)


def delete_ref(top: str, ref: str, sha: str) -> None:
    """Delete ``ref`` if it still points at ``sha``."""
    run_git("-C", top, "update-ref", "--no-deref", "-d", ref, sha)


def list_refs(top: str, prefix: str) -> list[tuple[str, str, int, str]]:
    """(ref, commit sha, commit time, message) of every ref below ``prefix``, sorted by ref."""
    out = run_git("-C", top, "for-each-ref", "--sort=refname",
                  "--format=%(refname)%00%(objectname)%00%(committerdate:unix)%00"
                  "%(contents)%00", prefix)
    fields = out.split("\0")
    return [(fields[i].lstrip("\n"), fields[i + 1], int(fields[i + 2]), fields[i + 3])
            for i in range(0, len(fields) - 3, 4)]


def changed_paths(top: str, a: str, b: str) -> list[tuple[str, str]]:
    """(status letter A/M/D/T, path relative to ``top``) of every file that differs between
    commits ``a`` and ``b``."""
    out = _git(top, "diff-tree", "-r", "-z", "--no-renames", "--name-status", a, b)
    fields = out.split(b"\0")
    return [(fields[i].decode(), os.fsdecode(fields[i + 1]))
            for i in range(0, len(fields) - 1, 2)]


def blob_at(top: str, sha: str, path: str) -> bytes:
    return _git(top, "cat-file", "blob", f"{sha}:{path}")


def is_stored(top: str, path: str) -> bool:
    """Whether git already holds a blob with ``path``'s exact content (in some commit, or at
    least in its object store): overwriting that file loses nothing git cannot give back."""
    blob = _git(top, "hash-object", "--no-filters", "--", path).decode().strip()
    try:
        _git(top, "cat-file", "-e", blob)
    except GitError:
        return False
    return True


def create_branch(top: str, name: str, sha: str) -> None:
    """A new branch ``name`` at ``sha``; GitError when the name is taken or invalid."""
    try:
        run_git("check-ref-format", "--branch", name)
    except GitError:
        raise GitError(f"`{name}` is not a valid branch name") from None
    create_ref(top, f"refs/heads/{name}", sha)


def push_refs(top: str, remote: str, refs: Sequence[str]) -> None:
    """Send ``refs`` to the same names on the git ``remote``."""
    if refs:
        run_git("-C", top, "push", "--quiet", "--", remote, *(f"{r}:{r}" for r in refs))


def fetch_refs(top: str, remote: str, pattern: str) -> None:
    """Fetch every ref matching ``pattern`` (``refs/exps/*``) from ``remote`` to the same
    name here; a name that exists here with another commit is left as it is."""
    run_git("-C", top, "fetch", "--quiet", "--no-tags", "--", remote, f"{pattern}:{pattern}")
