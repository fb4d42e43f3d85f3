"""Issue 9's steps (W5, W6, W7): one tool against one remote, in one sequence.

Unlike the other workloads these run once (`--repeat` is ignored): each step builds on the
one before, and what they measure is mostly what reaches the remote, which does not vary.
Every push and pull also records the store's bytes and objects before and after it, and on
S3 the requests and the bytes on the wire (remotes.Watch).

- W5, W6 (one file, version after version), in a new repo, pushing to a fresh store:
  add and push the first version; then for each edit, the edit (untimed), add and push
  (W6's nine later versions are summed into one pair of rows); checkout back to the first
  version and forward to the last, each timed; pull the first version into a new clone (no
  cache), then the last over it (what a pull of a new version costs where an old one is).
- W7 (many small files): add; push to a fresh store; pull into a new clone; pull one file
  (`pull PATH`) into another new clone.

Every checkout and pull is checked against the bytes it should have left.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from typing import TYPE_CHECKING

import xxhash
from measure import run, total
from remotes import remove
from scenario import Session, tree_bytes
from versions import apply_edit
from workloads import path_of

if TYPE_CHECKING:
    from pathlib import Path

    from remotes import Remote
    from scenario import Context
    from tools import Tool
    from versions import Versions
    from workloads import Workload

LINK = "copy"


def bench_versions(ctx: Context, tool: Tool, versions: Versions, first: Path,
                   remote: Remote) -> None:
    """W5 or W6: the first version of the file is `first / versions.target`."""
    session, store, watched = _start(ctx, tool, versions.name, versions.target, remote)
    path = session.repo / versions.target
    shutil.copyfile(first / versions.target, path)
    digests = {"v1": _digest(path)}
    session.measure("add v1", "add")
    session.commit("v1")
    session.measure("push v1", "push", values=store, store=watched)
    numbered = enumerate(versions.edits, start=2)
    for row, edits in itertools.groupby(numbered, key=lambda pair: pair[1].row):
        adds, pushes = [], []
        for number, edit in edits:
            apply_edit(versions, edit, path, number)
            adds.append(session.take("add"))
            session.commit(f"v{number}")
            pushes.append(session.take("push", values=store, store=watched))
        session.record(f"add {row}", total(adds))
        session.record(f"push {row}", total(pushes))
    last = f"v{len(versions.edits) + 1}"
    digests[last] = _digest(path)
    for rev in ("v1", last):
        session.measure("checkout", "checkout", values={"rev": rev})
        if _digest(path) != digests[rev]:
            raise RuntimeError(f"{tool.name} checkout of {rev} left other data")
    session.git("checkout", "-q", "main")
    clone = session.clone(remote, store)
    for rev, row in (("v1", "pull v1"), ("main", f"pull {last} over v1")):
        session.git("checkout", "-q", rev, cwd=clone)
        session.measure(row, "pull", cwd=clone, values=store, store=watched)
        if _digest(clone / versions.target) != digests.get(rev, digests[last]):
            raise RuntimeError(f"{tool.name} pulled something else into {clone}")
    _finish(session, watched)


def bench_files(ctx: Context, tool: Tool, workload: Workload, tree: Path,
                remote: Remote) -> None:
    """W7: the folder `tree / workload.target` added, pushed, pulled, and one file pulled."""
    session, store, watched = _start(ctx, tool, workload.name, workload.target, remote)
    run([["cp", "-r", str(tree / workload.target), workload.target]], cwd=session.repo,
        env=ctx.env, log=ctx.log)
    session.measure("add", "add")
    session.commit("A")
    session.measure("push", "push", values=store, store=watched)
    clone = session.clone(remote, store)
    session.measure("pull", "pull", cwd=clone, values=store, store=watched)
    if tree_bytes(clone / workload.target) != tree_bytes(session.repo / workload.target):
        raise RuntimeError(f"{tool.name} pulled something else into {clone}")
    remove(clone)
    clone = session.clone(remote, store)
    one = path_of(workload, workload.files // 2 + 1)
    session.measure("pull one file", "pull path", cwd=clone, values={**store, "path": one},
                    store=watched)
    if (clone / one).read_bytes() != (session.repo / one).read_bytes():
        raise RuntimeError(f"{tool.name} pulled something else into {clone / one}")
    _finish(session, watched)


def _start(ctx: Context, tool: Tool, name: str, target: str,
           remote: Remote) -> tuple[Session, dict[str, str], tuple[Remote, str]]:
    """A new repo of `tool` (copy links) pointed at a fresh store of `remote`: the session,
    the store's values for the templates, and the (remote, key) to watch."""
    session = Session(ctx, tool, f"{name} {remote.name}",
                      {"target": target, "pattern": target, "link": tool.links[LINK]})
    key = f"{tool.name}-{name}"
    session.new_repo()
    store = remote.fresh(key)
    session.do(f"remote {remote.name}", values=store)
    return session, store, (remote, key)


def _finish(session: Session, watched: tuple[Remote, str]) -> None:
    remote, key = watched
    remote.drop(key)
    remove(session.root)


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()
