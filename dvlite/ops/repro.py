"""``dvlite repro`` and ``dvlite dag``: run the pipeline's stages whose inputs or outs changed.

Each stage is checked against ``dvlite.lock`` (cmd, deps' oids, params, outs'
oids), run when anything differs, and its lock entry written right after it
succeeds, one stage at a time, so an interrupted run keeps what it finished.
A stage's cached outs are stored like ``add`` stores data and ignored in git.
A stage whose exact inputs ran before is restored from the run cache instead of
run (see ``ops/runcache.py``), unless forced.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dvlite.errors import PipelineError, StageFailedError, UsageError
from dvlite.ops import runcache
from dvlite.pipeline import dag as dags
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline import stage as stages_mod
from dvlite.pipeline.dag import overlaps
from dvlite.pipeline.environment import Environment
from dvlite.pipeline.lockfile import Lockfile, StageLock, changed
from dvlite.pipeline.params import read_params
from dvlite.workspace import find_tracked, scan

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dvlite.pipeline.stage import Stage
    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid

_STDERR_FD = 2

Action = Literal["ran", "restored", "skipped", "would run", "would restore"]


@dataclass(frozen=True)
class StageReport:
    name: str
    action: Action
    reasons: tuple[str, ...]  # why it ran (or would); empty when skipped


@dataclass(frozen=True)
class ReproResult:
    stages: tuple[StageReport, ...]
    dry_run: bool

    @property
    def ran(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages if s.action == "ran")

    @property
    def restored(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages if s.action == "restored")


@dataclass(frozen=True)
class DagNode:
    name: str
    upstream: tuple[str, ...]  # stages whose outs this stage depends on, sorted


# Called once per stage, before it runs (after it is restored or skipped): lets the CLI
# speak while it works.
Notify = Callable[[StageReport], None]


def _load_stages(repo: Repo) -> dict[str, Stage]:
    path = repo.abs(stages_mod.FILENAME)
    if not os.path.isfile(path):
        raise PipelineError(
            f"no pipeline: `{stages_mod.FILENAME}` does not exist at the repo root",
            hint=f"write the stages in `{stages_mod.FILENAME}` as [stages.<name>] tables",
        )
    return stages_mod.load_stages(path)


def _tracked_paths(repo: Repo) -> list[str]:
    return [t.path for t in find_tracked(repo, outs=False)]


def dag(repo: Repo) -> tuple[DagNode, ...]:
    """The stages in run order, each with its upstream stages."""
    stages = _load_stages(repo)
    graph = dags.build(stages, tracked=_tracked_paths(repo))
    return tuple(
        DagNode(name, tuple(sorted(graph.upstream[name]))) for name in dags.topological(graph)
    )


def repro(
    repo: Repo,
    targets: Sequence[str] = (),
    *,
    force: bool = False,
    dry_run: bool = False,
    single_item: bool = False,
    run_cache: bool = True,
    notify: Notify | None = None,
    output_to_stderr: bool = False,
) -> ReproResult:
    """Run ``targets`` (stage names; none means all) and their upstream stages where needed;
    with ``single_item``, the targets alone. A stage that ran before with the same inputs is
    restored from the run cache instead, unless ``force`` or not ``run_cache``.

    Stages inherit stdout and stderr; ``output_to_stderr`` sends their stdout to stderr too
    (for ``--json``, whose document owns stdout).
    """
    if single_item and not targets:
        raise UsageError("`--single-item` runs the stages it is given, and none is",
                         hint="name them: `dvlite repro --single-item STAGE...`")
    with repo.lock():
        stages = _load_stages(repo)
        lock_path = repo.abs(lockfiles.FILENAME)
        lock = lockfiles.load(lock_path, algorithm=repo.cache.algorithm)
        names = dags.order(stages, list(targets) or None, tracked=_tracked_paths(repo))
        if single_item:
            names = [n for n in names if n in targets]
        _refuse_outs_in_git(repo, stages, names)
        env = Environment.current(repo.root, repo.cache.algorithm)
        reports: list[StageReport] = []
        pending: dict[str, str] = {}  # dry run: stage -> "run" or "be restored"
        for i, name in enumerate(names):
            stage = stages[name]
            produced_earlier = [p for n in names[:i] for p in stages[n].out_paths]
            dep_oids = _hash_deps(repo, stage, produced_earlier, allow_missing=dry_run)
            params = read_params(repo.abs(stage.wdir), stage.params)
            stage_lock = lock.stages.get(name)
            reasons = list(changed(stage, stage_lock, dep_oids, params))
            if stage_lock is not None:
                reasons.extend(_out_reasons(repo, stage, stage_lock))
            ups = sorted(u for u in pending if _feeds(stages[u], stage))
            reasons.extend(f"upstream stage `{u}` would {pending[u]}" for u in ups)
            if force and not reasons:
                reasons.append("forced")
            # in a dry run, deps an upstream stage would change are not known yet
            look = bool(reasons) and run_cache and not force and not ups
            cached = runcache.lookup(repo, stage, dep_oids, params) if look else None
            report = StageReport(name, _action(reasons, cached, dry_run), tuple(reasons))
            if dry_run and reasons:
                pending[name] = "be restored" if cached else "run"
            if report.action == "restored" and cached is not None:
                runcache.restore(repo, cached)
                lock = _record(lock_path, lock, name, cached)  # with the env it ran with
            if notify is not None:
                notify(report)
            reports.append(report)
            if report.action == "ran":
                lock = _run(repo, stage, dep_oids, params, env, lock=lock, lock_path=lock_path,
                            output_to_stderr=output_to_stderr)
        return ReproResult(tuple(reports), dry_run)


def _action(reasons: Sequence[str], cached: StageLock | None, dry_run: bool) -> Action:
    if not reasons:
        return "skipped"
    if cached is not None:
        return "would restore" if dry_run else "restored"
    return "would run" if dry_run else "ran"


def _refuse_outs_in_git(repo: Repo, stages: Mapping[str, Stage], names: Sequence[str]) -> None:
    """A cached out must not be in git too: it would be in both, and git would see every
    run's result as a change of a file it tracks. Checked before anything runs. Metrics and
    `cache = false` outs are the ones git keeps."""
    outs = {stages[n].in_repo(o.path): (n, o.path) for n in names for o in stages[n].outs
            if o.cache}
    in_git = repo.git.tracked(sorted(outs))
    for rel, (name, path) in sorted(outs.items()):
        inside = [p for p in in_git if p == rel or p.startswith(rel + "/")]
        if inside:
            recursive = "" if inside == [rel] else " -r"
            raise PipelineError(
                f"`{rel}` is tracked by git; stop tracking it with "
                f"`git rm{recursive} --cached {shlex.quote(rel)}`: it is an out of stage "
                f"`{name}`, so dvlite keeps it",
                hint="then run `dvlite repro` again; to keep it in git instead, list it as "
                f'{{path = "{path}", cache = false}} in the stage\'s outs',
            )


def _feeds(upstream: Stage, stage: Stage) -> bool:
    return any(overlaps(d, o) for d in stage.dep_paths for o in upstream.out_paths)


def _hash_deps(
    repo: Repo, stage: Stage, produced_earlier: Sequence[str], *, allow_missing: bool
) -> dict[str, Oid]:
    """Current oid of each dep, keyed as written in the stage. A missing dep is an error,
    except in a dry run when an earlier stage of this run would produce it."""
    oids: dict[str, Oid] = {}
    for dep in stage.deps:
        rel = stage.in_repo(dep)
        oid = scan(repo, rel).state.oid
        if oid is None:
            if allow_missing and any(overlaps(rel, p) for p in produced_earlier):
                continue  # changed() reports it as changed
            raise PipelineError(
                f"stage `{stage.name}`: dep `{rel}` does not exist",
                hint="create it, or add a stage that writes it as an out",
            )
        oids[dep] = oid
    return oids


def _out_reasons(repo: Repo, stage: Stage, lock: StageLock) -> list[str]:
    reasons = []
    written = [o.path for o in stage.outs] + list(stage.metrics)
    for path in written:
        oid = scan(repo, stage.in_repo(path)).state.oid
        if oid is None:
            reasons.append(f"out `{path}` missing")
        elif path not in lock.outs:
            reasons.append(f"out `{path}` added")
        elif lock.outs[path].oid != oid:
            reasons.append(f"out `{path}` changed")
    reasons.extend(f"out `{p}` removed" for p in sorted(set(lock.outs) - set(written)))
    return reasons


def _run(
    repo: Repo,
    stage: Stage,
    dep_oids: Mapping[str, Oid],
    params: Mapping[str, Any],
    env: Environment,
    *,
    lock: Lockfile,
    lock_path: str,
    output_to_stderr: bool,
) -> Lockfile:
    """Run one stage, store its outs and write its lock entry; return the new lock."""
    cwd = repo.abs(stage.wdir)
    stdout = _STDERR_FD if output_to_stderr else None
    try:
        if isinstance(stage.cmd, str):
            proc = subprocess.run(stage.cmd, shell=True, cwd=cwd, stdout=stdout,  # noqa: S602
                                  check=False)
        else:
            proc = subprocess.run(list(stage.cmd), cwd=cwd, stdout=stdout, check=False)
    except OSError as exc:
        raise StageFailedError(
            f"stage `{stage.name}` could not start: {exc}", hint="check the stage's `cmd`"
        ) from exc
    if proc.returncode != 0:
        raise StageFailedError(
            f"stage `{stage.name}` failed: its command exited with code {proc.returncode}",
            hint="fix the stage and run `dvlite repro` again; its lock entry is unchanged",
        )
    after = _hash_deps(repo, stage, (), allow_missing=False)
    for dep in stage.deps:
        if after.get(dep) != dep_oids.get(dep):
            raise PipelineError(
                f"stage `{stage.name}`: dep `{stage.in_repo(dep)}` changed while the stage ran",
                hint="a stage must not write its own deps; make it an out instead, then run "
                "`dvlite repro` again",
            )
    if read_params(repo.abs(stage.wdir), stage.params) != params:
        raise PipelineError(
            f"stage `{stage.name}`: its params changed while the stage ran",
            hint="run `dvlite repro` again once the params file is settled",
        )
    outs = runcache.store_outs(repo, stage)
    entry = StageLock(stage.cmd, dict(dep_oids), dict(params), outs, stage.wdir, env)
    new = _record(lock_path, lock, stage.name, entry)
    runcache.save(repo, stage, entry)  # after the lock: an entry it cannot hold is no run
    return new


def commit_stages(repo: Repo, names: Iterable[str]) -> None:
    """Record what the named stages' deps, params and outs hold now, as if each had just run
    (``dvlite commit`` of a stage output: an output fixed by hand, or a dep change known not
    to matter). The caller holds the repo lock."""
    stages = _load_stages(repo)
    lock_path = repo.abs(lockfiles.FILENAME)
    lock = lockfiles.load(lock_path, algorithm=repo.cache.algorithm)
    env = Environment.current(repo.root, repo.cache.algorithm)
    for name in names:
        stage = stages.get(name)
        if stage is None:
            raise PipelineError(
                f"stage `{name}` is in {lockfiles.FILENAME} but not in {stages_mod.FILENAME}",
                hint="run `dvlite repro` to bring the lock in line with the stages",
            )
        missing = [p for p in stage.out_paths if not os.path.lexists(repo.abs(p))]
        if missing:
            raise PipelineError(f"cannot commit stage `{name}`: its out `{missing[0]}` is missing",
                                hint=f"run `dvlite repro {name}` to make it")
        deps = _hash_deps(repo, stage, (), allow_missing=False)
        params = read_params(repo.abs(stage.wdir), stage.params)
        outs = runcache.store_outs(repo, stage)
        entry = StageLock(stage.cmd, deps, params, outs, stage.wdir, env)
        lock = _record(lock_path, lock, name, entry)


def _record(lock_path: str, lock: Lockfile, name: str, entry: StageLock) -> Lockfile:
    new = lock.with_stage(name, entry)
    lockfiles.dump(lock_path, new)
    return new
