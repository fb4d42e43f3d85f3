"""``dvlite init --template``: start a project from a template.

A template is a folder of files copied into the work tree as they are: a
built-in one by name (``ml``, shipped under ``dvlite/templates/``), a local
folder, or a git repository (cloned shallow; its ``.git`` is not copied). An
optional ``dvlite-template.toml`` at its top, not copied, lists what to track
once the files are in place: ``add = ["data/raw"]``. Nothing is overwritten:
when any file the template holds exists already, nothing is written at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvlite.errors import ConfigError, UnsafeOperationError, UsageError
from dvlite.fsutil import read_toml
from dvlite.ops.add import add
from dvlite.repo import Repo
from dvlite.scm import find_work_tree, is_git_url, run_git

if TYPE_CHECKING:
    from collections.abc import Iterator

MANIFEST = "dvlite-template.toml"
_SKIPPED = {".git", "__pycache__", MANIFEST}


@dataclass(frozen=True)
class Scaffold:
    template: str  # as given
    root: str
    git_initialized: bool  # `git init` ran first
    files: tuple[str, ...]  # written, relative to the root
    added: tuple[str, ...]  # tracked with `dvlite add`


def builtin_names() -> list[str]:
    from importlib import resources  # noqa: PLC0415  (10 ms: only when a template is used)

    folder = resources.files("dvlite") / "templates"
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))


def scaffold(start: str, template: str) -> Scaffold:
    """Copy ``template`` into the git work tree holding ``start`` (made with ``git init``
    when there is none), initialise dvlite there, and track the paths its manifest lists.
    A relative folder is relative to ``start``."""
    with _template_folder(template, start) as source:
        files = sorted(_files(source))
        add_paths = _manifest(source)
        root = find_work_tree(start)
        made_git = root is None
        dest = root or os.path.abspath(start)
        taken = [f for f in files if os.path.lexists(os.path.join(dest, f))]
        if taken:
            listed = ", ".join(f"`{f}`" for f in taken[:10])
            raise UnsafeOperationError(
                f"not applying template `{template}`: {len(taken)} of its files exist "
                f"already: {listed}",
                hint="start from an empty folder, or move those files away first")
        if made_git:
            os.makedirs(dest, exist_ok=True)
            run_git("init", "--quiet", dest)
        repo, _ = Repo.init(dest)
        with repo:
            for rel in files:
                target = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(source, rel), target)
            if add_paths:
                add(repo, [os.path.join(dest, p) for p in add_paths])
    return Scaffold(template, dest, made_git, tuple(files), tuple(add_paths))


@contextmanager
def _template_folder(template: str, start: str) -> Iterator[str]:
    """The folder holding ``template``'s files: a built-in name (no slash), a local folder,
    or a git URL cloned into a temporary folder for the time of the copy."""
    from importlib import resources  # noqa: PLC0415

    folder = os.path.join(start, os.path.expanduser(template))
    if "/" not in template and template in builtin_names():
        with resources.as_file(resources.files("dvlite") / "templates" / template) as path:
            yield str(path)
    elif os.path.isdir(folder):
        yield folder
    elif is_git_url(template):
        with tempfile.TemporaryDirectory(prefix="dvlite-template-") as tmp:
            clone = os.path.join(tmp, "template")
            run_git("clone", "--quiet", "--depth=1", "--", template, clone)
            yield clone
    else:
        raise UsageError(f"no template `{template}`",
                         hint="give a built-in template (" + ", ".join(builtin_names())
                         + "), a folder, or a git URL")


def _files(source: str) -> Iterator[str]:
    """Every file below ``source`` as a POSIX path, but git's and Python's leftovers and
    the manifest; symlinks are refused, since a copy would follow them anywhere."""
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        rel_folder = os.path.relpath(folder, source)
        for name in names:
            if rel_folder == "." and name == MANIFEST:
                continue
            path = os.path.join(folder, name)
            rel = os.path.normpath(os.path.join(rel_folder, name)).replace(os.sep, "/")
            if os.path.islink(path):
                raise UsageError(f"template file `{rel}` is a symlink, which is not copied",
                                 hint="make it a plain file in the template")
            if name.endswith((".pyc", ".pyo")):
                continue
            yield rel


def _manifest(source: str) -> list[str]:
    path = os.path.join(source, MANIFEST)
    if not os.path.exists(path):
        return []
    paths = read_toml(path).get("add", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"`add` in the template's `{MANIFEST}` must be a list of paths")
    for p in paths:
        if os.path.isabs(p) or ".." in p.split("/") or not os.path.exists(
                os.path.join(source, p)):
            raise ConfigError(f"the template's `{MANIFEST}` adds `{p}`, which is not a path "
                              "inside the template")
    return paths
