"""Where experiments live: a commit whose parent is its baseline, under
``refs/exps/<baseline sha>/<name>``, with what it was (settings, status, failed stage and
error) in trailers of its message; and the queue of runs not started yet, one JSON file each
in ``.dvlite/tmp/exps/queue/``. See docs/experiments.md."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite import scm
from dvlite.errors import DvliteError, PipelineError, UsageError
from dvlite.fsutil import atomic_write
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline import stage as stages_mod
from dvlite.scm import refs

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from dvlite.repo import Repo

PREFIX = "refs/exps/"
Status = Literal["success", "failed"]
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\Z")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")  # sha-1 or sha-256
_TRAILER = re.compile(r"^(Dvlite-Exp-[A-Za-z-]+): ?(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Experiment:
    name: str
    ref: str  # refs/exps/<baseline>/<name>: give it to `repro --rev` or any git command
    sha: str
    baseline: str  # the commit it was run on (its parent)
    status: Status
    sets: tuple[str, ...]  # the `-S` settings it ran with
    created: int  # unix time
    failed_stage: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class QueuedRun:
    name: str
    baseline: str
    sets: tuple[str, ...]
    path: str  # its file in the queue
    start: str  # the commit it runs from: the baseline, or the baseline plus workspace changes

    @property
    def with_changes(self) -> bool:
        return self.start != self.baseline


def top_of(repo: Repo) -> str:
    """The top of the repo's git work tree (the project may sit below it)."""
    return scm.find_work_tree(repo.root) or repo.root


def experiments(repo: Repo) -> list[Experiment]:
    """Every experiment of the repo, oldest first."""
    found = []
    for ref, sha, created, message in refs.list_refs(top_of(repo), PREFIX):
        baseline, _, name = ref.removeprefix(PREFIX).partition("/")
        if not (_SHA.match(baseline) and _NAME.match(name)):
            continue  # not one of ours: a ref someone made by hand
        trailers: dict[str, list[str]] = {}
        for key, value in _TRAILER.findall(message):
            trailers.setdefault(key, []).append(value.strip())
        status: Status = "failed" if trailers.get("Dvlite-Exp-Status") == ["failed"] else "success"
        found.append(Experiment(
            name, ref, sha, baseline, status, tuple(trailers.get("Dvlite-Exp-Set", ())),
            created, _first(trailers.get("Dvlite-Exp-Stage")),
            _first(trailers.get("Dvlite-Exp-Error"))))
    return sorted(found, key=lambda e: (e.created, e.name))


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def resolve(repo: Repo, names: Iterable[str]) -> list[Experiment]:
    """The experiments ``names`` give (a name, its ref, or a commit sha prefix of 7+ digits)."""
    every = experiments(repo)
    chosen = []
    for name in names:
        found = [e for e in every if name in (e.name, e.ref)
                 or (len(name) >= 7 and e.sha.startswith(name))]
        if not found:
            raise DvliteError(f"no experiment `{name}`",
                              hint="list them with `dvlite exp show`")
        if len(found) > 1:
            refs_ = ", ".join(f"`{e.ref}`" for e in found)
            raise UsageError(f"`{name}` names {len(found)} experiments: {refs_}",
                             hint="give the full ref of the one you mean")
        chosen.append(found[0])
    return chosen


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name or name.endswith(".lock"):
        raise UsageError(f"`{name}` cannot name an experiment",
                         hint="use letters, digits, `.`, `_` and `-`, starting with a letter, "
                         "a digit or `_`")
    return name


def unique_name(repo: Repo, taken: set[str], *, given: str | None = None,
                stem: str | None = None) -> str:
    """The ``given`` name, or ``stem`` (default: ``exp-<hex>``) made unique with a ``-2``,
    ``-3``... suffix; ``taken`` (names chosen for runs not recorded yet) grows by it. A given
    name already in use is an error."""
    taken |= {e.name for e in experiments(repo)} | {q.name for q in queued(repo)}
    if given is not None:
        if given in taken:
            raise UsageError(f"an experiment called `{given}` exists already",
                             hint="choose another name with `-n`, or remove the old one with "
                             f"`dvlite exp remove {given}`")
        taken.add(check_name(given))
        return given
    base = stem or f"exp-{secrets.token_hex(3)}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(check_name(name))
    return name


