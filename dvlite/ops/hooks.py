"""``dvlite install`` / ``uninstall``: the git hook scripts, and where they go.

Each hook is a small POSIX shell script that carries ``MARKER``, so dvlite
recognises its own scripts: ``install`` rewrites them in place and
``uninstall`` removes only them. A hook that was there before is moved aside to
``<name>.dvlite-chained`` and run first, with the same arguments and (pre-push)
the same standard input; ``uninstall`` puts it back. The script runs
``<python> -m dvlite git-hook NAME ARGS...`` with the interpreter that ran
``install``, so the hook finds that dvlite whatever the ``PATH`` of the program
that called git.

``install`` also declares git merge drivers for ``*.dvl`` pointers and
``dvlite.lock``: the command in the repo's own git config (``merge.<name>.driver``,
recognised by its ``git-merge-driver`` call), the files it merges in the work
tree's ``.gitattributes``; ``uninstall`` removes exactly those keys and lines.

What the hooks then do is in ``hook_handlers.py``; the merges, in ``merge.py``.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite.errors import UnsafeOperationError
from dvlite.fsutil import atomic_write
from dvlite.scm import plumbing

if TYPE_CHECKING:
    from dvlite.repo import Repo

HOOKS = ("pre-commit", "post-checkout", "pre-push", "post-merge")
MARKER = "# dvlite hook: written by `dvlite install`, removed by `dvlite uninstall`"
CHAINED = ".dvlite-chained"  # suffix of the user's own hook, kept beside ours
SKIP_VARIABLE = "DVLITE_SKIP_HOOKS"

# `-P`: a folder named `dvlite` in the work tree (where git runs hooks) must not shadow dvlite.
# `stdin=$(cat)` keeps git's ref lines so that both hooks can read them (pre-push only: any
# other hook reading its standard input would wait on a terminal). A pre- hook that refused
# ends the script; after a post- hook, git's work is done, so dvlite's runs regardless.
_SCRIPT = """\
#!/bin/sh
{marker}
# Runs the hook that was here before (kept as {chained}) first, then dvlite's
# handler with the Python that ran `dvlite install`. {skip}=1 skips dvlite's part.
python={python}
chained="$(dirname -- "$0")/{chained}"
status=0
{read_stdin}if [ -x "$chained" ]; then
    {feed}"$chained" "$@" || status=$?
{stop}fi
if [ "${{{skip}:-}}" = 1 ]; then exit "$status"; fi
if [ ! -x "$python" ]; then
    echo "error: dvlite's {name} hook cannot run: \\`$python\\` is missing;" \\
        "run \\`dvlite install\\` again with the dvlite you use now (or set {skip}=1 to skip)" >&2
    exit 1
fi
{feed}"$python" -P -m dvlite git-hook {name} "$@" || status=$?
exit "$status"
"""
_READ_STDIN = """\
stdin=$(cat)
feed() {{ if [ -n "$stdin" ]; then printf '%s\\n' "$stdin"; fi; }}
"""


def hook_script(name: str, python: str) -> str:
    """The script installed as git's ``name`` hook, running dvlite with ``python``."""
    pre_push = name == "pre-push"
    return _SCRIPT.format(
        marker=MARKER, name=name, chained=name + CHAINED, python=shlex.quote(python),
        skip=SKIP_VARIABLE, read_stdin=_READ_STDIN.format() if pre_push else "",
        feed="feed | " if pre_push else "",
        stop='    [ "$status" -eq 0 ] || exit "$status"\n' if name.startswith("pre-") else "",
    )


