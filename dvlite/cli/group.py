"""The click group behind `dvlite`, built to start quickly.

typer turns every command's signature into click parameters before it runs any of them
(tens of ms for dvlite's 40 commands), and gives every option value to a pydantic
TypeAdapter (importing pydantic and building adapters: about 100 ms). Run through
``quick_command``, the group converts a command only when it is run, asked for its help or
completed, lists the others from their docstrings, and hands the values dvlite's options
take (text, whole numbers in range, lists of text) to the command as click parsed them;
any other value still goes through typer's own coercion, so its checks and messages stay.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer.main
from typer._click import Command
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperCommand, TyperGroup, _TyperParameter
from typer.models import CommandInfo, TyperInfo

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter

_WHOLE = 1000  # characters: more than any first sentence


class Group(TyperGroup):
    """Lists each command with the whole first sentence of its help, as rich's panels did,
    where Click would cut it at the terminal's width."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands.keys())  # the names alone: building waits for use

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        commands = self.commands
        rows = []
        for name in self.list_commands(ctx):
            command = commands.summary(name) if isinstance(commands, _Commands) else \
                commands[name]
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_WHOLE)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def quick_command(app: typer.Typer, *, skeleton: typer.Typer) -> Group:
    """The click group of ``app``, whose commands are built on first use. ``skeleton`` is
    ``app`` before any command was registered: its callback and settings."""
    group = typer.main.get_command(skeleton)
    assert isinstance(group, Group), "the app is made with cls=Group"
    _plain_params(group)
    group.commands = _Commands(app)
    return group


class _Commands(MutableMapping[str, Command]):
    """name -> click command, in registration order; each is built the first time it is
    looked up."""

    def __init__(self, app: typer.Typer) -> None:
        self._app = app
        self._infos: dict[str, CommandInfo | TyperInfo] = {}
        for command in app.registered_commands:
            assert command.callback is not None
            name = command.name or typer.main.get_command_name(command.callback.__name__)
            self._infos[name] = command
        for sub in app.registered_groups:
            self._infos[str(typer.main.solve_typer_info_defaults(sub).name)] = sub
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            self._built[name] = self._build(self._infos[name])
        return self._built[name]

    def _build(self, info: CommandInfo | TyperInfo) -> Command:
        app = self._app
        command: Command
        if isinstance(info, CommandInfo):
            command = typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode)
        else:
            command = typer.main.get_group_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands)
        _plain_params(command)
        return command

    def summary(self, name: str) -> Command:
        """The command, or, until it is built, a stand-in with its help and nothing else."""
        if name in self._built:
            return self._built[name]
        info = self._infos[name]
        if isinstance(info, CommandInfo):
            help_text = info.help if info.help is not None else inspect.getdoc(info.callback)
            return TyperCommand(name, help=help_text, short_help=info.short_help,
                                hidden=info.hidden)
        solved = typer.main.solve_typer_info_defaults(info)
        return TyperCommand(name, help=solved.help, short_help=solved.short_help,
                            hidden=bool(solved.hidden))

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._infos.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._infos, *self._built]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._infos, *self._built]))


HELP_OPTIONS = ["-h", "--help"]
_PLAIN = (str, bool, int, list[str])


def _plain_params(command: Command) -> None:
    """Coerce with ``_Plain`` the parameters of ``command`` typed as one of ``_PLAIN``, and
    those of its subcommands (when built) and of its help option (which click makes on first
    use, then keeps)."""
    help_option = command.get_help_option(
        command.context_class(command, help_option_names=HELP_OPTIONS))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if isinstance(param, _TyperParameter) and param.type_descriptor.annotation in _PLAIN:
            param._runtime_param = _Plain(parameter_info=param.type_descriptor.parameter_info,
                                          annotation=param.type_descriptor.annotation)
    for sub in getattr(command, "commands", {}).values():
        _plain_params(sub)


@dataclass(frozen=True)
class _Plain(RuntimeParam):
    """A value as click parsed it when it already is what the command takes; anything else
    (a number out of range, not a number) goes to typer's coercion, for its error."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if self.annotation in (str, bool) and isinstance(value, self.annotation):
            return value
        if self.annotation is int and _is_number(value) and self._in_range(int(value)):
            return int(value)
        if self.annotation == list[str] and isinstance(value, list | tuple) and all(
                isinstance(item, str) for item in value):
            return list(value)
        typed = build_runtime_param(param.type_descriptor)
        return typed._coerce_value(value, param=param, ctx=ctx)

    def _in_range(self, number: int) -> bool:
        low, high = self.parameter_info.min, self.parameter_info.max
        return (low is None or number >= low) and (high is None or number <= high)


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool)
