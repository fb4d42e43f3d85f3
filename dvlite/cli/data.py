"""Commands on tracked data: add checkout commit status diff ls unprotect.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.checkout_view import run_checkout
from dvlite.cli.options import options_of
from dvlite.cli.output import Bar, data, emit_json, message, size_text
from dvlite.cli.status_view import show_status
from dvlite.errors import NotARepoError

if TYPE_CHECKING:
    from dvlite.ops.add import StoreResult
    from dvlite.repo import Repo

Targets = Annotated[list[str] | None, typer.Argument(
    help="Tracked paths (default: all).", show_default=False, metavar="TARGET")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Jobs = Annotated[int | None, typer.Option("-j", "--jobs", min=1, help="Parallel file jobs.",
                                          show_default=False)]


def register(app: typer.Typer) -> None:
    for command in (add, status, diff, checkout, commit, unprotect, ls, get):
        app.command()(command)


def add(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files or folders to track.",
                                               metavar="PATH")],
    jobs: Jobs = None,
    as_json: Json = False,
) -> None:
    """Store files or folders in the cache and write a `.dvl` pointer for git."""
    from dvlite.ops import add as add_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "hashing") as bar:
        result = add_op.add(repo, options.paths(paths), jobs=jobs, progress=bar)
    _report_stored(ctx, result, as_json, verb="added")


def commit(ctx: typer.Context, targets: Targets = None, jobs: Jobs = None,
           as_json: Json = False) -> None:
    """Store the current content of tracked data and update its pointers (a stage output:
    its stage's entry in dvlite.lock)."""
    from dvlite.ops import add as add_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "hashing") as bar:
        result = add_op.commit(repo, options.paths(targets), jobs=jobs, progress=bar)
    _report_stored(ctx, result, as_json, verb="committed")


def _report_stored(ctx: typer.Context, result: StoreResult, as_json: bool,
                   verb: str) -> None:
    options = options_of(ctx)
    if as_json:
        emit_json(result)
        return
    for s in result.stored:
        what = f"{s.files} files, " if s.files is not None else ""
        state = verb if s.changed else "unchanged"
        message(options, f"{state} `{s.path}` ({what}{size_text(s.size)}) -> `{s.pointer_file}`")
    for stage in result.stages:
        message(options, f"recorded stage `{stage}` as it is now -> `dvlite.lock`")
    if options.verbose:
        message(options, f"hashed {result.hashed_files} files "
                         f"({size_text(result.hashed_bytes)})")
    if (any(s.changed for s in result.stored) or result.stages) and not result.staged:
        message(options, "commit the pointers (and dvlite.lock) with `git add` and `git commit`")


def status(
    ctx: typer.Context,
    targets: Targets = None,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="[NAME]", show_default=False,
        help="Also list what is not on this remote (the default one if no NAME), and how "
        "many bytes a push would send: of big files, only the chunks it lacks.")] = None,
    exit_code: Annotated[bool, typer.Option("--exit-code",
                                            help="Exit 1 when anything differs.")] = False,
    as_json: Json = False,
) -> None:
    """Show tracked data that differs from its pointers or is missing from the cache."""
    if show_status(options_of(ctx), targets, remote=remote, as_json=as_json) and exit_code:
        raise typer.Exit(1)


def diff(
    ctx: typer.Context,
    a: Annotated[str | None, typer.Argument(help="Old revision (default HEAD).")] = None,
    b: Annotated[str | None, typer.Argument(help="New revision (default: workspace).")] = None,
    exit_code: Annotated[bool, typer.Option("--exit-code",
                                            help="Exit 1 when anything differs.")] = False,
    as_json: Json = False,
) -> None:
    """Show data changes between two revisions, down to files inside folders."""
    from dvlite.ops import diff as diff_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "hashing") as bar:
        changes = diff_op.diff(repo, a, b, progress=bar)
    if as_json:
        emit_json(changes)
    else:
        for c in changes:
            data(f"{c.change + ':':<10}{c.path}")
        if not changes:
            message(options, "no data changes")
    if exit_code and changes:
        raise typer.Exit(1)


