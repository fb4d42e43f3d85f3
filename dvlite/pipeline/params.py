"""Stage params: references like ``train.lr`` or ``other.json:model``, and their values.

A reference names a key in a params file, ``params.toml`` unless it is written
``file:key``. The key is dotted (``train.lr``) and may name a whole table.
Params files are TOML, JSON or YAML (YAML only where PyYAML is installed).
Values must fit in ``dvlite.lock`` (TOML): no nulls, string keys only.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvlite.errors import PipelineError
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DEFAULT_FILE = "params.toml"
SUFFIXES = (".toml", ".json", ".yaml", ".yml")
_SCALARS = (str, int, float, bool, datetime.date, datetime.time)  # datetime is a date


@dataclass(frozen=True, slots=True)
class ParamRef:
    """One params entry of a stage: ``key`` (dotted) in ``file`` (relative to the stage's wdir)."""

    file: str
    key: str

    @property
    def spec(self) -> str:
        """The entry as written in dvlite.toml, and its key in dvlite.lock."""
        return self.key if self.file == DEFAULT_FILE else f"{self.file}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> ParamRef:
        """``key`` or ``file:key``; ValueError says what is wrong (the caller names the place)."""
        file, sep, key = text.partition(":")
        if not sep:
            file, key = DEFAULT_FILE, text
        if not is_safe_relative_path(file):
            raise ValueError(f"params file `{file}` must be a relative path inside the repo")
        if not file.endswith(SUFFIXES):
            raise ValueError(
                f"params file `{file}` must end in one of {', '.join(SUFFIXES)}"
            )
        if not key or any(not part.strip() for part in key.split(".")):
            raise ValueError(f"`{text}` does not name a key (write `key.sub` or `file:key`)")
        return cls(file, key)


def load_file(path: str) -> dict[str, Any]:
    """Parse a params file by its suffix; every problem is a PipelineError naming the file."""
    if os.path.splitext(path)[1] not in SUFFIXES:
        raise PipelineError(f"params file `{path}` is not .toml, .json, .yaml or .yml")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise PipelineError(
            f"params file `{path}` does not exist", hint="create it, or fix the stage's `params`"
        ) from None
    except IsADirectoryError:
        raise PipelineError(f"params file `{path}` is a folder") from None
    return parse_document(raw, path, where=f"params file `{path}`")


def parse_document(raw: bytes, path: str, *, where: str) -> dict[str, Any]:
    """A TOML, YAML or JSON table (by ``path``'s suffix; JSON for any other), from bytes;
    errors are one line saying ``cannot parse {where}: ...``."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        text = raw.decode("utf-8")
        if suffix == ".toml":
            doc: object = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            doc = _load_yaml(text, where)
        else:
            doc = json.loads(text)
    # TOMLDecodeError and JSONDecodeError are ValueErrors; both readers recurse, so a
    # document nested thousands deep raises RecursionError
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PipelineError(f"cannot parse {where}: {_one_line(exc)}") from exc
    if not isinstance(doc, dict):
        raise PipelineError(f"{where} must hold a table of keys at the top")
    _check_shape(doc, where)
    return doc


MAX_VALUES = 1_000_000  # values in one document: far beyond a real params or metrics file
MAX_DEPTH = 100  # tables and lists inside each other


def _check_shape(doc: dict[str, Any], where: str) -> None:
    """Refuse a document too big or too deep for the code that walks it recursively (lookups,
    the lock writer, the run-cache key). Only YAML can get there from a small file: aliases
    repeat a subtree (a "billion laughs" of 9 aliases, 9 levels deep, is 387 million values)
    or put a list inside itself; a walk on a stack with a budget catches both without
    recursing itself."""
    stack: list[tuple[object, int]] = [(doc, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES or depth > MAX_DEPTH:
            what = (f"more than {MAX_VALUES:,} values" if seen > MAX_VALUES
                    else f"values nested more than {MAX_DEPTH} levels deep")
            raise PipelineError(
                f"{where} holds {what}",
                hint="YAML aliases that repeat or contain themselves expand like this; write "
                "the values out",
            )
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)


def _load_yaml(text: str, where: str) -> object:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise PipelineError(
            f"cannot read {where}: YAML needs PyYAML, which is not installed",
            hint="`pip install pyyaml`, or use a .toml or .json file",
        ) from None
    try:
        return yaml.safe_load(text)
    # OverflowError: PyYAML turns an escape such as "\UDDDDDDDD" into chr() of a number past
    # Unicode's last character (found by atheris)
    except (yaml.YAMLError, OverflowError) as exc:
        raise PipelineError(f"cannot parse {where}: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def lookup(doc: Mapping[str, Any], key: str, *, source: str) -> Any:
    """The value at dotted ``key``; a missing key is a PipelineError naming ``source`` and it.

    A key that itself holds dots (``"a.b" = 1``) is found too: at each level the
    longest matching run of parts wins.
    """
    node, found = _walk(doc, key)
    if found < len(key.split(".")):
        if not isinstance(node, dict):
            done = ".".join(key.split(".")[:found])
            raise PipelineError(f"params file `{source}`: `{done}` is not a table, so it has no "
                                f"key `{key}`")
        raise PipelineError(
            f"params file `{source}` has no key `{key}`",
            hint="add it to the file, or remove it from the stage's `params`",
        )
    _check_value(node, source, key)
    return node


def find(doc: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted ``key`` as ``lookup`` finds it, or ``default`` when absent."""
    node, found = _walk(doc, key)
    return node if found == len(key.split(".")) else default


def _walk(doc: Mapping[str, Any], key: str) -> tuple[Any, int]:
    """Follow ``key``'s parts down the tables, the longest run that is a key first; return
    the node reached and how many parts led there."""
    parts = key.split(".")
    node: Any = doc
    i = 0
    while i < len(parts) and isinstance(node, dict):
        for j in range(len(parts), i, -1):
            name = ".".join(parts[i:j])
            if name in node:
                node, i = node[name], j
                break
        else:
            break
    return node, i


def _check_value(value: object, source: str, key: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise PipelineError(f"params file `{source}`: `{key}` has a non-string key {k!r}")
            _check_value(v, source, f"{key}.{k}")
    elif isinstance(value, list):
        for item in value:
            _check_value(item, source, key)
    elif value is None:
        raise PipelineError(
            f"params file `{source}`: `{key}` is null, which dvlite.lock cannot record",
            hint="give it a value, or leave the key out",
        )
    elif not isinstance(value, _SCALARS):
        raise PipelineError(f"params file `{source}`: `{key}` has an unsupported value {value!r}")


def read_params(base_dir: str, refs: Iterable[ParamRef]) -> dict[str, Any]:
    """The current value of each ref, keyed by ``ref.spec``; files are relative to ``base_dir``
    (the stage's wdir) and each is read once."""
    docs: dict[str, dict[str, Any]] = {}
    values: dict[str, Any] = {}
    for ref in refs:
        path = os.path.join(base_dir, *ref.file.split("/"))
        if ref.file not in docs:
            docs[ref.file] = load_file(path)
        values[ref.spec] = lookup(docs[ref.file], ref.key, source=path)
    return values
