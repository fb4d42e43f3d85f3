"""``dvlite exp``: run parameter variants as experiments, compare them, keep and share them.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import data, emit_json, message
from dvlite.errors import DvliteError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.cli.options import Options
    from dvlite.ops.exp_run import RunResult
    from dvlite.ops.exp_show import ShowTable
    from dvlite.ops.metrics import DiffRow
    from dvlite.ops.repro import StageReport

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Markdown = Annotated[bool, typer.Option("--md", help="Print a Markdown table.")]
Jobs = Annotated[int | None, typer.Option(
    "-j", "--jobs", help="How many at a time.", show_default=False, min=1)]
DvliteRemote = Annotated[str | None, typer.Option(
    "-r", "--remote", help="The dvlite remote for the data (default: `core.remote`).",
    show_default=False)]
Names = Annotated[list[str] | None, typer.Argument(
    help="Experiments (default: all).", show_default=False, metavar="NAME")]
GitRemote = Annotated[str, typer.Argument(help="The git remote for the refs (e.g. `origin`).",
                                          metavar="GIT_REMOTE")]


def register(app: typer.Typer) -> None:
    exp_app = typer.Typer(help="Run parameter variants as experiments; compare, keep and share "
                          "them.", no_args_is_help=True)
    for command in (run, show, diff, apply, branch, remove, push, pull):
        exp_app.command()(command)
    app.add_typer(exp_app, name="exp")


def run(
    ctx: typer.Context,
    set_param: Annotated[list[str] | None, typer.Option(
        "-S", "--set-param", metavar="[FILE:]KEY=VALUE[,VALUE...]", show_default=False,
        help="Set a param for the run (repeatable); comma-separated values make a grid.")]
    = None,
    name: Annotated[str | None, typer.Option(
        "-n", "--name", help="The experiment's name (default: made from the settings).",
        metavar="NAME", show_default=False)] = None,
    temp: Annotated[bool, typer.Option(
        "--temp", help="Run in a temporary worktree, leaving the workspace alone.")] = False,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Queue the run(s) for `--run-all` instead of running now.")] = False,
    run_all: Annotated[bool, typer.Option(
        "--run-all", help="Run every queued run, each in its own temporary worktree.")]
    = False,
    jobs: Jobs = None,
    force: Annotated[bool, typer.Option(
        "-f", "--force", help="Run every stage, even unchanged ones.")] = False,
    as_json: Json = False,
) -> None:
    """Run the pipeline with changed params and save the result as an experiment."""
    from dvlite.ops import exp_run  # noqa: PLC0415

    options = options_of(ctx)
    specs = set_param or []
    if run_all and specs and not queue:
        raise UsageError("`--run-all` runs the queue, and takes no `-S`",
                         hint="queue the settings first: `dvlite exp run --queue -S ...`")
    if jobs is not None and not run_all:
        raise UsageError("`-j` applies to `--run-all`")

    in_workspace = not (temp or queue or run_all)
    told: list[bool] = []

    def say(exp: str, report: StageReport) -> None:
        if in_workspace and not told:  # once the settings passed their checks
            told.append(True)
            message(options, "running in the workspace, as `dvlite repro` does: the "
                    "settings and results stay there (`--temp` leaves it alone)")
        if report.action != "skipped":
            why = f": {', '.join(report.reasons)}" if report.reasons else ""
            message(options, f"{exp}: {report.action} `{report.name}`{why}")

    with options.repo() as repo:
        if queue:
            for q in exp_run.queue(repo, specs, name=name):
                message(options, f"queued `{q.name}` ({', '.join(q.sets) or 'no settings'})")
            if not run_all:
                message(options, "run the queue with `dvlite exp run --run-all`")
                return
        if run_all:
            results = exp_run.run_all(repo, jobs=jobs or 1, force=force, notify=say,
                                      output_to_stderr=as_json)
        else:
            results = exp_run.run(repo, specs, name=name, temp=temp, force=force, notify=say,
                                  output_to_stderr=as_json)
    _report_runs(options, results, as_json=as_json)


def _report_runs(options: Options, results: list[RunResult], *, as_json: bool) -> None:
    if as_json:
        emit_json(results)
    for result in results:
        exp = result.experiment
        if exp.status == "failed":
            stage = f" in stage `{exp.failed_stage}`" if exp.failed_stage != "-" else ""
            message(options, f"`{exp.name}` failed{stage}: {exp.error}")
        else:
            message(options, f"saved `{exp.name}` as `{exp.ref}`")
    failed = [r.experiment.name for r in results if r.experiment.status == "failed"]
    if failed:
        raise DvliteError(f"{len(failed)} of {len(results)} experiment(s) failed: "
                          f"{', '.join(f'`{n}`' for n in failed)}",
                          hint="they are recorded as failed; see `dvlite exp show`")
    if not results:
        message(options, "the queue is empty")


def show(
    ctx: typer.Context,
    as_json: Json = False,
    as_md: Markdown = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    sort_by: Annotated[str | None, typer.Option(
        "--sort-by", help="Sort each baseline's experiments by this param or metric.",
        show_default=False, metavar="COLUMN")] = None,
    sort_order: Annotated[str, typer.Option(
        "--sort-order", help="`desc` (largest first) or `asc`.", metavar="ORDER")] = "desc",
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Show these params (glob; repeatable; default: those changed).",
        show_default=False, metavar="PATTERN")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Show these metrics (glob; repeatable; default: all).",
        show_default=False, metavar="PATTERN")] = None,
) -> None:
    """Show experiments by baseline: the params they changed and every metric."""
    from dvlite.ops import exp_show  # noqa: PLC0415

    if as_json + as_md + as_csv > 1:
        raise UsageError("choose one of `--json`, `--md` and `--csv`")
    if sort_order not in ("asc", "desc"):
        raise UsageError(f"`--sort-order {sort_order}`: give `asc` or `desc`")
    options = options_of(ctx)
    with options.repo() as repo:
        table = exp_show.show(repo, sort_by=sort_by, ascending=sort_order == "asc",
                              params=param or (), metrics=metric or ())
    if as_json:
        emit_json(table)
    else:
        _print_table(table, fmt="md" if as_md else "csv" if as_csv else "text")
    if table.queued:
        message(options, f"{table.queued} run(s) queued: `dvlite exp run --run-all`")
    elif not table.rows:
        message(options, "no experiments yet: `dvlite exp run -S KEY=VALUE` makes one")


def _print_table(table: ShowTable, *, fmt: str) -> None:
    header = ["experiment", "rev", "status", *table.params, *table.metrics]
    rows = [[r.name if r.kind == "baseline" or fmt != "text" else f"  {r.name}", r.rev[:7],
             r.status or "baseline", *(_cell(r.params.get(c)) for c in table.params),
             *(_cell(r.metrics.get(c)) for c in table.metrics)] for r in table.rows]
    if fmt == "text" and not table.rows:
        return
    if fmt == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows([header, *rows])
    elif fmt == "md":
        _markdown(header, rows)
    else:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            data("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    data("| " + " | ".join(header) + " |")
    data("|" + "---|" * len(header))
    for row in rows:
        data("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="An experiment.", metavar="A")],
    b: Annotated[str | None, typer.Argument(
        help="Another experiment or git revision (default: A's baseline, compared with A).",
        show_default=False, metavar="B")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show unchanged keys too.")] = False,
    as_json: Json = False,
    as_md: Markdown = False,
) -> None:
    """Compare the params and metrics of two experiments side by side."""
    from dvlite.ops import exp_show  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        result = exp_show.diff(repo, a, b, show_all=show_all)
    if as_json:
        emit_json(result)
        return
    header = ["kind", "path", "key", result.a, result.b, "change"]
    rows = [[kind, r.path, r.key, _cell(r.old), _cell(r.new), _change(r)]
            for kind, found in (("param", result.params), ("metric", result.metrics))
            for r in found]
    if as_md:
        _markdown(header, rows)
    else:
        for row in [header, *rows]:
            data("\t".join(row))


def _change(row: DiffRow) -> str:
    if row.delta is None:
        return "-"
    return f"+{row.delta}" if row.delta > 0 else str(row.delta)


def apply(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment.", metavar="NAME")],
    force: Annotated[bool, typer.Option(
        "-f", "--force", help="Overwrite workspace changes git has never stored.")] = False,
) -> None:
    """Bring an experiment's params, lock, metrics and outputs into the workspace."""
    from dvlite.ops import exp_share  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        result = exp_share.apply(repo, name, force=force)
    for path in result.files:
        message(options, f"applied {path}")
    if result.checkout.missing:
        raise DvliteError(
            f"applied `{result.experiment.name}`, but the cache lacks the data of "
            f"{', '.join(f'`{p}`' for p in result.checkout.missing)}",
            hint=f"fetch it with `dvlite exp pull GIT_REMOTE {result.experiment.name}`, then "
            "`dvlite checkout`")
    message(options, f"the workspace holds `{result.experiment.name}`; commit it with git to "
                     "keep it on your branch")


