"""What the git hooks ``dvlite install`` writes do: ``dvlite git-hook NAME ARGS...``.

Every hook does nothing outside a dvlite project, during a rebase, or with
``DVLITE_SKIP_HOOKS=1``. pre-commit refuses a commit whose data was not added;
pre-push sends the data of the pushed commits to the default dvlite remote
first, or stops the push; post-checkout (of a branch) and post-merge bring the
workspace data in line with the pointers.

The merge drivers ``dvlite install`` declares run ``merge_file`` (the merges themselves are
in ``merge.py``).

Each handler takes git's arguments (and, for pre-push, git's ref lines on
standard input) or, with no arguments, the ``PRE_COMMIT_*`` variables the
pre-commit framework sets instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite import pointer as pointers
from dvlite import scm
from dvlite.errors import (
    ConfigError,
    DvliteError,
    MissingObjectError,
    NotARepoError,
    RemoteError,
    UnsafeOperationError,
    UsageError,
)
from dvlite.fsutil import NO_PROGRESS, Progress
from dvlite.ops import merge
from dvlite.ops.checkout import checkout
from dvlite.ops.hooks import SKIP_VARIABLE
from dvlite.ops.status import status
from dvlite.ops.sync import Scope, objects_needed, push, targets_in_scope
from dvlite.repo import Repo
from dvlite.scm import plumbing
from dvlite.storage.hashing import DEFAULT_ALGORITHM
from dvlite.workspace import Target, Tracked

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping, Sequence

    from dvlite.ops.merge import MergeResult
    from dvlite.ops.sync import SyncResult

_SKIP_HINT = f"or skip dvlite's hooks once with `{SKIP_VARIABLE}=1 git push`"
_SHOWN = 10  # paths named in a message before "and N more"


# --- what every hook does first -------------------------------------------------------------


def leave_git(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove from ``environ`` the variables git sets for a hook (``GIT_DIR``,
    ``GIT_INDEX_FILE``...): they would point dvlite's own git commands
    elsewhere. Returns what was removed."""
    kept = scm.clean_git_env(dict(environ))
    removed = {k: v for k, v in environ.items() if k not in kept}
    for key in removed:
        del environ[key]
    return removed


def hook_repo(start: str, env: Mapping[str, str]) -> Repo | str:
    """The dvlite repo a hook run in ``start`` acts on, or why it does nothing."""
    if env.get(SKIP_VARIABLE) == "1":
        return f"{SKIP_VARIABLE} is set"
    repo = project_repo(start)
    if repo is None:
        return "not in a dvlite project"
    rebasing = ("rebase-merge", "rebase-apply")
    if any(os.path.isdir(plumbing.git_path(repo.root, d)) for d in rebasing):
        repo.close()  # a rebase checks out and commits many times: data follows at its end
        return "a rebase is in progress"
    return repo


def project_repo(start: str, *, strict_config: bool = True) -> Repo | None:
    """The dvlite project whose git work tree has its top at or above ``start``, or None."""
    try:
        repo = Repo.discover(start, strict_config=strict_config)
    except NotARepoError:
        return None
    # a git repo nested in a dvlite project (a submodule) is not the project
    if scm.find_work_tree(start) != repo.root:
        repo.close()
        return None
    return repo


# --- merge drivers ----------------------------------------------------------------------------


def merge_file(kind: str, base: bytes, ours: bytes, theirs: bytes, *,
               start: str) -> MergeResult:
    """What dvlite's merge driver of ``kind`` (pointer, lock) makes of a file's three
    versions, run by git in ``start`` (the work tree top). In a dvlite project it reads
    oids with the project's hash and merges folders through its cache; elsewhere it keeps
    to the rules that need neither. Never skipped: git needs a result from a driver."""
    repo = project_repo(start, strict_config=False)  # a broken config value is no reason
    cache = repo.cache if repo is not None else None
    algorithm = cache.algorithm if cache is not None else DEFAULT_ALGORITHM
    try:
        if kind == "lock":
            return merge.merge_lock(base, ours, theirs, algorithm=algorithm)
        return merge.merge_pointer(base, ours, theirs, cache=cache, algorithm=algorithm)
    finally:
        if repo is not None:
            repo.close()


