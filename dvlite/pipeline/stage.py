"""Stages, as read from ``dvlite.toml``; dvlite never writes that file.

    [stages.train]
    cmd = "python train.py"                # or a list: ["python", "train.py"]
    wdir = "."                             # folder the cmd runs in; paths are relative to it
    deps = ["train.py", "data/prepared"]
    params = ["train", "other.json:seed"]  # keys in params.toml, or file:key
    outs = ["model.pkl", {path = "logs", cache = false}]
    metrics = ["metrics.json"]
    always_changed = false

Every problem is a PipelineError naming the file, the line of the stage (when
it can be found) and the stage.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from dvlite.errors import PipelineError
from dvlite.pipeline.params import ParamRef
from dvlite.pointer import is_reserved
from dvlite.storage.manifest import is_safe_relative_path

FILENAME = "dvlite.toml"
_STAGE_KEYS = ("cmd", "wdir", "deps", "outs", "params", "metrics", "always_changed")
_OUT_KEYS = ("path", "cache")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


@dataclass(frozen=True, slots=True)
class Out:
    path: str  # relative to the stage's wdir
    cache: bool = True  # False: the out is produced and checked, but kept out of the cache


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage; paths are relative to ``wdir``, which is relative to the repo root."""

    name: str
    cmd: str | tuple[str, ...]
    deps: tuple[str, ...] = ()
    outs: tuple[Out, ...] = ()
    params: tuple[ParamRef, ...] = ()
    metrics: tuple[str, ...] = ()
    wdir: str = "."
    always_changed: bool = False

    def in_repo(self, path: str) -> str:
        """A path of this stage, relative to the repo root."""
        return path if self.wdir == "." else f"{self.wdir}/{path}"

    @property
    def dep_paths(self) -> tuple[str, ...]:
        """Deps, relative to the repo root."""
        return tuple(self.in_repo(p) for p in self.deps)

    @property
    def out_paths(self) -> tuple[str, ...]:
        """Everything the stage writes (outs, then metrics), relative to the repo root."""
        return tuple(self.in_repo(o.path) for o in self.outs) + tuple(
            self.in_repo(m) for m in self.metrics
        )


