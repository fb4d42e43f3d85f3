"""Run commands and measure them: wall time, and the peak memory of the process tree.

Each command runs under a small Python wrapper that forks it, waits for it with `os.wait4`
and reports the elapsed time and `ru_maxrss`: the largest resident set of the command and of
every descendant it waited for. The wrapper is there because Linux carries a parent's peak
into a forked child across exec: forked from this process, every command would report at
least this process's peak; forked from the wrapper, at least the wrapper's (about 9 MiB).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

_WRAPPER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - start} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class Traffic:
    """What a step did to a remote: its store's bytes and objects before and after, and, where
    the backend lets us count them (S3), its requests and the bytes on the wire."""

    uploaded: int  # bytes stored after the step minus before
    stored: int  # bytes stored after the step
    objects: int  # files (keys) stored after the step
    requests: int | None = None
    sent: int | None = None  # bytes to the server, HTTP headers included
    received: int | None = None  # bytes from the server: what a pull read
    calls: tuple[str, ...] | None = None  # the requests themselves, when there were few


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_kib: int
    traffic: Traffic | None = None


def total(samples: Sequence[Sample]) -> Sample:
    """Several steps as one: their summed time and traffic, the largest peak, the last store."""
    traffics = [s.traffic for s in samples if s.traffic]

    def summed(name: str) -> int | None:
        values = [getattr(t, name) for t in traffics]
        return None if None in values else sum(values)

    traffic = replace(traffics[-1], uploaded=sum(t.uploaded for t in traffics),
                      requests=summed("requests"), sent=summed("sent"),
                      received=summed("received"), calls=None) if traffics else None
    return Sample(sum(s.seconds for s in samples), max(s.peak_kib for s in samples), traffic)


class CommandError(RuntimeError):
    pass


def run(commands: Sequence[Sequence[str]], *, cwd: Path, env: Mapping[str, str],
        log: Path) -> Sample:
    """Run `commands` one after the other; their summed time and their largest peak.

    Output goes to `log`; a command that fails raises `CommandError` quoting its tail.
    """
    seconds, peak = 0.0, 0
    usage = log.with_suffix(".usage")
    with log.open("ab") as out:
        for argv in commands:
            out.write(f"$ (cd {cwd} && {shlex.join(argv)})\n".encode())
            out.flush()
            code = subprocess.call([sys.executable, "-I", "-S", "-c", _WRAPPER, str(usage),
                                    *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
            if code:
                out.flush()
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise CommandError(f"`{shlex.join(argv)}` in {cwd} exited with {code}:\n"
                                   + "\n".join(tail))
            took, kib = usage.read_text().split()
            seconds += float(took)
            peak = max(peak, int(kib))
    return Sample(seconds, peak)


def timed(action: Callable[[], object]) -> float:
    """Seconds one call of `action()` takes (for the in-process references)."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
