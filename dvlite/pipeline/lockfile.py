"""``dvlite.lock``: what each stage last ran with and produced. One canonical TOML encoding:

    # dvlite lock: written by `dvlite repro`; commit it with dvlite.toml
    version = 1

    [stages.train]
    cmd = "python train.py"
    deps = [
        { path = "data/prepared", oid = "…" },
    ]
    outs = [
        { path = "model.pkl", oid = "…", size = 1234 },
    ]

    [stages.train.params]
    "train.lr" = 0.1

Stages, deps, outs and params are sorted; paths and params keys are as written in
the stage (relative to its wdir). Decoding is strict and names the file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import tomli_w

from dvlite.errors import PipelineError
from dvlite.fsutil import atomic_write
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, is_oid
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from dvlite.pipeline.stage import Stage

FILENAME = "dvlite.lock"
VERSION = 1
HEADER = "# dvlite lock: written by `dvlite repro`; commit it with dvlite.toml\n"
_STAGE_KEYS = ("cmd", "deps", "outs", "params")


@dataclass(frozen=True)
class StageLock:
    cmd: str | tuple[str, ...]
    deps: Mapping[str, Oid] = field(default_factory=dict)  # path -> oid
    params: Mapping[str, Any] = field(default_factory=dict)  # ParamRef.spec -> value
    outs: Mapping[str, tuple[Oid, int]] = field(default_factory=dict)  # path -> (oid, size)

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"cmd": list(self.cmd) if isinstance(self.cmd, tuple) else self.cmd}
        doc["deps"] = [{"path": p, "oid": self.deps[p]} for p in sorted(self.deps)]
        doc["outs"] = [
            {"path": p, "oid": self.outs[p][0], "size": self.outs[p][1]} for p in sorted(self.outs)
        ]
        doc["params"] = _sorted_tables(dict(self.params))
        return doc


@dataclass(frozen=True)
class Lockfile:
    stages: Mapping[str, StageLock] = field(default_factory=dict)

    def with_stage(self, name: str, lock: StageLock) -> Lockfile:
        return replace(self, stages={**self.stages, name: lock})

    def without(self, names: Iterable[str]) -> Lockfile:
        drop = set(names)
        return replace(self, stages={n: s for n, s in self.stages.items() if n not in drop})

    def encode(self) -> bytes:
        stages = {name: self.stages[name].to_toml() for name in sorted(self.stages)}
        try:
            text = tomli_w.dumps({"version": VERSION, "stages": stages})
        except TypeError as exc:  # a value TOML has no type for, such as None
            raise PipelineError(f"cannot write {FILENAME}: {exc}") from exc
        return (HEADER + text).encode("utf-8")


def _sorted_tables(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_tables(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_tables(v) for v in value]
    return value


def decode(data: bytes, *, source: str, algorithm: str = DEFAULT_ALGORITHM) -> Lockfile:
    """Parse lock bytes; every problem is a PipelineError naming ``source``."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PipelineError(
            f"`{source}` is not a valid lock file: {exc}",
            hint="restore it with `git checkout -- dvlite.lock`, or delete it and run "
            "`dvlite repro`",
        ) from exc
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        raise PipelineError(f"`{source}` has unsupported version {version!r}")
    unknown = sorted(set(doc) - {"version", "stages"})
    if unknown:
        raise PipelineError(f"`{source}` has unknown key `{unknown[0]}`")
    stages = doc.get("stages", {})
    if not isinstance(stages, dict):
        raise PipelineError(f"`{source}`: `stages` must be a table")
    return Lockfile({
        name: _stage(body, f"`{source}`, stage `{name}`", algorithm)
        for name, body in stages.items()
    })


def _stage(body: object, where: str, algorithm: str) -> StageLock:
    if not isinstance(body, dict):
        raise PipelineError(f"{where} is not a table")
    unknown = sorted(set(body) - set(_STAGE_KEYS))
    if unknown:
        raise PipelineError(f"{where} has unknown key `{unknown[0]}`")
    cmd = body.get("cmd")
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        cmd = tuple(cmd)
    elif not isinstance(cmd, str) or not cmd:
        raise PipelineError(f"{where} has no valid `cmd`")
    deps: dict[str, Oid] = {}
    for path, item in _entries(body, "deps", ("path", "oid"), where):
        if not is_oid(item["oid"], algorithm):
            raise PipelineError(f"{where}: dep `{path}` has a malformed oid {item['oid']!r}")
        deps[path] = Oid(item["oid"])
    outs: dict[str, tuple[Oid, int]] = {}
    for path, item in _entries(body, "outs", ("path", "oid", "size"), where):
        oid, size = item["oid"], item["size"]
        if not is_oid(oid, algorithm):
            raise PipelineError(f"{where}: out `{path}` has a malformed oid {oid!r}")
        if type(size) is not int or size < 0:
            raise PipelineError(f"{where}: out `{path}` has a bad size {size!r}")
        outs[path] = (Oid(oid), size)
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise PipelineError(f"{where}: `params` must be a table")
    return StageLock(cmd, deps, params, outs)


def _entries(
    body: dict[str, Any], key: str, fields: tuple[str, ...], where: str
) -> list[tuple[str, dict[str, Any]]]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise PipelineError(f"{where}: `{key}` must be a list of tables")
    result: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or set(item) != set(fields):
            raise PipelineError(
                f"{where}: each of `{key}` must be a table of exactly {', '.join(fields)}"
            )
        path = item["path"]
        if not isinstance(path, str) or not is_safe_relative_path(path):
            raise PipelineError(f"{where}: `{key}` has an unsafe path {path!r}")
        if path in seen:
            raise PipelineError(f"{where}: `{key}` lists `{path}` twice")
        seen.add(path)
        result.append((path, item))
    return result


def load(path: str, *, algorithm: str = DEFAULT_ALGORITHM) -> Lockfile:
    """The lock at ``path``; an empty one when there is none yet."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Lockfile()
    return decode(data, source=path, algorithm=algorithm)


def dump(path: str, lockfile: Lockfile) -> None:
    atomic_write(path, lockfile.encode())


def changed(
    stage: Stage,
    lock: StageLock | None,
    current_dep_oids: Mapping[str, Oid],
    current_params: Mapping[str, Any],
) -> tuple[str, ...]:
    """Why ``stage`` must run again (empty: its inputs match the lock). Outs are not looked
    at here: whether they still match the lock is the caller's question.

    ``current_dep_oids`` and ``current_params`` are keyed like the lock (dep path as written
    in the stage, ``ParamRef.spec``).
    """
    reasons: list[str] = ["always_changed is set"] if stage.always_changed else []
    if lock is None:
        return (*reasons, "no lock entry: never run")
    if lock.cmd != stage.cmd:
        reasons.append("cmd changed")
    for path in sorted(set(stage.deps) | set(lock.deps)):
        if path not in lock.deps:
            reasons.append(f"dep `{path}` added")
        elif path not in stage.deps:
            reasons.append(f"dep `{path}` removed")
        elif current_dep_oids.get(path) != lock.deps[path]:
            reasons.append(f"dep `{path}` changed")
    specs = {ref.spec for ref in stage.params}
    for key in sorted(specs | set(lock.params)):
        if key not in lock.params:
            reasons.append(f"param `{key}` added")
        elif key not in specs:
            reasons.append(f"param `{key}` removed")
        elif not _same(current_params.get(key), lock.params[key]):
            reasons.append(f"param `{key}` changed")
    return tuple(reasons)


def _same(a: object, b: object) -> bool:
    """Equal as the lock records them: a tuple is a list; 1 and 1.0 or True differ in type."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b
