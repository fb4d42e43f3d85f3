"""The command line: parses arguments, calls ops, renders results. The only code that prints.

``main()`` is the one error boundary: a DvliteError becomes ``error: ...`` (and
``hint: ...``) with exit 1 (2 for bad usage), Ctrl-C exits 130, and anything
else is reported as unexpected, with the traceback under ``-v``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

# typer 0.29 ships its own copy of click; its exception classes live here.
from typer._click.exceptions import ClickException, UsageError

from dvlite.cli import admin, data, doctor, metrics, pipeline, sync
from dvlite.cli.options import Options
from dvlite.cli.output import error
from dvlite.errors import DvliteError

app = typer.Typer(
    name="dvlite",
    help="Version data and models alongside git.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion, --show-completion: see docs/commands.md
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    directory: Annotated[
        str, typer.Option("-C", help="Run as if started in this folder.", show_default=False)
    ] = "",
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="More detail, tracebacks.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Errors only.")] = False,
) -> None:
    options: Options = ctx.ensure_object(Options)
    options.cwd, options.verbose, options.quiet = directory, verbose, quiet


data.register(app)
sync.register(app)
admin.register(app)
pipeline.register(app)
metrics.register(app)
doctor.register(app)


_INTERRUPTED = 130
_ANYWHERE = frozenset({"-v", "--verbose", "-q", "--quiet"})
_OPTIONAL_VALUE = frozenset({"--remote"})  # `status --remote [NAME]`


def _normalize(argv: list[str]) -> list[str]:
    """Accept ``-v``/``-q`` after the command too (``dvlite add -q data``), as users type them,
    and give ``--remote`` its empty value when no name follows it."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a not in _ANYWHERE]
    for i, arg in enumerate(head):
        if arg in _OPTIONAL_VALUE and (i + 1 == len(head) or head[i + 1].startswith("-")):
            head[i] = arg + "="
    return [a for a in argv[:end] if a in _ANYWHERE] + head + argv[end:]


def main(argv: list[str] | None = None) -> None:
    options = Options()
    args = _normalize(sys.argv[1:] if argv is None else list(argv))

    def report(text: str, hint: str | None) -> None:
        error(text, hint, verbose=options.verbose, secrets=options.secrets)

    try:
        result = app(args=args, prog_name="dvlite", standalone_mode=False, obj=options)
    except UsageError as exc:
        if exc.format_message():  # empty when the help was shown for a bare `dvlite`
            command = exc.ctx.command_path if exc.ctx is not None else "dvlite"
            report(exc.format_message(), f"see `{command} -h`")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        sys.exit(_INTERRUPTED)
    except DvliteError as exc:
        report(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        report(exc.format_message(), None)
        sys.exit(exc.exit_code)
    except Exception as exc:
        report(f"unexpected: {type(exc).__name__}: {exc}",
               None if options.verbose else "rerun with -v for a traceback")
        sys.exit(1)
    if result == _INTERRUPTED:  # typer turns Ctrl-C inside a command into this exit code
        sys.stderr.write("error: interrupted\n")
    sys.exit(result if isinstance(result, int) else 0)
