"""Everything dvlite asks of git, through the git binary: no git library to import, so
every command starts fast. ``Git`` reads revisions, trees and files of one repo;
``plumbing`` and ``refs`` hold the rest (hooks, worktrees, refs of experiments)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dvlite.errors import GitError
from dvlite.fsutil import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

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
    """A git repo (a work tree or a bare clone), read through the git binary: one
    ``git cat-file --batch`` process, started on first read, answers every revision, tree
    and file, so reading many commits starts no process per object; ``close`` ends it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._batch: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one question and its answer at a time

    def close(self) -> None:
        if self._batch is not None:
            self._batch.communicate()  # closing its input ends it
            self._batch = None

    def resolve(self, rev: str) -> str:
        """The commit sha ``rev`` names."""
        found = self._object(f"{rev}^{{commit}}")
        if found is not None:
            return found[0]
        if self._object("HEAD^{commit}") is None:
            raise GitError(f"cannot read `{rev}`: the git repo has no commits yet",
                           hint="commit first (`git add -A && git commit`)")
        raise GitError(f"unknown git revision `{rev}`", hint="check it with `git log --oneline`")

    def files_at(self, rev: str, suffix: str, under: str = "") -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of every file ending in ``suffix`` at ``rev``, below ``under``."""
        sha = self.resolve(rev)
        tree = self._object(f"{sha}:{under}")
        if tree is not None and tree[1] == "tree":
            yield from self._files(tree[2], under, suffix, len(sha) // 2)

    def _files(self, tree: bytes, folder: str, suffix: str,
               oid_size: int) -> Iterator[tuple[str, bytes]]:
        """Depth first through a tree object: entries are ``<mode> <name>\\0<binary oid>``."""
        start = 0
        while start < len(tree):
            space = tree.index(b" ", start)
            end = tree.index(b"\0", space)
            mode, name = tree[start:space], tree[space + 1:end].decode(errors="surrogateescape")
            oid = tree[end + 1:end + 1 + oid_size].hex()
            start = end + 1 + oid_size
            path = f"{folder}/{name}" if folder else name
            if mode == b"40000":
                yield from self._files(self._content(oid), path, suffix, oid_size)
            elif mode != b"160000" and name.endswith(suffix):  # 160000: a submodule's commit
                yield path, self._content(oid)

    def revisions(
        self, revs: Iterable[str] = (), *, all_branches: bool = False, all_tags: bool = False,
        all_commits: bool = False,
    ) -> list[str]:
        """Commit shas: ``revs``, the tips of branches and tags, or every commit reachable
        from a branch or tag (``all_commits``)."""
        shas = {self.resolve(rev) for rev in revs}
        if all_commits:
            if self._object("HEAD^{commit}") is not None:
                shas.update(self._git("rev-list", "--branches", "--tags", "HEAD").split())
            return sorted(shas)
        if all_branches:
            shas.update(self._git("for-each-ref", "--format=%(objectname)", "refs/heads").split())
        if all_tags:  # an annotated tag's commit is its peeled object (%(*objectname))
            tags = self._git("for-each-ref", "--format=%(objectname) %(*objectname)", "refs/tags")
            shas.update(line.split()[-1] for line in tags.splitlines() if line)
        return sorted(shas)

    def read_at(self, rev: str, path: str) -> bytes | None:
        found = self._object(f"{self.resolve(rev)}:{path}")
        return found[2] if found is not None and found[1] == "blob" else None

    def tracked(self, paths: Iterable[str]) -> list[str]:
        """Which of ``paths`` (relative to the root) git tracks, files or folders."""
        paths = list(paths)
        if not paths:
            return []
        out = self._git("--literal-pathspecs", "ls-files", "-z", "--", *paths)
        return [p for p in out.split("\0") if p]

    def stage(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            self._git("--literal-pathspecs", "add", "--", *paths)

    def _git(self, *args: str) -> str:
        return run_git("-C", self.root, *args)

    def _content(self, oid: str) -> bytes:
        found = self._object(oid)
        if found is None:
            raise GitError(f"git object {oid} is missing from `{self.root}`")
        return found[2]

    def _object(self, name: str) -> tuple[str, str, bytes] | None:
        """(oid, type, content) of the object ``name`` names (``HEAD^{commit}``,
        ``<sha>:<path>``), or None when it names none."""
        if "\n" in name:  # the batch protocol is one name a line
            return None
        with self._lock:
            batch = self._started()
            assert batch.stdin is not None
            assert batch.stdout is not None
            try:
                batch.stdin.write(name.encode(errors="surrogateescape") + b"\n")
                batch.stdin.flush()
                header = batch.stdout.readline().split()
            except BrokenPipeError:
                header = []
            if not header:  # git stopped at once: no repo there
                self._batch = None
                batch.wait()
                raise GitError(f"`{self.root}` is not a git work tree")
            if len(header) != 3 or not header[2].isdigit():  # "<name> missing"
                return None
            content = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)  # the newline after each object
            return header[0].decode(), header[1].decode(), content

    def _started(self) -> subprocess.Popen[bytes]:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", self.root, "cat-file", "--batch"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=clean_git_env(dict(os.environ)))
        return self._batch


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
