"""``dvlite status``: runs the op and prints its lines on stdout.

The typer command and the direct path (``dvlite.cli.direct``, which runs a plain
``dvlite status`` without loading typer) both call ``show_status``.

Into a pipe or a file: one stable line per path, ``<state>:`` padded to 14
columns, which scripts may read (``--json`` is the format made for them). On a
terminal (or with ``FORCE_COLOR``): grouped as ``git status`` groups, each group
with the commands that deal with it, states coloured unless ``NO_COLOR`` is set.
The words are the same either way, so the output is honest without colour.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dvlite.cli.output import (
    Bar,
    data,
    emit_json,
    is_terminal,
    message,
    paint,
    size_text,
    use_color,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.cli.options import Options
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


def show_status(options: Options, targets: list[str] | None, *, remote: str | None = None,
                as_json: bool = False) -> bool:
    """Check ``targets`` (all tracked paths if none) and print what differs, and with a
    ``remote`` name (``""``: the default remote) what is not on it. Whether anything differs
    or is missing there (``--exit-code`` turns that into exit 1)."""
    from dvlite.ops import status as status_op  # noqa: PLC0415  (not for `status --help`)

    unpushed: list[RemoteStatusEntry] = []
    with options.repo() as repo, Bar(options, "checking") as bar:
        result = status_op.status(repo, options.paths(targets), progress=bar)
        if remote is not None:
            from dvlite.ops import sync as sync_op  # noqa: PLC0415  (only with a remote)

            unpushed = sync_op.remote_status(repo, options.paths(targets), remote=remote or None)
    if as_json:
        document: dict[str, object] = {"changed": result.entries, "checked": result.checked}
        if remote is not None:
            document["not_on_remote"] = unpushed
        emit_json(document)
    else:
        print_status(result, unpushed)
        if unpushed:
            size, to_send = (sum(e.size for e in unpushed), sum(e.to_send for e in unpushed))
            message(options, f"a push would send {size_text(to_send)} of the {size_text(size)} "
                    "not on the remote" + (": chunks it has, or that files share, go up once"
                                           if to_send < size else ""))
        if not result.entries and not unpushed:
            message(options, f"all {result.checked} tracked paths match their pointers"
                    + (" and are on the remote" if remote is not None else ""))
    if options.verbose:
        message(options, f"hashed {result.hashed_files} files ({size_text(result.hashed_bytes)})")
    return bool(result.entries or unpushed)


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
