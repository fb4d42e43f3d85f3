"""Commands that set up and look after a repo: init config fsck version install uninstall,
and the hidden `git-hook` and `git-merge-driver` that the installed git hooks and merge
drivers run.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli import git_hooks
from dvlite.cli.options import Options, options_of
from dvlite.cli.output import Bar, data, emit_json, message, size_text
from dvlite.errors import CorruptObjectError, UsageError

if TYPE_CHECKING:
    pass

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    for command in (init, config, fsck, version, install, uninstall):
        app.command()(command)
    app.command("git-hook", hidden=True)(git_hook)
    app.command("git-merge-driver", hidden=True)(git_merge_driver)


def init(
    ctx: typer.Context,
    template: Annotated[str | None, typer.Option(
        "--template", "-t", metavar="TEMPLATE", show_default=False,
        help="Also start a project from a template: `ml` (built in), a folder or a git URL. "
        "Runs `git init` first outside a git work tree; never overwrites a file.")] = None,
    as_json: Json = False,
) -> None:
    """Make `.dvlite/` in the current git work tree."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    options = options_of(ctx)
    if template is not None:
        _init_template(options, template, as_json=as_json)
        return
    if as_json:
        raise UsageError("`--json` applies only with `--template`",
                         hint="`dvlite init --template ml --json` lists the files it made")
    repo, created = init_op.init(os.path.abspath(options.cwd))
    with repo:
        if created:
            message(options, f"initialized dvlite in `{repo.dvlite_dir}`")
            message(options, "commit `.dvlite/config.toml` and `.dvlite/.gitignore` with git")
        else:
            message(options, f"dvlite is already initialized in `{repo.dvlite_dir}`")


def _init_template(options: Options, template: str, *, as_json: bool) -> None:
    from dvlite.ops import template as template_op  # noqa: PLC0415

    result = template_op.scaffold(os.path.abspath(options.cwd), template)
    if as_json:
        emit_json(result)
        return
    if result.git_initialized:
        message(options, f"initialized a git repository in `{result.root}`")
    message(options, f"created {len(result.files)} file(s) from template `{template}`")
    for path in result.added:
        message(options, f"added `{path}` -> `{path}.dvl`")
    message(options, "next: `dvlite repro` runs the pipeline; then `git add -A && git commit`; "
                     "`pre-commit install` (or `dvlite install`) sets up the git hooks")


