"""The root command: the typer app, its global options, and how ``--help`` looks."""

from __future__ import annotations

from typing import Annotated

import typer

from dvlite.cli import version_line
from dvlite.cli.group import HELP_OPTIONS, Group
from dvlite.cli.options import Options
from dvlite.cli.output import data


def new_app() -> typer.Typer:
    """The app without its commands: ``dvlite.cli.build_app`` registers those, and
    ``group.quick_command`` builds them only when used."""
    app = typer.Typer(
        name="dvlite",
        help="Version data and models alongside git.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Click's plain help, not rich's panels: rich would cost `--help` about 60 ms of
        # imports. Sub-apps (`remote`, `metrics`, ...) inherit the root's mode.
        rich_markup_mode=None,
        add_completion=True,  # --install-completion, --show-completion: see docs/commands.md
        context_settings={"help_option_names": HELP_OPTIONS},
        cls=Group,
    )
    app.callback()(_global_options)
    return app


def _show_version(value: bool) -> None:
    if value:
        data(version_line())
        raise typer.Exit


def _global_options(
    ctx: typer.Context,
    directory: Annotated[
        str, typer.Option("-C", help="Run as if started in this folder.", show_default=False)
    ] = "",
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="More detail, tracebacks.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Errors only.")] = False,
    _version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version, expose_value=False,
        help="Show dvlite's version and exit (`dvlite version` adds its dependencies').")]
    = False,
) -> None:
    options: Options = ctx.ensure_object(Options)
    options.cwd, options.verbose, options.quiet = directory, verbose, quiet