# --- pre-commit -------------------------------------------------------------------------------


def check_commit(repo: Repo, *, index_file: str | None = None) -> int:
    """Refuse a commit (raise) when tracked data changed in the workspace without ``dvlite
    add``/``commit``, or when a pointer it adds or changes has data the cache lacks.
    Returns how many tracked paths were checked."""
    result = status(repo)
    modified = [e.path for e in result.entries if e.state == "modified"]
    missing = _staged_without_data(repo, index_file)
    if modified:
        also = f"; and the data of {_listing(missing)} is not in the cache" if missing else ""
        raise UnsafeOperationError(
            f"commit refused: tracked data changed but was not added: {_listing(modified)}"
            + also,
            hint="record it with `dvlite add PATH` (or `dvlite commit`), undo it with "
            "`dvlite checkout --force PATH`, or commit anyway with `git commit --no-verify`",
        )
    if missing:
        raise MissingObjectError(
            f"commit refused: the data of staged pointer(s) is not in the cache: "
            f"{_listing(missing)}",
            hint="`dvlite fetch` it, or `dvlite add` it again from a copy",
        )
    return result.checked


def _staged_without_data(repo: Repo, index_file: str | None) -> list[str]:
    """Paths whose pointer the commit adds or changes and whose objects the cache lacks."""
    targets = []
    for pointer_file, data in plumbing.staged_files(repo.root, pointers.SUFFIX,
                                               index_file=index_file):
        ptr = pointers.decode(data, source=f"{pointer_file} (staged)",
                              algorithm=repo.cache.algorithm)
        path = pointers.data_path_for(pointer_file, ptr).replace(os.sep, "/")
        targets.append(Target(Tracked(pointer_file, path, ptr)))
    needed = objects_needed(repo, targets)
    absent = {needed.paths[oid] for oid in repo.cache.missing(needed.files)}
    return sorted(absent | set(needed.unreadable))


# --- pre-push ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushRequest:
    """What a ``git push`` sends, as far as dvlite cares."""

    remote: str | None  # git remote name or URL; None: unknown (compare with every remote)
    tips: tuple[str, ...]  # commits (or refs) being pushed
    known: tuple[str, ...]  # commits the git remote has already


@dataclass(frozen=True)
class PushOutcome:
    commits: int  # commits git sends that the git remote lacks
    synced: SyncResult | None  # None: they reference no data


def push_request(args: Sequence[str], stdin: str, env: Mapping[str, str]) -> PushRequest:
    """From git's ``pre-push REMOTE URL`` and its ref lines, or from the pre-commit
    framework's variables when there are no arguments."""
    if args:
        tips, known = [], []
        for line in stdin.splitlines():
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise UsageError(f"pre-push: unexpected line on standard input: {line!r}")
            _local_ref, local_sha, _remote_ref, remote_sha = fields
            if not _is_zero(local_sha):  # a zero local sha deletes the remote ref
                tips.append(local_sha)
            if not _is_zero(remote_sha):
                known.append(remote_sha)
        return PushRequest(args[0], tuple(tips), tuple(known))
    # pre-commit gives TO_REF/FROM_REF, or only LOCAL_BRANCH when the push starts at a root
    tip = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD"
    from_ref = env.get("PRE_COMMIT_FROM_REF")
    return PushRequest(env.get("PRE_COMMIT_REMOTE_NAME"), (tip,),
                       (from_ref,) if from_ref else ())


def _is_zero(sha: str) -> bool:
    return set(sha) == {"0"}


