"""``dvlite repro --rev REV``: rebuild a past commit's pipeline and check it against its lock.

A temporary git worktree at REV gets that commit's ``.dvl``-tracked data from the
cache (fetched from a remote when the cache lacks it), every stage (or the targets
and their upstream stages) runs there, and each output is compared with what REV's
``dvlite.lock`` records. The user's workspace, index and branch are never touched,
and the worktree is removed on every way out, Ctrl-C included. The worktree shares
the user's cache, so what the rebuild fetches or produces stays there: a later
checkout of REV needs no remote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from dvlite import pointer as pointers
from dvlite import scm
from dvlite.errors import (
    ConfigError,
    GitError,
    MissingObjectError,
    PipelineError,
    StageFailedError,
)
from dvlite.ops import exp_store, sync
from dvlite.ops.checkout import checkout
from dvlite.ops.repro import repro
from dvlite.ops.worktree import isolated_worktree
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline import stage as stages_mod
from dvlite.repo import Repo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dvlite.ops.repro import Notify
    from dvlite.pipeline.lockfile import Lockfile
    from dvlite.storage.hashing import Oid

Status = Literal["matches", "differs", "missing"]
_SHOWN = 10  # paths named in an error before "and N more"


@dataclass(frozen=True)
class OutputCheck:
    path: str  # relative to the repo root
    stage: str
    status: Status  # missing: produced but not in REV's lock, or in it but not produced
    expected: Oid | None  # what REV's lock records
    actual: Oid | None  # what the rebuild produced


@dataclass(frozen=True)
class RebuildResult:
    rev: str  # the commit sha
    outputs: tuple[OutputCheck, ...]
    # stage -> how the environment it ran in now differs from the one REV's lock records
    environment: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.status == "matches" for o in self.outputs)


def rebuild(
    repo: Repo,
    rev: str,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    notify: Notify | None = None,
    output_to_stderr: bool = False,
) -> RebuildResult:
    """Rebuild ``rev``'s pipeline (``targets``: stage names, none means all) in a temporary
    worktree and compare every output of the stages that ran with ``rev``'s lock."""
    sha = _commit_of(repo, rev)
    expected = _lock_at(repo, rev, sha)
    top = scm.find_work_tree(repo.root) or repo.root
    with isolated_worktree(repo, sha) as tree_top:
        # the project may sit below the top of the git work tree
        root = os.path.normpath(os.path.join(tree_top, os.path.relpath(repo.root, top)))
        with Repo(root, shared_with=repo) as tree:
            _materialize(repo, tree, rev, sha, remote=remote, jobs=jobs)
            try:
                ran = repro(tree, targets, force=True, notify=notify,
                            output_to_stderr=output_to_stderr).ran
            except PipelineError as exc:
                raise _at_rev(rev, exc) from exc
            produced = lockfiles.load(tree.abs(lockfiles.FILENAME),
                                      algorithm=tree.cache.algorithm)
    return RebuildResult(sha, _compare(ran, expected, produced),
                         _environments(ran, expected, produced))


def _commit_of(repo: Repo, rev: str) -> str:
    """``rev``'s commit: a git revision, or the name of an experiment (``dvlite exp``)."""
    try:
        return repo.git.resolve(rev)
    except GitError:
        named = [e.sha for e in exp_store.experiments(repo) if e.name == rev]
        if len(named) != 1:  # none, or one name on several baselines: git's error stands
            raise
        return named[0]


def _lock_at(repo: Repo, rev: str, sha: str) -> Lockfile:
    """``rev``'s lock, after checking it has a pipeline and a lock to compare with."""
    if repo.git.read_at(sha, stages_mod.FILENAME) is None:
        raise PipelineError(f"no pipeline at `{rev}`: `{stages_mod.FILENAME}` is not in that "
                            "commit", hint="give a revision whose pipeline was committed")
    data = repo.git.read_at(sha, lockfiles.FILENAME)
    if data is None:
        raise PipelineError(
            f"nothing to compare with at `{rev}`: `{lockfiles.FILENAME}` is not in that commit",
            hint=f"give a revision where `dvlite repro` ran and `{lockfiles.FILENAME}` was "
            "committed",
        )
    return lockfiles.decode(data, source=f"{rev}:{lockfiles.FILENAME}",
                            algorithm=repo.cache.algorithm)


def _materialize(main: Repo, tree: Repo, rev: str, sha: str, *, remote: str | None,
                 jobs: int | None) -> None:
    """Check out the data ``rev``'s ``.dvl`` pointers record, fetching what the cache lacks.

    Only pointer files are targets: outputs the lock records must be rebuilt, not restored.
    """
    targets = [tree.abs(path) for path, _ in tree.git.files_at(sha, pointers.SUFFIX)]
    if not targets:
        return
    # The user's repo lock keeps a `dvlite gc` there from collecting what is checked out here.
    with main.lock():
        missing = checkout(tree, targets).missing
        if not missing:
            return
        try:
            fetched = sync.fetch(tree, targets, remote=remote, jobs=jobs)
        except ConfigError as exc:
            raise MissingObjectError(
                f"`{rev}` needs data the cache lacks ({_listing(missing)}), and it cannot be "
                f"fetched: {exc.message}",
                hint=exc.hint,
            ) from exc
        missing = checkout(tree, targets).missing
    if missing:
        failed = f"; {len(fetched.failed)} object(s) failed to transfer" if fetched.failed else ""
        raise MissingObjectError(
            f"data `{rev}` needs is neither in the cache nor on the remote: "
            f"{_listing(missing)}{failed}",
            hint=f"push it from a clone that has it (`dvlite push --rev {rev}`), or try again "
            "if the transfer failed",
        )


def _at_rev(rev: str, exc: PipelineError) -> PipelineError:
    """The same error, saying it happened while rebuilding ``rev``."""
    hint = exc.hint
    if isinstance(exc, StageFailedError):
        hint = ("the stage fails at that commit outside your workspace: does it need a file "
                "that git and dvlite do not track? The temporary worktree was removed")
    return type(exc)(f"rebuilding `{rev}`: {exc.message}", hint=hint)


def _compare(ran: Sequence[str], expected: Lockfile, produced: Lockfile) -> tuple[OutputCheck, ...]:
    checks: list[OutputCheck] = []
    for name in ran:
        old, new = expected.stages.get(name), produced.stages[name]
        # keyed by repo path: a stale lock may record another wdir than the stage has
        was = {old.in_repo(p): o.oid for p, o in old.outs.items()} if old is not None else {}
        now = {new.in_repo(p): o.oid for p, o in new.outs.items()}
        for path in sorted(was.keys() | now.keys()):
            before, after = was.get(path), now.get(path)
            status: Status = (
                "missing" if before is None or after is None
                else "matches" if before == after else "differs"
            )
            checks.append(OutputCheck(path, name, status, before, after))
    return tuple(checks)


def _environments(ran: Sequence[str], expected: Lockfile,
                  produced: Lockfile) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name in ran:
        old, new = expected.stages.get(name), produced.stages[name]
        if old is not None and old.env is not None and new.env is not None:
            differences = new.env.differences(old.env)
            if differences:
                found[name] = tuple(differences)
    return found


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")