def is_ours(path: str) -> bool:
    """Whether the hook at ``path`` is a script ``dvlite install`` wrote."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:  # absent, a dangling link, a folder: not ours
        return False
    return MARKER.encode() in head


# --- install / uninstall ------------------------------------------------------------------

Action = Literal["installed", "updated", "removed", "restored", "not ours", "absent"]


@dataclass(frozen=True)
class HookChange:
    name: str
    path: str
    action: Action
    chained: str | None = None  # the user's own hook, run before ours (install) or put back


@dataclass(frozen=True)
class DriverChange:
    name: str  # git's name for the merge driver
    pattern: str  # the files it merges, as .gitattributes names them
    action: Action


@dataclass(frozen=True)
class HooksResult:
    hooks_dir: str
    changes: tuple[HookChange, ...]
    drivers: tuple[DriverChange, ...] = ()


def hooks_dir(repo: Repo) -> str:
    """The folder git runs hooks from: ``core.hooksPath`` if set; shared by all worktrees."""
    return plumbing.git_path(repo.root, "hooks")


def install(repo: Repo, *, python: str) -> HooksResult:
    """Install every dvlite hook, keeping (chaining) a hook that is already there, and
    declare the merge drivers."""
    folder = hooks_dir(repo)
    os.makedirs(folder, exist_ok=True)
    changes = tuple(_install_one(folder, name, python) for name in HOOKS)
    return HooksResult(folder, changes, install_drivers(repo.root, python=python))


def _install_one(folder: str, name: str, python: str) -> HookChange:
    path = os.path.join(folder, name)
    chained = path + CHAINED
    ours = is_ours(path)
    if os.path.lexists(path) and not ours:
        if os.path.lexists(chained):
            raise UnsafeOperationError(
                f"cannot install the {name} hook: both `{path}` and `{chained}` exist, and "
                "moving the first aside would overwrite the second",
                hint=f"merge them into `{chained}` by hand, then run `dvlite install` again",
            )
        os.replace(path, chained)
    atomic_write(path, hook_script(name, python).encode(), mode=0o755)
    return HookChange(name, path, "updated" if ours else "installed",
                      chained if os.path.lexists(chained) else None)


def uninstall(repo: Repo) -> HooksResult:
    """Remove dvlite's hooks, putting back the hooks they chained, and its merge drivers."""
    folder = hooks_dir(repo)
    changes = tuple(_uninstall_one(folder, name) for name in HOOKS)
    return HooksResult(folder, changes, uninstall_drivers(repo.root))


def _uninstall_one(folder: str, name: str) -> HookChange:
    path = os.path.join(folder, name)
    chained = path + CHAINED
    if os.path.lexists(path) and not is_ours(path):
        return HookChange(name, path, "not ours")  # replaced by someone else: leave it all
    if not os.path.lexists(path):
        return HookChange(name, path, "absent")
    os.unlink(path)
    if os.path.lexists(chained):
        os.replace(chained, path)
        return HookChange(name, path, "restored", path)
    return HookChange(name, path, "removed")


# --- merge drivers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeDriver:
    name: str  # merge.<name>.driver in git's config, merge=<name> in .gitattributes
    kind: str  # what `dvlite git-merge-driver KIND` merges
    pattern: str  # the files it merges
    description: str  # merge.<name>.name, which git shows

    @property
    def attribute(self) -> str:
        return f"{self.pattern} merge={self.name}"


DRIVERS = (
    MergeDriver("dvlite-pointer", "pointer", "*.dvl", "dvlite pointer (.dvl) merge driver"),
    MergeDriver("dvlite-lock", "lock", "dvlite.lock", "dvlite.lock merge driver"),
)
_DRIVER_CALL = " -m dvlite git-merge-driver "  # tells our driver command from another


def driver_command(kind: str, python: str) -> str:
    """git runs this through the shell, the placeholders replaced by quoted file names:
    %O base, %A ours (where the result goes), %B theirs, %P the path in the work tree."""
    return f"{shlex.quote(python)} -P{_DRIVER_CALL}{kind} %O %A %B %P"


def install_drivers(root: str, *, python: str) -> tuple[DriverChange, ...]:
    """Declare dvlite's merge drivers in the repo's git config and ``.gitattributes``."""
    changes = []
    for driver in DRIVERS:
        key = f"merge.{driver.name}.driver"
        ours = _DRIVER_CALL in (plumbing.config_get(root, key) or "")
        plumbing.config_set(root, key, driver_command(driver.kind, python))
        plumbing.config_set(root, f"merge.{driver.name}.name", driver.description)
        changes.append(DriverChange(driver.name, driver.pattern,
                                    "updated" if ours else "installed"))
    plumbing.edit_attributes(root, add=[d.attribute for d in DRIVERS])
    return tuple(changes)


def uninstall_drivers(root: str) -> tuple[DriverChange, ...]:
    """Remove dvlite's merge drivers: our config keys and ``.gitattributes`` lines only."""
    changes = []
    for driver in DRIVERS:
        key, name_key = f"merge.{driver.name}.driver", f"merge.{driver.name}.name"
        command = plumbing.config_get(root, key)
        if command is not None and _DRIVER_CALL not in command:
            changes.append(DriverChange(driver.name, driver.pattern, "not ours"))
            continue  # someone else's driver under our name: leave it and its attribute
        # a name without a command makes git stop every merge of those files: both go
        if command is not None or plumbing.config_get(root, name_key) == driver.description:
            plumbing.config_unset(root, name_key)
        if command is not None:
            plumbing.config_unset(root, key)
        dropped = plumbing.edit_attributes(root, remove=[driver.attribute])
        changes.append(DriverChange(driver.name, driver.pattern,
                                    "removed" if command is not None or dropped else "absent"))
    return tuple(changes)
