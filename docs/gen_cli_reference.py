"""Write docs/reference/cli.md from the CLI itself, so the reference never drifts.

    python docs/gen_cli_reference.py           # rewrite docs/reference/cli.md
    python docs/gen_cli_reference.py --check   # exit 1 when the committed file is stale

Every command and subcommand of the typer app is rendered through click's
introspection (``typer.main.get_command``): usage, help text, arguments and
options with their defaults. Nothing here depends on the terminal, the
environment or the machine, so the output is the same everywhere.
"""

from __future__ import annotations

import enum
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "reference" / "cli.md"
REGENERATE = "python docs/gen_cli_reference.py"

_HEADER = f"""\
# CLI reference

<!-- Generated from the CLI by docs/gen_cli_reference.py: do not edit by hand.
     Regenerate with `{REGENERATE}`. -->

Every command, argument and option of `dvlite`, generated from the program
itself. What each command does in detail (its output, `--json` shapes, exit
codes and the safety rules it follows) is in [Commands](../commands.md).

Every command also takes `-h` / `--help`. `git dvlite ...` accepts exactly the
same commands and options as `dvlite ...`.
"""


def render() -> str:
    """The whole reference page, as Markdown."""
    import typer.main  # noqa: PLC0415  (the CLI is imported only when rendering)

    from dvlite.cli import app  # noqa: PLC0415

    root = typer.main.get_command(app)
    ctx_class = type(root).context_class
    root_ctx = ctx_class(root, info_name="dvlite")
    visible: list[tuple[Any, Any]] = []
    hidden: list[tuple[Any, Any]] = []
    for command, ctx in _walk(root, root_ctx):
        (hidden if command.hidden else visible).append((command, ctx))

    parts = [_HEADER, _index(visible, hidden)]
    parts += [_section(command, ctx) for command, ctx in visible]
    if hidden:
        parts.append(
            "## Commands git runs\n\n"
            "These are hidden from `dvlite -h`: the hook scripts and merge drivers that\n"
            "`dvlite install` writes call them (see [Git hooks](../hooks.md)).\n"
        )
        parts += [_section(command, ctx, level=3) for command, ctx in hidden]
    return "\n".join(parts).rstrip("\n") + "\n"


def _walk(command: Any, ctx: Any) -> typing.Iterator[tuple[Any, Any]]:
    """The command, then each subcommand in the order `-h` lists them, depth first."""
    yield command, ctx
    if not hasattr(command, "list_commands"):
        return
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None:
            yield from _walk(sub, type(sub).context_class(sub, info_name=name, parent=ctx))


def _index(visible: list[tuple[Any, Any]], hidden: list[tuple[Any, Any]]) -> str:
    rows = ["| command | what it does |", "| --- | --- |"]
    for command, ctx in visible[1:] + hidden:
        if hasattr(command, "list_commands"):
            continue  # a group: its subcommands are listed
        link = f"[`{ctx.command_path}`](#{_anchor(ctx.command_path)})"
        rows.append(f"| {link} | {_cell(_summary(command))} |")
    return "\n".join(rows) + "\n"


