"""``dvlite doctor``: what a bug report needs and what to check when something is off.

Versions; the config as each layer sets it (credentials masked); which link
types work from the cache to the work tree; the cache's size; and whether
each remote answers, within a short timeout. It reads and probes, and changes
nothing but a scratch folder it removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from dvlite import __version__
from dvlite import config as cfg
from dvlite.errors import DvliteError, GitError, NotARepoError
from dvlite.fsutil import NO_PROGRESS, Progress, read_toml, reflink
from dvlite.ops.init import remote_list, shown
from dvlite.repo import Repo
from dvlite.scm import run_git
from dvlite.storage.hashing import Oid

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

CORE = ("typer", "fsspec", "xxhash", "tomli-w", "rich")
OPTIONAL = ("s3fs", "adlfs", "gcsfs", "sshfs", "webdav4", "aiohttp", "matplotlib")
REMOTE_TIMEOUT = 5.0  # seconds: doctor is a quick look, not a wait for a slow network
_PROBE = Oid("0" * 32)  # an object no remote holds: asking for it costs one request


@dataclass(frozen=True)
class Layer:
    name: str  # user, project, local, environment
    source: str  # its file, or the DVLITE_* variables
    exists: bool
    values: dict[str, Any]  # flat keys; credentials masked
    error: str | None = None


@dataclass(frozen=True)
class LinkCheck:
    name: str  # reflink, hardlink, symlink, copy
    ok: bool
    detail: str = ""  # why not


@dataclass(frozen=True)
class RemoteCheck:
    name: str
    url: str  # passwords masked
    ok: bool  # it answered, and accepted the credentials
    detail: str  # why not
    seconds: float


@dataclass(frozen=True)
class Cache:
    path: str
    objects: int
    size: int
    links: tuple[LinkCheck, ...]  # reflink, hardlink, symlink, copy
    configured: tuple[str, ...]  # cache.link
    used: str | None  # the first configured link type that works


@dataclass(frozen=True)
class Report:
    versions: dict[str, str]
    root: str | None  # None: not run inside a project
    config: tuple[Layer, ...]
    cache: Cache | None
    remotes: tuple[RemoteCheck, ...]
    problems: tuple[str, ...]


def versions(*, optional: bool = True) -> dict[str, str]:
    """dvlite, Python, git and the main (and, with ``optional``, the extra) dependencies."""
    import platform  # noqa: PLC0415  (only `version` and `doctor` need it)

    found = {"dvlite": __version__, "python": sys.version.split()[0],
             "platform": platform.platform(terse=True)}
    try:
        found["git"] = run_git("--version").strip().removeprefix("git version ")
    except (GitError, OSError):
        found["git"] = "not found"
    for dist in CORE + (OPTIONAL if optional else ()):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def doctor(start: str, env: Mapping[str, str], *,
           progress: Progress = NO_PROGRESS) -> Report:
    problems: list[str] = []
    try:
        repo = Repo.discover(start, env=env, strict_config=False)  # a bad value is reported
    except NotARepoError:
        user = _layers({"user": cfg.user_config_path()}, env)
        return Report(versions(), None, user, None, (), tuple(_layer_problems(user)))
    with repo:
        layers = _layers(repo.config_paths, env)
        problems += _layer_problems(layers)
        try:
            cfg.Config.load(repo.config_paths, env)
        except DvliteError as exc:
            problems.append(exc.message)
        cache = _cache(repo, progress)
        if cache.used is None:
            problems.append("no link type in `cache.link` works from the cache to the work "
                            f"tree ({', '.join(cache.configured)})")
        remotes = tuple(_probe_remote(repo, info.name, info.url) for info in remote_list(repo))
        problems += [r.detail if f"`{r.name}`" in r.detail else f"remote `{r.name}`: {r.detail}"
                     for r in remotes if not r.ok]
        return Report(versions(), repo.root, layers, cache, remotes, tuple(problems))


def _layers(paths: Mapping[str, str], env: Mapping[str, str]) -> tuple[Layer, ...]:
    layers = []
    for name in cfg.LEVELS:
        if name not in paths:
            continue
        path = paths[name]
        exists = os.path.exists(path)
        try:
            values = cfg.flatten(read_toml(path)) if exists else {}
        except DvliteError as exc:
            layers.append(Layer(name, path, exists, {}, exc.message))
            continue
        layers.append(Layer(name, path, exists, _masked(values)))
    from_env = {k: env[cfg.env_name(k)] for k in cfg.SCHEMA if cfg.env_name(k) in env}
    layers.append(Layer("environment", "DVLITE_* variables", bool(from_env), _masked(from_env)))
    return tuple(layers)


def _masked(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: shown(key, value) for key, value in sorted(values.items())}


def _layer_problems(layers: tuple[Layer, ...]) -> list[str]:
    return [f"cannot read `{layer.source}`: {layer.error}" for layer in layers if layer.error]


def _cache(repo: Repo, progress: Progress) -> Cache:
    oids = list(repo.cache.iter_oids())
    progress.set_size(len(oids))
    size = 0
    for oid in oids:
        with contextlib.suppress(FileNotFoundError):  # gc may delete it meanwhile
            size += os.stat(repo.cache.path(oid)).st_size
        progress.relative_update(1)
    links = _link_checks(os.path.join(repo.cache_dir, "tmp"), repo.tmp_dir)
    works = {check.name for check in links if check.ok}
    configured = repo.link_strategies
    used = next((name for name in configured if name in works), None)
    return Cache(repo.cache_dir, len(oids), size, links, configured, used)


def _link_checks(cache_tmp: str, work_tmp: str) -> tuple[LinkCheck, ...]:
    """Each link type tried from a file in the cache's temp folder to one in ``.dvlite/tmp``:
    the cache may be on another filesystem than the work tree (``cache.dir``), and then only
    symlinks and copies cross."""
    makers: dict[str, Callable[[str, str], object]] = {
        "reflink": reflink, "hardlink": os.link, "symlink": os.symlink,
        "copy": shutil.copyfile}
    for folder in (cache_tmp, work_tmp):
        os.makedirs(folder, exist_ok=True)
    src_dir = tempfile.mkdtemp(prefix="doctor-", dir=cache_tmp)
    dst_dir = tempfile.mkdtemp(prefix="doctor-", dir=work_tmp)
    checks = []
    try:
        src = os.path.join(src_dir, "probe")
        with open(src, "wb") as f:
            f.write(b"dvlite doctor\n")
        for name, make in makers.items():
            try:
                make(src, os.path.join(dst_dir, name))
            except OSError as exc:
                checks.append(LinkCheck(name, False, exc.strerror or str(exc)))
            else:
                checks.append(LinkCheck(name, True))
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)
        shutil.rmtree(dst_dir, ignore_errors=True)
    return tuple(checks)


def _probe_remote(repo: Repo, name: str, url: str) -> RemoteCheck:
    """Ask the remote for one object, in a thread given REMOTE_TIMEOUT seconds. The thread
    is a daemon: a backend stuck in a connect cannot hold the process at exit."""
    outcome: list[str] = []

    def probe() -> None:
        try:
            repo.remote(name).exists(_PROBE)
        except DvliteError as exc:
            outcome.append(exc.message)
        except Exception as exc:  # a report, not a failure: say what it was
            outcome.append(f"{type(exc).__name__}: {exc}")
        else:
            outcome.append("")

    start = time.monotonic()
    thread = threading.Thread(target=probe, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(REMOTE_TIMEOUT)
    seconds = round(time.monotonic() - start, 3)
    if not outcome:
        return RemoteCheck(name, url, False, f"no answer within {REMOTE_TIMEOUT:g} s", seconds)
    return RemoteCheck(name, url, not outcome[0], outcome[0], seconds)
