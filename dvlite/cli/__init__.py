"""The command line: parses arguments, calls ops, renders results. The only code that prints.

``main()`` is the one error boundary: a DvliteError becomes ``error: ...`` (and
``hint: ...``) with exit 1 (2 for bad usage), Ctrl-C exits 130, and anything
else is reported as unexpected, with the traceback under ``-v``.

Start-up is kept cheap: this module imports neither typer nor any command, `dvlite
--version` is answered before typer is loaded, and each command module imports the ops
it calls inside its commands, so `dvlite --help` and `dvlite CMD --help` load no ops,
storage, remote or git code (tests/cli/test_startup.py holds that line).
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from dvlite import __version__

if TYPE_CHECKING:
    import typer

    from dvlite.cli.group import Group
    from dvlite.cli.options import Options


@functools.cache
def build_app() -> typer.Typer:
    """The app, with each command module adding its commands through ``register(app)``.

    A new command module: import it here, add its ``register(app)`` line, and keep its
    ops imports inside its commands."""
    from dvlite.cli import (  # noqa: PLC0415
        admin,
        data,
        doctor,
        exp,
        fsmonitor,
        metrics,
        migrate,
        pipeline,
        root,
        sync,
    )

    app = root.new_app()
    data.register(app)
    sync.register(app)
    admin.register(app)
    pipeline.register(app)
    metrics.register(app)
    doctor.register(app)
    migrate.register(app)
    exp.register(app)
    fsmonitor.register(app)
    return app


def _quick_command() -> Group:
    """The app as a click group that builds each command only when it is used."""
    from dvlite.cli.group import quick_command  # noqa: PLC0415
    from dvlite.cli.root import new_app  # noqa: PLC0415

    return quick_command(build_app(), skeleton=new_app())


def __getattr__(name: str) -> Any:
    """``from dvlite.cli import app`` (the docs generator, tests) builds the app on demand."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def version_line() -> str:
    """What `dvlite --version` prints: the first line of `dvlite version`."""
    return f"dvlite {__version__}"


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
    args = _normalize(sys.argv[1:] if argv is None else list(argv))
    if [a for a in args if a not in _ANYWHERE] == ["--version"]:
        sys.stdout.write(version_line() + "\n")  # before typer is even imported
        sys.exit(0)
    from dvlite.cli.direct import direct_command  # noqa: PLC0415
    from dvlite.cli.options import Options  # noqa: PLC0415
    from dvlite.cli.output import error  # noqa: PLC0415
    from dvlite.errors import DvliteError  # noqa: PLC0415

    options = Options()

    def report(text: str, hint: str | None) -> None:
        error(text, hint, verbose=options.verbose, secrets=options.secrets)

    try:
        direct = direct_command(args, options)
        result = direct() if direct is not None else _run_typer(args, options)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(_INTERRUPTED)
    except DvliteError as exc:
        report(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except Exception as exc:
        report(f"unexpected: {type(exc).__name__}: {exc}",
               None if options.verbose else "rerun with -v for a traceback")
        sys.exit(1)
    if result == _INTERRUPTED:  # typer turns Ctrl-C inside a command into this exit code
        sys.stderr.write("error: interrupted\n")
    sys.exit(result if isinstance(result, int) else 0)


def _run_typer(args: list[str], options: Options) -> Any:
    """Run ``args`` through typer's click group, with click's errors as dvlite's."""
    # typer and the commands load only now (typer 0.29 ships its own copy of click, whose
    # exception classes live here)
    import typer  # noqa: PLC0415
    from typer._click.exceptions import ClickException  # noqa: PLC0415
    from typer._click.exceptions import UsageError as ClickUsageError  # noqa: PLC0415

    from dvlite.errors import DvliteError, UsageError  # noqa: PLC0415

    try:
        return _quick_command().main(args=args, prog_name="dvlite", standalone_mode=False,
                                     obj=options)
    except ClickUsageError as exc:
        if not exc.format_message():  # the help was shown for a bare `dvlite`
            sys.exit(2)
        command = exc.ctx.command_path if exc.ctx is not None else "dvlite"
        raise UsageError(exc.format_message(), hint=f"see `{command} -h`") from exc
    except typer.Abort as exc:
        raise KeyboardInterrupt from exc
    except ClickException as exc:
        failure = DvliteError(exc.format_message())
        failure.exit_code = exc.exit_code
        raise failure from exc
