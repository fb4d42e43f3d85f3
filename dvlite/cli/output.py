"""All terminal output: data on stdout, messages on stderr, progress only on a terminal."""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, Task

    from dvlite.cli.options import Options


def data(text: str) -> None:
    """One line of data on stdout."""
    sys.stdout.write(text + "\n")


def emit_json(value: Any) -> None:
    json.dump(_plain(value), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_STYLES = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}


def color_allowed() -> bool:
    """False when ``NO_COLOR`` is set to anything but "" (https://no-color.org)."""
    return not os.environ.get("NO_COLOR")


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal, or ``FORCE_COLOR`` (set, not "" nor "0") says to act
    as if it were: for CI logs that render colour, and for tests."""
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def use_color(stream: TextIO) -> bool:
    return color_allowed() and is_terminal(stream)


def paint(text: str, *styles: str, color: bool) -> str:
    """``text`` in ANSI ``styles`` (names in ``_STYLES``) when ``color``, else as it is."""
    if not color or not styles:
        return text
    codes = ";".join(_STYLES[s] for s in styles)
    return f"\033[{codes}m{text}\033[0m"


def message(options: Options, text: str) -> None:
    """A note for the user on stderr, silenced by ``-q``."""
    if not options.quiet:
        sys.stderr.write(text + "\n")


def error(text: str, hint: str | None, *, verbose: bool, secrets: tuple[str, ...] = ()) -> None:
    """``error: text`` (and ``hint: ...``), after the traceback with ``verbose``. All of it is
    masked: a backend's own message, and the exceptions a traceback chains, may carry a URL
    with its password or a credential from the config (``secrets``)."""
    from dvlite.credentials import redact  # noqa: PLC0415  (`--help` prints no error)

    if verbose:
        sys.stderr.write(redact(traceback.format_exc(), secrets))
    sys.stderr.write(f"error: {redact(text, secrets)}\n")
    if hint:
        sys.stderr.write(f"\nhint: {redact(hint, secrets)}\n")


class Bar:
    """A progress bar on stderr when it is a terminal, else nothing; fits ``fsutil.Progress``.

    It shows the count done, the rate and the time left. ``set_size(n)`` means "n more to
    come": a command with several phases (a status over many paths, a fetch then a checkout)
    calls it once per phase, and the total grows instead of starting over.
    """

    def __init__(self, options: Options, label: str, *, unit: str = "files") -> None:
        self._progress: Progress | None = None
        if not options.quiet and sys.stderr.isatty():
            # rich is imported only here: a terminal is the only place it draws anything
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import Progress  # noqa: PLC0415

            console = Console(stderr=True, highlight=False, no_color=not color_allowed())
            self._progress = Progress(*_bar_columns(label, unit), console=console,
                                      transient=True)
            self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def set_size(self, size: int | None) -> None:
        if self._progress is not None:
            done = self._progress.tasks[0].completed
            self._progress.update(self._task, total=None if size is None else done + size)

    def relative_update(self, inc: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, inc)


def _bar_columns(label: str, unit: str) -> list[ProgressColumn]:
    """label, bar, done/total, rate (``12.5 files/s``), elapsed and time left."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text  # noqa: PLC0415

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} {unit}/s" if speed else f"? {unit}/s", style="cyan")

    return [TextColumn(label), BarColumn(), MofNCompleteColumn(), RateColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]


def size_text(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
