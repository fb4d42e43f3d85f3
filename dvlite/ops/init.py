"""``dvlite init``, ``dvlite config`` and ``dvlite remote``: setting a repo up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dvlite import config as cfg
from dvlite.credentials import has_credentials, is_secret, redact
from dvlite.errors import ConfigError, DvliteError
from dvlite.fsutil import read_toml
from dvlite.repo import Repo
from dvlite.workspace import find_tracked


def init(path: str) -> tuple[Repo, bool]:
    """Create ``.dvlite/`` at the top of the git work tree holding ``path``; (repo, created?)."""
    return Repo.init(path)


def config_get(repo: Repo, key: str) -> tuple[Any, str | None]:
    """The value in effect for ``key`` and the layer it came from (None: the default)."""
    cfg.check_key(key)
    if key in repo.config.values:
        return repo.config.values[key], repo.config.origins[key]
    default = cfg.SCHEMA[key][1] if key in cfg.SCHEMA else None
    if default is None:
        raise ConfigError(f"`{key}` is not set", hint=f"set it with `dvlite config {key} VALUE`")
    return default, None


def shown(key: str, value: Any) -> Any:
    """``value`` of ``key`` as it may be printed: credentials masked."""
    if key.startswith("remote.") and is_secret(key.rsplit(".", 1)[1]):
        return "***"
    return redact(value) if isinstance(value, str) else value


def config_set(repo: Repo, key: str, raw: str, *, level: str = "project") -> Any:
    value = cfg.parse_value(key, raw)
    credential = key.startswith("remote.") and (
        is_secret(key.rsplit(".", 1)[1]) or (isinstance(value, str) and has_credentials(value))
    )
    if level == "project" and credential:
        raise ConfigError(
            f"`{key}` holds a credential, and the project config is committed to git",
            hint="keep it out of git with `--local` (or `--user`), or use the environment",
        )
    if key == "core.hash" and value != repo.cache.algorithm and _holds_data(repo):
        raise ConfigError(
            f"this repo already tracks data by {repo.cache.algorithm} oids; a repo keeps one "
            "hash",
            hint="choose `core.hash` right after `dvlite init`, before adding data",
        )
    cfg.set_value(repo.config_paths[level], key, value, private=_private(level))
    return value


def _holds_data(repo: Repo) -> bool:
    """Whether anything records oids of the repo's hash: cached objects, pointers, the lock."""
    if next(repo.cache.iter_oids(), None) is not None:
        return True
    try:
        return bool(find_tracked(repo))
    except DvliteError:  # pointers that cannot be read are data too
        return True


def config_unset(repo: Repo, key: str, *, level: str = "project") -> None:
    cfg.check_key(key)
    if not cfg.unset_value(repo.config_paths[level], key, private=_private(level)):
        raise ConfigError(f"`{key}` is not set in `{repo.config_paths[level]}`",
                          hint="`dvlite doctor` shows which config file sets each key")


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str  # passwords masked
    default: bool


def remote_add(repo: Repo, name: str, url: str, *, default: bool = False,
               level: str = "project", force: bool = False) -> None:
    if not force and repo.config.get(f"remote.{name}.url"):
        raise ConfigError(f"remote `{name}` exists already",
                          hint=f"change it with `dvlite remote modify {name} url URL`")
    config_set(repo, f"remote.{name}.url", url, level=level)
    if default:
        config_set(repo, "core.remote", name, level=level)


def remote_list(repo: Repo) -> list[RemoteInfo]:
    names = sorted({key.split(".")[1] for key in repo.config.values if key.startswith("remote.")})
    default = repo.config.get("core.remote")
    return [RemoteInfo(name, redact(str(repo.config.get(f"remote.{name}.url") or "")),
                       name == default) for name in names]


def remote_remove(repo: Repo, name: str) -> None:
    """Remove the remote from every config file that names it."""
    _check_remote(repo, name)
    for level, path in repo.config_paths.items():
        for key in [k for k in _keys_in(path) if k.startswith(f"remote.{name}.")]:
            cfg.unset_value(path, key, private=_private(level))
        if _value_in(path, "core.remote") == name:
            cfg.unset_value(path, "core.remote", private=_private(level))


def remote_default(repo: Repo, name: str, *, level: str = "project") -> None:
    _check_remote(repo, name)
    config_set(repo, "core.remote", name, level=level)


def remote_modify(repo: Repo, name: str, option: str, raw: str | None, *,
                  level: str = "project") -> None:
    _check_remote(repo, name)
    key = f"remote.{name}.{option}"
    if raw is None:
        config_unset(repo, key, level=level)
    else:
        config_set(repo, key, raw, level=level)


def _private(level: str) -> bool:
    """Files that may hold credentials (the local and the user config) are the owner's
    alone (mode 0600); the project config is committed, so it is readable by all."""
    return level != "project"


def _check_remote(repo: Repo, name: str) -> None:
    if not repo.config.get(f"remote.{name}.url"):
        raise ConfigError(f"remote `{name}` does not exist",
                          hint="list remotes with `dvlite remote list`")


def _keys_in(path: str) -> list[str]:
    return list(cfg.flatten(read_toml(path))) if os.path.exists(path) else []


def _value_in(path: str, key: str) -> Any:
    return cfg.flatten(read_toml(path)).get(key) if os.path.exists(path) else None
