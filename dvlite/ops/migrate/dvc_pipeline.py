"""``dvc.yaml`` as ``dvlite.toml``: the same stage keys, templating expanded, and a list of
what has no equivalent (plots, frozen stages, out flags) instead of silently dropping it."""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from dvlite.errors import PipelineError
from dvlite.ops.migrate.dvc_template import expand
from dvlite.pipeline.params import SUFFIXES, parse_document
from dvlite.pipeline.stage import parse_stages

HEADER = "# converted from dvc.yaml by `dvlite import-dvc`\n"
DEFAULT_PARAMS = "params.yaml"  # DVC's; dvlite's is params.toml, so the file is named
_INVALID = re.compile(r"[^A-Za-z0-9_.-]")
_DROPPED_KEYS = ("frozen", "desc", "meta")
_TOP_LEVEL = ("plots", "metrics", "params", "artifacts", "datasets")


@dataclass(frozen=True)
class StagePlan:
    name: str  # dvlite's
    dvc_name: str  # DVC's (`group@key` for a generated stage): its key in dvc.lock
    table: dict[str, Any]  # the stage as dvlite.toml holds it
    wdir: str
    cached: dict[str, bool] = field(default_factory=dict)  # out path -> kept in the cache

    def in_repo(self, path: str) -> str:
        return path if self.wdir == "." else f"{self.wdir}/{path}"


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[StagePlan, ...]
    warnings: tuple[str, ...]
    not_converted: tuple[str, ...]

    def render(self) -> bytes:
        text = HEADER + tomli_w.dumps({"stages": {s.name: s.table for s in self.stages}})
        parse_stages(text, source="the converted dvlite.toml")  # dvlite must accept it
        return text.encode()


def convert(root: str, doc: dict[str, Any], lock: dict[str, Any]) -> Pipeline:
    """The stages of ``dvc.yaml`` (``doc``) at ``root``; ``lock`` (dvc.lock) names the keys
    of whole-file params."""
    warnings: list[str] = []
    skipped = [f"top-level `{key}` of dvc.yaml" for key in _TOP_LEVEL if doc.get(key)]
    context = _context(root, [DEFAULT_PARAMS, *(doc.get("vars") or [])], warnings)
    stages: list[StagePlan] = []
    body_of = doc.get("stages") or {}
    if not isinstance(body_of, dict):
        raise PipelineError("`dvc.yaml`: `stages` must be a table")
    for group, body in body_of.items():
        where = f"`dvc.yaml`, stage `{group}`"
        if not isinstance(body, dict):
            raise PipelineError(f"{where} is not a table")
        local = {**context, **_context(root, body.pop("vars", None) or [], warnings)}
        for dvc_name, resolved in expand(group, body, local, where):
            stages.append(_stage(root, dvc_name, resolved, lock, warnings=warnings,
                                 skipped=skipped))
    names = [s.name for s in stages]
    for name in names:
        if names.count(name) > 1:
            raise PipelineError(f"two DVC stages become dvlite stage `{name}`",
                                hint="rename one of them in dvc.yaml, then convert again")
    return Pipeline(tuple(stages), tuple(warnings), tuple(skipped))


def dvlite_name(dvc_name: str) -> str:
    """A DVC stage name as dvlite takes it: ``train@lr-0.1`` becomes ``train-lr-0.1``."""
    name = _INVALID.sub("_", dvc_name.replace("@", "-"))
    return name if re.match(r"[A-Za-z0-9_]", name) else "s" + name


def _context(root: str, entries: object, warnings: list[str]) -> dict[str, Any]:
    """The values ``${...}`` reads: params.yaml, then each of ``vars`` (a table, or a file
    with optional ``:key,key``)."""
    context: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            context.update(entry)
            continue
        file, _, keys = str(entry).partition(":")
        path = os.path.join(root, *file.split("/"))
        if not os.path.isfile(path):
            if file != DEFAULT_PARAMS:  # DVC reads params.yaml only when it is there
                warnings.append(f"vars file `{file}` does not exist; its values are not used")
            continue
        with open(path, "rb") as f:
            values = parse_document(f.read(), path, where=f"vars file `{file}`")
        wanted = [k.strip() for k in keys.split(",") if k.strip()]
        context.update({k: values[k] for k in wanted if k in values} if wanted else values)
    return context


