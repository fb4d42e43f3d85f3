"""All terminal output: data on stdout, messages on stderr, progress only on a terminal."""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from dvlite.remote import redact

if TYPE_CHECKING:
    from rich.progress import Progress

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


def message(options: Options, text: str) -> None:
    """A note for the user on stderr, silenced by ``-q``."""
    if not options.quiet:
        sys.stderr.write(text + "\n")


def error(text: str, hint: str | None, *, verbose: bool) -> None:
    if verbose:  # a backend's own message may carry a URL with its password
        sys.stderr.write(redact(traceback.format_exc()))
    sys.stderr.write(f"error: {text}\n")
    if hint:
        sys.stderr.write(f"\nhint: {hint}\n")


class Bar:
    """A progress bar on stderr when it is a terminal, else nothing; fits ``fsutil.Progress``."""

    def __init__(self, options: Options, label: str) -> None:
        self._progress: Progress | None = None
        if not options.quiet and sys.stderr.isatty():
            # rich is imported only here: a terminal is the only place it draws anything
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            console = Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ)
            self._progress = Progress(
                TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            )
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
            self._progress.update(self._task, total=size)

    def relative_update(self, inc: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, inc)


def size_text(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
