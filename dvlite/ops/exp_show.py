"""``dvlite exp show`` and ``exp diff``: experiments as a table of params and metrics, grouped
under their baselines, and two experiments (or one and its baseline) side by side.

Params and metrics are read from the commits through ``ops/metrics.py``, as ``params diff``
and ``metrics show`` read any revision. A column is named by its key, or ``file:key`` when
its file is not ``params.toml`` (params) or when two metrics files share the key.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dvlite.errors import UsageError
from dvlite.ops import exp_store
from dvlite.ops.metrics import DiffRow, metrics_diff, metrics_show, params_diff
from dvlite.pipeline.params import DEFAULT_FILE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.ops.exp_store import Experiment
    from dvlite.repo import Repo

Kind = Literal["baseline", "experiment"]


@dataclass(frozen=True)
class ShowRow:
    name: str  # the experiment's name; for a baseline, its branch or short sha
    kind: Kind
    rev: str  # commit sha
    baseline: str  # commit sha of the baseline (itself, for a baseline row)
    status: str  # "success" or "failed"; "" for a baseline
    params: dict[str, Any]  # column -> value
    metrics: dict[str, Any]
    ref: str | None = None
    error: str | None = None  # a failed experiment's stage and error


@dataclass(frozen=True)
class ShowTable:
    params: tuple[str, ...]  # columns shown, in order
    metrics: tuple[str, ...]
    rows: tuple[ShowRow, ...]
    queued: int  # runs waiting in the queue


def show(repo: Repo, *, sort_by: str | None = None, ascending: bool = False,
         params: Sequence[str] = (), metrics: Sequence[str] = ()) -> ShowTable:
    """Every experiment, grouped under its baseline (the group of HEAD first), each group
    sorted by ``sort_by`` (a column; best, i.e. largest, first unless ``ascending``).
    ``params``/``metrics``: glob patterns of the columns to show (default: the params some
    experiment changed, and every metric)."""
    groups: dict[str, list[_Ranked]] = {}
    for exp in exp_store.experiments(repo):
        groups.setdefault(exp.baseline, []).append(_row(repo, exp))
    head = repo.git.resolve("HEAD") if groups else ""
    order = sorted(groups, key=lambda b: (b != head, -max(r.rank for r in groups[b])))
    rows = [row.row for b in order for row in [_baseline_row(repo, b, head), *groups[b]]]
    changed = [c for c in _columns(rows, "params") if _varies(rows, c)]
    param_cols = _select(_columns(rows, "params"), params, "param") if params else changed
    metric_cols = _columns(rows, "metrics")
    metric_cols = _select(metric_cols, metrics, "metric") if metrics else metric_cols
    if sort_by is not None:
        column = _sort_column(sort_by, param_cols, metric_cols, rows)
        rows = [r for b in order for r in _sorted(rows, b, column, ascending)]
    return ShowTable(tuple(param_cols), tuple(metric_cols), tuple(rows),
                     len(exp_store.queued(repo)))


@dataclass(frozen=True)
class _Ranked:
    row: ShowRow
    rank: int  # creation time, to order groups by their newest experiment


def _row(repo: Repo, exp: Experiment) -> _Ranked:
    values = params_diff(repo, exp.baseline, exp.sha, show_all=True)
    params = {_param_column(r): r.new for r in values if r.new is not None}
    metrics = _metrics(repo, exp.sha) if exp.status == "success" else {}
    error = None
    if exp.status == "failed":
        error = exp.error if exp.failed_stage == "-" else f"stage `{exp.failed_stage}`: {exp.error}"
    return _Ranked(ShowRow(exp.name, "experiment", exp.sha, exp.baseline, exp.status, params,
                           metrics, exp.ref, error), exp.created)


def _baseline_row(repo: Repo, sha: str, head: str) -> _Ranked:
    values = params_diff(repo, sha, sha, show_all=True)
    params = {_param_column(r): r.old for r in values if r.old is not None}
    name = "HEAD" if sha == head else sha[:7]
    return _Ranked(ShowRow(name, "baseline", sha, sha, "", params, _metrics(repo, sha)), 0)


def _param_column(row: DiffRow) -> str:
    return row.key if row.path == DEFAULT_FILE else f"{row.path}:{row.key}"


def _metrics(repo: Repo, sha: str) -> dict[str, Any]:
    found = metrics_show(repo, sha)
    shared = {r.key for r in found if sum(o.key == r.key for o in found) > 1}
    return {f"{r.path}:{r.key}" if r.key in shared else r.key: r.value for r in found}


def _columns(rows: Sequence[ShowRow], kind: str) -> list[str]:
    return list(dict.fromkeys(c for r in rows for c in getattr(r, kind)))


def _varies(rows: Sequence[ShowRow], column: str) -> bool:
    base = {r.rev: r.params.get(column) for r in rows if r.kind == "baseline"}
    return any(r.params.get(column) != base[r.baseline] for r in rows if r.kind == "experiment")


def _select(columns: list[str], patterns: Sequence[str], what: str) -> list[str]:
    chosen = [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    if not chosen:
        raise UsageError(f"no {what} column matches {', '.join(f'`{p}`' for p in patterns)}",
                         hint=f"the {what}s are: {', '.join(columns) or 'none'}")
    return chosen


def _sort_column(name: str, params: list[str], metrics: list[str],
                 rows: Sequence[ShowRow]) -> tuple[str, str]:
    every = [("metrics", c) for c in _columns(rows, "metrics")] + [
        ("params", c) for c in _columns(rows, "params")]
    exact = [pair for pair in every if pair[1] == name]
    found = exact or [pair for pair in every if pair[1].endswith(("." + name, ":" + name))]
    if len(found) != 1:
        known = ", ".join(dict.fromkeys([*metrics, *params])) or "none"
        what = "no column" if not found else f"{len(found)} columns"
        raise UsageError(f"`--sort-by {name}`: {what} of that name",
                         hint=f"sort by one of: {known}")
    return found[0]


def _sorted(rows: Sequence[ShowRow], baseline: str, column: tuple[str, str],
            ascending: bool) -> list[ShowRow]:
    """``baseline``'s row, then its experiments by ``column``: numbers before other values,
    rows without a value last."""
    kind, key = column
    group = [r for r in rows if r.baseline == baseline and r.kind == "experiment"]

    def key_of(row: ShowRow) -> tuple[int, Any]:
        value = getattr(row, kind).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value if ascending else -value)
        return (2, 0) if value is None else (1, 0)

    head = [r for r in rows if r.rev == baseline and r.kind == "baseline"]
    return head + sorted(group, key=key_of)


@dataclass(frozen=True)
class ExpDiff:
    a: str  # what was compared: names or shas
    b: str
    params: tuple[DiffRow, ...]
    metrics: tuple[DiffRow, ...]


def diff(repo: Repo, a: str, b: str | None = None, *, show_all: bool = False) -> ExpDiff:
    """Params and metrics of experiment ``a`` (old) against ``b`` (new: another experiment or
    any git revision); without ``b``, ``a``'s baseline (old) against ``a`` (new)."""
    [exp_a] = exp_store.resolve(repo, [a])
    if b is None:
        old, new, labels = exp_a.baseline, exp_a.sha, (exp_a.baseline[:7], exp_a.name)
    else:
        known = any(b in (e.name, e.ref) for e in exp_store.experiments(repo))
        old, new = exp_a.sha, exp_store.resolve(repo, [b])[0].sha if known else b
        labels = (exp_a.name, b)
    return ExpDiff(*labels, tuple(params_diff(repo, old, new, show_all=show_all)),
                   tuple(metrics_diff(repo, old, new, show_all=show_all)))