def load_stages(path: str) -> dict[str, Stage]:
    """Parse a ``dvlite.toml``; stages in file order."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise PipelineError(f"`{path}` does not exist") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"`{path}` is not UTF-8 text: {exc}") from exc
    return parse_stages(text, source=path)


def parse_stages(text: str, *, source: str) -> dict[str, Stage]:
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # recursion: nested thousands deep
        raise PipelineError(f"cannot parse `{source}`: {exc}") from exc
    unknown = sorted(set(doc) - {"stages"})
    if unknown:
        raise PipelineError(
            f"`{source}` has unknown top-level key `{unknown[0]}`",
            hint="stages go in tables named [stages.<name>]",
        )
    stages = doc.get("stages", {})
    if not isinstance(stages, dict):
        raise PipelineError(f"`{source}`: `stages` must be a table of [stages.<name>] tables")
    return {name: _stage(name, body, _Where(text, source, name)) for name, body in stages.items()}


class _Where:
    """Names the place of a problem: file, line (when found) and stage."""

    def __init__(self, text: str, source: str, stage: str) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.stage = stage
        quoted = f'(?:{re.escape(stage)}|"{re.escape(stage)}"|\'{re.escape(stage)}\')'
        header = re.compile(rf"\s*\[\s*stages\s*\.\s*{quoted}\s*\]")
        self.start = next((i for i, line in enumerate(self.lines) if header.match(line)), None)

    def line_of(self, key: str | None) -> int | None:
        if self.start is None:
            return None
        if key is not None:
            assign = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
            for i in range(self.start + 1, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if assign.match(self.lines[i]):
                    return i + 1
        return self.start + 1

    def error(self, message: str, key: str | None = None, hint: str | None = None) -> PipelineError:
        line = self.line_of(key)
        where = f"`{self.source}`" + (f" line {line}" if line is not None else "")
        return PipelineError(f"{where}, stage `{self.stage}`: {message}", hint=hint)


def _stage(name: str, body: object, where: _Where) -> Stage:
    if not _NAME.match(name):
        raise where.error("a stage name may hold only letters, digits, `_`, `-` and `.`")
    if not isinstance(body, dict):
        raise where.error("must be a table with at least `cmd`")
    for key in body:
        if key not in _STAGE_KEYS:
            close = difflib.get_close_matches(key, _STAGE_KEYS, n=1)
            known = f"known keys: {', '.join(_STAGE_KEYS)}"
            hint = f"did you mean `{close[0]}`?" if close else known
            raise where.error(f"unknown key `{key}`", key, hint=hint)
    if "cmd" not in body:
        raise where.error("has no `cmd`")
    wdir = body.get("wdir", ".")
    if not isinstance(wdir, str):
        raise where.error("`wdir` must be a string", "wdir")
    wdir = "." if wdir in (".", "./") else _path(wdir, "wdir", where)
    always = body.get("always_changed", False)
    if not isinstance(always, bool):
        raise where.error("`always_changed` must be true or false", "always_changed")
    deps = tuple(_path(p, "deps", where) for p in _strings(body, "deps", where))
    metrics = tuple(_path(p, "metrics", where) for p in _strings(body, "metrics", where))
    outs = _outs(body, where)
    params = _params(body, where)
    seen: dict[str, str] = {}
    for key, paths in (("deps", deps), ("outs", [o.path for o in outs]), ("metrics", metrics)):
        for p in paths:
            if p in seen:
                raise where.error(f"`{p}` is listed twice (in `{seen[p]}` and `{key}`)", key)
            seen[p] = key
    stage = Stage(name, _cmd(body["cmd"], where), deps, outs, params, metrics, wdir, always)
    _check_written(stage, where)
    return stage


def _check_written(stage: Stage, where: _Where) -> None:
    """What a stage writes, and checkout restores, never goes into `.git` (its hooks run
    code) or `.dvlite`."""
    for key, paths in (("outs", [o.path for o in stage.outs]), ("metrics", stage.metrics)):
        for p in map(stage.in_repo, paths):
            if is_reserved(p):
                raise where.error(f"`{p}` is inside `.git` or `.dvlite`, where no stage may "
                                  "write", key)


def _cmd(cmd: object, where: _Where) -> str | tuple[str, ...]:
    if isinstance(cmd, str):
        if not cmd.strip():
            raise where.error("`cmd` is empty", "cmd")
        return cmd
    if isinstance(cmd, list):
        if not cmd:
            raise where.error("`cmd` is an empty list", "cmd")
        if not all(isinstance(c, str) for c in cmd) or not cmd[0].strip():
            raise where.error("`cmd` must be a string or a list of strings", "cmd")
        return tuple(cmd)
    raise where.error("`cmd` must be a string or a list of strings", "cmd")


def _strings(body: dict[str, Any], key: str, where: _Where) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(f"`{key}` must be a list of strings", key)
    return value


def _path(path: str, key: str, where: _Where) -> str:
    stripped = path.rstrip("/") if path != "/" else path
    if stripped.startswith("/") or os.path.isabs(stripped):
        raise where.error(f"`{key}` has an absolute path `{path}`", key,
                          hint="paths are relative to the stage's wdir")
    if ".." in stripped.split("/"):
        raise where.error(f"`{key}` has a path `{path}` that leaves its folder with `..`", key,
                          hint="paths are relative to the stage's wdir and stay inside the repo")
    if not is_safe_relative_path(stripped):
        raise where.error(f"`{key}` has an unsafe path {path!r}", key,
                          hint="write a plain relative path with `/` between names")
    return stripped


def _outs(body: dict[str, Any], where: _Where) -> tuple[Out, ...]:
    value = body.get("outs", [])
    if not isinstance(value, list):
        raise where.error("`outs` must be a list", "outs")
    outs = []
    for item in value:
        if isinstance(item, str):
            outs.append(Out(_path(item, "outs", where)))
            continue
        if not isinstance(item, dict):
            raise where.error("each of `outs` is a path or a table {path = ..., cache = ...}",
                              "outs")
        for k in item:
            if k not in _OUT_KEYS:
                raise where.error(f"an out has unknown key `{k}` (known: path, cache)", "outs")
        path, cache = item.get("path"), item.get("cache", True)
        if not isinstance(path, str):
            raise where.error("an out table needs a string `path`", "outs")
        if not isinstance(cache, bool):
            raise where.error(f"out `{path}`: `cache` must be true or false", "outs")
        outs.append(Out(_path(path, "outs", where), cache))
    return tuple(outs)


def _params(body: dict[str, Any], where: _Where) -> tuple[ParamRef, ...]:
    refs: list[ParamRef] = []
    for text in _strings(body, "params", where):
        try:
            ref = ParamRef.parse(text)
        except ValueError as exc:
            raise where.error(f"`params`: {exc}", "params") from None
        if ref in refs:
            raise where.error(f"`params` lists `{ref.spec}` twice", "params")
        refs.append(ref)
    return tuple(refs)
