"""Running many `python -m dvlite` processes at once, and checking what they leave behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.cli.support import assert_cache_valid
from tests.helpers import run_dvlite

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

LOCK_TIMEOUT = {"DVLITE_CORE_LOCK_TIMEOUT": "90"}  # long enough for a busy machine


@dataclass(frozen=True)
class Finished:
    args: tuple[str, ...]
    cwd: Path
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"dvlite {' '.join(self.args)} in {self.cwd.name}: exit {self.code}\n{self.err}"


def start(args: Sequence[str], cwd: Path, env: Mapping[str, str] = LOCK_TIMEOUT,
          ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dvlite", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def run_together(commands: Sequence[tuple[Path, Sequence[str]]],
                 env: Mapping[str, str] = LOCK_TIMEOUT) -> list[Finished]:
    """Start every command at once, then wait for all of them."""
    procs = [(cwd, tuple(args), start(args, cwd, env)) for cwd, args in commands]
    done = []
    for cwd, args, proc in procs:
        out, err = proc.communicate(timeout=300)
        done.append(Finished(args, cwd, proc.returncode, out, err))
    return done


def assert_clean_finish(result: Finished, *, refusal: str = "lock") -> None:
    """It worked, or failed with one `error:` line holding ``refusal`` (by default: it gave
    up waiting for a lock); never a traceback."""
    assert "Traceback" not in result.err, str(result)
    if result.code != 0:
        errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
        assert result.code == 1, str(result)
        assert len(errors) == 1, str(result)
        assert refusal in errors[0], str(result)


def assert_repo_sound(root: Path, cache: Path, *stores: Path) -> None:
    """No corruption: every object on every store hashes to its name, no temp file is left
    in the cache, fsck is clean, every pointer parses and names data the cache holds (with
    the workspace copies moved away, a checkout restores them all), and the workspace then
    matches its pointers."""
    for store in (cache, *stores):
        assert_cache_valid(store)
    assert not list((cache / "tmp").glob("*")), "temp files left in the cache"
    fsck = run_dvlite(["fsck"], root)
    assert fsck.returncode == 0, fsck.stderr
    assert " 0 bad" in fsck.stderr
    listed = run_dvlite(["ls", "--json"], root)
    assert listed.returncode == 0, listed.stderr
    aside = root.parent / f"{root.name}-moved-aside"
    for item in json.loads(listed.stdout):
        # only the cache can bring it back now (a checkout skips what the workspace holds)
        (aside / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root / item["path"], aside / item["path"])
    checkout = run_dvlite(["checkout"], root)
    assert checkout.returncode == 0, checkout.stderr
    status = run_dvlite(["status", "--exit-code"], root)
    assert status.returncode == 0, status.stdout + status.stderr
