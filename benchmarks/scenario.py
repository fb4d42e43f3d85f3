"""One tool's steps on one workload, each repeated from a fresh state; and its CLI steps.

How each step starts fresh (the same for every tool):

- add: a new repo (git init, the tool's init, link config, first commit) and a new
  `cp -r` of the data, for every repetition.
- status: the repo as `add` left it, committed; nothing changes between repetitions. A
  tool with a `warm` step (dvlite with its file-system watcher) runs it first, untimed.
- status W3: W3 written again before each repetition (same bytes, new inodes and mtimes, so
  no stat cache can vouch for them).
- re-add W3: before each repetition the pointer file (git-lfs: the git index) is put back,
  the objects the last one stored are deleted from the cache, and W3 is written again.
- checkout: `git checkout A` (W2) then `git checkout B` (W3), each with the tool's checkout,
  timed together; every repetition is a real switch.
- gc (`-w`, workspace only): the cache is backed up with hardlinks and restored after.
- push / pull: each repetition pushes to a new empty store (folder, or S3 bucket) and pulls
  it into a new `git clone` of the repo, with no cache.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from measure import Sample, run
from remotes import Watch, remove
from tools import REPRO_INPUT
from workloads import apply_change

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from remotes import Remote
    from tools import Tool
    from workloads import Workload

MIB = 1024 * 1024


@dataclass(frozen=True)
class Context:
    env: dict[str, str]
    repeat: int
    scratch: Path  # where repos, clones and backups are made (and removed)
    log: Path
    record: Callable[[str, str, str, Sample], None]  # (group, step, tool, sample)


class Session:
    """One tool in one repo of one group (e.g. "W2 copy")."""

    def __init__(self, ctx: Context, tool: Tool, group: str, values: dict[str, str]) -> None:
        self.ctx, self.tool, self.group = ctx, tool, group
        self.root = ctx.scratch / tool.name
        self.repo = self.root / "repo"
        self.values = values

    def do(self, step: str, cwd: Path | None = None,
           values: dict[str, str] | None = None) -> Sample:
        commands = self.tool.commands(step, **self.values, **(values or {}))
        return run(commands, cwd=cwd or self.repo, env=self.ctx.env, log=self.ctx.log)

    def measure(self, row: str, step: str, cwd: Path | None = None,
                values: dict[str, str] | None = None,
                store: tuple[Remote, str] | None = None) -> Sample:
        """Time `step` and record it as `row`; with `store` (a remote and its key), what it
        did to that store too."""
        sample = self.take(step, cwd, values, store)
        self.record(row, sample)
        return sample

    def take(self, step: str, cwd: Path | None = None, values: dict[str, str] | None = None,
             store: tuple[Remote, str] | None = None) -> Sample:
        os.sync()  # no writeback of the setup's files during the timed step
        watch = Watch(*store) if store else None
        sample = self.do(step, cwd, values)
        return replace(sample, traffic=watch.done()) if watch else sample

    def record(self, row: str, sample: Sample) -> None:
        self.ctx.record(self.group, row, self.tool.name, sample)
        traffic = sample.traffic
        note = "" if traffic is None else (
            f" up {traffic.uploaded / MIB:9.1f} MiB, stored {traffic.stored / MIB:9.1f} MiB "
            f"in {traffic.objects:,} objects"
            + ("" if traffic.requests is None else
               f", {traffic.requests:,} requests, read {(traffic.received or 0) / MIB:.1f} MiB"))
        print(f"  {self.group:<12} {row:<14} {self.tool.name:<10} {sample.seconds:8.3f} s "
              f"{sample.peak_kib / 1024:7.0f} MiB{note}", file=sys.stderr)

    def git(self, *args: str, cwd: Path | None = None) -> None:
        run([["git", *args]], cwd=cwd or self.repo, env=self.ctx.env, log=self.ctx.log)

    def new_repo(self, files: dict[str, str] | None = None) -> None:
        remove(self.root)
        self.repo.mkdir(parents=True)
        for name, text in (files or {}).items():
            (self.repo / name).write_text(text)
        self.do("init")
        self.commit("init")

    def clone(self, remote: Remote, store: dict[str, str]) -> Path:
        """A new `git clone` of the repo, with no cache, pointed at the same store."""
        clone = self.root / "clone"
        remove(clone)
        self.git("clone", "-q", str(self.repo), str(clone))
        self.do("clone", cwd=clone)
        self.do(f"remote {remote.name}", cwd=clone, values=store)
        return clone

    def commit(self, tag: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", tag)
        self.git("tag", tag)

    def repeat(self) -> range:
        return range(self.ctx.repeat)


def bench_workload(ctx: Context, tool: Tool, workload: Workload, tree: Path, *, link: str,
                   remotes: list[Remote]) -> None:
    pattern = workload.target if workload.is_file else f"{workload.target}/**"
    session = Session(ctx, tool, f"{workload.name} {link}",
                      {"target": workload.target, "pattern": pattern,
                       "link": tool.links[link]})
    for _ in session.repeat():
        session.new_repo()
        run([["cp", "-r", str(tree / workload.target), workload.target]], cwd=session.repo,
            env=ctx.env, log=ctx.log)
        session.measure("add", "add")
    session.commit("A")
    if tool.has("warm"):
        session.do("warm")
    for _ in session.repeat():
        session.measure("status", "status")
    if workload.change:
        _bench_change(session, workload)
    for remote in remotes if workload.sync else []:
        _bench_remote(session, remote, f"{tool.name}-{workload.name}-{link}")
    remove(session.root)


def _bench_change(session: Session, workload: Workload) -> None:
    target = session.repo / workload.target
    before = tree_bytes(target)
    for _ in session.repeat():
        apply_change(workload, session.repo)
        session.measure("status W3", "status")
    undo = _Undo(session)
    for index in session.repeat():
        if index:
            undo.restore()
        apply_change(workload, session.repo)
        session.measure("re-add W3", "add")
    session.commit("B")
    expected = {"A": before, "B": tree_bytes(target)}
    for _ in session.repeat():
        for rev in ("A", "B"):
            session.measure("checkout", "checkout", values={"rev": rev})
            if tree_bytes(target) != expected[rev]:
                raise RuntimeError(f"{session.tool.name} checkout of {rev} left other data")
    session.git("checkout", "-q", "main")
    if session.tool.has("gc"):
        for _ in session.repeat():
            backup = _Backup(session)
            session.measure("gc", "gc")
            if not backup.restore():
                raise RuntimeError(f"{session.tool.name} gc deleted nothing")


def _bench_remote(session: Session, remote: Remote, key: str) -> None:
    step = f"remote {remote.name}"
    if not session.tool.has(step):
        return
    for index in range(remote.repeat or session.ctx.repeat):
        watched = (remote, f"{key}-{index}")
        store = remote.fresh(watched[1])
        session.do(step, values=store)
        session.measure(f"push {remote.name}", "push", values=store, store=watched)
        clone = session.clone(remote, store)
        session.measure(f"pull {remote.name}", "pull", cwd=clone, values=store, store=watched)
        target = session.values["target"]
        if tree_bytes(clone / target) != tree_bytes(session.repo / target):
            raise RuntimeError(f"{session.tool.name} pulled something else into {clone}")
        remove(clone)
        remote.drop(watched[1])


def bench_cli(ctx: Context, tool: Tool) -> None:
    """`--help`, `--version`, and `repro` of a one-stage pipeline that is up to date."""
    session = Session(ctx, tool, "CLI", {"link": next(iter(tool.links.values()))})
    for row, step in (("--help", "help"), ("--version", "version")):
        if tool.has(step):
            for _ in session.repeat():
                session.measure(row, step, cwd=ctx.scratch)
    if tool.has("repro"):
        session.new_repo({REPRO_INPUT: "the stage copies this\n", **tool.pipeline})
        session.do("repro")
        session.commit("ran")
        for _ in session.repeat():
            session.measure("repro", "repro")
    remove(session.root)


class _Undo:
    """What an `add` changes: the files it rewrites, and the objects it adds to the cache."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.files = {path: path.read_bytes() for path in self._files()}
        self.objects = set(_files_in(session.repo / session.tool.cache))

    def _files(self) -> list[Path]:
        repo, values = self.session.repo, self.session.values
        return [repo / template.format(**values) for template in self.session.tool.undo]

    def restore(self) -> None:
        for path, data in self.files.items():
            path.write_bytes(data)
        for path in set(_files_in(self.session.repo / self.session.tool.cache)) - self.objects:
            path.unlink()


class _Backup:
    """The cache's files, hardlinked aside before a gc and linked back after it."""

    def __init__(self, session: Session) -> None:
        self.cache = session.repo / session.tool.cache
        self.aside = session.root / "gc-backup"
        remove(self.aside)
        self.files = _files_in(self.cache)
        for path in self.files:
            target = self.aside / path.relative_to(self.cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)

    def restore(self) -> int:
        """Link back what the gc deleted; how many files that was."""
        deleted = [path for path in self.files if not path.exists()]
        for path in deleted:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(self.aside / path.relative_to(self.cache), path)
        remove(self.aside)
        return len(deleted)


def _files_in(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []


def tree_bytes(root: Path) -> tuple[int, int]:
    """Number of files and bytes under `root` (a file: 1 and its size)."""
    files = _files_in(root) if root.is_dir() else [root]
    return len(files), sum(path.stat().st_size for path in files)
