"""The tools compared, as command templates per step, and how to get each one.

A step is a list of command templates; `{exe}` stands for the tool's own command (one or
more words) and `{name}` for a value the scenario passes (`target`, `rev`, `url`, ...). A
step a tool does not have is absent: its cell in the table stays empty.

Steps: init (a new repo, untimed), add, status, checkout (`git checkout REV` and the tool's
checkout, timed together), clone (after `git clone`, untimed), remote local / remote s3
(point the repo at a fresh store, untimed), push, pull, pull path (one file of a tracked
folder), gc, repro, help, version.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

DVC_VERSION = "3.67.1"

REPRO_INPUT = "input.txt"
REPRO_CMD = "cp input.txt output.txt"


@dataclass(frozen=True)
class Tool:
    name: str
    exe: tuple[str, ...]
    cache: str  # the object store, relative to the repo root
    undo: tuple[str, ...]  # files an `add` rewrites (templates), put back to undo it
    links: dict[str, str]  # link config -> the tool's setting ({link} in init)
    steps: dict[str, tuple[str, ...]]
    pipeline: dict[str, str] = field(default_factory=dict)  # a one-stage pipeline's files

    def has(self, step: str) -> bool:
        return step in self.steps

    def commands(self, step: str, **values: str) -> list[list[str]]:
        return [self._expand(template, values) for template in self.steps.get(step, ())]

    def _expand(self, template: str, values: dict[str, str]) -> list[str]:
        argv: list[str] = []
        for word in shlex.split(template):
            argv += self.exe if word == "{exe}" else [word.format(**values)]
        return argv


def dvlite() -> Tool:
    """The dvlite installed in this interpreter: the `dvlite` script beside it, if any."""
    script = Path(sys.executable).with_name("dvlite")
    exe = (str(script),) if script.exists() else (sys.executable, "-m", "dvlite")
    return Tool(
        name="dvlite", exe=exe, cache=".dvlite/cache", undo=("{target}.dvl",),
        links={"copy": "copy", "hardlink": "hardlink,copy"},
        steps={
            "init": ("git init -q", "{exe} -q init", "{exe} config cache.link {link}"),
            "add": ("{exe} -q add {target}",),
            "status": ("{exe} -q status",),
            "checkout": ("git checkout -q {rev}", "{exe} -q checkout"),
            "remote local": ("{exe} remote add --local -f -d bench {url}",),
            "remote s3": ("{exe} remote add --local -f -d bench {url}",
                          "{exe} remote modify --local bench endpoint_url {endpoint}"),
            "push": ("{exe} -q push",),
            "pull": ("{exe} -q pull",),
            "pull path": ("{exe} -q pull {path}",),
            "gc": ("{exe} -q gc -w -f",),
            "repro": ("{exe} -q repro",),
            "help": ("{exe} --help",),
            "version": ("{exe} --version",),
        },
        pipeline={"dvlite.toml": f'[stages.copy]\ncmd = "{REPRO_CMD}"\n'
                                 f'deps = ["{REPRO_INPUT}"]\nouts = ["output.txt"]\n'},
    )


def dvlite_off(tool: Tool) -> Tool:
    """`tool` (dvlite) with chunks and packs turned off in each new repo, before its first add."""
    init = (*tool.steps["init"], "{exe} config core.chunk_min_size 0",
            "{exe} config core.pack_size 0")
    return replace(tool, name="dvlite-off", steps={**tool.steps, "init": init})


def dvlite_watched(tool: Tool) -> Tool:
    """`tool` (dvlite) with its file-system watcher (`core.fsmonitor`), for the steps it
    changes: status; it is started, and told about the tracked folder, before the first."""
    init = (*tool.steps["init"], "{exe} config core.fsmonitor true")
    kept = {step: commands for step, commands in tool.steps.items()
            if not step.startswith(("remote ", "push", "pull", "gc", "help", "version", "repro"))}
    return replace(tool, name="dvlite-fsmon", steps={
        **kept, "init": init, "warm": ("{exe} -q fsmonitor start", "{exe} -q status")})


def dvc(workdir: Path) -> Tool:
    """DVC from its own virtual environment under `workdir` (made on first use)."""
    venv = workdir / "tools" / f"dvc-{DVC_VERSION}"
    exe = venv / "bin" / "dvc"
    if not exe.exists():
        print(f"installing dvc[s3]=={DVC_VERSION} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"dvc[s3]=={DVC_VERSION}"], check=True)
    return Tool(
        name="DVC", exe=(str(exe),), cache=".dvc/cache", undo=("{target}.dvc",),
        links={"copy": "copy", "hardlink": "hardlink"},
        steps={
            "init": ("git init -q", "{exe} init -q", "{exe} config core.check_update false",
                     "{exe} config cache.type {link}"),
            "add": ("{exe} add -q {target}",),
            "status": ("{exe} status",),
            "checkout": ("git checkout -q {rev}", "{exe} checkout -q"),
            "remote local": ("{exe} remote add --local -f -d bench {url}",),
            "remote s3": ("{exe} remote add --local -f -d bench {url}",
                          "{exe} remote modify --local bench endpointurl {endpoint}"),
            "push": ("{exe} push -q",),
            "pull": ("{exe} pull -q",),
            "pull path": ("{exe} pull -q {path}",),
            "gc": ("{exe} gc -w -f -q",),
            "repro": ("{exe} repro -q",),
            "help": ("{exe} --help",),
            "version": ("{exe} --version",),
        },
        pipeline={"dvc.yaml": f"stages:\n  copy:\n    cmd: {REPRO_CMD}\n"
                              f"    deps: [{REPRO_INPUT}]\n    outs: [output.txt]\n"},
    )


def git_lfs(*, install: bool) -> Tool | None:
    """git-lfs, installed with apt-get when missing and allowed; None when not to be had.

    Its data lives in git itself: `add` is `git add`, `status` is `git status`, checkout is
    `git checkout` (the smudge filter), and a folder remote is a bare repo reached by a
    file:// URL (git-lfs's standalone file transfer). It has no S3 remote, no gc of the same
    scope, no pipeline and no link types.
    """
    if not _has_git_lfs() and install and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing git-lfs with apt-get", file=sys.stderr)
        for command in (["apt-get", "install", "-y", "-q", "git-lfs"],
                        ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "git-lfs"]):
            subprocess.run(command, check=False, capture_output=True)
            if _has_git_lfs():
                break
    if not _has_git_lfs():
        return None
    return Tool(
        name="git-lfs", exe=("git", "lfs"), cache=".git/lfs/objects", undo=(".git/index",),
        links={"copy": ""},
        steps={
            "init": ("git init -q", "git lfs install --local", "git lfs track {pattern}"),
            "add": ("git add {target}",),
            "status": ("git status",),
            "checkout": ("git checkout -q {rev}",),
            "clone": ("git lfs install --local",),
            "remote local": ("git init -q --bare {url}",
                             "git config remote.bench.url file://{url}"),
            "push": ("git push -q bench HEAD:refs/heads/main",),
            "pull": ("git lfs pull bench",),
            "version": ("{exe} version",),
        },
    )


def _has_git_lfs() -> bool:
    try:
        return subprocess.run(["git", "lfs", "version"], capture_output=True,
                              check=False).returncode == 0
    except OSError:
        return False


def with_version_flag(tool: Tool, env: dict[str, str]) -> Tool:
    """`--version` if the tool knows it, else its `version` command (and say so)."""
    probe = subprocess.run([*tool.exe, "--version"], capture_output=True, env=env, check=False)
    if probe.returncode == 0 or not tool.has("version"):
        return tool
    print(f"note: `{tool.name} --version` fails; timing `{tool.name} version` instead",
          file=sys.stderr)
    return replace(tool, steps={**tool.steps, "version": ("{exe} version",)})


def environment(workdir: Path) -> dict[str, str]:
    """The environment every tool runs in: a private HOME and git config, no telemetry,
    dummy S3 credentials, and none of the caller's DVLITE_/DVC_/GIT_/AWS_ settings, nor
    PYTHONDONTWRITEBYTECODE."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@dvlite.invalid\n"
                         "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
                         "[gc]\n\tauto = 0\n")
    # PYTHONDONTWRITEBYTECODE too: with it, a tool installed from a source tree (dvlite,
    # editable) recompiles every module on each run while pip-installed ones (DVC) load theirs
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DVLITE_", "DVC_", "GIT_", "AWS_", "PYTHONDONTWRITEBYTECODE"))}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(gitconfig),
        "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    return env


def versions(tools: list[Tool], env: dict[str, str]) -> dict[str, str]:
    """Each tool's version line, and git's."""
    found = {"git": _first_line(["git", "--version"], env)}
    for tool in (tool for tool in tools if tool.has("version")):
        found[tool.name] = _first_line(tool.commands("version")[0], env)
    return found


def _first_line(argv: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "?"
