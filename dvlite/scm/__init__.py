"""Everything dvlite asks of git. The only package that imports GitPython, imported
lazily so commands that need no git (status, checkout) start fast; ``plumbing`` runs the
git commands GitPython has no call for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from dvlite.errors import GitError
from dvlite.fsutil import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import git

_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
            "GIT_PREFIX", "GIT_COMMON_DIR")


def find_work_tree(start: str) -> str | None:
    """The top of the git work tree containing ``start``, or None."""
    path = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def clean_git_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the variables git sets for hooks, which would redirect our git calls."""
    return {k: v for k, v in env.items() if k not in _GIT_ENV}


class Git:
    """A git work tree, opened on first use."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._repo: git.Repo | None = None

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            import git  # noqa: PLC0415  (slow import, only when git is needed)

            try:
                self._repo = git.Repo(self.root)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
                raise GitError(f"`{self.root}` is not a git work tree") from exc
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def resolve(self, rev: str) -> str:
        """The commit sha ``rev`` names."""
        import git  # noqa: PLC0415

        try:
            return str(self.repo.commit(rev).hexsha)
        except (git.BadName, ValueError, git.GitCommandError) as exc:
            if not self.repo.head.is_valid():
                raise GitError(
                    f"cannot read `{rev}`: the git repo has no commits yet",
                    hint="commit first (`git add -A && git commit`)",
                ) from exc
            raise GitError(
                f"unknown git revision `{rev}`", hint="check it with `git log --oneline`"
            ) from exc

    def files_at(self, rev: str, suffix: str, under: str = "") -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of every file ending in ``suffix`` at ``rev``, below ``under``."""
        tree = self.repo.commit(self.resolve(rev)).tree
        if under:
            try:
                tree = tree / under
            except KeyError:
                return
        for item in tree.traverse():
            if item.type == "blob" and item.path.endswith(suffix):  # type: ignore[union-attr]
                yield str(item.path), item.data_stream.read()  # type: ignore[union-attr]

    def revisions(
        self, revs: Iterable[str] = (), *, all_branches: bool = False, all_tags: bool = False,
        all_commits: bool = False,
    ) -> list[str]:
        """Commit shas: ``revs``, the tips of branches and tags, or every commit reachable
        from a branch or tag (``all_commits``)."""
        shas = {self.resolve(rev) for rev in revs}
        if all_commits:
            if self.repo.head.is_valid():
                shas.update(self.repo.git.rev_list("--branches", "--tags", "HEAD").split())
            return sorted(shas)
        if all_branches:
            shas.update(str(head.commit.hexsha) for head in self.repo.heads)
        if all_tags:
            shas.update(str(tag.commit.hexsha) for tag in self.repo.tags)
        return sorted(shas)

    def read_at(self, rev: str, path: str) -> bytes | None:
        try:
            blob = self.repo.commit(self.resolve(rev)).tree / path
        except KeyError:
            return None
        return blob.data_stream.read() if blob.type == "blob" else None

    def tracked(self, paths: Iterable[str]) -> list[str]:
        """Which of ``paths`` (relative to the root) git tracks, files or folders."""
        paths = list(paths)
        if not paths:
            return []
        out = self.repo.git.ls_files("-z", "--", *paths)
        return [p for p in out.split("\0") if p]

    def stage(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            self.repo.git.add("--", *paths)


def add_ignore(folder: str, name: str) -> bool:
    """Make git ignore ``folder/name`` with a ``/name`` line in ``folder/.gitignore``."""
    path = os.path.join(folder, ".gitignore")
    line = "/" + _escape_ignore(name)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if line in text.splitlines():
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write(path, (text + line + "\n").encode("utf-8"))
    return True


def _escape_ignore(name: str) -> str:
    """Escape gitignore's special characters so the line matches ``name`` only."""
    escaped = "".join("\\" + c if c in "*?[]\\!#" else c for c in name)
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def is_git_url(source: str) -> bool:
    """True for what git reads as a URL (``scheme://…`` or scp-like ``host:path``), False for a
    local path."""
    if "://" in source:
        return True
    head = source.split("/", 1)[0]
    return ":" in head and not (len(head) == 2 and head[0].isalpha())  # "c:" is a drive


def clone_revision(url: str, rev: str | None, dest: str) -> str:
    """Make at ``dest`` (a new folder) a bare clone of ``url`` that holds one revision's
    commits and trees but no file contents, which git fetches when they are read; return the
    commit sha ``rev`` (default: the remote's HEAD) names.

    A branch or tag name, or no ``rev``, gives a shallow clone of that commit alone; any
    other revision (a sha, ``main~2``) needs the history to resolve it, still without blobs.
    Raises GitError when ``url`` is not a readable git repo or ``rev`` is not in it.
    """
    shown = url
    if not is_git_url(url):
        url = Path(os.path.abspath(url)).as_uri()  # file://, so --depth and --filter apply
    try:
        refs = run_git("ls-remote", "--", url).splitlines()
    except GitError as exc:
        raise GitError(f"`{shown}` is not a git repository, or cannot be read ({exc.message})",
                       hint="check the path or URL, and your access to it") from None
    names = {line.partition("\t")[2] for line in refs}
    blobless = ("clone", "--quiet", "--bare", "--filter=blob:none")
    if rev is None or rev == "HEAD":
        run_git(*blobless, "--depth=1", "--", url, dest)
        wanted = "HEAD"
    elif f"refs/heads/{rev}" in names or f"refs/tags/{rev}" in names:
        run_git(*blobless, "--depth=1", f"--branch={rev}", "--", url, dest)
        wanted = "HEAD"
    else:
        run_git(*blobless, "--", url, dest)
        wanted = rev
    try:
        return run_git("-C", dest, "rev-parse", "--verify", "--end-of-options",
                        f"{wanted}^{{commit}}").strip()
    except GitError:
        if wanted == "HEAD":
            raise GitError(f"`{shown}` has no commits") from None
        raise GitError(f"unknown git revision `{rev}` in `{shown}`",
                       hint="give a branch, a tag or a commit of that repo") from None


def run_git(*args: str) -> str:
    """Run git, returning its stdout; a failure is a GitError quoting git's first fatal line."""
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                          env=clean_git_env(dict(os.environ)))
    if proc.returncode != 0:
        raise git_failure(args, proc.stderr)
    return proc.stdout


def git_failure(args: Sequence[str], stderr: str) -> GitError:
    """A GitError quoting git's first fatal line (or its last line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("fatal: ")] or lines[-1:]
    return GitError(fatal[0].removeprefix("fatal: ") if fatal else f"git {args[0]} failed")
