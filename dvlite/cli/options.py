"""Global command-line options and opening the repo they point at."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from dvlite.repo import Repo


@dataclass
class Options:
    """Global flags, filled in by the app callback and read by every command."""

    cwd: str = ""
    verbose: bool = False
    quiet: bool = False
    secrets: tuple[str, ...] = ()  # credentials of the repo opened, masked in every error


    def path(self, target: str) -> str:
        """A command-line path as an absolute path (relative ones are from ``-C``)."""
        return os.path.abspath(os.path.join(self.cwd, os.path.expanduser(target)))

    def paths(self, targets: list[str] | None) -> list[str]:
        return [self.path(t) for t in targets or []]

    def repo(self, *, strict_config: bool = True) -> Repo:
        # here, not at the top: `--help` and `--version` open no repo
        from dvlite.credentials import secrets_in  # noqa: PLC0415
        from dvlite.repo import Repo  # noqa: PLC0415

        repo = Repo.discover(os.path.abspath(self.cwd), strict_config=strict_config)
        self.secrets = secrets_in(repo.config.values)
        if not self.quiet:
            repo.on_lock_wait = _say_waiting
        return repo


def _say_waiting() -> None:
    sys.stderr.write("waiting for another dvlite command in this repo, or on its cache, to "
                     "finish...\n")


def options_of(ctx: typer.Context) -> Options:
    options: Options = ctx.ensure_object(Options)
    return options
