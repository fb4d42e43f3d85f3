"""Opening a version of a repo for reading (the Python API, the ``dvlite://`` filesystem and
``dvlite get``).

The current project is read in place: its workspace's pointers or any of its commits, with
missing objects fetched into its own cache. Any other repo (a URL, or a path outside the
current project) is read through a bare, blobless clone of the one revision, from which git
fetches only the files read (config, pointers, lock); its objects come from that project's
remote into a cache of the clone's own. Both live in a temporary folder that goes with the
snapshot (``dvlite get`` passes a folder of its own instead).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from dvlite import scm
from dvlite.errors import ConfigError, NotARepoError, PathError
from dvlite.fsutil import is_within
from dvlite.ops.snapshot import Snapshot
from dvlite.remote import open_remote, protocol_of
from dvlite.repo import Repo
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from dvlite.config import Config
    from dvlite.storage.remote_store import RemoteStore

CONFIG_FILE = ".dvlite/config.toml"


def repo_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a plain POSIX path relative to the repo's top folder (``./`` and doubled or
    trailing slashes dropped); PathError for an absolute path, a ``..`` or a backslash."""
    text = os.fspath(path)
    rel = "/".join(part for part in text.split("/") if part not in ("", "."))
    if text.startswith("/") or not is_safe_relative_path(rel):
        raise PathError(f"`{text}` is not a path inside the repo",
                        hint="give it relative to the repo's top folder, e.g. `data/raw.csv`, "
                             "without `..`")
    return rel


def open_snapshot(repo: str | None, rev: str | None, *, remote: str | None = None,
                  cwd: str) -> Snapshot:
    """``repo`` (None: the project holding ``cwd``, as is any path inside it; any other path
    or URL is cloned) at ``rev`` (None: the workspace here, the HEAD of a clone); objects come
    from ``remote`` (None: the project's default remote)."""
    if repo is None or not scm.is_git_url(repo):
        here = _current_project(repo, cwd)
        if here is not None:
            return open_local(here, rev, remote=remote)
    assert repo is not None  # None always means the current project
    source = repo if scm.is_git_url(repo) else os.path.join(cwd, repo)
    work = tempfile.mkdtemp(prefix="dvlite-read-")
    try:
        return open_clone(source, rev, work=work, remote=remote, remove=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _current_project(repo: str | None, cwd: str) -> Repo | None:
    try:
        here = Repo.discover(cwd)
    except NotARepoError:
        if repo is None:
            raise
        return None
    if repo is None or is_within(os.path.realpath(here.root),
                                 os.path.realpath(os.path.join(cwd, repo))):
        return here
    here.close()
    return None


def open_local(repo: Repo, rev: str | None, *, remote: str | None = None) -> Snapshot:
    """``repo`` (which the snapshot closes) at ``rev``; None: its workspace's pointers."""
    try:
        sha = repo.git.resolve(rev) if rev is not None else None
    except BaseException:
        repo.close()
        raise
    label = "in the workspace" if sha is None else f"at `{rev}` ({sha[:12]})"
    return Snapshot(repo, sha, label=label, remote=lambda: repo.remote(remote), lock=repo.lock)


def open_clone(source: str, rev: str | None, *, work: str, remote: str | None = None,
               into: Repo | None = None, remove: bool = False) -> Snapshot:
    """``rev`` (default: its HEAD) of git repo ``source``, cloned into the new folder ``work``
    (removed with the snapshot when ``remove``). Objects go to a cache in ``work``, or to
    ``into``'s when that project hashes alike (the caller then holds ``into``'s lock)."""
    git_dir = os.path.join(work, "git")
    sha = scm.clone_revision(source, rev, git_dir)
    _committed_config(git_dir, sha, source)
    # the clone read as a project: its committed config over the user's (for credentials),
    # not the environment (DVLITE_* speaks of the current project), the cache in `work`
    repo = Repo(git_dir, env={}, flags={"cache.dir": os.path.join(work, "cache")},
                strict_config=False)
    shared = into is not None and into.cache.algorithm == repo.cache.algorithm
    return Snapshot(repo, sha, label=f"in `{source}` at {sha[:12]}",
                    remote=lambda: foreign_remote(repo.config, remote, source),
                    cache=into.cache if into is not None and shared else None,
                    remove=work if remove else None)


def _committed_config(git_dir: str, sha: str, source: str) -> None:
    """Put the project config committed at ``sha`` where a Repo on ``git_dir`` reads it."""
    git = scm.Git(git_dir)
    try:
        data = git.read_at(sha, CONFIG_FILE)
    finally:
        git.close()
    if data is None:
        raise NotARepoError(f"`{source}` at {sha[:12]} is not a dvlite project "
                            f"(it has no `{CONFIG_FILE}`)",
                            hint="check the repo and the revision")
    os.makedirs(os.path.join(git_dir, os.path.dirname(CONFIG_FILE)))
    with open(os.path.join(git_dir, CONFIG_FILE), "wb") as f:
        f.write(data)


def foreign_remote(config: Config, name: str | None, source: str) -> RemoteStore:
    """The remote ``name`` (default: its ``core.remote``) of the project in repo ``source``."""
    name = name or config.get("core.remote")
    if not name:
        raise ConfigError(f"`{source}` has no default remote to download from",
                          hint="name one of its remotes (`-r NAME`, `remote=`)")
    options = config.section(f"remote.{name}")
    url = options.pop("url", None)
    if not url:
        raise ConfigError(f"`{source}` has no remote `{name}` in its committed config",
                          hint="name one of its remotes (`-r NAME`, `remote=`); remotes in "
                               "its `config.local.toml` are not visible from outside")
    url = str(url)
    if protocol_of(url) == "file" and "://" not in url:
        url = os.path.expanduser(url)
        if not os.path.isabs(url):  # relative to the source repo's folder
            url = os.path.join(_local_root(source, name, url), url)
    return open_remote(name, url, options)


def _local_root(source: str, name: str, url: str) -> str:
    if not scm.is_git_url(source):
        return os.path.abspath(source)
    if source.startswith("file://"):
        return url2pathname(urlparse(source).path)
    raise ConfigError(
        f"remote `{name}` of `{source}` is the relative folder `{url}`, which means something "
        "only on the machine that holds that repo",
        hint="read from a local clone of it, or name another remote (`-r NAME`, `remote=`)",
    )
