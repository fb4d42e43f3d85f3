"""``exp run -S [FILE:]KEY=VALUE[,VALUE...]``: parameter settings, checked against the params
files before anything runs, expanded to a grid, and written into the files.

A key must already be in its file (``params.toml`` unless ``FILE:`` names another, relative
to the repo root), and a value is read as the type the file holds there: a number stays a
number, ``true``/``false`` a bool, a string is taken as typed, and a list or table is written
as a TOML inline value. Commas separate the values of a grid, except inside brackets or
quotes. The file is rewritten whole (TOML through tomli_w, JSON with its indent, YAML through
PyYAML), so comments in a TOML or YAML params file do not survive an edit.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tomli_w

from dvlite.errors import PipelineError, UsageError
from dvlite.fsutil import atomic_write
from dvlite.pipeline.params import ParamRef, find, load_file

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class ParamSet:
    """One setting of one run: ``key`` in ``file`` (relative to the repo root) = ``value``."""

    file: str
    key: str
    value: Any
    text: str  # the value as typed

    @property
    def spec(self) -> str:
        """As it would be typed on the command line, and as an experiment records it."""
        return f"{ParamRef(self.file, self.key).spec}={self.text}"


def parse_sets(root: str, specs: Sequence[str]) -> list[tuple[ParamSet, ...]]:
    """Every combination of the values ``specs`` give (one run each, in order), checked
    against the params files under ``root``; raises before any file is touched."""
    axes: list[list[ParamSet]] = []
    docs: dict[str, dict[str, Any]] = {}
    for spec in specs:
        target, sep, values = spec.partition("=")
        if not sep or not target.strip():
            raise UsageError(f"`-S {spec}`: write it as `KEY=VALUE` or `FILE:KEY=VALUE`",
                             hint="for example `-S train.lr=0.01` or `-S params.json:seed=3`")
        try:
            ref = ParamRef.parse(target.strip())
        except ValueError as exc:
            raise UsageError(f"`-S {spec}`: {exc}") from None
        if ref.file not in docs:
            docs[ref.file] = load_file(os.path.join(root, *ref.file.split("/")))
        old = find(docs[ref.file], ref.key, _MISSING)
        if old is _MISSING:
            raise PipelineError(
                f"`-S {spec}`: params file `{ref.file}` has no key `{ref.key}`",
                hint="set only keys the file holds: add the key to the file first, or check "
                "its spelling",
            )
        texts = _split_values(values)
        if not all(texts):
            raise UsageError(f"`-S {spec}`: a value is empty",
                             hint="give each value after `=`, comma-separated for a grid")
        axes.append([ParamSet(ref.file, ref.key, _coerce(spec, old, t), t) for t in texts])
    return [tuple(combo) for combo in itertools.product(*axes)] if axes else [()]


def apply_sets(root: str, sets: Sequence[ParamSet]) -> None:
    """Write ``sets`` into their files under ``root`` (each file read and written once)."""
    by_file: dict[str, list[ParamSet]] = {}
    for param in sets:
        by_file.setdefault(param.file, []).append(param)
    for file, params in by_file.items():
        path = os.path.join(root, *file.split("/"))
        doc = load_file(path)
        for param in params:
            if not _assign(doc, param.key, param.value):
                raise PipelineError(f"params file `{file}` has no key `{param.key}`",
                                    hint="the file changed since the run was queued")
        atomic_write(path, _dump(path, doc))


def name_of(sets: Sequence[ParamSet]) -> str:
    """A readable experiment name from the settings: ``exp-lr0.1-epochs5``."""
    parts = [re.sub(r"[^A-Za-z0-9.]+", "_", f"{p.key.rsplit('.', 1)[-1]}{p.text}").strip("._")
             for p in sets]
    return "-".join(["exp", *parts])[:80].rstrip("._-")


_MISSING = object()


def _split_values(text: str) -> list[str]:
    """``text`` split at commas that are outside brackets, braces and quotes."""
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    return [*values, current.strip()]


def _coerce(spec: str, old: Any, text: str) -> Any:
    """``text`` as a value of ``old``'s type."""
    if isinstance(old, bool):
        if text.lower() not in ("true", "false"):
            raise UsageError(f"`-S {spec}`: `{text}` is not `true` or `false`, which the key "
                             "holds now")
        return text.lower() == "true"
    if isinstance(old, int | float):
        for kind in (float,) if isinstance(old, float) else (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        raise UsageError(f"`-S {spec}`: `{text}` is not a number, which the key holds now")
    if isinstance(old, str):  # as typed, less the quotes that kept its commas together
        quoted = len(text) > 1 and text[0] == text[-1] and text[0] in "\"'"
        return text[1:-1] if quoted else text
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = _MISSING
    if value is _MISSING or type(value) is not type(old):
        raise UsageError(f"`-S {spec}`: `{text}` is not a {type(old).__name__} written as a "
                         "TOML value, which the key holds now",
                         hint='a list is written `[1, 2]`, a table `{a = 1, b = "x"}`')
    return value


def _assign(doc: dict[str, Any], key: str, value: Any) -> bool:
    """Set the value at dotted ``key`` (found as ``find`` finds it); False when absent."""
    parts = key.split(".")
    for i in range(len(parts) - 1, -1, -1):
        parent = find(doc, ".".join(parts[:i])) if i else doc
        leaf = ".".join(parts[i:])
        if isinstance(parent, dict) and leaf in parent:
            parent[leaf] = value
            return True
    return False


def _dump(path: str, doc: dict[str, Any]) -> bytes:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".toml":
        return tomli_w.dumps(doc).encode("utf-8")
    if suffix in (".yaml", ".yml"):
        yaml: Any = importlib.import_module("yaml")  # load_file has checked it is there
        text: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        return text.encode("utf-8")
    with open(path, "rb") as f:
        second = f.read().split(b"\n", 2)[1:2]  # the indent of the first key, if any
    indent = len(second[0]) - len(second[0].lstrip()) if second else 0
    return (json.dumps(doc, indent=indent or None, ensure_ascii=False) + "\n").encode("utf-8")