def _section(command: Any, ctx: Any, level: int = 2) -> str:
    lines = [f"{'#' * level} `{ctx.command_path}`", ""]
    text = _help(command)
    if text:
        lines += [_escape(text), ""]
    lines += ["```", f"{ctx.command_path} {_usage(command)}".rstrip(), "```", ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    if arguments:
        lines += ["**Arguments**", "", "| argument | required | description |",
                  "| --- | --- | --- |"]
        lines += [f"| `{_argument_name(p)}` | {'yes' if p.required else 'no'} "
                  f"| {_cell(_param_help(p))} |" for p in arguments]
        lines.append("")
    if options and any(_default(p) for p in options):
        lines += ["**Options**", "", "| option | default | description |", "| --- | --- | --- |"]
        lines += [
            f"| `{_option_name(p)}` | {_default(p)} | {_cell(_param_help(p))} |" for p in options
        ]
        lines.append("")
    elif options:
        lines += ["**Options**", "", "| option | description |", "| --- | --- |"]
        lines += [f"| `{_option_name(p)}` | {_cell(_param_help(p))} |" for p in options]
        lines.append("")
    if hasattr(command, "list_commands") and ctx.parent is not None:  # the top: see the index
        lines += ["**Commands**", "", "| command | what it does |", "| --- | --- |"]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            path = f"{ctx.command_path} {name}"
            lines.append(f"| [`{name}`](#{_anchor(path)}) | {_cell(_summary(sub))} |")
        lines.append("")
    return "\n".join(lines)


def _help(command: Any) -> str:
    """The command's help as click shows it: dedented, cut at ``\\f``, no ``\\b`` markers."""
    text = inspect.cleandoc(command.help or "").split("\f", 1)[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _summary(command: Any) -> str:
    """The first paragraph of the help, on one line."""
    if command.short_help:
        return str(command.short_help)
    return " ".join(_help(command).split("\n\n", 1)[0].split())


def _usage(command: Any) -> str:
    pieces = ["[OPTIONS]"]
    for param in command.params:
        if param.param_type_name != "argument" or getattr(param, "hidden", False):
            continue
        name = _argument_name(param)
        pieces.append(name if param.required else f"[{name.removesuffix('...')}]"
                      + ("..." if name.endswith("...") else ""))
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name).upper()
    return f"{name}..." if param.nargs == -1 else name


def _option_name(param: Any) -> str:
    """``-j, --jobs JOBS``: short spellings first, then long ones, then the value."""
    spellings = sorted(param.opts, key=lambda opt: (opt.startswith("--"), param.opts.index(opt)))
    text = ", ".join(spellings)
    if param.secondary_opts:
        text += " / " + ", ".join(param.secondary_opts)
    if not (param.is_flag or getattr(param, "count", False)):
        text += " " + str(param.metavar or param.name.upper())
    return text


def _param_help(param: Any) -> str:
    text = " ".join((param.help or "").split())
    if param.param_type_name == "option" and param.required:
        text = f"Required. {text}".strip()
    notes = []
    choices = _choices(param)
    if choices:
        notes.append("one of " + ", ".join(f"`{c}`" for c in choices))
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        notes.append(f"{low} to {high}")
    elif low is not None:
        notes.append(f"at least {low}")
    elif high is not None:
        notes.append(f"at most {high}")
    if param.param_type_name == "option" and param.multiple and "repeat" not in text.lower():
        notes.append("repeatable")
    if not notes:
        return text
    if not text:
        return "; ".join(notes).capitalize() + "."
    period = "." if text.endswith(".") else ""
    return f"{text.removesuffix('.')} ({'; '.join(notes)}){period}"


def _choices(param: Any) -> list[str]:
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices:
        return [str(c) for c in choices]
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    return []


def _default(param: Any) -> str:
    default = param.default
    if callable(default) or default is None or default in ("", (), []):
        return ""
    if param.is_flag:
        if param.secondary_opts:
            return f"`{(param.opts if default else param.secondary_opts)[-1]}`"
        return "" if default is False else "on"
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, list | tuple):
        return ", ".join(f"`{value}`" for value in default)
    return f"`{default}`"


def _anchor(command_path: str) -> str:
    return command_path.replace(" ", "-").lower()


def _cell(text: str) -> str:
    """One table cell: on one line, and ``|`` outside code spans escaped too."""
    return _escape(" ".join(text.split()), pipes=True)


def _escape(text: str, *, pipes: bool = False) -> str:
    """``<`` and ``>`` outside code spans, so Markdown does not take them for HTML."""
    pieces = text.split("`")
    for i in range(0, len(pieces), 2):
        pieces[i] = pieces[i].replace("<", "&lt;").replace(">", "&gt;")
        if pipes:
            pieces[i] = pieces[i].replace("|", "\\|")
    return "`".join(pieces)


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if OUTPUT.exists() and OUTPUT.read_text(encoding="utf-8") == text:
            return 0
        sys.stderr.write(f"{OUTPUT.relative_to(ROOT)} is out of date: run `{REGENERATE}`\n")
        return 1
    if argv:
        sys.stderr.write(f"usage: {REGENERATE} [--check]\n")
        return 2
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
