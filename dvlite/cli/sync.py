"""Commands that talk to remotes: push fetch pull gc, and the `remote` group.

Each command imports the ops it calls in its body, so that `--help` loads none of them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.options import Options, options_of
from dvlite.cli.output import Bar, data, emit_json, message, size_text
from dvlite.errors import TransferError, UnsafeOperationError, UsageError

if TYPE_CHECKING:
    from dvlite.ops.gc import GcPlan
    from dvlite.ops.sync import Scope, SyncResult

Targets = Annotated[list[str] | None, typer.Argument(
    help="Tracked paths, or files inside tracked folders (default: all).", show_default=False,
    metavar="TARGET")]
Remote = Annotated[str | None, typer.Option("-r", "--remote", help="Remote name (default: "
                                            "`core.remote`).", show_default=False)]
Jobs = Annotated[int | None, typer.Option("-j", "--jobs", min=1, show_default=False,
                                          help="Parallel transfers (default: per backend).")]
Revs = Annotated[list[str] | None, typer.Option("--rev", help="Also this git revision.",
                                                show_default=False)]
AllBranches = Annotated[bool, typer.Option("--all-branches", help="Also every branch tip.")]
AllTags = Annotated[bool, typer.Option("--all-tags", help="Also every tag.")]
AllCommits = Annotated[bool, typer.Option("--all-commits",
                                          help="Also every commit of every branch and tag.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
RunCache = Annotated[bool, typer.Option(
    "--run-cache", help="Also every run-cache entry, with the outputs it names.")]
Local = Annotated[bool, typer.Option("--local", help="Write to config.local.toml (not in git).")]

remote_app = typer.Typer(help="Manage remotes.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    for command in (push, fetch, pull, gc):
        app.command()(command)
    app.add_typer(remote_app, name="remote")


def _scope(revs: list[str] | None, all_branches: bool, all_tags: bool,
           all_commits: bool) -> Scope:
    from dvlite.ops.sync import Scope  # noqa: PLC0415

    return Scope(revs=tuple(revs or ()), all_branches=all_branches, all_tags=all_tags,
                         all_commits=all_commits)


def push(ctx: typer.Context, targets: Targets = None, remote: Remote = None, jobs: Jobs = None,
         rev: Revs = None, all_branches: AllBranches = False, all_tags: AllTags = False,
         all_commits: AllCommits = False, run_cache: RunCache = False,
         as_json: Json = False) -> None:
    """Send the objects the remote lacks."""
    from dvlite.ops import sync as sync_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "pushing", unit="objects") as bar:
        result = sync_op.push(repo, options.paths(targets), remote=remote, jobs=jobs,
                              scope=_scope(rev, all_branches, all_tags, all_commits),
                              progress=bar, run_cache=run_cache)
    _report(ctx, result, as_json, "pushed")
    if result.not_in_cache:
        message(options, "not in the cache, so not pushed: "
                + ", ".join(f"`{p}`" for p in result.not_in_cache[:10]))


def fetch(ctx: typer.Context, targets: Targets = None, remote: Remote = None, jobs: Jobs = None,
          rev: Revs = None, all_branches: AllBranches = False, all_tags: AllTags = False,
          all_commits: AllCommits = False, run_cache: RunCache = False,
          as_json: Json = False) -> None:
    """Bring the objects the cache lacks, verifying every byte."""
    from dvlite.ops import sync as sync_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "fetching", unit="objects") as bar:
        result = sync_op.fetch(repo, options.paths(targets), remote=remote, jobs=jobs,
                               scope=_scope(rev, all_branches, all_tags, all_commits),
                               progress=bar, run_cache=run_cache)
    _report(ctx, result, as_json, "fetched")


def pull(ctx: typer.Context, targets: Targets = None, remote: Remote = None, jobs: Jobs = None,
         rev: Revs = None, all_branches: AllBranches = False, all_tags: AllTags = False,
         all_commits: AllCommits = False,
         force: Annotated[bool, typer.Option("--force", "-f",
                                             help="Overwrite uncached changes.")] = False,
         run_cache: RunCache = False, as_json: Json = False) -> None:
    """Fetch, then check out the workspace data."""
    from dvlite.ops import sync as sync_op  # noqa: PLC0415

    options = options_of(ctx)
    with options.repo() as repo, Bar(options, "pulling", unit="objects") as bar:
        fetched, checked_out = sync_op.pull(
            repo, options.paths(targets), remote=remote, jobs=jobs, force=force,
            scope=_scope(rev, all_branches, all_tags, all_commits), progress=bar,
            run_cache=run_cache)
    if as_json:
        emit_json({"fetch": fetched, "checkout": checked_out})
    else:
        message(options, f"fetched {fetched.transferred} objects; {len(checked_out.written)} "
                         f"files written, {len(checked_out.removed)} removed")
    _raise_failures(fetched)
    if checked_out.missing:
        raise TransferError(
            f"{len(checked_out.missing)} path(s) are neither on the remote nor in the cache: "
            + ", ".join(f"`{p}`" for p in checked_out.missing[:10]), {},
            hint="push them from a clone that has them",
        )


def _report(ctx: typer.Context, result: SyncResult, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(result)
    else:
        message(options_of(ctx), f"{result.transferred} {verb}, {result.skipped} already there, "
                                 f"{len(result.failed)} failed")
    _raise_failures(result)


def _raise_failures(result: SyncResult) -> None:
    if result.failed:
        oid, why = next(iter(result.failed.items()))
        raise TransferError(
            f"{len(result.failed)} object(s) failed to transfer; first {oid}: {why}",
            {str(oid): why for oid, why in result.failed.items()},
            hint="run the command again: it retries only what is missing",
        )


@remote_app.command("add")
def remote_add(ctx: typer.Context,
               name: Annotated[str, typer.Argument(help="A short name, e.g. storage.")],
               url: Annotated[str, typer.Argument(help="An fsspec URL or a folder.")],
               default: Annotated[bool, typer.Option("-d", "--default",
                                                     help="Make it the default.")] = False,
               local: Local = False,
               force: Annotated[bool, typer.Option("-f", "--force",
                                                   help="Replace one of that name.")] = False,
               ) -> None:
    """Add a remote."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    with options_of(ctx).repo(strict_config=False) as repo:
        init_op.remote_add(repo, name, url, default=default, force=force,
                           level="local" if local else "project")


