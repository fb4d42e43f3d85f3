"""Comparing runs: params diff, metrics show / diff (with --fail-if) / plot.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import Bar, data, emit_json, message
from dvlite.errors import DvliteError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.cli.options import Options
    from dvlite.ops.metrics import DiffRow
    from dvlite.ops.thresholds import Breach

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    params_app = typer.Typer(help="Parameters the pipeline's stages use.", no_args_is_help=True)
    params_app.command("diff")(params_diff)
    app.add_typer(params_app, name="params")
    metrics_app = typer.Typer(help="Metrics the pipeline's stages write.", no_args_is_help=True)
    metrics_app.command("show")(metrics_show)
    metrics_app.command("diff")(metrics_diff)
    metrics_app.command("plot")(metrics_plot)
    app.add_typer(metrics_app, name="metrics")


RevA = Annotated[str | None, typer.Argument(
    help="Old revision (default: HEAD).", show_default=False, metavar="A")]
RevB = Annotated[str | None, typer.Argument(
    help="New revision (default: the workspace files).", show_default=False, metavar="B")]
ShowAll = Annotated[bool, typer.Option("--all", help="Show unchanged keys too.")]
Markdown = Annotated[bool, typer.Option("--md", help="Print a Markdown table.")]
_DIFF_HEADER = ("path", "key", "old", "new", "change")


def params_diff(
    ctx: typer.Context, a: RevA = None, b: RevB = None, show_all: ShowAll = False,
    as_json: Json = False, as_md: Markdown = False,
) -> None:
    """Compare the stages' params at A (default HEAD) with B (default: the workspace)."""
    from dvlite.ops import metrics as metrics_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        rows = metrics_op.params_diff(repo, a, b, show_all=show_all)
    _print_diff(rows, as_json=as_json, as_md=as_md)


def metrics_show(
    ctx: typer.Context,
    rev: Annotated[str | None, typer.Option(
        "--rev", help="Read the metrics at this git revision (default: the workspace).",
        show_default=False)] = None,
    as_json: Json = False, as_md: Markdown = False,
) -> None:
    """Show every stage's metrics, in the workspace or at a revision."""
    from dvlite.ops import metrics as metrics_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        rows = metrics_op.metrics_show(repo, rev)
    if as_json:
        emit_json(rows)
        return
    _print_table(("path", "key", "value"), [(r.path, r.key, _cell(r.value)) for r in rows],
                 as_md=as_md)


def metrics_diff(
    ctx: typer.Context, a: RevA = None, b: RevB = None, show_all: ShowAll = False,
    as_json: Json = False, as_md: Markdown = False,
    fail_if: Annotated[list[str] | None, typer.Option(
        "--fail-if", metavar="RULE", show_default=False,
        help="Exit 1 when a metric breaks RULE: `acc < 0.9` (the value), `acc < -0.01` (the "
        "change), `loss > +5%` (the relative change). Repeatable.")] = None,
) -> None:
    """Compare the stages' metrics at A (default HEAD) with B (default: the workspace)."""
    from dvlite.ops import metrics as metrics_op  # noqa: PLC0415
    from dvlite.ops import thresholds  # noqa: PLC0415

    options = options_of(ctx)
    rules = [thresholds.parse_rule(text) for text in fail_if or ()]  # usage errors first
    with options.repo() as repo:
        every = metrics_op.metrics_diff(repo, a, b, show_all=True)
    breaches = thresholds.check(every, rules)  # a rule naming no metric: before any output
    rows = every if show_all else [r for r in every if metrics_op.is_change(r)]
    _print_diff(rows, as_json=as_json, as_md=as_md)
    if rules:
        _judge(options, breaches, len(rules))


def _judge(options: Options, breaches: list[Breach], rules: int) -> None:
    """The metrics that got worse, as a table on stderr, and exit 1; or a note that none did."""
    if not breaches:
        message(options, f"no metric crossed the {rules} `--fail-if` threshold(s)")
        return
    cells = [(b.path, b.key, _cell(b.old), _cell(b.new), _change(b.change), b.rule)
             for b in breaches]
    header = ("path", "key", "old", "new", "change", "rule")
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    # on stderr even with -q: the table is part of the error it comes with
    sys.stderr.write("metrics that got worse:\n")
    for row in [header, *cells]:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        sys.stderr.write(f"  {line.rstrip()}\n")
    names = list(dict.fromkeys(f"`{b.key}`" for b in breaches))
    raise DvliteError(f"{len(names)} metric(s) crossed a `--fail-if` threshold: "
                      f"{', '.join(names)}",
                      hint="`dvlite params diff` shows the parameters that changed with them")


def metrics_plot(
    ctx: typer.Context,
    metric: Annotated[str, typer.Argument(
        help="A metric key (`acc`, `loss.val`), or FILE:KEY when several files have it.",
        metavar="METRIC")],
    out: Annotated[str, typer.Option(
        "-o", "--out", metavar="FILE", show_default=False,
        help="The chart to write: .html or .svg (self-contained), or .png (needs "
        "`dvlite[plots]`).")],
    rev: Annotated[list[str] | None, typer.Option(
        "--rev", show_default=False, metavar="REV",
        help="Plot these revisions, in this order (repeatable; default: HEAD's history).")]
    = None,
    all_commits: Annotated[bool, typer.Option(
        "--all-commits", help="Every commit of every branch and tag, by date.")] = False,
    as_json: Json = False,
) -> None:
    """Draw how a metric moved across commits or branches, as a chart in FILE."""
    from dvlite.ops import plot as plot_op  # noqa: PLC0415

    options = options_of(ctx)
    plot_op.format_of(out)  # a usage error before any commit is read
    with options.repo() as repo, Bar(options, "reading commits", unit="commits") as bar:
        hist = plot_op.history(repo, metric, rev or (), all_commits=all_commits, progress=bar)
    fmt = plot_op.write(hist, options.path(out))
    if as_json:
        emit_json(hist)
    skipped = f" ({hist.skipped} without it skipped)" if hist.skipped else ""
    message(options, f"wrote `{out}`: {fmt.upper()} chart of `{metric}` at "
                     f"{len(hist.points)} revision(s){skipped}")


def _print_diff(rows: list[DiffRow], *, as_json: bool, as_md: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    cells = [(r.path, r.key, _cell(r.old), _cell(r.new), _change(r.delta)) for r in rows]
    _print_table(_DIFF_HEADER, cells, as_md=as_md)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, as_md: bool) -> None:
    if as_md:
        data("| " + " | ".join(h.capitalize() for h in header) + " |")
        data("|" + "---|" * len(header))
        for row in rows:
            data("| " + " | ".join(_md_escape(c) for c in row) + " |")
        return
    data("\t".join(header))
    for row in rows:
        data("\t".join(c.replace("\t", " ").replace("\n", " ") for c in row))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _change(delta: float | None) -> str:
    if delta is None:
        return "-"
    return f"+{delta}" if delta > 0 else str(delta)


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
