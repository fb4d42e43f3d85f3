"""``dvlite exp run``: run the pipeline with parameter settings and save the result as an
experiment, in the workspace (like ``repro``, which leaves the results there), in a temporary
worktree (``--temp``), or later from the queue (``--queue``, then ``--run-all -j N``).

A run in a temporary worktree starts from its baseline commit plus the workspace's changes
to files git tracks (as they were when it was queued): the data its pointers and lock
record is checked out from the shared cache, the settings are written, ``repro`` runs
(restoring from the run cache what ran before with the same inputs), and the worktree is
committed as the experiment and removed. A failed stage is recorded as a failed experiment
(stage and error in its commit) and does not stop the rest of a queue.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from dvlite.errors import (
    DvliteError,
    MissingObjectError,
    PipelineError,
    StageFailedError,
    UsageError,
)
from dvlite.ops import exp_store
from dvlite.ops.checkout import checkout
from dvlite.ops.exp_params import apply_sets, name_of, parse_sets
from dvlite.ops.repro import dag, repro
from dvlite.ops.worktree import isolated_worktree
from dvlite.repo import Repo
from dvlite.workspace import find_tracked

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dvlite.ops.exp_params import ParamSet
    from dvlite.ops.exp_store import Experiment, QueuedRun
    from dvlite.ops.repro import StageReport


Where = Literal["workspace", "temporary worktree"]
# Told about each stage of an experiment before it runs: (experiment name, report)
Notify: TypeAlias = "Callable[[str, StageReport], None] | None"


@dataclass(frozen=True)
class RunResult:
    experiment: Experiment
    where: Where
    ran: tuple[str, ...] = ()  # stages run
    restored: tuple[str, ...] = ()  # stages restored from the run cache


def run(repo: Repo, specs: Sequence[str] = (), *, name: str | None = None, temp: bool = False,
        force: bool = False, notify: Notify = None,
        output_to_stderr: bool = False) -> list[RunResult]:
    """Run each combination of ``specs`` (``-S`` settings) now: one in the workspace, or any
    number one after the other in temporary worktrees with ``temp``."""
    dag(repo)  # no pipeline, or a broken one, is an error before anything runs
    grid = parse_sets(repo.root, specs)
    if len(grid) > 1 and not temp:
        raise UsageError(f"the settings make a grid of {len(grid)} runs, and the workspace "
                         "holds one", hint="add `--queue` (then `dvlite exp run --run-all`), "
                         "or `--temp` to run them one after the other")
    baseline = repo.git.resolve("HEAD")
    names = _names(repo, grid, name)
    if not temp:
        return [_run_here(repo, baseline, names[0], grid[0], force=force, notify=notify,
                          output_to_stderr=output_to_stderr)]
    start = exp_store.workspace_commit(repo, baseline)
    return [_run_in_worktree(repo, baseline, n, [s.spec for s in sets], start=start,
                             force=force, notify=notify, output_to_stderr=output_to_stderr)
            for n, sets in zip(names, grid, strict=True)]


def queue(repo: Repo, specs: Sequence[str] = (), *, name: str | None = None) -> list[QueuedRun]:
    """Queue a run per combination of ``specs``, from HEAD with the workspace's changes to
    files git tracks as they are now."""
    dag(repo)
    grid = parse_sets(repo.root, specs)
    baseline = repo.git.resolve("HEAD")
    start = exp_store.workspace_commit(repo, baseline)
    return [exp_store.enqueue(repo, n, baseline, [s.spec for s in sets], start)
            for n, sets in zip(_names(repo, grid, name), grid, strict=True)]


def run_all(repo: Repo, *, jobs: int = 1, force: bool = False, notify: Notify = None,
            output_to_stderr: bool = False) -> list[RunResult]:
    """Run every queued run, ``jobs`` at a time, each in its own temporary worktree, and
    return their results in queue order; a failed one is recorded as failed and the others go
    on. Interrupted (Ctrl-C), the runs not finished go back on the queue."""
    todo = [q for q in exp_store.queued(repo) if exp_store.claim(q)]
    lock = threading.Lock()  # one Repo per thread, but a shared notify callback
    done: dict[str, RunResult] = {}
    stop = threading.Event()

    def safe(exp: str, report: StageReport) -> None:
        if notify is not None:
            with lock:
                notify(exp, report)

    def one(q: QueuedRun) -> None:
        if stop.is_set():
            return
        done[q.name] = _run_in_worktree(repo, q.baseline, q.name, q.sets, start=q.start,
                                        force=force, notify=safe,
                                        output_to_stderr=output_to_stderr)
        exp_store.release(repo, q)

    try:
        if jobs <= 1:
            for q in todo:
                one(q)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(one, q) for q in todo]
                try:
                    for future in futures:
                        future.result()
                finally:
                    stop.set()  # on an exception, the runs not started yet do not start
    finally:
        for q in todo:
            if q.name not in done:
                exp_store.requeue(q)
    return [done[q.name] for q in todo]


def _names(repo: Repo, grid: list[tuple[ParamSet, ...]], name: str | None) -> list[str]:
    """One name per run: ``name`` (``name-1``, ``name-2``... for a grid) or made from the
    settings."""
    taken: set[str] = set()
    if name is not None and len(grid) == 1:
        return [exp_store.unique_name(repo, taken, given=name)]
    if name is not None:
        exp_store.check_name(name)
        return [exp_store.unique_name(repo, taken, given=f"{name}-{i}")
                for i in range(1, len(grid) + 1)]
    return [exp_store.unique_name(repo, taken, stem=name_of(sets) if sets else None)
            for sets in grid]


class _Stages:
    """Passes each stage report on, and keeps the name of the stage running for a failure's
    record."""

    def __init__(self, name: str, notify: Notify) -> None:
        self.name, self.notify, self.current = name, notify, "-"

    def __call__(self, report: StageReport) -> None:
        self.current = report.name
        if self.notify is not None:
            self.notify(self.name, report)

    def failure(self, exc: DvliteError) -> tuple[str, str]:
        """(failed stage, or "-" when no stage's command failed; the error)."""
        return (self.current if isinstance(exc, StageFailedError) else "-"), exc.message


def _run_here(repo: Repo, baseline: str, name: str, sets: Sequence[ParamSet], *, force: bool,
              notify: Notify,
              output_to_stderr: bool) -> RunResult:
    """In the workspace: the settings and the results stay there, as after ``repro``."""
    apply_sets(repo.root, sets)
    top = exp_store.top_of(repo)
    specs = [s.spec for s in sets]
    stages = _Stages(name, notify)
    try:
        result = repro(repo, force=force, notify=stages, output_to_stderr=output_to_stderr)
    except PipelineError as exc:
        exp = exp_store.record(top, root=repo.root, baseline=baseline, name=name, sets=specs,
                               failed=stages.failure(exc))
        raise type(exc)(f"experiment `{exp.name}` failed: {exc.message}", hint=(
            "it is recorded as failed (`dvlite exp show`); the settings and what the stages "
            "wrote are in the workspace")) from exc
    exp = exp_store.record(top, root=repo.root, baseline=baseline, name=name, sets=specs)
    return RunResult(exp, "workspace", result.ran, result.restored)


def _run_in_worktree(repo: Repo, baseline: str, name: str, specs: Sequence[str], *,
                     start: str, force: bool, notify: Notify,
                     output_to_stderr: bool) -> RunResult:
    """In a temporary worktree at ``start`` (``baseline``, or it plus the workspace changes
    it was queued with); any failure is recorded, not raised."""
    stages = _Stages(name, notify)
    main_top = exp_store.top_of(repo)
    # gc waits until the experiment's ref names what the run stores (it keeps experiments)
    with isolated_worktree(repo, start) as top:
        # the project may sit below the top of the git work tree
        root = os.path.normpath(os.path.join(top, os.path.relpath(repo.root, main_top)))
        with Repo(root, shared_with=repo) as tree:
            try:
                apply_sets(root, parse_sets(root, specs)[0])
                _check_out(tree)
                result = repro(tree, force=force, notify=stages,
                               output_to_stderr=output_to_stderr)
            except DvliteError as exc:
                exp = exp_store.record(top, root=root, baseline=baseline, name=name,
                                       sets=specs, failed=stages.failure(exc))
                return RunResult(exp, "temporary worktree")
            exp = exp_store.record(top, root=root, baseline=baseline, name=name, sets=specs)
    return RunResult(exp, "temporary worktree", result.ran, result.restored)


def _check_out(tree: Repo) -> None:
    """The data the pointers and lock record, from the cache. Stage outputs it lacks are made
    again; data a pointer records cannot be."""
    pointed = [t.path for t in find_tracked(tree, outs=False)]
    lacking = [p for p in checkout(tree).missing
               if any(p == t or p.startswith(t + "/") for t in pointed)]
    if lacking:
        shown = ", ".join(f"`{p}`" for p in lacking[:5])
        raise MissingObjectError(
            f"the cache lacks data the run needs: {shown}"
            + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""),
            hint="`dvlite pull` it, then run the experiment again")
