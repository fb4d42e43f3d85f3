"""The commands run most often, run without loading typer.

``dvlite status`` is what users type most, ``dvlite checkout`` follows every ``git
checkout`` (unless the hooks do it), and git runs ``dvlite git-hook`` on every commit,
checkout and push (and ``dvlite git-merge-driver`` on merges). typer, with its own copy of
click, is 30 to 60 ms of imports: a tenth to a quarter of a ``status`` of 20,000 unchanged
files. So a command line that holds, after the global ``-v``, ``-q`` and ``-C DIR``, one of
these commands and plain arguments alone (none starting with ``-``) is run here, by the very
function the typer command calls. Anything else (an option, ``--help``, ``--``, a wrong
number of arguments) goes to typer, which parses and reports it as always.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from dvlite.cli.options import Options


def _status(options: Options, args: list[str]) -> None:
    from dvlite.cli.status_view import show_status  # noqa: PLC0415

    show_status(options, args)


def _checkout(options: Options, args: list[str]) -> None:
    from dvlite.cli.checkout_view import run_checkout  # noqa: PLC0415

    run_checkout(options, args)


def _git_hook(options: Options, args: list[str]) -> None:
    from dvlite.cli.git_hooks import run_hook  # noqa: PLC0415

    run_hook(options, args[0], args[1:])


def _git_merge_driver(options: Options, args: list[str]) -> None:
    from dvlite.cli.git_hooks import run_merge_driver  # noqa: PLC0415

    run_merge_driver(options, *args)


# command -> (how many plain arguments it takes: least, most or None; what runs it)
_COMMANDS: dict[str, tuple[int, int | None, Callable[[Options, list[str]], None]]] = {
    "status": (0, None, _status),
    "checkout": (0, None, _checkout),
    "git-hook": (1, None, _git_hook),
    "git-merge-driver": (5, 5, _git_merge_driver),
}
_FLAGS = {"-v": "verbose", "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet"}


def direct_command(args: list[str], options: Options) -> Callable[[], None] | None:
    """What runs ``args`` without typer, with the global flags set in ``options``; None
    when typer must parse them."""
    rest = list(args)
    flags: dict[str, bool] = {}
    cwd = ""
    while rest and rest[0] in _FLAGS:
        flags[_FLAGS[rest.pop(0)]] = True
    if rest[:1] == ["-C"] and len(rest) > 1:
        cwd, rest = rest[1], rest[2:]
    if not rest or rest[0] not in _COMMANDS or any(a.startswith("-") for a in rest[1:]):
        return None
    least, most, run = _COMMANDS[rest[0]]
    plain = rest[1:]
    if len(plain) < least or (most is not None and len(plain) > most):
        return None
    options.cwd = cwd
    options.verbose, options.quiet = flags.get("verbose", False), flags.get("quiet", False)
    return lambda: run(options, plain)
