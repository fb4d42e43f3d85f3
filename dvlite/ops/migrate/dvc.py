"""``dvlite import-dvc``: a DVC project's data, pipeline, lock and remotes, in dvlite's terms.

Everything is read and every object stored before anything is written: a DVC out whose
bytes cannot be found stops the import with nothing changed. Bytes come from the
workspace when they are what DVC recorded (their md5, checked on the copy in dvlite's
cache), else straight from DVC's cache; then pointers, dvlite.toml, dvlite.lock and the
config are written, each atomically, and every converted path is checked once more.
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvlite import config as cfg
from dvlite import scm
from dvlite.errors import (
    DvliteError,
    MissingDependencyError,
    MissingObjectError,
    NotARepoError,
)
from dvlite.fsutil import read_toml
from dvlite.ops import init as init_ops
from dvlite.ops.migrate import dvc_config, dvc_pipeline
from dvlite.ops.migrate.common import (
    Converted,
    ImportResult,
    initialise,
    refuse_dirty,
    verify,
    write_file,
    write_pointer,
)
from dvlite.ops.migrate.dvc_data import Data, OutStore, where
from dvlite.ops.migrate.dvc_files import (
    DvcCache,
    DvcOut,
    dvc_file_outs,
    find_dvc_files,
    find_nested_pipelines,
    out_of,
    read_yaml,
)
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline import stage as stages_mod
from dvlite.pipeline.lockfile import Lockfile, OutLock, StageLock
from dvlite.pointer import Pointer, pointer_file_for

if TYPE_CHECKING:
    from dvlite.repo import Repo

_DVC_FILES = ("dvc.yaml", "dvc.lock", ".dvcignore", ".dvc/config")


@dataclass(frozen=True)
class _Plan:
    """What was read of the DVC project, before anything is written."""

    outs: list[DvcOut]
    pipeline: dvc_pipeline.Pipeline | None
    lock_doc: dict[str, Any]
    config: dvc_config.DvcConfig
    warnings: list[str]
    removable: list[str]  # DVC's files, which `--remove-dvc` deletes
    nested: tuple[str, ...]  # pipelines in subfolders, not converted


def import_dvc(repo: Repo, *, remote: str | None = None, dry_run: bool = False,
               force: bool = False, remove_dvc: bool = False) -> ImportResult:
    root = repo.root
    if importlib.util.find_spec("yaml") is None:
        raise MissingDependencyError("reading DVC's YAML files needs PyYAML, which is not "
                                     "installed", hint="`pip install 'dvlite[dvc]'`")
    if not os.path.isdir(os.path.join(root, ".dvc")):
        raise NotARepoError(f"`{root}` is not a DVC project: it has no `.dvc` folder",
                            hint="run `dvlite import-dvc` at the top of the DVC project, "
                            "which must be the top of its git work tree")
    dvc_files = find_dvc_files(repo)
    outs: list[DvcOut] = []
    warnings: list[str] = []
    for rel in dvc_files:
        found, notes = dvc_file_outs(root, rel)
        outs.extend(found)
        warnings.extend(notes)
    lock_doc = _yaml_or_empty(root, "dvc.lock").get("stages") or {}
    pipeline = (dvc_pipeline.convert(root, _yaml_or_empty(root, "dvc.yaml"), lock_doc)
                if os.path.isfile(os.path.join(root, "dvc.yaml")) else None)
    if pipeline is not None:
        pipeline.render()  # dvlite must accept the stages before anything is written
    nested = tuple(f"the pipeline in `{p}` (dvlite keeps one, at the top: move its stages "
                   "into the top dvc.yaml, with `wdir`)" for p in find_nested_pipelines(repo))
    config = dvc_config.load(root, only=remote or None)
    warnings += [*config.warnings, *(pipeline.warnings if pipeline else ())]
    removable = [*dvc_files, *(p for p in _DVC_FILES if os.path.isfile(os.path.join(root, p)))]
    stage_names = tuple(s.name for s in pipeline.stages) if pipeline else ()
    if dry_run:
        cache = DvcCache(config.cache_dir)
        return ImportResult(
            tuple(Converted(o.path, pointer_file_for(o.path), None, None, None,
                            where(repo, cache, o), "would write") for o in outs),
            stages=stage_names, remotes=config.remotes,
            removed=tuple(removable) if remove_dvc else (), warnings=tuple(warnings),
            not_converted=(pipeline.not_converted if pipeline else ()) + nested, dry_run=True)
    refuse_dirty(repo, lambda p: p.endswith(".dvc") or p in _DVC_FILES, force=force)
    initialise(repo)
    with repo.lock():
        plan = _Plan(outs, pipeline, lock_doc, config, warnings, removable, nested)
        return _run(repo, plan, force=force, remove_dvc=remove_dvc)


@dataclass
class _Outcome:
    """What the writing steps did, gathered for the result."""

    warnings: list[str]
    written: list[str] = field(default_factory=list)
    checked: list[tuple[str, Pointer]] = field(default_factory=list)  # verified at the end

    def note(self, path: str, action: str, source: str) -> None:
        if action == "kept":
            self.warnings.append(f"`{path}` exists and differs from {source}; kept "
                                 "(`--force` replaces it)")
        elif action == "written":
            self.written.append(path)


def _run(repo: Repo, plan: _Plan, *, force: bool, remove_dvc: bool) -> ImportResult:
    store = OutStore(repo, DvcCache(plan.config.cache_dir))
    data = {out.path: store.store(out) for out in plan.outs}
    missing = [path for path, got in data.items() if got is None]
    if missing:
        raise MissingObjectError(
            f"the data of `{missing[0]}`" + (f" and {len(missing) - 1} more" if missing[1:]
                                            else "")
            + " is neither in the workspace as its .dvc file records it nor in DVC's cache; "
            "no pointer was written", hint="get it with `dvc pull`, then import again")
    done = _Outcome(plan.warnings)
    pipeline = plan.pipeline
    lock, locked = _lock(store, pipeline, plan.lock_doc, done) if pipeline else (Lockfile(), [])
    lock_bytes = lock.encode()  # it fails here, if it does, with nothing written yet
    converted = []
    for out in plan.outs:
        got = data[out.path]
        assert got is not None
        ptr = Pointer(out.path.rpartition("/")[2], got.oid, got.size, got.kind, got.files)
        action = write_pointer(repo, out.path, ptr, force=force)
        done.note(pointer_file_for(out.path), action, f"`{out.source}`")
        if action != "kept":
            done.checked.append((out.path, ptr))
        converted.append(Converted(out.path, pointer_file_for(out.path), got.oid, got.size,
                                   got.files, got.source, action))
    lock_file = lock_bytes if locked else None
    if pipeline is not None and not _write_pipeline(repo, pipeline, lock_file, done, force=force):
        locked = []
    done.written.extend(_configure(repo, plan.config, done.warnings, force=force))
    removed = _remove(repo, plan.removable) if remove_dvc else []
    return ImportResult(
        tuple(converted), stages=tuple(s.name for s in pipeline.stages) if pipeline else (),
        locked=tuple(locked), remotes=plan.config.remotes, removed=tuple(removed),
        written=tuple(done.written), warnings=tuple(done.warnings),
        not_converted=(pipeline.not_converted if pipeline else ()) + plan.nested,
        verified_objects=verify(repo, done.checked),
        next_steps=_next_steps(done.written, plan.config))


def _write_pipeline(repo: Repo, pipeline: dvc_pipeline.Pipeline, lock: bytes | None,
                    done: _Outcome, *, force: bool) -> bool:
    """Write dvlite.toml and (when any stage's lock converted) dvlite.lock, and make git
    ignore the cached outs; whether the lock is in place."""
    for stage in pipeline.stages:  # as `dvlite repro` would
        for path in (stage.in_repo(p) for p, cached in stage.cached.items() if cached):
            folder, _, name = path.rpartition("/")
            scm.add_ignore(repo.abs(folder), name)
    action = write_file(repo.abs(stages_mod.FILENAME), pipeline.render(), force=force)
    done.note(stages_mod.FILENAME, action, "the conversion")
    if action == "kept" or lock is None:  # a lock of other stages would not fit it
        return False
    action = write_file(repo.abs(lockfiles.FILENAME), lock, force=force)
    done.note(lockfiles.FILENAME, action, "the conversion")
    return action != "kept"


def _yaml_or_empty(root: str, name: str) -> dict[str, Any]:
    path = os.path.join(root, name)
    return read_yaml(path, name) if os.path.isfile(path) else {}


def _lock(store: OutStore, pipeline: dvc_pipeline.Pipeline, lock_doc: dict[str, Any],
          done: _Outcome) -> tuple[Lockfile, list[str]]:
    """dvc.lock as dvlite.lock, its cached outs stored: a stage whose deps or outs cannot be
    found as DVC recorded them is left out (dvlite repro then runs it)."""
    lock = Lockfile()
    for stage in pipeline.stages:
        raw = lock_doc.get(stage.dvc_name)
        if not isinstance(raw, dict):
            continue
        try:
            entry = _stage_lock(store, stage, raw)
        except _UnresolvedError as exc:
            done.warnings.append(f"stage `{stage.name}`: {exc}; its lock is not converted, so "
                                 "`dvlite repro` will run it")
            continue
        lock = lock.with_stage(stage.name, entry)
        done.checked.extend(
            (entry.in_repo(p), Pointer(p.rpartition("/")[2], o.oid, o.size, o.kind, o.files))
            for p, o in entry.outs.items() if o.cache)
    return lock, list(lock.stages)


class _UnresolvedError(Exception):
    pass


def _stage_lock(store: OutStore, plan: dvc_pipeline.StagePlan,
                raw: dict[str, Any]) -> StageLock:
    def resolved(item: object, what: str) -> tuple[str, Data]:
        try:
            out = out_of(item, "" if plan.wdir == "." else plan.wdir, "dvc.lock")
        except DvliteError as exc:
            raise _UnresolvedError(exc.message) from None
        got = store.store(out)
        if got is None:
            raise _UnresolvedError(f"{what} `{out.path}` is not as dvc.lock records it, and DVC's "
                              "cache lacks it")
        return posixpath.normpath(str(item["path"])), got  # type: ignore[index]

    cmd = raw.get("cmd")
    cmd = " && ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
    deps = dict(resolved(item, "dep") for item in raw.get("deps") or [])
    outs = {}
    for item in raw.get("outs") or []:
        path, got = resolved(item, "out")
        outs[path] = OutLock(got.oid, got.size, got.kind, got.files, plan.cached.get(path, True))
    params = {f"{file}:{key}": value for file, values in (raw.get("params") or {}).items()
              for key, value in (values or {}).items()}
    nulls = [key for key, value in params.items() if value is None]
    if nulls:
        raise _UnresolvedError(f"param `{nulls[0]}` is null, which dvlite.lock cannot record")
    return StageLock(cmd, {p: d.oid for p, d in deps.items()}, params, outs, plan.wdir)


def _configure(repo: Repo, config: dvc_config.DvcConfig, warnings: list[str], *,
               force: bool) -> list[str]:
    """Write DVC's settings into dvlite's config, leaving those dvlite has otherwise."""
    changed: set[str] = set()
    for setting in config.settings:
        path = repo.config_paths[setting.level]
        current = cfg.flatten(read_toml(path)).get(setting.key) if os.path.exists(path) else None
        value = cfg.parse_value(setting.key, setting.value)
        if current == value:
            continue
        if current is not None and not force:
            warnings.append(f"`{setting.key}` is set otherwise in dvlite's config; kept "
                            "(`--force` replaces it)")
            continue
        init_ops.config_set(repo, setting.key, setting.value, level=setting.level)
        changed.add(os.path.relpath(path, repo.root))
    return sorted(changed)


def _remove(repo: Repo, paths: list[str]) -> list[str]:
    for path in paths:
        os.unlink(repo.abs(path))
    return paths


def _next_steps(written: list[str], config: dvc_config.DvcConfig) -> tuple[str, ...]:
    steps = []
    if written:
        steps.append("review with `git status`, then commit: `git add -A && git commit -m "
                     "'Move to dvlite'`")
    if config.remotes:
        steps.append(f"upload the data with `dvlite push` (dvlite's objects go to a "
                     f"`{dvc_config.SUBFOLDER}/` folder of each DVC remote)")
    return tuple(steps)
