"""Commands that move a project over to dvlite: import-dvc, import-lfs. The ops are imported
inside the commands, so `dvlite --help` does not load them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import emit_json, message, size_text

if TYPE_CHECKING:
    from dvlite.cli.options import Options
    from dvlite.ops.migrate.common import ImportResult

Force = Annotated[bool, typer.Option("--force", help=(
    "Run on a git work tree with uncommitted changes, and replace pointers, dvlite.toml, "
    "dvlite.lock and config values that say otherwise."))]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only show what would be converted.")]
Json = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON document.")]


def register(app: typer.Typer) -> None:
    app.command("import-dvc")(import_dvc)
    app.command("import-lfs")(import_lfs)


def import_dvc(
    ctx: typer.Context,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="NAME", show_default=False,
        help="Carry over this DVC remote alone, as the default remote (default: all).")] = None,
    dry_run: DryRun = False,
    force: Force = False,
    remove_dvc: Annotated[bool, typer.Option(
        "--remove-dvc", help="Delete the .dvc files, dvc.yaml, dvc.lock and .dvc/config "
        "afterwards (DVC's cache stays).")] = False,
    as_json: Json = False,
) -> None:
    """Convert the DVC project here: pointers, pipeline, lock, remotes and the data."""
    from dvlite.credentials import secrets_in  # noqa: PLC0415
    from dvlite.ops.migrate.common import open_project  # noqa: PLC0415
    from dvlite.ops.migrate.dvc import import_dvc as run  # noqa: PLC0415

    options = options_of(ctx)
    with open_project(os.path.abspath(options.cwd)) as repo:
        options.secrets = secrets_in(repo.config.values)
        result = run(repo, remote=remote, dry_run=dry_run, force=force, remove_dvc=remove_dvc)
    _report(options, result, as_json)


def import_lfs(
    ctx: typer.Context,
    patterns: Annotated[list[str], typer.Argument(
        help="Patterns of files git-lfs tracks, as written in .gitattributes.",
        metavar="PATTERN")],
    dry_run: DryRun = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Move files from git-lfs to dvlite: pointers, cache, .gitignore, .gitattributes."""
    from dvlite.ops.migrate.common import open_project  # noqa: PLC0415
    from dvlite.ops.migrate.lfs import import_lfs as run  # noqa: PLC0415

    options = options_of(ctx)
    with open_project(os.path.abspath(options.cwd)) as repo:
        result = run(repo, patterns, force=force, dry_run=dry_run)
    _report(options, result, as_json)


def _report(options: Options, result: ImportResult, as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    say = "would convert" if result.dry_run else "converted"
    for c in result.converted:
        what = f"{c.files} files, " if c.files is not None else ""
        detail = f" ({what}{size_text(c.size)})" if c.size is not None else ""
        state = {"unchanged": "unchanged", "kept": "kept"}.get(c.action, say)
        message(options, f"{state} `{c.path}`{detail} from {c.source} -> `{c.pointer_file}`")
    for names, what, filename in ((result.stages, "stages", "dvlite.toml"),
                                  (result.locked, "stage locks", "dvlite.lock")):
        if names:
            done = say if result.dry_run or filename in result.written else "unchanged:"
            message(options, f"{done} {len(names)} {what} -> `{filename}`: " + ", ".join(names))
    if result.remotes:
        message(options, f"{say} remotes: {', '.join(result.remotes)}")
    for path in result.removed:
        message(options, f"{'would remove' if result.dry_run else 'removed'} `{path}`")
    for path in result.unindexed:
        message(options, f"out of git's index (the file stays): `{path}`")
    for item in result.not_converted:
        message(options, f"not converted: {item}")
    for warning in result.warnings:
        message(options, f"warning: {warning}")
    if not result.dry_run and result.converted:
        message(options, f"verified: {result.verified_objects} objects hash to their pointers")
    if not (result.dry_run or result.written or result.removed or result.unindexed) and (
        result.converted
    ):
        message(options, "nothing changed: the project is converted already")
    for step in result.next_steps:
        message(options, f"next: {step}")
