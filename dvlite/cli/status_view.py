"""How ``dvlite status`` prints its lines on stdout.

Into a pipe or a file: one stable line per path, ``<state>:`` padded to 14
columns, which scripts may read (``--json`` is the format made for them). On a
terminal (or with ``FORCE_COLOR``): grouped as ``git status`` groups, each group
with the commands that deal with it, states coloured unless ``NO_COLOR`` is set.
The words are the same either way, so the output is honest without colour.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dvlite.cli.output import data, is_terminal, paint, use_color

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.ops.status import StatusEntry, StatusResult
    from dvlite.ops.sync import RemoteStatusEntry

# (title, what to do, states in the group, colour)
_GROUPS = (
    ("Changes not stored in the cache:",
     "`dvlite add`/`dvlite commit` to store them, `dvlite checkout` to bring back the recorded "
     "data (`--force` over edits)", ("modified", "deleted"), "red"),
    ("Data missing from the cache:",
     "`dvlite pull` to bring it from a remote, or `dvlite add` it again from a copy",
     ("not in cache",), "yellow"),
)
_REMOTE_GROUP = ("Not on the remote yet:", "`dvlite push` to send it", "cyan")


def print_status(result: StatusResult, unpushed: Sequence[RemoteStatusEntry]) -> None:
    if is_terminal(sys.stdout):
        _grouped(result.entries, unpushed, color=use_color(sys.stdout))
        return
    for entry in result.entries:
        data(f"{entry.state + ':':<14}{entry.path}{_detail(entry)}")
    for remote in unpushed:
        data(f"not on remote: {remote.path}  ({remote.missing} of {remote.total} objects)")


def _grouped(entries: Sequence[StatusEntry], unpushed: Sequence[RemoteStatusEntry], *,
             color: bool) -> None:
    blocks: list[tuple[str, str, str, list[tuple[str, str]]]] = []
    for title, todo, states, hue in _GROUPS:
        lines: list[tuple[str, str]] = [(e.state, e.path + _detail(e)) for e in entries
                                        if e.state in states]
        blocks.append((title, todo, hue, lines))
    title, todo, hue = _REMOTE_GROUP
    blocks.append((title, todo, hue, [
        ("not on remote", f"{r.path}  ({r.missing} of {r.total} objects)") for r in unpushed]))
    first = True
    for title, todo, hue, lines in blocks:
        if not lines:
            continue
        if not first:
            data("")
        first = False
        data(paint(title, "bold", color=color))
        data(paint(f"  ({todo})", "dim", color=color))
        for state, text in lines:
            data("        " + paint(f"{state + ':':<15}{text}", hue, color=color))


def _detail(entry: StatusEntry) -> str:
    counts = [f"{len(files)} {label}" for files, label in (
        (entry.added, "added"), (entry.modified, "modified"), (entry.deleted, "deleted"))
        if files]
    return f"  ({', '.join(counts)})" if counts else ""
