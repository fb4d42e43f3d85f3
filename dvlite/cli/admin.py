"""Commands that set up and look after a repo: init config fsck version."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from typing import Annotated

import typer

from dvlite import __version__
from dvlite.cli.options import options_of
from dvlite.cli.output import Bar, data, emit_json, message
from dvlite.errors import CorruptObjectError, UsageError
from dvlite.ops import fsck as fsck_op
from dvlite.ops import init as init_op
from dvlite.remote import is_secret

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    for command in (init, config, fsck, version):
        app.command()(command)


def init(ctx: typer.Context) -> None:
    """Make `.dvlite/` in the current git work tree."""
    options = options_of(ctx)
    repo, created = init_op.init(os.path.abspath(options.cwd))
    with repo:
        if created:
            message(options, f"initialized dvlite in `{repo.dvlite_dir}`")
            message(options, "commit `.dvlite/config.toml` and `.dvlite/.gitignore` with git")
        else:
            message(options, f"dvlite is already initialized in `{repo.dvlite_dir}`")


def config(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A dotted key, e.g. cache.link.")],
    value: Annotated[str | None, typer.Argument(help="New value (omit to read).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Write to config.local.toml.")] = False,
    user: Annotated[bool, typer.Option("--user", help="Write to the user config.")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the key.")] = False,
) -> None:
    """Read or write a config value."""
    options = options_of(ctx)
    if local and user:
        raise UsageError("choose one of --local and --user")
    level = "local" if local else "user" if user else "project"
    with options.repo(strict_config=False) as repo:  # a broken value must stay fixable
        if unset:
            if value is not None:
                raise UsageError("--unset takes no value")
            init_op.config_unset(repo, key, level=level)
        elif value is None:
            current, _ = init_op.config_get(repo, key)
            if key.startswith("remote.") and is_secret(key.rsplit(".", 1)[1]):
                current = "***"  # credentials are never printed
            data(_render(current))
        else:
            init_op.config_set(repo, key, value, level=level)


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def fsck(ctx: typer.Context, as_json: Json = False) -> None:
    """Verify every cached object against its oid; quarantine bad ones."""
    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "verifying") as bar:
        result = fsck_op.fsck(repo, progress=bar)
    if as_json:
        emit_json(result)
    else:
        message(options, f"checked {result.checked} objects, {len(result.quarantined)} bad")
    if result.quarantined:
        oid, moved = result.quarantined[0]
        raise CorruptObjectError(
            f"{len(result.quarantined)} corrupt object(s) moved out of the cache, "
            f"first {oid} to `{moved}`",
            hint="`dvlite status` shows what lost its data; `dvlite add` it again from a copy",
        )


def version(as_json: Json = False) -> None:
    """Show the versions of dvlite and its main dependencies."""
    versions = {"dvlite": __version__, "python": sys.version.split()[0]}
    for dist in ("typer", "gitpython", "fsspec", "xxhash", "tomli-w", "rich"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    if as_json:
        emit_json(versions)
        return
    for name, ver in versions.items():
        data(f"{name} {ver}")