def config(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A dotted key, e.g. cache.link.")],
    value: Annotated[str | None, typer.Argument(help="New value (omit to read).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Write to config.local.toml.")] = False,
    user: Annotated[bool, typer.Option("--user", help="Write to the user config.")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the key.")] = False,
) -> None:
    """Read or write a config value."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    options = options_of(ctx)
    if local and user:
        raise UsageError("choose one of --local and --user",
                         hint="`--local` writes this clone's `.dvlite/config.local.toml`, "
                         "`--user` the config every project of yours reads")
    level = "local" if local else "user" if user else "project"
    with options.repo(strict_config=False) as repo:  # a broken value must stay fixable
        if unset:
            if value is not None:
                raise UsageError("--unset takes no value", hint=f"`dvlite config --unset {key}`")
            init_op.config_unset(repo, key, level=level)
        elif value is None:
            current, _ = init_op.config_get(repo, key)
            data(_render(init_op.shown(key, current)))  # credentials are never printed
        else:
            init_op.config_set(repo, key, value, level=level)


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def fsck(
    ctx: typer.Context,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="[NAME]", show_default=False,
        help="Check this remote instead (the default one if no NAME): its objects, packs and "
        "chunk lists. Downloads everything it holds; changes nothing there.")] = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="With --remote: take the bad pieces off the remote, keeping every "
        "good object, so that a push from a clone with the data sends them again.")] = False,
    as_json: Json = False,
) -> None:
    """Verify every cached object against its oid; quarantine bad ones. Chunk lists kept in
    the cache that no longer match their file are removed (they are made again when needed)."""
    options = options_of(ctx)
    if remote is not None:
        _fsck_remote(options, remote or None, repair=repair, as_json=as_json)
        return
    from dvlite.ops import fsck as fsck_op  # noqa: PLC0415

    with options.repo() as repo, Bar(options, "verifying", unit="objects") as bar:
        result = fsck_op.fsck(repo, progress=bar)
    if as_json:
        emit_json(result)
    else:
        message(options, f"checked {result.checked} objects, {len(result.quarantined)} bad")
        if result.recipes_removed:
            message(options, f"removed {len(result.recipes_removed)} of "
                             f"{result.recipes_checked} chunk lists that no longer matched "
                             "their file (derived data: made again when needed)")
    if result.quarantined:
        oid, moved = result.quarantined[0]
        raise CorruptObjectError(
            f"{len(result.quarantined)} corrupt object(s) moved out of the cache, "
            f"first {oid} to `{moved}`",
            hint="`dvlite status` shows what lost its data; `dvlite add` it again from a copy",
        )


def _fsck_remote(options: Options, remote: str | None, *, repair: bool, as_json: bool) -> None:
    from dvlite.ops import fsck_remote as fsck_op  # noqa: PLC0415

    with options.repo() as repo, Bar(options, "verifying", unit="objects") as bar:
        result = fsck_op.fsck_remote(repo, remote, progress=bar)
        if repair and result.bad:
            fsck_op.repair(repo, result, remote)
    if as_json:
        emit_json(result)
    else:
        for bad in result.bad:
            data(f"bad: {bad}")
        message(options, f"checked {result.objects} objects, {result.packs} packs "
                         f"({result.packed} objects) and {result.recipes} chunk lists on "
                         f"{result.remote} ({size_text(result.bytes_checked)}), "
                         f"{len(result.bad)} bad")
    if result.bad and repair:
        message(options, f"took {len(result.bad)} bad piece(s) off {result.remote}; "
                         "`dvlite push` from a clone that has the data sends them again")
    elif result.bad:
        raise CorruptObjectError(
            f"{len(result.bad)} bad piece(s) on {result.remote}, first the {result.bad[0]}",
            hint="nothing was changed on the remote: `dvlite fsck --remote --repair` takes the "
            "bad pieces off it, then `dvlite push` from a clone that has the data",
        )


def version(as_json: Json = False) -> None:
    """Show the versions of dvlite and its main dependencies."""
    from dvlite.ops import doctor as doctor_op  # noqa: PLC0415

    versions = doctor_op.versions(optional=False)
    if as_json:
        emit_json(versions)
        return
    for name, ver in versions.items():
        data(f"{name} {ver}")


def install(ctx: typer.Context, as_json: Json = False) -> None:
    """Install git hooks (pre-commit, post-checkout, pre-push, post-merge) and merge drivers
    for `.dvl` files and `dvlite.lock`."""
    from dvlite.ops import hooks as hooks_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        result = hooks_op.install(repo, python=sys.executable)
    if as_json:
        emit_json(result)
        return
    for change in result.changes:
        message(options, f"{change.action} the {change.name} hook `{change.path}`")
        if change.chained:
            message(options, f"  the hook that was there runs first, from `{change.chained}`")
    for driver in result.drivers:
        message(options, f"{driver.action} the {driver.name} merge driver for `{driver.pattern}`")


def uninstall(ctx: typer.Context, as_json: Json = False) -> None:
    """Remove dvlite's git hooks and merge drivers, putting back the hooks they ran first."""
    from dvlite.ops import hooks as hooks_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        result = hooks_op.uninstall(repo)
    if as_json:
        emit_json(result)
        return
    for change in result.changes:
        if change.action == "not ours":
            message(options, f"left `{change.path}` alone: it is not dvlite's hook")
        elif change.action != "absent":
            message(options, f"{change.action} the {change.name} hook `{change.path}`")
    for driver in result.drivers:
        if driver.action == "not ours":
            message(options, f"left the {driver.name} merge driver alone: it is not dvlite's")
        elif driver.action != "absent":
            message(options, f"removed the {driver.name} merge driver for `{driver.pattern}`")


def git_hook(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The git hook to run: one that `dvlite install` "
                                        "sets up.")],
    args: Annotated[list[str] | None, typer.Argument(help="Git's arguments to the hook.")]
    = None,
) -> None:
    """Run one of dvlite's git hooks (the installed hook scripts call this)."""
    git_hooks.run_hook(options_of(ctx), name, args or [])


def git_merge_driver(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="What is merged: "
                                        + ", ".join(git_hooks.MERGE_HINTS))],
    base: Annotated[str, typer.Argument(help="The common ancestor's version (git's %O).")],
    ours: Annotated[str, typer.Argument(help="Our version, replaced by the result (%A).")],
    theirs: Annotated[str, typer.Argument(help="Their version (%B).")],
    path: Annotated[str, typer.Argument(help="The file's path in the work tree (%P).")],
) -> None:
    """Merge a `.dvl` pointer or `dvlite.lock` (the merge drivers `dvlite install` declares
    run this); exit 1, leaving both sides between conflict markers, when it cannot."""
    git_hooks.run_merge_driver(options_of(ctx), kind, base, ours, theirs, path)
