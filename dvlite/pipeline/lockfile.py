"""``dvlite.lock``: what each stage last ran with and produced. One canonical TOML encoding:

    # dvlite lock: written by `dvlite repro`; commit it with dvlite.toml
    version = 1

    [stages.train]
    cmd = "python train.py"
    deps = [
        { path = "data/prepared", oid = "…" },
    ]

    [[stages.train.outs]]
    path = "model.pkl"
    oid = "…"
    size = 1234
    kind = "file"

    [[stages.train.outs]]
    path = "metrics.json"
    oid = "…"
    size = 40
    kind = "file"
    cache = false

    [stages.train.params]
    "train.lr" = 0.1

    [stages.train.env]
    python = "3.12.3"
    platform = "linux-x86_64"

    [stages.train.env.files]
    "uv.lock" = "…"

Stages, deps, outs and params are sorted; paths and params keys are as written in
the stage (relative to its ``wdir``, recorded when it is not the repo root). An out
records its kind (a folder's oid is its manifest's) and, for metrics and
``cache = false`` outs, that the cache does not hold it: with that, a lock alone says
which objects a commit's pipeline outputs need, like pointers do for added data.
(A folder out adds ``files = N`` to ``kind = "dir"``. tomli_w writes a short list of
outs inline instead; either way the bytes are fixed by the content.) ``env`` is what the
stage ran with; it never makes a stage rerun, but a rebuild of an
old commit reports where it differs. Decoding is strict and names the file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import tomli_w

from dvlite.errors import PipelineError
from dvlite.fsutil import atomic_write
from dvlite.pipeline.environment import Environment
from dvlite.pointer import is_reserved
from dvlite.storage.hashing import DEFAULT_ALGORITHM, Oid, is_oid
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from dvlite.pipeline.stage import Stage

FILENAME = "dvlite.lock"
VERSION = 1
HEADER = "# dvlite lock: written by `dvlite repro`; commit it with dvlite.toml\n"
_STAGE_KEYS = ("cmd", "wdir", "deps", "outs", "params", "env")

Kind = Literal["file", "dir"]


@dataclass(frozen=True)
class OutLock:
    oid: Oid  # a folder's: the oid of its manifest
    size: int
    kind: Kind = "file"
    files: int | None = None  # folders only
    cache: bool = True  # False: metrics and `cache = false` outs, which stay out of the cache

    def to_toml(self, path: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": path, "oid": self.oid, "size": self.size,
                               "kind": self.kind}
        if self.kind == "dir":
            doc["files"] = self.files
        if not self.cache:
            doc["cache"] = False
        return doc


@dataclass(frozen=True)
class StageLock:
    cmd: str | tuple[str, ...]
    deps: Mapping[str, Oid] = field(default_factory=dict)  # path -> oid
    params: Mapping[str, Any] = field(default_factory=dict)  # ParamRef.spec -> value
    outs: Mapping[str, OutLock] = field(default_factory=dict)  # path -> what it held
    wdir: str = "."
    env: Environment | None = None

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"cmd": list(self.cmd) if isinstance(self.cmd, tuple) else self.cmd}
        if self.wdir != ".":
            doc["wdir"] = self.wdir
        doc["deps"] = [{"path": p, "oid": self.deps[p]} for p in sorted(self.deps)]
        doc["outs"] = [self.outs[p].to_toml(p) for p in sorted(self.outs)]
        doc["params"] = _sorted_tables(dict(self.params))
        if self.env is not None:
            doc["env"] = self.env.to_toml()
        return doc

    def in_repo(self, path: str) -> str:
        """A dep or out path of this entry, relative to the repo root."""
        return path if self.wdir == "." else f"{self.wdir}/{path}"


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
    # RecursionError: arrays or tables nested thousands deep (tomllib recurses)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
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


def decode_stage(body: object, *, where: str, algorithm: str = DEFAULT_ALGORITHM) -> StageLock:
    """One stage's table as ``StageLock.to_toml`` writes it (the run cache keeps them too);
    every problem is a PipelineError starting with ``where``."""
    return _stage(body, where, algorithm)


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
    wdir = body.get("wdir", ".")
    if not isinstance(wdir, str) or not (wdir == "." or is_safe_relative_path(wdir)):
        raise PipelineError(f"{where} has an unsafe `wdir` {wdir!r}")
    deps: dict[str, Oid] = {}
    for path, item in _entries(body, "deps", ("path", "oid"), (), where):
        deps[path] = _oid(item["oid"], algorithm, f"{where}: dep `{path}`")
    outs = {path: _out(item, algorithm, f"{where}: out `{path}`")
            for path, item in _entries(body, "outs", ("path", "oid", "size", "kind"),
                                       ("files", "cache"), where)}
    for path in outs:  # checkout writes outs: never into `.git` (hooks) or `.dvlite`
        in_repo = path if wdir == "." else f"{wdir}/{path}"
        if is_reserved(in_repo):
            raise PipelineError(f"{where}: out `{in_repo}` is inside a folder dvlite never "
                                "writes data to")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise PipelineError(f"{where}: `params` must be a table")
    env = _environment(body["env"], algorithm, where) if "env" in body else None
    return StageLock(cmd, deps, params, outs, wdir, env)


def _oid(value: object, algorithm: str, where: str) -> Oid:
    if is_oid(value) and not is_oid(value, algorithm):  # another hash's oid
        raise PipelineError(
            f"{where} has an oid of another hash than this repo's {algorithm} (`core.hash`)",
            hint="a repo keeps one hash: set `core.hash` back in `.dvlite/config.toml`",
        )
    if not is_oid(value, algorithm):
        raise PipelineError(f"{where} has a malformed oid {value!r}")
    return Oid(str(value))


def _out(item: dict[str, Any], algorithm: str, where: str) -> OutLock:
    oid = _oid(item["oid"], algorithm, where)
    size, kind, files, cache = item["size"], item["kind"], item.get("files"), item.get("cache")
    if type(size) is not int or size < 0:
        raise PipelineError(f"{where} has a bad size {size!r}")
    if kind not in ("file", "dir"):
        raise PipelineError(f"{where} has an unknown kind {kind!r}")
    if (kind == "dir") != (type(files) is int and files >= 0):
        raise PipelineError(f"{where}: `files` is a folder's file count, and only a folder's")
    if cache not in (None, False):
        raise PipelineError(f"{where}: `cache` is only ever written as false")
    return OutLock(oid, size, kind, files, cache is None)


def _environment(value: object, algorithm: str, where: str) -> Environment:
    if not isinstance(value, dict) or set(value) - {"python", "platform", "files"}:
        raise PipelineError(f"{where}: `env` must be a table of python, platform and files")
    python, platform, files = value.get("python"), value.get("platform"), value.get("files", {})
    if not isinstance(python, str) or not isinstance(platform, str):
        raise PipelineError(f"{where}: `env` needs `python` and `platform` strings")
    if not isinstance(files, dict) or not all(is_safe_relative_path(p) for p in files):
        raise PipelineError(f"{where}: `env.files` must map safe paths to oids")
    return Environment(python, platform, {
        p: _oid(oid, algorithm, f"{where}: env file `{p}`") for p, oid in files.items()
    })


def _entries(
    body: dict[str, Any], key: str, fields: tuple[str, ...], optional: tuple[str, ...],
    where: str,
) -> list[tuple[str, dict[str, Any]]]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise PipelineError(f"{where}: `{key}` must be a list of tables")
    result: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not set(fields) <= set(item) <= {*fields, *optional}:
            also = f" (and optionally {', '.join(optional)})" if optional else ""
            raise PipelineError(
                f"{where}: each of `{key}` must be a table of {', '.join(fields)}{also}"
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
    if lock.wdir != stage.wdir:
        reasons.append("wdir changed")
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
