"""``dvlite doctor``: the report on stdout, the problems it found on stderr (exit 1)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import typer

from dvlite.cli.options import options_of
from dvlite.cli.output import Bar, data, emit_json, message, size_text
from dvlite.errors import DvliteError

if TYPE_CHECKING:
    from dvlite.ops.doctor import Report

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(ctx: typer.Context, as_json: Json = False) -> None:
    """Check the set-up: versions, config per layer (secrets masked), which link types the
    cache's filesystem supports, the cache's size, and whether each remote answers."""
    from dvlite.ops import doctor as doctor_op  # noqa: PLC0415  (`--help` loads no ops)

    options = options_of(ctx)
    with Bar(options, "sizing the cache", unit="objects") as bar:
        report = doctor_op.doctor(os.path.abspath(options.cwd), os.environ, progress=bar)
    if as_json:
        emit_json(report)
    else:
        _print(report)
    if len(report.problems) > 1:
        for problem in report.problems:
            message(options, f"problem: {problem}")
    if report.problems:
        found = report.problems[0] if len(report.problems) == 1 else \
            f"{len(report.problems)} problems found, listed above"
        raise DvliteError(found, hint="`dvlite doctor --json` gives the whole report, for a "
                          "bug report")
    message(options, "no problems found")


def _print(report: Report) -> None:
    data("versions")
    width = max(len(name) for name in report.versions)
    for name, version in report.versions.items():
        data(f"  {name:<{width}}  {version}")
    data("config (each layer overrides the ones above it)")
    for layer in report.config:
        state = "" if layer.exists else "  (not set)" if layer.name == "environment" else \
            "  (no file)"
        data(f"  {layer.name:<11}  {layer.source}{state}")
        if layer.error:
            data(f"    error: {layer.error}")
        for key, value in layer.values.items():
            data(f"    {key} = {json.dumps(value, default=str)}")
    if report.cache is None:
        data("project: none here (run `dvlite init` in a git work tree)")
        return
    cache = report.cache
    data(f"cache {cache.path}")
    data(f"  objects  {cache.objects} ({size_text(cache.size)})")
    data("  links    " + ", ".join(
        f"{c.name} yes" if c.ok else f"{c.name} no ({c.detail})" for c in cache.links))
    data(f"  in use   {cache.used or 'none'} (cache.link = {', '.join(cache.configured)})")
    data("remotes" + ("" if report.remotes else "  (none; `dvlite remote add -d NAME URL`)"))
    width = max((len(r.name) for r in report.remotes), default=0)
    for remote in report.remotes:
        state = (f"reachable ({remote.seconds:.2f} s)" if remote.ok
                 else f"NOT reachable: {remote.detail}")
        data(f"  {remote.name:<{width}}  {remote.url}  {state}")
