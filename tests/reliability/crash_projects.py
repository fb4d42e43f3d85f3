"""The projects the crash harness copies for every kill point, built once per test in-process.

Each builder writes a project into an empty folder ``base``: the git repo in ``base/repo``,
and, for the sync commands, a folder remote in ``base/remote`` that the config names by a
relative URL, so that a copy of ``base`` is a complete, independent project. Data is made by a
seeded generator: the same bytes on every run, different bytes in every file.
"""

from __future__ import annotations

import random
import subprocess
import sys
from typing import TYPE_CHECKING

from dvlite.ops.add import add
from dvlite.ops.init import config_set, remote_add
from dvlite.ops.sync import push
from dvlite.repo import Repo
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1 << 20
BIG = 64 * MIB  # the large file of `add` (a slow test)
MODEL = 8 * MIB  # the large file beside a folder in the other projects
STAGE_OUT = 24 * MIB  # the large file the pipeline's stage writes
STAGE_PARTS = 60  # and the small files in its folder out


def data(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def data_chunks(seed: str, size: int) -> list[bytes]:
    """``size`` bytes as the stage script makes them: a MiB at a time from one generator."""
    rng = random.Random(seed)
    return [rng.randbytes(MIB) for _ in range(size // MIB)]


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def folder(root: Path, *, files: int, version: int = 1, changed_every: int = 1) -> None:
    """``files`` small files in a few subfolders; from ``version`` 2 on, every
    ``changed_every``-th file has new bytes (so versions share the others)."""
    for i in range(files):
        era = version if i % changed_every == 0 else 1
        size = 64 + (i * 97) % 3000
        write(root / f"part{i % 6}" / f"f{i:04d}.bin", data(f"{root.name}-{i}-{era}", size))


def new_repo(base: Path) -> Repo:
    root = base / "repo"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    repo, _ = Repo.init(str(root))
    return repo


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def with_remote(repo: Repo) -> Repo:
    """Register ``../remote`` (beside the repo) as the default remote; return the reopened
    repo, which sees it."""
    remote_add(repo, "store", "../remote", default=True)
    root = repo.root
    repo.close()
    return Repo.discover(root)


def add_big(base: Path) -> None:
    """An initialised repo holding one large untracked file, ``big.bin``."""
    new_repo(base).close()
    write(base / "repo" / "big.bin", data("big", BIG))


def add_many(base: Path, *, files: int) -> None:
    """An initialised repo holding an untracked folder of small files, ``many``."""
    new_repo(base).close()
    folder(base / "repo" / "many", files=files)


def tracked(base: Path, *, files: int, remote: bool = False) -> Path:
    """A repo whose first commit tracks ``data`` (small files) and ``model.bin``."""
    repo = new_repo(base)
    if remote:
        repo = with_remote(repo)
    root = base / "repo"
    folder(root / "data", files=files)
    write(root / "model.bin", data("model-1", MODEL))
    add(repo, [str(root / "data"), str(root / "model.bin")])
    repo.close()
    commit(root, "v1")
    return root


def commit_edits(base: Path, *, files: int) -> None:
    """``tracked``, then the workspace edited: a third of the files changed, some removed,
    some new, and the model rewritten; nothing stored yet (`dvlite commit` stores it)."""
    root = tracked(base, files=files)
    folder(root / "data", files=files, version=2, changed_every=3)
    for i in range(0, files, 10):
        (root / "data" / f"part{i % 6}" / f"f{i:04d}.bin").unlink()
    for i in range(20):
        write(root / "data" / "new" / f"n{i:02d}.bin", data(f"new-{i}", 500 + i))
    write(root / "model.bin", data("model-2", MODEL))


def two_versions(base: Path, *, files: int, link: str = "") -> str:
    """``tracked`` at v1, then v2 (changed folder and model) added and committed; returns
    v1's commit. With ``link``, the workspace's files are linked that way to the cache."""
    root = tracked(base, files=files)
    v1 = git(root, "rev-parse", "HEAD").strip()
    with Repo.discover(str(root)) as repo:
        if link:
            config_set(repo, "cache.link", f"{link},copy")
    with Repo.discover(str(root)) as repo:
        folder(root / "data", files=files, version=2, changed_every=2)
        for i in range(0, files, 7):
            (root / "data" / f"part{i % 6}" / f"f{i:04d}.bin").unlink()
        write(root / "model.bin", data("model-2", MODEL))
        add(repo, [str(root / "data"), str(root / "model.bin")])
    commit(root, "v2")
    return v1


def checkout_back(base: Path, *, files: int, link: str = "") -> None:
    """``two_versions`` with git back at v1 while the workspace still holds v2's data:
    `dvlite checkout` has to rewrite it."""
    v1 = two_versions(base, files=files, link=link)
    git(base / "repo", "checkout", "-q", v1)


def pushable(base: Path, *, files: int) -> None:
    """``tracked`` with an empty default remote ``../remote``."""
    tracked(base, files=files, remote=True)


def pullable(base: Path, *, files: int) -> None:
    """``pushable``, pushed, and a git clone of it in ``base/clone`` (the same remote, no data
    yet): `dvlite pull` there fetches and checks out everything."""
    root = tracked(base, files=files, remote=True)
    with Repo.discover(str(root)) as repo:
        push(repo)
    git(base, "clone", "-q", str(root), str(base / "clone"))


def collectable(base: Path, *, files: int) -> None:
    """A repo with history, pushed to its remote, and garbage in both stores: objects of a
    deleted branch and of data added but replaced before it was committed."""
    root = tracked(base, files=files, remote=True)
    git(root, "checkout", "-q", "-b", "scratch")
    with Repo.discover(str(root)) as repo:
        folder(root / "data", files=files, version=3, changed_every=2)
        add(repo, [str(root / "data")])
        push(repo)
    commit(root, "scratch")
    git(root, "checkout", "-q", "-f", "main")
    git(root, "branch", "-q", "-D", "scratch")
    with Repo.discover(str(root)) as repo:
        folder(root / "data", files=files, version=4, changed_every=3)
        add(repo, [str(root / "data")])  # replaced below before any commit
        folder(root / "data", files=files, version=5, changed_every=3)
        write(root / "model.bin", data("model-5", MODEL))
        add(repo, [str(root / "data"), str(root / "model.bin")])
        push(repo)
    commit(root, "v5")


# On Ctrl-C the stage dies quietly, as most programs do (Python's traceback would be its own).
STAGE_SCRIPT = f"""\
import os, random, signal, tomllib
signal.signal(signal.SIGINT, signal.SIG_DFL)
size = tomllib.load(open("params.toml", "rb"))["make"]["size"]
os.makedirs("out/parts", exist_ok=True)
with open("out/big.bin", "wb") as f:
    rng = random.Random("stage")
    for _ in range(size // {MIB}):
        f.write(rng.randbytes({MIB}))
        f.flush()
for i in range({STAGE_PARTS}):
    with open(f"out/parts/p{{i:02d}}.bin", "wb") as f:
        f.write(random.Random(i).randbytes(200 + i * 30))
"""


def pipeline(base: Path) -> None:
    """A one-stage pipeline, committed but never run: `dvlite repro` runs it, and the stage
    writes a large file and a folder of small ones."""
    new_repo(base).close()
    root = base / "repo"
    (root / "make.py").write_text(STAGE_SCRIPT)
    (root / "params.toml").write_text(f"[make]\nsize = {STAGE_OUT}\n")
    (root / "dvlite.toml").write_text(
        "[stages.make]\n"
        f'cmd = ["{sys.executable}", "make.py"]\n'
        'deps = ["make.py"]\n'
        'params = ["make.size"]\n'
        'outs = ["out/big.bin", "out/parts"]\n'
    )
    commit(root, "pipeline")
