"""``dvlite fsmonitor start|stop|status``: the file-system watcher that ``status`` asks.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import data, emit_json, message

if TYPE_CHECKING:
    from dvlite.cli.options import Options
    from dvlite.ops.fsmonitor import WatcherState

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
_ENABLE = "`dvlite status` asks it only with `core.fsmonitor` on: " \
    "`dvlite config core.fsmonitor true` (which also starts it when needed)"


def register(app: typer.Typer) -> None:
    fsmonitor_app = typer.Typer(
        help="The file-system watcher that lets `status` skip walking tracked folders "
        "(Linux, inotify).", no_args_is_help=True)
    fsmonitor_app.command("start")(start)
    fsmonitor_app.command("stop")(stop)
    fsmonitor_app.command("status")(status)
    app.add_typer(fsmonitor_app, name="fsmonitor")


def start(ctx: typer.Context) -> None:
    """Start the repo's watcher in the background (nothing if it runs)."""
    from dvlite.ops import fsmonitor as fsmonitor_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        found = fsmonitor_op.start(repo)
    message(options, f"the file-system watcher runs (pid {found.pid})")
    _note_disabled(options, found)


def stop(ctx: typer.Context) -> None:
    """Stop the repo's watcher; `status` walks again (and starts it again with
    `core.fsmonitor` on)."""
    from dvlite.ops import fsmonitor as fsmonitor_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        stopped = fsmonitor_op.stop(repo)
    message(options, "stopped the file-system watcher" if stopped
            else "no file-system watcher was running")


def status(ctx: typer.Context, as_json: Json = False) -> None:
    """Whether the watcher runs, and the tracked folders it watches."""
    from dvlite.ops import fsmonitor as fsmonitor_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        found = fsmonitor_op.state(repo)
    if as_json:
        emit_json(found)
        return
    if not found.running:
        data("not running")
    else:
        data(f"running (pid {found.pid}), {found.watches} folders watched")
        for path, how in sorted(found.folders.items()):
            data(f"  {path}: {how}")
    _note_disabled(options, found)


def _note_disabled(options: Options, found: WatcherState) -> None:
    if not found.enabled:
        message(options, _ENABLE)
