"""``dvlite metrics plot``: one metric's value at each of a series of commits, and the chart
of it written to a file (``ops/chart.py`` draws it).

The series is, by default, the first-parent history of HEAD, oldest first (the
commits a branch was built from); ``--all-commits`` takes every commit of every
branch and tag in date order, and ``--rev`` exactly the revisions named, in the
order given, so branches can be set side by side. Commits where the metric is
absent, not a number, or unreadable (no pipeline yet, a broken file) are skipped
and counted: an old commit must not stop the chart of the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import PipelineError, UsageError
from dvlite.fsutil import NO_PROGRESS, Progress, atomic_write
from dvlite.ops.metrics import metrics_show
from dvlite.scm import run_git

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.ops.chart import Datum
    from dvlite.repo import Repo

FORMATS = {".png": "png", ".html": "html", ".htm": "html", ".svg": "svg"}


@dataclass(frozen=True)
class Point:
    label: str  # the revision as named, or the short sha
    commit: str
    date: str  # committer date, ISO 8601
    subject: str  # first line of the commit message
    path: str  # the metrics file the value came from
    value: int | float


@dataclass(frozen=True)
class History:
    metric: str  # as asked: `key` or `file:key`
    points: tuple[Point, ...]
    skipped: int  # commits without a number for the metric


@dataclass(frozen=True)
class _Commit:
    label: str
    sha: str
    date: str
    subject: str


def history(repo: Repo, metric: str, revs: Sequence[str] = (), *, all_commits: bool = False,
            progress: Progress = NO_PROGRESS) -> History:
    """The value of ``metric`` (``key``, or ``file:key`` when several files have the key) at
    each commit of the series; raises PipelineError when no commit has it."""
    if revs and all_commits:
        raise UsageError("choose `--rev` or `--all-commits`, not both",
                         hint="`--rev` takes the revisions named, `--all-commits` every commit")
    file, _, key = metric.rpartition(":")
    commits = _commits(repo, revs, all_commits=all_commits)
    progress.set_size(len(commits))
    points: list[Point] = []
    for commit in commits:
        value = _value_at(repo, commit.sha, file or None, key)
        if value is not None:
            points.append(Point(commit.label, commit.sha, commit.date, commit.subject, *value))
        progress.relative_update(1)
    if not points:
        raise PipelineError(
            f"no commit of the {len(commits)} looked at has a number for metric `{metric}`",
            hint="list the metrics of a commit with `dvlite metrics show --rev REV`")
    return History(metric, tuple(points), len(commits) - len(points))


def format_of(path: str) -> str:
    """The chart format a file name asks for: png, html or svg."""
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise UsageError(f"cannot tell the chart format of `{path}` from its suffix",
                         hint="end it in .png, .html or .svg")
    return fmt


def write(hist: History, path: str) -> str:
    """Draw ``hist`` into ``path``, in the format its suffix names; returns the format."""
    from dvlite.ops import chart  # noqa: PLC0415  (only when a chart is drawn)

    fmt = format_of(path)
    if fmt == "png":
        content = chart.png(hist.metric, _series(hist))
    else:
        svg = chart.svg(hist.metric, _series(hist))
        text = chart.html(hist.metric, svg, _series(hist)) if fmt == "html" else svg + "\n"
        content = text.encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, content)
    return fmt


def _series(hist: History) -> list[Datum]:
    from dvlite.ops.chart import Datum  # noqa: PLC0415

    return [Datum(p.label, float(p.value), f"{p.commit[:12]} {p.date[:10]} {p.subject}")
            for p in hist.points]


def _commits(repo: Repo, revs: Sequence[str], *, all_commits: bool) -> list[_Commit]:
    fmt = "--format=%H%x1f%cI%x1f%s"
    if revs:
        found = []
        for rev in revs:
            sha = repo.git.resolve(rev)  # a GitError naming an unknown revision
            line = run_git("-C", repo.root, "log", "-1", fmt, sha, "--").strip()
            found.append(_Commit(rev, *line.split("\x1f", 2)))
        return found
    repo.git.resolve("HEAD")  # a GitError with its hint when there is no commit yet
    scope = ["--date-order", "--branches", "--tags", "HEAD"] if all_commits else [
        "--first-parent", "HEAD"]
    out = run_git("-C", repo.root, "log", "--reverse", fmt, *scope, "--")
    commits = []
    for line in out.splitlines():
        sha, date, subject = line.split("\x1f", 2)
        commits.append(_Commit(sha[:7], sha, date, subject))
    return commits


def _value_at(repo: Repo, sha: str, file: str | None,
              key: str) -> tuple[str, int | float] | None:
    try:
        rows = metrics_show(repo, sha)
    except PipelineError:  # no pipeline at that commit, or a file it cannot parse
        return None
    found = [r for r in rows if r.key == key and (file is None or r.path == file)
             and isinstance(r.value, int | float) and not isinstance(r.value, bool)]
    if len(found) > 1:
        paths = ", ".join(f"`{r.path}`" for r in found)
        raise UsageError(f"metric `{key}` is in several files at {sha[:12]}: {paths}",
                         hint=f"name one as FILE:KEY, e.g. `{found[0].path}:{key}`")
    return (found[0].path, found[0].value) if found else None
