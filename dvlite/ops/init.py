"""``dvlite init`` and ``dvlite config``."""

from __future__ import annotations

from typing import Any

from dvlite import config as cfg
from dvlite.errors import ConfigError
from dvlite.repo import Repo


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


def config_set(repo: Repo, key: str, raw: str, *, level: str = "project") -> Any:
    value = cfg.parse_value(key, raw)
    if key == "core.hash" and value != repo.cache.algorithm and next(repo.cache.iter_oids(), None):
        raise ConfigError(
            f"the cache already holds {repo.cache.algorithm} objects; a repo keeps one hash",
            hint="choose `core.hash` right after `dvlite init`, before adding data",
        )
    cfg.set_value(repo.config_paths[level], key, value, private=level == "local")
    return value


def config_unset(repo: Repo, key: str, *, level: str = "project") -> None:
    cfg.check_key(key)
    if not cfg.unset_value(repo.config_paths[level], key, private=level == "local"):
        raise ConfigError(f"`{key}` is not set in `{repo.config_paths[level]}`")
