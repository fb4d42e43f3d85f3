"""The physical references: what the hardware, Python and git take for the same work.

Each reference is timed `repeat` times and its median kept. The in-process ones (walk, read,
hash, copy) run in this interpreter with nothing imported on the way, so they are what a
tool written in Python could do at best; `python -c pass`, `cp -r` and `git status` are
separate processes, like the tools.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from typing import TYPE_CHECKING

import xxhash
from measure import run, timed
from remotes import remove

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

BUFFER = 1024 * 1024

# A step's limit: the sum of these references (the "limit s" column)
LIMITS: dict[str, tuple[str, ...]] = {
    "add": ("xxh3-128 all", "cp -r"),
    "status": ("python -c pass", "stat walk"),
    "status W3": ("python -c pass", "stat walk", "xxh3-128 changed"),
    "re-add W3": ("python -c pass", "stat walk", "xxh3-128 changed", "copy changed"),
    "checkout": ("python -c pass", "stat walk", "copy changed"),
    "push local": ("cp -r",),
    "pull local": ("cp -r",),
    "repro": ("python -c pass",),
    "--help": ("python -c pass",),
    "--version": ("python -c pass",),
}


def stat_walk(root: Path) -> int:
    """os.scandir through `root`, one stat per entry; the number of files."""
    if not root.is_dir():
        root.stat()
        return 1
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    count += 1
    return count


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() \
        else [root]


def read_all(paths: list[Path], digest: Callable[[], xxhash.xxh3_128] | None = None) -> None:
    """Read every byte of `paths` in 1 MiB pieces, hashing them if `digest` is given."""
    buffer = bytearray(BUFFER)
    view = memoryview(buffer)
    for path in paths:
        hasher = digest() if digest else None
        with path.open("rb", buffering=0) as f:
            while size := f.readinto(buffer):
                if hasher:
                    hasher.update(view[:size])
        if hasher:
            hasher.hexdigest()


def copy_all(paths: list[Path], src: Path, dst: Path) -> None:
    for path in paths:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def measure(tree: Path, target: str, changed: tuple[Path, list[str]] | None, *,
            scratch: Path, repeat: int, env: dict[str, str], log: Path) -> dict[str, float]:
    """Every reference for the workload in `tree` (its data at `tree/target`), in seconds;
    `changed` is a W3 tree and the paths the change wrote in it."""
    scratch.mkdir(parents=True, exist_ok=True)
    data = tree / target
    paths = files_under(data)
    changed_root, changed_paths = (changed[0], [changed[0] / p for p in changed[1]]) \
        if changed else (tree, [])
    copies = scratch / "copy"
    git_repo = _git_repo(tree, target, scratch / "git", env, log)

    def process(*argv: str, cwd: Path = scratch) -> float:
        return run([list(argv)], cwd=cwd, env=env, log=log).seconds

    def cp_r() -> float:
        remove(copies)
        return process("cp", "-r", str(data), str(copies))

    def copy_changed() -> float:
        remove(copies)
        return timed(lambda: copy_all(changed_paths, changed_root, copies))

    references: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: interpreter_start(scratch, env, log),
        "stat walk": lambda: timed(lambda: stat_walk(data)),
        "read all": lambda: timed(lambda: read_all(paths)),
        "xxh3-128 all": lambda: timed(lambda: read_all(paths, xxhash.xxh3_128)),
        "cp -r": cp_r,
        "git status": lambda: process("git", "status", cwd=git_repo),
    }
    if changed_paths:
        references["xxh3-128 changed"] = lambda: timed(
            lambda: read_all(changed_paths, xxhash.xxh3_128))
        references["copy changed"] = copy_changed
    medians = {name: statistics.median(take() for _ in range(repeat))
               for name, take in references.items()}
    remove(copies)
    remove(git_repo)
    return medians


def interpreter_start(cwd: Path, env: dict[str, str], log: Path) -> float:
    """`python -c pass`: what any command written in Python pays before its first line."""
    return run([[sys.executable, "-c", "pass"]], cwd=cwd, env=env, log=log).seconds


def _git_repo(tree: Path, target: str, repo: Path, env: dict[str, str], log: Path) -> Path:
    """The workload committed to plain git (no compression), for `git status` on it."""
    remove(repo)
    repo.mkdir(parents=True)
    commands = [["cp", "-r", str(tree / target), str(repo / target)], ["git", "init", "-q"],
                ["git", "-c", "core.compression=0", "add", "-A"],
                ["git", "-c", "core.compression=0", "commit", "-q", "-m", "data"],
                ["git", "status"]]
    run(commands, cwd=repo, env=env, log=log)
    return repo
