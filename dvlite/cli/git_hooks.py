"""What git runs: the installed hooks' ``dvlite git-hook NAME ARGS`` and the merge drivers'
``dvlite git-merge-driver KIND BASE OURS THEIRS PATH``.

Git runs these on every commit, checkout, merge and push, so they take plain arguments and
``dvlite.cli.direct`` runs them without loading typer; ``cli/admin.py`` declares them for
typer (help, completion, usage errors).
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING

from dvlite.cli.output import Bar, message
from dvlite.errors import DvliteError, UsageError

if TYPE_CHECKING:
    from dvlite.cli.options import Options
    from dvlite.ops.hook_handlers import PushOutcome, WorkspaceSync

MERGE_HINTS = {
    "pointer": "keep one side with `git checkout --ours {path}` or `git checkout --theirs "
               "{path}`, then `dvlite checkout` and `git add {path}`",
    "lock": "keep one side with `git checkout --ours {path}` or `git checkout --theirs "
            "{path}`, then run `dvlite repro` and `git add {path}`",
}


def run_hook(options: Options, name: str, args: list[str]) -> None:
    """Run git's ``name`` hook with git's ``args``: check a commit, push a push's data, or
    check out the data of a checkout or merge."""
    from dvlite.ops import hook_handlers as handlers_op  # noqa: PLC0415
    from dvlite.ops import hooks as hooks_op  # noqa: PLC0415

    if name not in hooks_op.HOOKS:
        raise UsageError(f"unknown git hook `{name}`; dvlite has {', '.join(hooks_op.HOOKS)}")
    from_git = handlers_op.leave_git(os.environ)
    found = handlers_op.hook_repo(options.path("."), os.environ)
    if isinstance(found, str):
        if options.verbose:
            message(options, f"dvlite: {name} hook skipped: {found}")
        return
    with found as repo:
        if name == "pre-commit":
            index = from_git.get("GIT_INDEX_FILE")  # relative to the work tree top, if so
            handlers_op.check_commit(repo, index_file=options.path(index) if index else None)
        elif name == "pre-push":
            stdin = sys.stdin.read() if args else ""  # the framework keeps git's ref lines
            request = handlers_op.push_request(args, stdin, os.environ)
            with Bar(options, "pushing data", unit="objects") as bar:
                _pushed(options, handlers_op.push_commits(repo, request, progress=bar))
        elif handlers_op.wants_checkout(name, args, os.environ):
            with Bar(options, "checkout") as bar:
                _synced(options, handlers_op.sync_workspace(repo, progress=bar))


def run_merge_driver(options: Options, kind: str, base: str, ours: str, theirs: str,
                     path: str) -> None:
    """Merge git's three versions of a ``kind`` file into ``ours``; a DvliteError naming
    ``path`` when they conflict."""
    from dvlite.ops import hook_handlers as handlers_op  # noqa: PLC0415

    if kind not in MERGE_HINTS:
        raise UsageError(f"unknown merge driver `{kind}`; dvlite has {', '.join(MERGE_HINTS)}")
    handlers_op.leave_git(os.environ)
    base_data, ours_data, theirs_data = (_read(options.path(p)) for p in (base, ours, theirs))
    result = handlers_op.merge_file(kind, base_data, ours_data, theirs_data,
                                    start=options.path("."))
    with open(options.path(ours), "wb") as f:  # git's temporary file: it reads the result back
        f.write(result.data)
    if result.conflict is not None:
        raise DvliteError(f"cannot merge `{path}`: {result.conflict}",
                          hint=MERGE_HINTS[kind].format(path=shlex.quote(path)))
    if options.verbose:
        message(options, f"dvlite: merged `{path}` ({result.how})")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _pushed(options: Options, outcome: PushOutcome) -> None:
    synced = outcome.synced
    if synced is not None and synced.transferred:
        message(options, f"dvlite: sent {synced.transferred} object(s) of {outcome.commits} "
                         f"commit(s) to the dvlite remote ({synced.skipped} already there)")


def _synced(options: Options, outcome: WorkspaceSync) -> None:
    if outcome.written or outcome.removed:
        message(options, f"dvlite: data checked out: {len(outcome.written)} file(s) written, "
                         f"{len(outcome.removed)} removed")
    if outcome.missing:
        message(options, f"warning: dvlite: {len(outcome.missing)} path(s) have no data in the "
                         f"cache, e.g. `{outcome.missing[0]}`; `dvlite pull` brings them")
    if outcome.refused is not None:
        # git's checkout is done: a hook cannot stop it, only say what it left alone
        message(options, f"warning: dvlite: data not checked out: {outcome.refused.message}")
        if outcome.refused.hint:
            message(options, f"hint: {outcome.refused.hint}")
