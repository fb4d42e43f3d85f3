"""Pipeline commands: repro (and --rev) and dag; params and metrics are in cli/metrics.py.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import data, emit_json, message
from dvlite.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.cli.options import Options
    from dvlite.ops.repro import StageReport

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
    single_item: Annotated[bool, typer.Option(
        "--single-item", "-s", help="Only the named stages, not their upstream stages.")] = False,
    no_run_cache: Annotated[bool, typer.Option(
        "--no-run-cache", help="Run stages even when the run cache holds a run with the same "
        "inputs.")] = False,
    as_json: Json = False,
    rev: Annotated[str | None, typer.Option(
        "--rev", help="Rebuild this git revision's pipeline in a temporary worktree and check "
        "every output against its lock (exit 1 when one differs).", show_default=False,
        metavar="REV")] = None,
    remote: Annotated[str | None, typer.Option(
        "-r", "--remote", help="With --rev: fetch data the cache lacks from this remote "
        "(default: `core.remote`).", show_default=False)] = None,
) -> None:
    """Run the pipeline stages whose cmd, deps, params or outs changed since `dvlite.lock`."""
    options = options_of(ctx)
    if rev is not None:
        if dry_run or single_item:
            flag = "--dry-run" if dry_run else "--single-item"
            raise UsageError(f"`--rev` and `{flag}` cannot be combined",
                             hint="`--rev` runs the stages named and every stage upstream of "
                             "them, since it restores no outputs")
        _repro_rev(options, rev, stages or (), remote=remote, as_json=as_json)
        return
    if remote is not None:
        raise UsageError("`--remote` applies only with `--rev`",
                         hint="`dvlite repro --rev REV -r NAME` fetches REV's data from NAME")

    from dvlite.ops import repro as repro_op  # noqa: PLC0415

    def say(report: StageReport) -> None:
        if report.action == "skipped":
            message(options, f"skipped `{report.name}`: unchanged")
        else:
            verb = "running" if report.action == "ran" else report.action
            cache = " from the run cache" if report.action in ("restored", "would restore") else ""
            message(options, f"{verb} `{report.name}`{cache}: {', '.join(report.reasons)}")

    with options.repo() as repo:
        result = repro_op.repro(repo, stages or (), force=force, dry_run=dry_run,
                                single_item=single_item, run_cache=not no_run_cache,
                                notify=say, output_to_stderr=as_json)
    if as_json:
        emit_json(result)
    elif result.ran or result.restored:
        message(options, "commit dvlite.lock (and the changed .gitignore files) with git")
    elif not dry_run:
        message(options, "everything is up to date")


def dag(
    ctx: typer.Context,
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz source.")] = False,
    mermaid: Annotated[bool, typer.Option("--mermaid",
                                          help="Print a Mermaid flowchart.")] = False,
    as_json: Json = False,
) -> None:
    """Show the stages in the order they run, each with the stages it depends on."""
    if dot + mermaid + as_json > 1:
        raise UsageError("choose one of `--dot`, `--mermaid` and `--json`",
                         hint="run `dvlite dag` once for each format")
    from dvlite.ops import repro as repro_op  # noqa: PLC0415
    from dvlite.pipeline import dag as dags  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        nodes = repro_op.dag(repo)
    if as_json:
        emit_json(nodes)
        return
    if dot or mermaid:
        draw = dags.to_dot if dot else dags.to_mermaid
        data(draw([(n.name, n.upstream) for n in nodes]).rstrip("\n"))
        return
    for node in nodes:
        ups = f" <- {', '.join(node.upstream)}" if node.upstream else ""
        data(f"{node.name}{ups}")


def _repro_rev(options: Options, rev: str, stages: Sequence[str], *, remote: str | None,
               as_json: bool) -> None:
    """`repro --rev`: one line per output of the rebuilt stages; exit 1 unless all match."""

    from dvlite.ops import rebuild as rebuild_op  # noqa: PLC0415

    def say(report: StageReport) -> None:
        message(options, f"rebuilding `{report.name}`")

    with options.repo() as repo:
        result = rebuild_op.rebuild(repo, rev, stages, remote=remote, notify=say,
                                    output_to_stderr=as_json)
    if as_json:
        emit_json(result)
    else:
        for check in result.outputs:
            both = f" {check.expected} -> {check.actual}" if check.status == "differs" else ""
            data(f"{check.status} {check.path}{both}")
    for stage, differences in result.environment.items():
        message(options, f"note: stage `{stage}` ran in another environment than the lock "
                         f"records: {', '.join(differences)}")
    bad = sum(1 for check in result.outputs if check.status != "matches")
    if bad:
        message(options, f"{bad} of {len(result.outputs)} output(s) do not match `{rev}`")
        raise typer.Exit(1)
    message(options, f"all {len(result.outputs)} output(s) match `{rev}` ({result.rev[:12]})")
