"""Pipeline commands: repro dag."""

from __future__ import annotations

from typing import Annotated

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import data, emit_json, message
from dvlite.ops import repro as repro_op

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    for command in (repro, dag):
        app.command()(command)


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