def push_commits(repo: Repo, request: PushRequest, *,
                 progress: Progress = NO_PROGRESS) -> PushOutcome:
    """Send to the default dvlite remote the data of the commits being pushed that the git
    remote lacks; raise (stopping the git push) when some of it cannot get there."""
    shas = plumbing.new_commits(repo.root, request.tips, exclude=request.known,
                           remote=request.remote)
    if not shas:
        return PushOutcome(0, None)
    scope = Scope(workspace=False, revs=tuple(shas))
    try:
        result = push(repo, scope=scope, progress=progress)
    except ConfigError as exc:  # no default remote, or it is not configured
        if not targets_in_scope(repo, (), scope):
            return PushOutcome(len(shas), None)  # nothing to send, so nowhere is needed
        hint = exc.hint or "fix the dvlite config"
        raise ConfigError(f"git push stopped: the pushed commits reference dvlite data, and "
                          f"{exc.message}", hint=f"{hint}; {_SKIP_HINT}") from exc
    except DvliteError as exc:
        raise RemoteError(f"git push stopped: the data of the pushed commits could not be "
                          f"sent: {exc.message}",
                          hint=f"fix that and push again, {_SKIP_HINT}") from exc
    if result.failed:
        oid, why = next(iter(result.failed.items()))
        raise RemoteError(
            f"git push stopped: {len(result.failed)} object(s) of the pushed commits could not "
            f"be sent to the dvlite remote; first {oid}: {why}",
            hint=f"push again (only what is missing is sent), {_SKIP_HINT}")
    if result.not_in_cache:
        _check_remote_has(repo, scope)
    return PushOutcome(len(shas), result)


def _check_remote_has(repo: Repo, scope: Scope) -> None:
    """Data this cache lacks could not be sent; the push goes on only if the remote has it."""
    chosen = targets_in_scope(repo, (), scope)
    needed = objects_needed(repo, chosen)
    lacking = repo.cache.missing(needed.files)
    check = set(lacking) | {m for m, files in needed.manifests.items() if files & lacking}
    check |= {t.tracked.pointer.oid for t in chosen if t.path in needed.unreadable}
    paths = {**{t.tracked.pointer.oid: t.path for t in chosen}, **needed.paths}
    store = repo.remote()
    absent = sorted({paths[oid] for oid in store.missing(check, jobs=store.jobs)})
    if absent:
        raise MissingObjectError(
            f"git push stopped: the data of {_listing(absent)} is neither in this cache nor "
            f"on {store.name}",
            hint=f"`dvlite add` or fetch it in a clone that has it and push from there, "
            f"{_SKIP_HINT}")


# --- post-checkout, post-merge ----------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceSync:
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # data not in the cache
    refused: DvliteError | None = None  # local edits a checkout would have overwritten


def wants_checkout(name: str, args: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether a post-checkout or post-merge should bring the data in line: after a merge,
    and after a checkout of a branch or commit (not of files) that moved HEAD."""
    if name == "post-merge":
        return True
    if args:
        if len(args) != 3:
            raise UsageError(f"post-checkout takes 3 arguments, got {len(args)}")
        prev, new, flag = args
    else:
        if "PRE_COMMIT_CHECKOUT_TYPE" not in env:  # pre-commit's post-merge, or a run by hand
            return True
        flag = env["PRE_COMMIT_CHECKOUT_TYPE"]
        prev, new = env.get("PRE_COMMIT_FROM_REF", ""), env.get("PRE_COMMIT_TO_REF", "")
    return flag == "1" and prev != new


def sync_workspace(repo: Repo, *, progress: Progress = NO_PROGRESS) -> WorkspaceSync:
    """Check out the data the new pointers record. Never forced: git's checkout is done and
    cannot be undone, so local edits that would be lost are reported, not overwritten."""
    try:
        result = checkout(repo, progress=progress)
    except UnsafeOperationError as exc:
        return WorkspaceSync(refused=exc)
    return WorkspaceSync(result.written, result.removed, result.missing)


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")
