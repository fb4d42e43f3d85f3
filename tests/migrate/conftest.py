"""Real DVC and real git-lfs for the import tests.

DVC runs from its own virtual environment (its dependencies would clash with dvlite's
pins), the one the benchmark makes (benchmarks/tools.py), made once and kept: under
``$DVLITE_CI_CACHE`` in CI, else where the benchmark keeps it. Without network it cannot be
made, and the tests that need it skip saying so, unless ``DVLITE_MIGRATE_TOOLS=required``
(.ci/run sets it), where they fail.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

import pytest

from dvlite.fsutil import FileLock

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


class Run(Protocol):
    def __call__(self, cwd: Path, *args: str) -> str: ...


def _unavailable(reason: str) -> None:
    if os.environ.get("DVLITE_MIGRATE_TOOLS") == "required":
        pytest.fail(f"{reason} (DVLITE_MIGRATE_TOOLS=required)")
    pytest.skip(reason)


def _tool_dir() -> Path:
    return Path(os.environ.get("DVLITE_CI_CACHE") or Path(tempfile.gettempdir()) / "dvlite-bench")


@pytest.fixture(scope="session")
def dvc_exe() -> str:
    """The `dvc` script of DVC's own venv, made on first use."""
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark's folder of scripts
    _tool_dir().mkdir(parents=True, exist_ok=True)
    try:
        tools = importlib.import_module("tools")
        # one xdist worker makes the venv while the other waits for it
        with FileLock(str(_tool_dir() / "dvc-venv.lock"), timeout=1800):
            tool = tools.dvc(_tool_dir())
    except (subprocess.CalledProcessError, OSError) as exc:
        _unavailable(f"cannot make DVC's venv (no network?): {exc}")
    finally:
        sys.path.remove(str(BENCHMARKS))
    return str(tool.exe[0])


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def dvc(dvc_exe: str, tmp_path: Path) -> Run:
    """``dvc(cwd, "add", "data")`` runs real DVC; no analytics, no update checks."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache")}

    def run(cwd: Path, *args: str) -> str:
        return _run([dvc_exe, *args], cwd, env)

    return run


@pytest.fixture
def git_lfs() -> Run:
    """``git_lfs(cwd, "track", "*.bin")`` runs Debian's git-lfs, installed in this test's
    git config (its HOME is a temp folder)."""
    if shutil.which("git") is None or subprocess.run(
        ["git", "lfs", "version"], capture_output=True, check=False,
    ).returncode != 0:
        _unavailable("git-lfs is not installed (`apt-get install git-lfs`)")
    _run(["git", "lfs", "install", "--skip-repo"], Path.cwd())

    def run(cwd: Path, *args: str) -> str:
        return _run(["git", "lfs", *args], cwd)

    return run


# The DVC project every import-dvc test starts from: a file and a folder added, a pipeline of
# two stages with params (and generated ones: foreach, matrix), pushed to a local remote, an
# S3 remote whose secret is in config.local, all committed. Built once, copied per test.
DATA_TXT = b"hello dvc\n"
IMAGES = {"a.png": bytes(range(256)) * 4, "sub/b.bin": b"\x00\x01" * 100}
PARAMS = "prepare:\n  split: 0.25\ntrain:\n  lr: 0.1\n  epochs: 2\nsizes: [small, large]\n"
DVC_YAML = """\
stages:
  prepare:
    cmd: >-
      mkdir -p prepared && cp data.txt prepared/data.txt
      && echo ${prepare.split} > prepared/split.txt
    deps: [data.txt]
    params: [prepare.split]
    outs: [prepared]
  train:
    cmd: >-
      cat prepared/data.txt prepared/split.txt > model.bin && echo '{"acc": 0.5}' > metrics.json
      && echo log > train.log
    deps: [prepared]
    params: [train]
    outs:
      - model.bin
      - train.log:
          cache: false
    metrics:
      - metrics.json:
          cache: false
  report:
    foreach: ${sizes}
    do:
      cmd: echo ${item} > report-${item}.txt
      outs: ["report-${item}.txt"]
  grid:
    matrix:
      n: [1, 2]
      mode: [fast]
    cmd: echo ${item.n} ${item.mode} > grid-${item.n}-${item.mode}.txt
    outs: ["grid-${item.n}-${item.mode}.txt"]
"""
SECRET = "S3CR3T-VALUE-never-in-git"


def _isolated_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVLITE_", "GIT_", "DVC_"))}
    env.update({"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
                "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1",
                "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
                "XDG_CONFIG_HOME": str(home / ".config")})
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"], env[f"GIT_{who}_EMAIL"] = "dvlite tests", "tests@dvlite.invalid"
    return env


@pytest.fixture(scope="session")
def dvc_template(dvc_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dvc-template")
    env = _isolated_env(base / "home")
    project = base / "project"
    project.mkdir()
    (project / "data.txt").write_bytes(DATA_TXT)
    for name, content in IMAGES.items():
        (project / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "images" / name).write_bytes(content)
    (project / "params.yaml").write_text(PARAMS)
    (project / "dvc.yaml").write_text(DVC_YAML)
    steps = [["git", "init", "-q"], [dvc_exe, "init", "-q"],
             [dvc_exe, "config", "core.check_update", "false"],
             [dvc_exe, "add", "-q", "data.txt", "images"], [dvc_exe, "repro", "-q"],
             [dvc_exe, "remote", "add", "-d", "storage", "../dvc-remote"],
             [dvc_exe, "remote", "add", "cloud", "s3://bucket/project"],
             [dvc_exe, "remote", "modify", "cloud", "endpointurl", "http://127.0.0.1:9"],
             [dvc_exe, "remote", "modify", "cloud", "jobs", "4"],
             [dvc_exe, "remote", "modify", "--local", "cloud", "secret_access_key", SECRET],
             [dvc_exe, "push", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "dvc"]]
    for argv in steps:
        _run(argv, project, env)
    return base


@pytest.fixture
def dvc_project(dvc_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the DVC project (and its remote beside it), as the current folder."""
    shutil.copytree(dvc_template, tmp_path / "w", symlinks=True,
                    ignore=shutil.ignore_patterns("home"))
    project = tmp_path / "w" / "project"
    monkeypatch.chdir(project)
    return project
