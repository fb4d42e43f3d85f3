"""DVC's ``dvc.yaml`` templating, as far as a conversion needs it: ``${...}`` interpolation
from ``vars`` and ``params.yaml``, and the stages ``foreach`` and ``matrix`` generate.

The stages come out written in full: dvlite.toml has no templating, so what DVC would
generate at run time is what the converted file holds.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from dvlite.errors import PipelineError

_INTERPOLATION = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
JOIN = "@"  # DVC's separator between a generated stage's group and its key


def lookup(context: dict[str, Any], expr: str, where: str) -> Any:
    """The value of ``a.b[0].c`` in ``context``."""
    node: Any = context
    for part in expr.strip().replace("[", ".").replace("]", "").split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PipelineError(f"{where}: `${{{expr}}}` names nothing in `vars` or params.yaml",
                                hint="define it in `vars` or params.yaml, as DVC would need")
    return node


def _text(value: Any, expr: str, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as DVC writes it
    if isinstance(value, dict | list):
        raise PipelineError(f"{where}: `${{{expr}}}` is a table or list inside a string, which "
                            "dvlite cannot expand the way DVC does",
                            hint="write the stage's command out in dvc.yaml, then convert again")
    return str(value)


def resolve(value: Any, context: dict[str, Any], where: str) -> Any:
    """``value`` (a dvc.yaml node) with every ``${...}`` replaced, in keys too."""
    if isinstance(value, str):
        whole = _INTERPOLATION.fullmatch(value)
        if whole:  # a lone reference keeps the value's type
            return lookup(context, whole["inner"], where)
        text = _INTERPOLATION.sub(
            lambda m: _text(lookup(context, m["inner"], where), m["inner"], where), value)
        return text.replace("\\${", "${")
    if isinstance(value, dict):
        return {resolve(k, context, where): resolve(v, context, where) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context, where) for v in value]
    return value


def _key(value: Any) -> str:
    return _text(value, "", "") if not isinstance(value, dict | list) else ""


def expand(name: str, body: dict[str, Any], context: dict[str, Any],
           where: str) -> list[tuple[str, dict[str, Any]]]:
    """The stages one dvc.yaml entry stands for, named as DVC names them (``group@key``)."""
    if "foreach" in body:
        items = resolve(body["foreach"], context, f"{where}, `foreach`")
        if isinstance(items, dict):
            pairs = [(str(k), {"item": v, "key": k}) for k, v in items.items()]
        elif isinstance(items, list):
            composite = any(isinstance(v, dict | list) for v in items)
            pairs = [(str(i) if composite else _key(v), {"item": v}) for i, v in enumerate(items)]
        else:
            raise PipelineError(f"{where}: `foreach` must give a list or a table")
        template = body.get("do")
        if not isinstance(template, dict):
            raise PipelineError(f"{where}: a `foreach` stage needs a `do` table")
        return [(f"{name}{JOIN}{key}", resolve(template, {**context, **extra}, where))
                for key, extra in pairs]
    if "matrix" in body:
        matrix = resolve(body["matrix"], context, f"{where}, `matrix`")
        if not isinstance(matrix, dict) or not all(isinstance(v, list) for v in matrix.values()):
            raise PipelineError(f"{where}: `matrix` must be a table of lists")
        template = {k: v for k, v in body.items() if k != "matrix"}
        stages = []
        for combination in itertools.product(*(list(enumerate(v)) for v in matrix.values())):
            item = {k: v for k, (_, v) in zip(matrix, combination, strict=True)}
            key = "-".join(f"{k}{i}" if isinstance(v, dict | list) else _key(v)
                           for k, (i, v) in zip(matrix, combination, strict=True))
            stages.append((f"{name}{JOIN}{key}",
                           resolve(template, {**context, "item": item, "key": key}, where)))
        return stages
    return [(name, resolve(body, context, where))]
