"""Every failure dvlite reports on purpose is a DvliteError.

The CLI turns one into a single ``error: ...`` line (plus ``hint: ...`` when a
next step helps) and an exit code; anything else is a bug.

    DvliteError                 exit 1
    ├── UsageError              exit 2: the command line itself is wrong
    ├── NotARepoError           no .dvlite/ or no git work tree
    ├── ConfigError             a config file or value is invalid
    ├── PointerError            a .dvl pointer or manifest is malformed or escapes the repo
    ├── PathError               a path given by the user is missing, untracked or unsafe
    ├── UnsafeOperationError    would lose data that exists nowhere else; hint names --force
    ├── LockTimeoutError        another dvlite process holds the repo lock
    ├── DiskFullError           a write ran out of room (ENOSPC, EDQUOT) or over the file size limit
    ├── ObjectError
    │   ├── MissingObjectError  an object is not in the cache
    │   └── CorruptObjectError  stored bytes do not hash to their oid
    ├── RemoteError             a remote failed; ``retriable`` says whether trying again may help
    │   ├── RemoteAuthError     credentials missing or refused
    │   ├── RemoteUnavailableError  cannot reach it, it timed out, or it answered with a fault
    │   └── MissingDependencyError  the fsspec backend for its URL is not installed
    ├── TransferError           some objects failed to transfer; ``failed`` maps oid → reason
    ├── GitError                a git command or revision failed
    └── PipelineError           dvlite.toml, dvlite.lock or a params file is invalid
        ├── PipelineGraphError  stages form a cycle, share or overlap outs, or write a tracked path
        └── StageFailedError    a stage's command failed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class DvliteError(Exception):
    exit_code = 1
    # False when the exception this one was raised from must not be chained: its text holds
    # a credential (remote.py decides; the raise sites read it)
    show_cause = True

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DvliteError):
    exit_code = 2


class NotARepoError(DvliteError):
    pass


class ConfigError(DvliteError):
    pass


class PointerError(DvliteError):
    pass


class PathError(DvliteError):
    pass


class UnsafeOperationError(DvliteError):
    pass


class LockTimeoutError(DvliteError):
    pass


class DiskFullError(DvliteError):
    pass


class ObjectError(DvliteError):
    pass


class MissingObjectError(ObjectError):
    pass


class CorruptObjectError(ObjectError):
    pass


class RemoteError(DvliteError):
    retriable = False


class RemoteAuthError(RemoteError):
    pass


class RemoteUnavailableError(RemoteError):
    retriable = True


class MissingDependencyError(RemoteError):
    pass


class TransferError(DvliteError):
    def __init__(self, message: str, failed: Mapping[str, str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failed = dict(failed)


class GitError(DvliteError):
    pass


class PipelineError(DvliteError):
    pass


class PipelineGraphError(PipelineError):
    pass


class StageFailedError(PipelineError):
    pass
