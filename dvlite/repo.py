"""A dvlite project: its root, config, cache, stat index, git and lock."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dvlite import scm
from dvlite.config import Config, user_config_path
from dvlite.errors import ConfigError, NotARepoError, PathError
from dvlite.fsutil import FileLock, atomic_write, is_within
from dvlite.storage.odb import ObjectStore
from dvlite.storage.stat_index import StatIndex

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from dvlite.storage import transfer
    from dvlite.storage.fsmonitor import Monitor
    from dvlite.storage.remote_store import RemoteStore

DVLITE_DIR = ".dvlite"
# In the cache folder, for every repo that uses it (`cache.dir` may point several at one):
CACHE_LOCK = "lock"  # taken shared by each writing command, exclusively by gc
CACHE_USERS = "repos"  # one small file per repo, holding its root: gc keeps what they reference
_CONFIG_HEADER = b"# dvlite project config: committed to git, so never put secrets here\n"
_DVLITE_GITIGNORE = b"/config.local.toml\n/cache/\n/tmp/\n"


class Repo:
    """Open with ``Repo.discover`` or ``Repo.init``; use as a context manager."""

    def __init__(self, root: str, *, env: Mapping[str, str] | None = None,
                 flags: Mapping[str, Any] | None = None, strict_config: bool = True,
                 shared_with: Repo | None = None) -> None:
        """``shared_with``: open ``root``, a temporary worktree of that repo's git repo, with
        that repo's config, cache and remotes, so what is fetched or built there stays."""
        self.root = root
        self.dvlite_dir = os.path.join(root, DVLITE_DIR)
        self.tmp_dir = os.path.join(self.dvlite_dir, "tmp")
        # the folder that relative paths in the config (cache.dir, folder remotes) start from
        self.config_root: str = root if shared_with is None else shared_with.config_root
        self.config_paths: dict[str, str]
        self.config: Config
        if shared_with is not None:
            self.config_paths, self.config = shared_with.config_paths, shared_with.config
        else:
            self.config_paths = {
                "user": user_config_path(),
                "project": os.path.join(self.dvlite_dir, "config.toml"),
                "local": os.path.join(self.dvlite_dir, "config.local.toml"),
            }
            self.config = Config.load(self.config_paths, os.environ if env is None else env,
                                      flags, strict=strict_config)
        cache_dir = self.config.get("cache.dir")
        self.cache_dir = (
            os.path.join(self.config_root, os.path.expanduser(cache_dir)) if cache_dir
            else os.path.join(self.config_root, DVLITE_DIR, "cache")
        )
        self.cache = ObjectStore(self.cache_dir, algorithm=self.config.get("core.hash"))
        self.git = scm.Git(root)
        self.on_lock_wait: Callable[[], None] | None = None
        self._index: StatIndex | None = None

    @classmethod
    def discover(cls, start: str, **kwargs: Any) -> Repo:
        path = os.path.abspath(start)
        while not os.path.isdir(os.path.join(path, DVLITE_DIR)):
            parent = os.path.dirname(path)
            if parent == path:
                raise NotARepoError(
                    f"`{os.path.abspath(start)}` is not inside a dvlite project",
                    hint="run `dvlite init` at the top of a git work tree",
                )
            path = parent
        return cls(path, **kwargs)

    @classmethod
    def init(cls, start: str, **kwargs: Any) -> tuple[Repo, bool]:
        """Make ``.dvlite/`` at the top of the git work tree; (repo, created?)."""
        root = scm.find_work_tree(start)
        if root is None:
            raise NotARepoError(
                f"`{os.path.abspath(start)}` is not inside a git work tree",
                hint="run `git init` first, then `dvlite init`",
            )
        dvlite_dir = os.path.join(root, DVLITE_DIR)
        created = not os.path.isdir(dvlite_dir)
        os.makedirs(os.path.join(dvlite_dir, "tmp"), exist_ok=True)
        for name, content in (("config.toml", _CONFIG_HEADER), (".gitignore", _DVLITE_GITIGNORE)):
            if not os.path.exists(os.path.join(dvlite_dir, name)):
                atomic_write(os.path.join(dvlite_dir, name), content)
        return cls(root, **kwargs), created

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.git.close()
        if self._index is not None:
            self._index.close()
            self._index = None

    @cached_property
    def monitor(self) -> Monitor | None:
        """The file-system watcher that reports (``status``, ``diff``) ask, with
        ``core.fsmonitor`` on."""
        if not self.config.get("core.fsmonitor") or not sys.platform.startswith("linux"):
            return None  # (inotify is Linux's)
        from dvlite.storage.fsmonitor import Monitor  # noqa: PLC0415 (off by default)

        return Monitor(self.tmp_dir)

    @property
    def index(self) -> StatIndex:
        if self._index is None:
            os.makedirs(self.tmp_dir, exist_ok=True)
            self._index = StatIndex(os.path.join(self.tmp_dir, "stat-index.sqlite"))
        return self._index

    @contextlib.contextmanager
    def lock(self, *, exclusive_cache: bool = False) -> Iterator[None]:
        """The lock every command that writes takes: this repo's, then the cache's.

        Other repos may use the same cache (`cache.dir`): their commands share the cache
        lock with ours, and `gc` (``exclusive_cache``) waits until none of them is adding
        objects it would count as unreferenced. Taking it registers this repo as a user of
        the cache, so that gc anywhere keeps what this repo references.
        """
        timeout = self.config.get("core.lock_timeout")
        deadline = time.monotonic() + timeout
        os.makedirs(self.tmp_dir, exist_ok=True)
        with FileLock(os.path.join(self.tmp_dir, "lock"), timeout=timeout,
                      on_wait=self.on_lock_wait):
            os.makedirs(os.path.join(self.cache_dir, CACHE_USERS), exist_ok=True)
            with FileLock(os.path.join(self.cache_dir, CACHE_LOCK),
                          timeout=max(0.0, deadline - time.monotonic()),
                          on_wait=self.on_lock_wait, shared=not exclusive_cache,
                          what=f"a repo sharing the cache `{self.cache_dir}`"):
                self._register_as_cache_user()
                yield

    def _register_as_cache_user(self) -> None:
        path = os.path.join(self.cache_dir, CACHE_USERS, _user_name(self.config_root))
        if not os.path.exists(path):
            atomic_write(path, (os.path.realpath(self.config_root) + "\n").encode())

    def cache_users(self) -> list[str]:
        """The roots of the other repos that use this repo's cache. A registered repo that is
        gone, or uses another cache by now, is forgotten (call under the cache lock)."""
        folder = os.path.join(self.cache_dir, CACHE_USERS)
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        cache = os.path.realpath(self.cache_dir)
        users = []
        for name in names:
            if name == _user_name(self.config_root) or name.startswith("."):
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                root = f.read().strip()
            if os.path.isdir(os.path.join(root, DVLITE_DIR)):
                with Repo(root, strict_config=False) as other:
                    if os.path.realpath(other.cache_dir) == cache:
                        users.append(root)
                        continue
            os.unlink(os.path.join(folder, name))
        return users

    @property
    def link_strategies(self) -> tuple[str, ...]:
        return tuple(self.config.get("cache.link"))

    @property
    def layout(self) -> transfer.Layout:
        """How pushes store objects on remotes: chunks for big files, packs for small ones."""
        from dvlite.storage.transfer import Layout  # noqa: PLC0415  (loads only to push)

        return Layout(self.config.get("core.chunk_min_size"), self.config.get("core.pack_size"))

    def remote(self, name: str | None = None) -> RemoteStore:
        """The remote called ``name``, or the default one (``core.remote``)."""
        from dvlite.remote import open_remote, protocol_of  # noqa: PLC0415  (start-up)

        name = name or self.config.get("core.remote")
        if not name:
            raise ConfigError(
                "no remote given and no default remote set",
                hint="add one with `dvlite remote add -d NAME URL`, or pass `-r NAME`",
            )
        options = self.config.section(f"remote.{name}")
        url = options.pop("url", None)
        if not url:
            raise ConfigError(
                f"remote `{name}` is not configured",
                hint="list remotes with `dvlite remote list`",
            )
        if protocol_of(url) == "file" and "://" not in url:
            url = os.path.join(self.config_root, os.path.expanduser(url))  # relative to the repo
        return open_remote(name, url, options)

    def rel(self, path: str) -> str:
        """``path`` (absolute or relative to the cwd) as a POSIX path relative to the root.

        Raises PathError when it is outside the repo or inside ``.git``/``.dvlite``.
        """
        full = os.path.normpath(os.path.abspath(path))
        if not is_within(self.root, full):
            raise PathError(f"`{path}` is outside the repo `{self.root}`")
        parent = full if full == os.path.normpath(self.root) else os.path.dirname(full)
        if not is_within(os.path.realpath(self.root), os.path.realpath(parent)):
            raise PathError(f"`{path}` lies behind a symlink that leads out of the repo")
        rel = os.path.relpath(full, self.root).replace(os.sep, "/")
        if rel.split("/")[0] in (".git", DVLITE_DIR):
            raise PathError(f"`{path}` is inside `{rel.split('/')[0]}`, which dvlite manages")
        return "" if rel == "." else rel

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root


def _user_name(root: str) -> str:
    """A repo's file name among a cache's users: the same for any path to the same folder."""
    import hashlib  # noqa: PLC0415  (only for a shared cache; loading it costs start-up)

    return hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