def checkout(
    ctx: typer.Context,
    targets: Targets = None,
    force: Annotated[bool, typer.Option("--force", "-f",
                                        help="Overwrite uncached changes.")] = False,
    as_json: Json = False,
) -> None:
    """Make workspace data match its pointers."""
    run_checkout(options_of(ctx), targets, force=force, as_json=as_json)


def unprotect(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Tracked files or folders.",
                                               metavar="PATH")],
    as_json: Json = False,
) -> None:
    """Turn linked workspace files into private, editable copies."""
    from dvlite.ops import checkout as checkout_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "checking") as bar:
        changed = checkout_op.unprotect(repo, options.paths(paths), progress=bar)
    if as_json:
        emit_json({"unprotected": changed})
    message(options, f"{len(changed)} file(s) made editable")


def ls(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="A tracked path or a folder.")] = None,
    rev: Annotated[str | None, typer.Option("--rev", help="A git revision.")] = None,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="[NAME]", show_default=False,
        help="Also say whether this remote (the default one if no NAME) has it.")] = None,
    as_json: Json = False,
) -> None:
    """List tracked data: path, size, oid, whether it is in the cache (and on a remote).
    `--json` adds, for a file whose chunk list is in the cache (a big file pushed or pulled),
    its `chunks` and `shared_bytes`: bytes in chunks that other such files use too."""
    from dvlite.ops import ls as ls_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo:
        rel = repo.rel(options.path(path)) if path is not None else ""
        entries = ls_op.ls(repo, rel, rev=rev, on_remote=remote is not None,
                           remote=remote or None, chunks=as_json)
    if as_json:
        emit_json(entries)
        return
    for e in entries:
        cached = "cached" if e.in_cache else "not-cached"
        where = "" if e.on_remote is None else "\ton-remote" if e.on_remote else "\tnot-on-remote"
        data(f"{e.path}\t{e.size}\t{e.oid}\t{cached}{where}")


def get(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A git repo: a path or a URL.", metavar="REPO")],
    path: Annotated[str, typer.Argument(
        help="A tracked path in it (or a file inside a tracked folder).", metavar="PATH")],
    rev: Annotated[str | None, typer.Option(
        "--rev", help="A branch, tag or commit of REPO (default: its HEAD).",
        show_default=False)] = None,
    out: Annotated[str | None, typer.Option(
        "-o", "--out", help="Where to write it (default: the last part of PATH, here).",
        show_default=False)] = None,
    remote: Annotated[str | None, typer.Option(
        "-r", "--remote", help="A remote of REPO (default: its default remote).",
        show_default=False)] = None,
    jobs: Jobs = None,
    force: Annotated[bool, typer.Option("--force", "-f",
                                        help="Replace OUT if it exists.")] = False,
    as_json: Json = False,
) -> None:
    """Download tracked data from any git repo, without cloning its data."""
    from dvlite.ops import get as get_op  # noqa: PLC0415

    options = options_of(ctx)
    if not get_op.is_url(source):
        source = options.path(source)
    target = options.path(out if out is not None else get_op.default_out(path))
    try:
        here: Repo | None = options.repo(strict_config=False)
    except NotARepoError:
        here = None
    try:
        with Bar(options, "downloading", unit="objects") as bar:
            result = get_op.get(source, path, target, rev=rev, remote=remote, into=here,
                                force=force, jobs=jobs, progress=bar)
    finally:
        if here is not None:
            here.close()
    if as_json:
        emit_json(result)
        return
    what = f"{result.files} files, " if result.kind == "dir" else ""
    message(options, f"got `{result.path}` ({what}{size_text(result.size)}) at "
                     f"{result.rev[:12]} -> `{result.out}` ({result.downloaded} objects "
                     f"downloaded, {result.cached} already cached)")
