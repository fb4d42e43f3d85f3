"""The command line: parses arguments, calls ops, renders results. The only code that prints.

``main()`` is the one error boundary: a DvliteError becomes ``error: ...`` (and
``hint: ...``) with exit 1 (2 for bad usage), Ctrl-C exits 130, and anything
else is reported as unexpected, with the traceback under ``-v``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from dvlite.cli import admin, data
from dvlite.cli.options import Options
from dvlite.cli.output import error
from dvlite.errors import DvliteError

app = typer.Typer(
    name="dvlite",
    help="Version data and models alongside git.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    directory: Annotated[
        str, typer.Option("-C", help="Run as if started in this folder.", show_default=False)
    ] = "",
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="More detail, tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Errors only.")] = False,
) -> None:
    options: Options = ctx.ensure_object(Options)
    options.cwd, options.verbose, options.quiet = directory, verbose, quiet


data.register(app)
admin.register(app)


def main(argv: list[str] | None = None) -> None:
    options = Options()
    try:
        result = app(args=argv, prog_name="dvlite", standalone_mode=False, obj=options)
    except click.exceptions.UsageError as exc:
        exc.show(file=sys.stderr)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except DvliteError as exc:
        error(exc.message, exc.hint, verbose=options.verbose)
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        error(exc.format_message(), None, verbose=options.verbose)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001  (the boundary: report, never a bare traceback)
        error(f"unexpected: {type(exc).__name__}: {exc}",
              None if options.verbose else "rerun with -v for a traceback",
              verbose=options.verbose)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
