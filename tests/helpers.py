"""Helpers shared by the tests: a temp repo with generators, CLI and subprocess runners."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from dvlite.ops.add import StoreResult, add
from dvlite.repo import Repo

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Tree = Mapping[str, Union[str, bytes, "Tree"]]


def gen(root: Path, tree: Tree) -> None:
    """Write a nested dict of text (str) or bytes below ``root``."""
    for name, content in tree.items():
        path = root / name
        if isinstance(content, Mapping):
            path.mkdir(parents=True, exist_ok=True)
            gen(path, content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                         text=True)
    return out.stdout


@dataclass
class TmpRepo:
    root: Path
    repo: Repo

    @classmethod
    def create(cls, root: Path) -> TmpRepo:
        repo, _ = Repo.init(str(root))
        return cls(root, repo)

    def reopen(self) -> Repo:
        """A fresh Repo (re-reads config), replacing the current one."""
        self.repo.close()
        self.repo = Repo.discover(str(self.root))
        return self.repo

    def close(self) -> None:
        self.repo.close()

    def gen(self, tree: Tree) -> None:
        gen(self.root, tree)

    def path(self, rel: str) -> str:
        return str(self.root / rel)

    def dvl_add(self, *paths: str) -> StoreResult:
        return add(self.repo, [self.path(p) for p in paths])

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def git_commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_dvlite(args: Sequence[str], cwd: Path | str, *, env: Mapping[str, str] | None = None,
               entry: str = "dvlite") -> Run:
    """Run the installed entry point (or ``git dvlite`` with entry="git") in a subprocess."""
    cmd = ["git", "dvlite", *args] if entry == "git" else [sys.executable, "-m", "dvlite", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_elsewhere(lock: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding an flock on ``lock`` until its stdin closes or the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, lock], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