def record(top: str, *, root: str, baseline: str, name: str, sets: Sequence[str],
           failed: tuple[str, str] | None = None) -> Experiment:
    """Commit the work tree at ``top`` (project at ``root``) as experiment ``name`` on
    ``baseline``: tracked changes, the lock, the stages' params and metrics files and the
    ``.gitignore`` files beside their outs. ``failed``: (stage, error) of a failed run."""
    lines = [f"dvlite experiment {name}", "", f"Dvlite-Exp-Baseline: {baseline}"]
    lines += [f"Dvlite-Exp-Set: {s}" for s in sets]
    lines.append(f"Dvlite-Exp-Status: {'failed' if failed else 'success'}")
    if failed is not None:
        lines += [f"Dvlite-Exp-Stage: {failed[0]}",
                  f"Dvlite-Exp-Error: {' '.join(failed[1].split())}"]
    extra = [os.path.relpath(os.path.join(root, p), top).replace(os.sep, "/")
             for p in _pipeline_files(root)]
    sha = refs.commit_work_tree(top, baseline, extra, "\n".join(lines) + "\n")
    ref = f"{PREFIX}{baseline}/{name}"
    refs.create_ref(top, ref, sha)
    stage, error = failed if failed is not None else (None, None)
    return Experiment(name, ref, sha, baseline, "failed" if failed else "success",
                      tuple(sets), int(time.time()), stage, error)


def _pipeline_files(root: str) -> list[str]:
    """The lock, and the params files, metrics files and out folders' ``.gitignore`` of every
    stage, relative to ``root``."""
    found = {lockfiles.FILENAME}
    try:
        stages = stages_mod.load_stages(os.path.join(root, stages_mod.FILENAME))
    except PipelineError:
        return sorted(found)
    for stage in stages.values():
        found.update(stage.in_repo(ref.file) for ref in stage.params)
        found.update(stage.in_repo(m) for m in stage.metrics)
        for out in stage.outs:
            folder = os.path.dirname(stage.in_repo(out.path))
            found.add(f"{folder}/.gitignore" if folder else ".gitignore")
    return sorted(found)


def remove(repo: Repo, chosen: Iterable[Experiment]) -> None:
    for exp in chosen:
        refs.delete_ref(top_of(repo), exp.ref, exp.sha)


# --- the queue ---


def queue_dir(repo: Repo) -> str:
    return os.path.join(repo.tmp_dir, "exps", "queue")


def workspace_commit(repo: Repo, baseline: str) -> str:
    """``baseline`` plus the workspace's changes to files git tracks, as a commit no ref
    names; ``baseline`` itself when there are none. What a run elsewhere starts from."""
    top = top_of(repo)
    sha = refs.commit_work_tree(top, baseline, (), "dvlite: workspace changes for experiments\n")
    return baseline if refs.tree_of(top, sha) == refs.tree_of(top, baseline) else sha


def enqueue(repo: Repo, name: str, baseline: str, sets: Sequence[str], start: str) -> QueuedRun:
    """Queue a run; a ``start`` commit other than ``baseline`` gets a ref of its own
    (``refs/exps-queue/<name>``) so that git keeps it until the run."""
    folder = queue_dir(repo)
    os.makedirs(folder, exist_ok=True)
    if start != baseline:
        refs.create_ref(top_of(repo), _QUEUE_REFS + name, start)
    run = QueuedRun(name, baseline, tuple(sets),
                    os.path.join(folder, f"{time.time_ns():020d}-{name}.json"), start)
    requeue(run)
    return run


def requeue(run: QueuedRun) -> None:
    """Put ``run`` (back) on the queue, in its place."""
    doc = {"name": run.name, "baseline": run.baseline, "sets": list(run.sets),
           "start": run.start}
    atomic_write(run.path, json.dumps(doc, indent=2).encode())


_QUEUE_REFS = "refs/exps-queue/"


def queued(repo: Repo) -> list[QueuedRun]:
    """The runs waiting, in the order they were queued."""
    folder = queue_dir(repo)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    runs = []
    for file in names:
        path = os.path.join(folder, file)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:  # taken by a `--run-all` meanwhile
            continue
        runs.append(QueuedRun(doc["name"], doc["baseline"], tuple(doc["sets"]), path,
                              doc["start"]))
    return runs


def claim(run: QueuedRun) -> bool:
    """Take ``run`` off the queue for this process; False when another one took it first."""
    try:
        os.unlink(run.path)
    except FileNotFoundError:
        return False
    return True


def release(repo: Repo, run: QueuedRun) -> None:
    """Forget the ref that kept a claimed run's start commit."""
    if run.with_changes:
        refs.delete_ref(top_of(repo), _QUEUE_REFS + run.name, run.start)
