"""Layered configuration: user < project < local < environment < flags.

Known keys are validated against ``SCHEMA`` wherever they come from; a bad
value is a ConfigError naming the layer it came from. Sections such as
``remote.<name>`` hold free-form options for the storage backend.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvlite.errors import ConfigError
from dvlite.fsutil import read_toml, write_toml

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

LEVELS = ("user", "project", "local")
LOCAL_MODE = 0o600  # may hold credentials
_LINKS = ("reflink", "hardlink", "symlink", "copy")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0",
                                                     "off"):
        return value.lower() in ("true", "yes", "1", "on")
    raise ValueError("expected true or false")


def _positive_number(value: object) -> float:
    try:
        number = float(value) if isinstance(value, str | int | float) else -1.0
    except OverflowError:  # TOML reads any integer, and float() refuses one past 1e308
        raise ValueError("expected a positive number, and not that big") from None
    if isinstance(value, bool) or not number > 0:  # "not >" also refuses NaN
        raise ValueError("expected a positive number")
    return number


def _positive_int(value: object) -> int:
    number = _positive_number(value)
    if math.isinf(number) or number != int(number):
        raise ValueError("expected a whole number")
    return int(number)


def _byte_count(value: object) -> int:
    """A size in bytes: a whole number, 0 or more (0 turns the feature off)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a whole number of bytes, 0 or more")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a whole number of bytes, 0 or more") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise ValueError("expected a whole number of bytes, 0 or more")
    return int(number)


def _hash_name(value: object) -> str:
    if value not in ("xxh128", "sha256"):
        raise ValueError("expected xxh128 or sha256")
    return str(value)


def _link_list(value: object) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"expected a non-empty list of {', '.join(_LINKS)}")
    names = tuple(str(i).strip() for i in items)
    bad = [n for n in names if n not in _LINKS]
    if bad:
        raise ValueError(f"unknown link type {bad[0]!r}; choose from {', '.join(_LINKS)}")
    return names


def _string(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


# key → (parser, default)
SCHEMA: dict[str, tuple[Callable[[object], Any], Any]] = {
    "core.autostage": (_bool, False),
    "core.hash": (_hash_name, "xxh128"),
    "core.lock_timeout": (_positive_number, 30.0),
    "core.jobs": (_positive_int, None),
    # status asks a file-system watcher what changed (and starts one): docs/fsmonitor.md
    "core.fsmonitor": (_bool, False),
    "core.remote": (_string, None),
    # files from this size go to remotes as chunks (content-defined); 0: whole files only
    "core.chunk_min_size": (_byte_count, 8 << 20),
    # small objects go to remotes in packs of about this many bytes; 0: one by one
    "core.pack_size": (_byte_count, 32 << 20),
    "cache.dir": (_string, None),
    "cache.link": (_link_list, ("reflink", "copy")),
}
FREE_SECTIONS = ("remote",)


def user_config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "dvlite", "config.toml")


def env_name(key: str) -> str:
    return "DVLITE_" + key.replace(".", "_").upper()


def check_key(key: str) -> None:
    section = key.split(".", 1)[0]
    if key in SCHEMA or (section in FREE_SECTIONS and key.count(".") >= 2):
        return
    raise ConfigError(
        f"unknown config key `{key}`",
        hint="known keys: " + ", ".join(sorted(SCHEMA)) + ", remote.<name>.<option>",
    )


def parse_value(key: str, raw: str) -> Any:
    """A command-line string as the value ``key`` holds."""
    check_key(key)
    if key in SCHEMA:
        try:
            value = SCHEMA[key][0](raw)
        except ValueError as exc:
            raise ConfigError(f"bad value {raw!r} for `{key}`: {exc}") from None
        return list(value) if isinstance(value, tuple) else value
    try:  # free-form options: TOML literals (true, 3, ["a"]) or else a plain string
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):  # nested thousands deep: not a literal
        return raw


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in doc.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


@dataclass(frozen=True)
class Config:
    values: dict[str, Any]  # flat dotted keys, validated, highest layer wins
    origins: dict[str, str]  # key → layer it came from

    @classmethod
    def load(cls, paths: Mapping[str, str], env: Mapping[str, str],
             flags: Mapping[str, Any] | None = None, *, strict: bool = True) -> Config:
        """Merge the layers; with ``strict=False`` invalid values are left out instead of
        raising, so that `dvlite config` can still be used to repair them."""
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        layers: list[tuple[str, dict[str, Any]]] = [
            (f"`{paths[level]}`", flatten(read_toml(paths[level])))
            for level in LEVELS
            if level in paths and os.path.exists(paths[level])
        ]
        layers.append(("the environment", {k: env[env_name(k)] for k in SCHEMA
                                           if env_name(k) in env}))
        layers.append(("the command line", dict(flags or {})))
        for origin, layer in layers:
            for key, raw in layer.items():
                try:
                    values[key] = _validated(key, raw, origin)
                except ConfigError:
                    if strict:
                        raise
                    continue
                origins[key] = origin
        return cls(values, origins)

    def get(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        if key in SCHEMA:
            return SCHEMA[key][1]
        return None

    def section(self, prefix: str) -> dict[str, Any]:
        """Keys under ``prefix.`` (e.g. one remote's options), prefix removed; deeper keys
        become tables again (``client_kwargs.region_name`` → ``{"client_kwargs": {...}}``),
        as a backend expects them."""
        start = prefix + "."
        found: dict[str, Any] = {}
        for key, value in self.values.items():
            if key.startswith(start):
                *tables, name = key[len(start):].split(".")
                table = found
                for part in tables:
                    table = table.setdefault(part, {})
                table[name] = value
        return found


def _validated(key: str, raw: object, origin: str) -> Any:
    try:
        check_key(key)
        return SCHEMA[key][0](raw) if key in SCHEMA else raw
    except (ConfigError, ValueError) as exc:
        detail = exc.message if isinstance(exc, ConfigError) else f"bad value for `{key}`: {exc}"
        raise ConfigError(f"{detail} (in {origin})", hint="fix it with `dvlite config`") from None


def set_value(path: str, key: str, value: Any, *, private: bool = False) -> None:
    """Write one key into a config file, keeping everything else in it."""
    doc = read_toml(path) if os.path.exists(path) else {}
    *sections, name = key.split(".")
    table = doc
    for section in sections:
        table = table.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"`{path}` has `{section}` as a value, not a table")
    table[name] = value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_toml(path, doc, mode=LOCAL_MODE if private else 0o644, header=_header(path))


def unset_value(path: str, key: str, *, private: bool = False) -> bool:
    """Remove one key (and tables left empty); False if it was not set there."""
    if not os.path.exists(path):
        return False
    doc = read_toml(path)
    *sections, name = key.split(".")
    chain = [doc]
    for section in sections:
        table = chain[-1].get(section)
        if not isinstance(table, dict):
            return False
        chain.append(table)
    if name not in chain[-1]:
        return False
    del chain[-1][name]
    for parent, section in zip(reversed(chain[:-1]), reversed(sections), strict=True):
        if not parent[section]:
            del parent[section]
    write_toml(path, doc, mode=LOCAL_MODE if private else 0o644, header=_header(path))
    return True


def _header(path: str) -> str:
    """The comment lines at the top of a config file (such as the no-secrets warning), kept
    when dvlite rewrites it."""
    if not os.path.exists(path):
        return ""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            lines.append(line if line.endswith("\n") else line + "\n")
    return "".join(lines)
