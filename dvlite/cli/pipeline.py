"""Pipeline commands: repro dag, params diff, metrics show/diff."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import data, emit_json, message
from dvlite.ops import metrics as metrics_op
from dvlite.ops import repro as repro_op

if TYPE_CHECKING:
    from collections.abc import Sequence

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    for command in (repro, dag):
        app.command()(command)
    params_app = typer.Typer(help="Parameters the pipeline's stages use.", no_args_is_help=True)
    params_app.command("diff")(params_diff)
    app.add_typer(params_app, name="params")
    metrics_app = typer.Typer(help="Metrics the pipeline's stages write.", no_args_is_help=True)
    metrics_app.command("show")(metrics_show)
    metrics_app.command("diff")(metrics_diff)
    app.add_typer(metrics_app, name="metrics")


def repro(
    ctx: typer.Context,
    stages: Annotated[list[str] | None, typer.Argument(
        help="Stages to bring up to date, with their upstream stages (default: all).",
        show_default=False, metavar="STAGE")] = None,
    force: Annotated[bool, typer.Option("--force", "-f",
                                        help="Run the stages even when unchanged.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Say what would run and why; run nothing.")] = False,
    as_json: Json = False,
) -> None:
    """Run the pipeline stages whose cmd, deps, params or outs changed since `dvlite.lock`."""
    options = options_of(ctx)

    def say(report: repro_op.StageReport) -> None:
        if report.action == "skipped":
            message(options, f"skipped `{report.name}`: unchanged")
        else:
            verb = "running" if report.action == "ran" else "would run"
            message(options, f"{verb} `{report.name}`: {', '.join(report.reasons)}")

    with options.repo() as repo:
        result = repro_op.repro(repo, stages or (), force=force, dry_run=dry_run, notify=say,
                                   output_to_stderr=as_json)
    if as_json:
        emit_json(result)
    elif result.ran:
        message(options, "commit dvlite.lock (and the changed .gitignore files) with git")
    elif not dry_run:
        message(options, "everything is up to date")


def dag(ctx: typer.Context, as_json: Json = False) -> None:
    """Show the stages in the order they run, each with the stages it depends on."""
    options = options_of(ctx)
    with options.repo() as repo:
        nodes = repro_op.dag(repo)
    if as_json:
        emit_json(nodes)
        return
    for node in nodes:
        ups = f" <- {', '.join(node.upstream)}" if node.upstream else ""
        data(f"{node.name}{ups}")


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
) -> None:
    """Compare the stages' metrics at A (default HEAD) with B (default: the workspace)."""
    options = options_of(ctx)
    with options.repo() as repo:
        rows = metrics_op.metrics_diff(repo, a, b, show_all=show_all)
    _print_diff(rows, as_json=as_json, as_md=as_md)


def _print_diff(rows: list[metrics_op.DiffRow], *, as_json: bool, as_md: bool) -> None:
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
