"""``dvlite params diff`` and ``dvlite metrics show/diff``: the pipeline's parameters and
metrics, in the workspace or at git revisions, and how they changed.

A revision is read through git (``dvlite.toml`` and the params and metrics files
as committed); ``None`` means the workspace files. A file missing on one side
shows its values as absent (``None``); a file that cannot be parsed is a
PipelineError naming the file and the revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvlite.errors import PipelineError
from dvlite.pipeline import stage as stages_mod
from dvlite.pipeline.params import find, parse_document

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvlite.pipeline.stage import Stage
    from dvlite.repo import Repo

WORKSPACE = "the workspace"


@dataclass(frozen=True)
class DiffRow:
    """One key of a params or metrics file; ``old``/``new`` are None where absent."""

    path: str
    key: str
    old: Any
    new: Any
    delta: int | float | None  # new - old, when both are numbers (not bools)


@dataclass(frozen=True)
class MetricRow:
    path: str
    key: str
    value: Any


def params_diff(
    repo: Repo, a: str | None = None, b: str | None = None, *, show_all: bool = False
) -> list[DiffRow]:
    """The stages' params at revision ``a`` (default HEAD) against ``b`` (default: the
    workspace); only changed keys unless ``show_all``."""
    side_a = _Side(repo, a or "HEAD")
    side_b = _Side(repo, b)
    refs = _param_refs(_union_stages(side_a, side_b))
    old, new = side_a.params(refs), side_b.params(refs)
    return _diff(old, new, show_all=show_all)


def metrics_show(repo: Repo, rev: str | None = None) -> list[MetricRow]:
    """Every stage's metrics (numeric, string and bool leaves, keys flattened with dots), in
    the workspace or at ``rev``; a metrics file that does not exist is skipped."""
    side = _Side(repo, rev)
    stages = side.stages()
    if stages is None:
        raise _no_pipeline(side)
    values = side.metrics(_metric_paths(stages.values()))
    return [MetricRow(path, key, value) for (path, key), value in sorted(values.items())]


def metrics_diff(
    repo: Repo, a: str | None = None, b: str | None = None, *, show_all: bool = False
) -> list[DiffRow]:
    """The stages' metrics at revision ``a`` (default HEAD) against ``b`` (default: the
    workspace); only changed keys unless ``show_all``."""
    side_a = _Side(repo, a or "HEAD")
    side_b = _Side(repo, b)
    paths = _metric_paths(_union_stages(side_a, side_b))
    return _diff(side_a.metrics(paths), side_b.metrics(paths), show_all=show_all)


class _Side:
    """The files of one side of a comparison: a git revision, or the workspace (None)."""

    def __init__(self, repo: Repo, rev: str | None) -> None:
        self.repo = repo
        self.rev = rev
        self.label = WORKSPACE if rev is None else f"revision `{rev}`"
        if rev is not None:
            self.sha: str | None = repo.git.resolve(rev)  # GitError for an unknown revision
        else:
            self.sha = None

    def read(self, path: str) -> bytes | None:
        if self.sha is not None:
            return self.repo.git.read_at(self.sha, path)
        try:
            with open(self.repo.abs(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def stages(self) -> dict[str, Stage] | None:
        raw = self.read(stages_mod.FILENAME)
        if raw is None:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(f"`{stages_mod.FILENAME}` at {self.label} is not UTF-8") from exc
        source = stages_mod.FILENAME if self.rev is None else f"{stages_mod.FILENAME}@{self.rev}"
        return stages_mod.parse_stages(text, source=source)

    def document(self, path: str, kind: str) -> dict[str, Any] | None:
        raw = self.read(path)
        if raw is None:
            return None
        return parse_document(raw, path, where=f"{kind} file `{path}` at {self.label}")

    def params(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        docs: dict[str, dict[str, Any] | None] = {}
        values: dict[tuple[str, str], Any] = {}
        for path, key in refs:
            if path not in docs:
                docs[path] = self.document(path, "params")
            doc = docs[path]
            found = find(doc, key, _MISSING) if doc is not None else _MISSING
            if isinstance(found, dict):
                values.update({(path, k): v for k, v in _flatten(found, key).items()})
            elif found is not _MISSING:
                values[(path, key)] = found
        return values

    def metrics(self, paths: Iterable[str]) -> dict[tuple[str, str], Any]:
        values: dict[tuple[str, str], Any] = {}
        for path in paths:
            doc = self.document(path, "metrics")
            if doc is None:
                continue
            for key, value in _flatten(doc, "").items():
                if isinstance(value, int | float | str):  # bool is an int
                    values[(path, key)] = value
        return values


def _no_pipeline(side: _Side) -> PipelineError:
    return PipelineError(
        f"no pipeline: `{stages_mod.FILENAME}` does not exist in {side.label}",
        hint=f"write the stages in `{stages_mod.FILENAME}` as [stages.<name>] tables",
    )


def _union_stages(*sides: _Side) -> list[Stage]:
    found = [side.stages() for side in sides]
    if all(s is None for s in found):
        raise _no_pipeline(sides[-1])
    return [stage for stages in found if stages is not None for stage in stages.values()]


def _param_refs(stages: Iterable[Stage]) -> list[tuple[str, str]]:
    refs: dict[tuple[str, str], None] = {}
    for stage in stages:
        for ref in stage.params:
            refs[(stage.in_repo(ref.file), ref.key)] = None
    return list(refs)


def _metric_paths(stages: Iterable[Stage]) -> list[str]:
    return list(dict.fromkeys(stage.in_repo(m) for stage in stages for m in stage.metrics))


def _diff(
    old: dict[tuple[str, str], Any], new: dict[tuple[str, str], Any], *, show_all: bool
) -> list[DiffRow]:
    rows = []
    for path, key in sorted(old.keys() | new.keys()):
        before, after = old.get((path, key)), new.get((path, key))
        same = (path, key) in old and (path, key) in new and _same(before, after)
        if same and not show_all:
            continue
        rows.append(DiffRow(path, key, before, after, _delta(before, after)))
    return rows


def is_change(row: DiffRow) -> bool:
    """Whether a row (of a ``show_all`` diff) differs between its sides; None is absence,
    since null values are left out."""
    return row.old is None or row.new is None or not _same(row.old, row.new)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _delta(old: Any, new: Any) -> int | float | None:
    if not (_is_number(old) and _is_number(new)):
        return None
    delta = new - old
    if isinstance(delta, float):
        delta = float(f"{delta:.12g}")  # 0.9 - 0.8 is 0.1, not 0.09999999999999998
    return delta  # type: ignore[no-any-return]


_MISSING = object()


def _flatten(node: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Nested tables as ``a.b.c`` keys; lists and scalars are leaves; nulls are left out."""
    flat: dict[str, Any] = {}
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            flat.update(_flatten(v, key))
        elif v is not None:
            flat[key] = v
    return flat