@remote_app.command("list")
def remote_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List remotes (default marked with *)."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    with options_of(ctx).repo(strict_config=False) as repo:
        remotes = init_op.remote_list(repo)
    if as_json:
        emit_json(remotes)
        return
    for r in remotes:
        data(f"{'*' if r.default else ' '} {r.name}\t{r.url}")


@remote_app.command("remove")
def remote_remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a remote from every config file."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    with options_of(ctx).repo(strict_config=False) as repo:
        init_op.remote_remove(repo, name)


@remote_app.command("default")
def remote_default(ctx: typer.Context,
                   name: Annotated[str | None, typer.Argument()] = None,
                   local: Local = False,
                   unset: Annotated[bool, typer.Option("--unset")] = False) -> None:
    """Show or set the default remote."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    level = "local" if local else "project"
    with options_of(ctx).repo(strict_config=False) as repo:
        if unset:
            init_op.config_unset(repo, "core.remote", level=level)
        elif name is None:
            data(str(init_op.config_get(repo, "core.remote")[0]))
        else:
            init_op.remote_default(repo, name, level=level)


@remote_app.command("modify")
def remote_modify(ctx: typer.Context,
                  name: Annotated[str, typer.Argument()],
                  option: Annotated[str, typer.Argument(help="An fsspec option, or url.")],
                  value: Annotated[str | None, typer.Argument()] = None,
                  local: Local = False,
                  unset: Annotated[bool, typer.Option("--unset")] = False) -> None:
    """Set or unset one option of a remote."""
    from dvlite.ops import init as init_op  # noqa: PLC0415

    if (value is None) != unset:
        raise UsageError("give a VALUE, or --unset without one",
                         hint="`dvlite remote modify NAME OPTION VALUE`, or "
                         "`dvlite remote modify NAME OPTION --unset`")
    with options_of(ctx).repo(strict_config=False) as repo:
        init_op.remote_modify(repo, name, option, value, level="local" if local else "project")


def gc(
    ctx: typer.Context,
    workspace: Annotated[bool, typer.Option(
        "--workspace", "-w", help="Keep only what the workspace references.")] = False,
    rev: Annotated[list[str] | None, typer.Option(
        "--rev", help="Keep what this revision references too (repeatable).",
        show_default=False)] = None,
    all_branches: Annotated[bool, typer.Option(
        "--all-branches", help="Keep what every branch tip references too.")] = False,
    all_tags: Annotated[bool, typer.Option(
        "--all-tags", help="Keep what every tag references too.")] = False,
    cloud: Annotated[bool, typer.Option(
        "--cloud", "-c", help="Also delete unreferenced objects from the remote.")] = False,
    remote: Remote = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only list what would be deleted.")] = False,
    as_json: Json = False,
) -> None:
    """Delete objects that neither the workspace nor any commit of a branch or tag references
    (`--workspace`, `--rev`, `--all-branches`, `--all-tags`: keep less)."""
    from dvlite.ops import gc as gc_op  # noqa: PLC0415
    from dvlite.ops.sync import Scope  # noqa: PLC0415

    options = options_of(ctx)
    if remote is not None and not cloud:
        raise UsageError("`-r` names the remote for `--cloud`, which is not given",
                         hint="add `--cloud` to delete unreferenced objects from that remote too")
    narrowed = workspace or bool(rev) or all_branches or all_tags
    scope = (Scope(revs=tuple(rev or ()), all_branches=all_branches, all_tags=all_tags)
             if narrowed else gc_op.DEFAULT_SCOPE)
    result: gc_op.GcResult | None = None
    with options.repo() as repo:
        plan = gc_op.plan(repo, scope=scope, cloud=cloud, remote=remote)
        _summarise_gc(options, plan, listing=dry_run and not as_json)
        if not dry_run and not plan.empty:
            if not force:
                _confirm_gc(plan)
            with Bar(options, "deleting", unit="objects") as bar:
                result = gc_op.collect(repo, plan, progress=bar)
    if as_json:
        emit_json({"dry_run": dry_run, "plan": plan, "result": result})
    if result is not None:
        deleted = (f"deleted {result.cache_deleted} objects ({size_text(result.cache_size)}) "
                   f"and {result.temp_files_deleted} temp files from the cache")
        if plan.remote is not None:
            deleted += (f", {result.remote_deleted} objects ({size_text(result.remote_size)}) "
                        "from the remote")
        message(options, deleted)
        if result.kept:
            message(options, f"kept {len(result.kept)} objects referenced since the listing")


def _summarise_gc(options: Options, plan: GcPlan, *, listing: bool) -> None:
    """What gc found, on stderr; with ``listing``, every object it would delete on stdout."""
    commits = f" and {plan.revisions} commit(s)" if plan.revisions else ""
    message(options, f"{plan.referenced} objects referenced by the workspace{commits}")
    stores = [("cache", plan.cache)] + ([("remote", plan.remote)] if plan.remote else [])
    for label, store in stores:
        message(options, f"{store.name}: {len(store.unreferenced)} of {store.listed} objects "
                         f"unreferenced ({size_text(store.size)})")
        if listing:
            for oid, size in store.unreferenced.items():
                data(f"{label}\t{oid}\t{size}")
    remote = plan.remote
    if remote is not None and (remote.recipes or remote.packs or remote.stray_packs):
        message(options, f"and {len(remote.recipes)} chunk lists of unreferenced files, "
                         f"{len(remote.packs)} packs mostly dead (rewritten with their live "
                         f"objects, or dropped) and {len(remote.stray_packs)} packs left "
                         "without an index by an interrupted push")
    if plan.temp_files:
        message(options, f"{len(plan.temp_files)} temp files in the cache are older than an "
                         f"hour ({size_text(sum(plan.temp_files.values()))})")
        if listing:
            for path, size in plan.temp_files.items():
                data(f"tmp\t{path}\t{size}")
    if plan.empty:
        message(options, "nothing to delete")


def _confirm_gc(plan: GcPlan) -> None:
    """Ask before deleting; without a terminal to ask on, refuse (never hang on stdin)."""
    count = len(plan.cache.unreferenced) + len(plan.temp_files)
    if plan.remote is not None:
        count += (len(plan.remote.unreferenced) + len(plan.remote.recipes)
                  + len(plan.remote.stray_packs))
    hint = "rerun with `--force` to delete without asking, or `--dry-run` to list what it would"
    if sys.stdin is None or not sys.stdin.isatty():
        raise UnsafeOperationError(
            f"not deleting {count} unreferenced objects and files without confirmation, and "
            "stdin is not a terminal to ask on", hint=hint)
    if not _ask(f"delete the {count} object(s) and file(s) above?"):
        raise UnsafeOperationError("nothing deleted", hint=hint)


def _ask(question: str) -> bool:
    """A yes/no question on stderr (default no). Not ``typer.confirm``: it echoes the end of
    its prompt on stdout, which carries data only."""
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:  # end of input: nobody is there to say yes
        sys.stderr.write("\n")
        return False
    return answer.strip().lower() in ("y", "yes")