def _stage(root: str, dvc_name: str, body: dict[str, Any], lock: dict[str, Any], *,
           warnings: list[str], skipped: list[str]) -> StagePlan:
    name = dvlite_name(dvc_name)
    where = f"stage `{dvc_name}`"
    if name != dvc_name:
        warnings.append(f"{where} is named `{name}` in dvlite.toml")
    for key in body:
        if key in _DROPPED_KEYS:
            warnings.append(f"{where}: `{key}` has no dvlite equivalent; dropped")
        elif key not in ("cmd", "wdir", "deps", "outs", "params", "metrics", "plots",
                         "always_changed"):
            warnings.append(f"{where}: unknown key `{key}`; dropped")
    cmd = body.get("cmd")
    if isinstance(cmd, list):  # DVC runs the commands one after the other
        cmd = " && ".join(str(c) for c in cmd)
    if not isinstance(cmd, str) or not cmd.strip():
        raise PipelineError(f"`dvc.yaml`, {where} has no `cmd`")
    wdir = posixpath.normpath(str(body.get("wdir", ".")))
    table: dict[str, Any] = {"cmd": cmd}
    if wdir != ".":
        table["wdir"] = wdir
    table["deps"] = [posixpath.normpath(str(d)) for d in body.get("deps") or []]
    lock_params = (lock.get(dvc_name) or {}).get("params") or {}
    table["params"] = _params(root, wdir, body.get("params") or [], lock_params, where=where,
                              warnings=warnings)
    cached: dict[str, bool] = {}
    outs: list[Any] = []
    for path, flags in _items(body.get("outs"), where, warnings):
        cached[path] = flags.get("cache", True) is not False
        outs.append(path if cached[path] else {"path": path, "cache": False})
    for path, flags in _items(body.get("plots"), where, warnings, plots=True):
        skipped.append(f"plot `{path}` of {where} (the file is kept as an out)")
        cached[path] = flags.get("cache", True) is not False
        outs.append(path if cached[path] else {"path": path, "cache": False})
    metrics = []
    for path, flags in _items(body.get("metrics"), where, warnings):
        if flags.get("cache", True) is not False:
            warnings.append(f"{where}: DVC caches metric `{path}`; dvlite keeps metrics in "
                            f"git: drop its line from .gitignore and `git add` it")
        metrics.append(path)
        cached[path] = False
    table.update({"outs": outs, "metrics": metrics})
    if body.get("always_changed"):
        table["always_changed"] = True
    return StagePlan(name, dvc_name, {k: v for k, v in table.items() if v != []}, wdir, cached)


def _items(value: object, where: str, warnings: list[str], *,
           plots: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Outs, metrics or plots: each a path, or a one-key table of path -> flags."""
    found: list[tuple[str, dict[str, Any]]] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and len(item) == 1:
            path, flags = next(iter(item.items()))
            flags = flags if isinstance(flags, dict) else {}
        else:
            path, flags = item, {}
        for flag in flags:
            if flag != "cache" and not plots:
                warnings.append(f"{where}: flag `{flag}` of `{path}` has no dvlite equivalent; "
                                "dropped")
        found.append((posixpath.normpath(str(path)), flags))
    return found


def _params(root: str, wdir: str, value: list[Any], lock_params: dict[str, Any], *,
            where: str, warnings: list[str]) -> list[str]:
    specs: list[str] = []
    for item in value:
        for file, keys in (item.items() if isinstance(item, dict) else [(DEFAULT_PARAMS,
                                                                          [item])]):
            if not str(file).endswith(SUFFIXES):
                warnings.append(f"{where}: params file `{file}` is not TOML, JSON or YAML; "
                                "its params are not converted")
                continue
            listed = keys or list(lock_params.get(file) or _top_keys(root, wdir, file))
            if not keys:
                warnings.append(f"{where}: all of `{file}` is listed key by key "
                                f"({', '.join(map(str, listed))})")
            specs.extend(f"{file}:{key}" for key in listed)
    return specs


def _top_keys(root: str, wdir: str, file: str) -> list[str]:
    path = os.path.join(root, *wdir.split("/"), *file.split("/"))
    if not os.path.isfile(path):
        return []
    with open(path, "rb") as f:
        return list(parse_document(f.read(), path, where=f"params file `{file}`"))
