"""``dvlite checkout``: runs the op and says what it wrote.

The typer command and the direct path (``dvlite.cli.direct``, which runs a plain
``dvlite checkout`` without loading typer, as after a ``git checkout``) both call
``run_checkout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvlite.cli.output import Bar, emit_json, message
from dvlite.errors import MissingObjectError

if TYPE_CHECKING:
    from dvlite.cli.options import Options


def run_checkout(options: Options, targets: list[str] | None, *, force: bool = False,
                 as_json: bool = False) -> None:
    """Make ``targets`` (all tracked paths if none) match their pointers; a
    MissingObjectError naming the paths whose data the cache lacks."""
    from dvlite.ops import checkout as checkout_op  # noqa: PLC0415  (not for `checkout --help`)

    with options.repo() as repo, Bar(options, "checkout") as bar:
        result = checkout_op.checkout(repo, options.paths(targets), force=force, progress=bar)
    if as_json:
        emit_json(result)
    else:
        message(options, f"{len(result.written)} written, {len(result.removed)} removed, "
                         f"{result.unchanged} unchanged")
    if result.missing:
        raise MissingObjectError(
            f"{len(result.missing)} path(s) could not be checked out, their data is not in the "
            f"cache: " + ", ".join(f"`{p}`" for p in result.missing[:10]),
            hint="copy the data back into place and run `dvlite add` on it again",
        )
