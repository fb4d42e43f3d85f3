"""A project with tracked data, a folder dvlite remote, a bare git remote and the hooks
installed; and a runner for real git commands that fire them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.hooks import install
from dvlite.ops.init import remote_add
from tests.helpers import Run, TmpRepo

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from tests.helpers import Tree

V1: Tree = {"data": {"a.csv": "a,1\n", "sub": {"b.bin": b"\x00\x01"}}, "model.bin": b"model 1"}
V2: Tree = {"data": {"a.csv": "a,2,two\n", "c.csv": "c\n"}, "model.bin": b"model 2, bigger"}


def run_git(root: Path, *args: str, stdin: str | None = None,
            env: Mapping[str, str] | None = None) -> Run:
    """``git -C root ARGS``, not raising: hooks make git fail on purpose."""
    proc = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120,
                          check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Project:
    t: TmpRepo
    store: Path  # the default dvlite remote, a local folder
    origin: Path  # a bare git repo, remote `origin`

    @property
    def root(self) -> Path:
        return self.t.root

    def git(self, *args: str, stdin: str | None = None,
            env: Mapping[str, str] | None = None) -> Run:
        return run_git(self.root, *args, stdin=stdin, env=env)

    def ok(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        result = self.git(*args, env=env)
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def write(self, tree: Tree, *, add: bool = True) -> None:
        """Replace the tracked data by ``tree``; with ``add``, `dvlite add` it and stage it."""
        shutil.rmtree(self.root / "data", ignore_errors=True)
        self.t.gen(tree)
        if add:
            self.t.dvl_add("data", "model.bin")
            self.ok("add", "-A")

    def read(self) -> dict[str, bytes]:
        """Every file of the tracked data: relative path -> bytes."""
        found = {"model.bin": (self.root / "model.bin").read_bytes()}
        for path in sorted((self.root / "data").rglob("*")):
            if path.is_file():
                found[path.relative_to(self.root).as_posix()] = path.read_bytes()
        return found

    def stored(self) -> set[str]:
        """oids on the dvlite remote."""
        if not self.store.is_dir():
            return set()
        return {p.parent.name + p.name for p in self.store.glob("??/*")}

    def remote_head(self, branch: str = "main") -> str | None:
        result = run_git(self.origin, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
        return result.stdout.strip() or None


def as_files(tree: Tree, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, content in tree.items():
        if isinstance(content, str | bytes):
            files[prefix + name] = content.encode() if isinstance(content, str) else content
        else:
            files.update(as_files(content, f"{prefix}{name}/"))
    return files


@pytest.fixture
def project(tmp_repo: TmpRepo, tmp_path: Path) -> Project:
    """V1 tracked and committed on `main`, the dvlite remote set as default (not yet pushed
    to), `origin` empty, the hooks installed for this interpreter."""
    store, origin = tmp_path / "store", tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    tmp_repo.git("remote", "add", "origin", str(origin))
    remote_add(tmp_repo.repo, "store", str(store), default=True)
    p = Project(tmp_repo, store, origin)
    p.write(V1)
    p.ok("commit", "-q", "-m", "v1")
    install(tmp_repo.repo, python=sys.executable)
    return p
