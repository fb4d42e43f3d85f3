"""Everything dvlite asks of git. The only module that imports GitPython,
imported lazily so commands that need no git (status, checkout) start fast."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dvlite.errors import GitError
from dvlite.fsutil import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

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
        refs = _run_git("ls-remote", "--", url).splitlines()
    except GitError as exc:
        raise GitError(f"`{shown}` is not a git repository, or cannot be read ({exc.message})",
                       hint="check the path or URL, and your access to it") from None
    names = {line.partition("\t")[2] for line in refs}
    blobless = ("clone", "--quiet", "--bare", "--filter=blob:none")
    if rev is None or rev == "HEAD":
        _run_git(*blobless, "--depth=1", "--", url, dest)
        wanted = "HEAD"
    elif f"refs/heads/{rev}" in names or f"refs/tags/{rev}" in names:
        _run_git(*blobless, "--depth=1", f"--branch={rev}", "--", url, dest)
        wanted = "HEAD"
    else:
        _run_git(*blobless, "--", url, dest)
        wanted = rev
    try:
        return _run_git("-C", dest, "rev-parse", "--verify", "--end-of-options",
                        f"{wanted}^{{commit}}").strip()
    except GitError:
        if wanted == "HEAD":
            raise GitError(f"`{shown}` has no commits") from None
        raise GitError(f"unknown git revision `{rev}` in `{shown}`",
                       hint="give a branch, a tag or a commit of that repo") from None


def _run_git(*args: str) -> str:
    """Run git, returning its stdout; a failure is a GitError quoting git's first fatal line."""
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                          env=clean_git_env(dict(os.environ)))
    if proc.returncode != 0:
        raise _git_failure(args, proc.stderr)
    return proc.stdout


def _git_failure(args: Sequence[str], stderr: str) -> GitError:
    """A GitError quoting git's first fatal line (or its last line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("fatal: ")] or lines[-1:]
    return GitError(fatal[0].removeprefix("fatal: ") if fatal else f"git {args[0]} failed")


# --- hooks: where git looks for them, and what a commit or a push is about to send ---


def git_path(root: str, name: str) -> str:
    """The absolute path git uses for ``name`` in its folder (``git rev-parse --git-path``):
    ``hooks`` follows ``core.hooksPath``, and a linked worktree keeps its own rebase state."""
    out = _run_git("-C", root, "rev-parse", "--git-path", name).rstrip("\n")
    return os.path.normpath(os.path.join(root, out))  # relative answers are relative to root


def has_commit(root: str, sha: str) -> bool:
    try:
        _run_git("-C", root, "cat-file", "-e", f"{sha}^{{commit}}")
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
    out = _run_git("-C", root, "rev-list", *tips, "--not", *known, theirs)
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
        raise _git_failure(args, proc.stderr.decode(errors="replace"))
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
        _run_git("-C", root, "-c", f"core.hooksPath={os.devnull}", "worktree", "add",
                 "--detach", "--quiet", path, rev)
        yield path
    finally:
        with _sigint_deferred():
            _remove_worktree(root, path, parent)


def _remove_worktree(root: str, path: str, parent: str) -> None:
    try:
        _run_git("-C", root, "worktree", "remove", "--force", path)
    except GitError:
        # git refused (or `add` failed half-way): delete the folder, then let git forget it
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(GitError):
            _run_git("-C", root, "worktree", "prune")
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
        return _run_git("-C", root, "config", "--local", "--get", key).rstrip("\n")
    except GitError:  # git exits 1 for a key that is not set
        return None


def config_set(root: str, key: str, value: str) -> None:
    _run_git("-C", root, "config", "--local", key, value)


def config_unset(root: str, key: str) -> None:
    """Remove ``key`` from the repo's git config, and its section once that is empty (git
    leaves an empty ``[section]`` behind)."""
    if config_get(root, key) is not None:
        _run_git("-C", root, "config", "--local", "--unset-all", key)
    section = key.rsplit(".", 1)[0]
    pattern = "^" + section.replace(".", r"\.") + r"\."
    try:
        _run_git("-C", root, "config", "--local", "--get-regexp", pattern)
    except GitError:  # no key left in it
        with contextlib.suppress(GitError):  # nor the section itself
            _run_git("-C", root, "config", "--local", "--remove-section", section)


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