def branch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment.", metavar="NAME")],
    new_branch: Annotated[str, typer.Argument(help="The new branch.", metavar="BRANCH")],
) -> None:
    """Make a git branch of an experiment: its baseline plus the experiment's commit."""
    from dvlite.ops import exp_share  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        exp = exp_share.branch(repo, name, new_branch)
    message(options, f"branch `{new_branch}` is at `{exp.name}` ({exp.sha[:7]}); "
                     f"`git switch {new_branch}` to work on it")


def remove(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="Experiments or queued runs to remove.", show_default=False, metavar="NAME")]
    = None,
    all_but: Annotated[list[str] | None, typer.Option(
        "--all-but", help="Remove every experiment but this one (repeatable).",
        show_default=False, metavar="NAME")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Empty the queue.")] = False,
) -> None:
    """Remove experiments (their data stays in the cache until `dvlite gc`)."""
    from dvlite.ops import exp_share  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        result = exp_share.remove(repo, names or (), all_but=all_but or (), queue=queue)
    for exp in result.experiments:
        message(options, f"removed `{exp.name}`")
    for q in result.queued:
        message(options, f"removed queued `{q.name}`")


def push(ctx: typer.Context, git_remote: GitRemote, names: Names = None,
         remote: DvliteRemote = None, jobs: Jobs = None) -> None:
    """Share experiments: their data to the dvlite remote, then their refs to GIT_REMOTE."""
    _share(ctx, "push", git_remote, names or (), remote=remote, jobs=jobs)


def pull(ctx: typer.Context, git_remote: GitRemote, names: Names = None,
         remote: DvliteRemote = None, jobs: Jobs = None) -> None:
    """Get the experiments of GIT_REMOTE, and their data from the dvlite remote."""
    _share(ctx, "pull", git_remote, names or (), remote=remote, jobs=jobs)


def _share(ctx: typer.Context, verb: str, git_remote: str, names: Sequence[str], *,
           remote: str | None, jobs: int | None) -> None:
    from dvlite.ops import exp_share  # noqa: PLC0415

    options = options_of(ctx)
    share = exp_share.push if verb == "push" else exp_share.pull
    with options.repo() as repo:
        result = share(repo, git_remote, names, remote=remote, jobs=jobs)
    shared = ", ".join(f"`{e.name}`" for e in result.experiments) or "no experiments"
    moved = "sent" if verb == "push" else "fetched"
    message(options, f"{verb}ed {shared}; {moved} {result.data.transferred} object(s), "
                     f"{result.data.skipped} already there")
    if result.data.failed:
        raise DvliteError(f"{len(result.data.failed)} object(s) failed to transfer",
                          hint="run the command again")
