"""The crash harness: run the real `dvlite` on a copy of a prepared project, kill it at a chosen
point, check that nothing was lost or corrupted (``crash_checks``), run the same command again
and check that it finished the job: the workspace and every store end up exactly as after a
run that was never interrupted.

Kill points come from a seeded generator, so a failure is reproduced by rerunning the test:

- *timed*: SIGKILL after a delay drawn between 0 and the uninterrupted run's duration;
- *progress*: SIGKILL (or SIGINT, as Ctrl-C) once the command has changed as much on disk as
  the uninterrupted run had at a moment drawn from its busy time, measured as files created,
  changed or deleted below the scenario's folders (1 each) plus 1 per 4 KiB of them; robust to
  a slow machine, and never before the command started working.

The signal goes to the command's whole process group (git, a stage's command), as a terminal's
Ctrl-C does and as a killed job would. Counts of the kill points survived are appended to a
JSON-lines file (the ``crash_counts`` fixture); ``DVLITE_CRASH_POINTS`` scales how many points
each test tries (default 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvlite.ops.status import status
from dvlite.repo import Repo
from tests.reliability.crash_checks import State, assert_consistent

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

POINTS_ENV = "DVLITE_CRASH_POINTS"
# read at import: the tests' isolation fixture clears DVLITE_* variables before each test
_SCALE = float(os.environ.get(POINTS_ENV, "1"))
_POLL = 0.004  # seconds between looks at the disk while a command runs
_TIMEOUT = 120.0
_INTERRUPTED = 130


def scaled(count: int) -> int:
    """``count`` kill points, times ``DVLITE_CRASH_POINTS`` for a deeper run."""
    return max(1, round(count * _SCALE))


@dataclass(frozen=True)
class Scenario:
    """One command on one prepared project (``template``, a folder made by crash_projects)."""

    name: str
    args: tuple[str, ...]
    watch: tuple[str, ...]  # folders whose changes measure progress, relative to the base
    stores: tuple[str, ...]  # object stores below the base: the cache first
    remotes: tuple[str, ...] = ()  # the stores that are remotes
    repo: str = "repo"  # where the command runs
    # an extra look at a project where the command finished (status clean, outputs right)
    done: Callable[[Path], None] | None = None
    # what else must hold after every kill (a remote's packs and chunk lists complete)
    killed: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class KillPoint:
    sig: signal.Signals
    delay: float | None = None  # seconds after the start
    work: int | None = None  # or once this much changed on disk

    def __str__(self) -> str:
        at = f"after {self.delay:.3f} s" if self.delay is not None else f"at work {self.work}"
        return f"{self.sig.name} {at}"


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run: how long it took, how its work grew, what it left."""

    duration: float
    timeline: tuple[tuple[float, int], ...]  # (seconds after start, work) while it changed
    before: State
    after: State


@dataclass
class Tally:
    scenario: str
    killed: dict[str, int] = field(default_factory=dict)  # signal → kill points survived
    finished_first: int = 0  # the command was done before its kill point came

    def total(self) -> int:
        return sum(self.killed.values())


class _Work:
    """Measures what changed below some folders since it was made."""

    def __init__(self, base: Path, watch: tuple[str, ...]) -> None:
        self._roots = [base / w for w in watch]
        self._start = self._look()

    def _look(self) -> dict[str, tuple[int, int, int]]:
        seen: dict[str, tuple[int, int, int]] = {}
        stack = [str(r) for r in self._roots]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                seen[entry.path] = (st.st_ino, st.st_ctime_ns, st.st_size)
        return seen

    def __call__(self) -> int:
        now = self._look()
        done = sum(1 for path in self._start if path not in now)
        for path, (ino, ctime, size) in now.items():
            if self._start.get(path) != (ino, ctime, size):
                done += 1 + size // 4096
        return done


def _start(base: Path, scenario: Scenario, out: Path) -> subprocess.Popen[bytes]:
    with (out / "stdout").open("wb") as stdout, (out / "stderr").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "dvlite", *scenario.args], cwd=base / scenario.repo,
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
        )


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """No process of the command's group outlives it (a stage's command, a git child)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _retarget_links(base: Path, template: Path) -> None:
    """Symlinks copied from the template (`cache.link = symlink`) point into the copy's cache."""
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            link = os.path.join(folder, name)
            if os.path.islink(link):
                target = os.readlink(link)
                if target.startswith(f"{template}{os.sep}"):
                    os.unlink(link)
                    os.symlink(str(base) + target[len(str(template)):], link)


def run_to_end(base: Path, scenario: Scenario, out: Path) -> tuple[int, str]:
    """Run the command to completion; (exit code, stderr)."""
    proc = _start(base, scenario, out)
    try:
        code = proc.wait(timeout=_TIMEOUT)
    finally:
        _end_group(proc)
    return code, (out / "stderr").read_text(errors="replace")


class Harness:
    def __init__(self, template: Path, scenario: Scenario, scratch: Path) -> None:
        self.template = template
        self.scenario = scenario
        self.scratch = scratch
        self._trials = 0

    def copy(self) -> Path:
        self._trials += 1
        base = self.scratch / f"trial-{self._trials}"
        shutil.copytree(self.template, base, symlinks=True)
        _retarget_links(base, self.template)
        return base

    def state(self, base: Path) -> State:
        return State.of(base, self.scenario.repo, self.scenario.stores)

    def reference(self) -> Reference:
        """Run the command once, uninterrupted, watching its work grow."""
        base = self.copy()
        before = self.state(base)
        work = _Work(base, self.scenario.watch)
        proc = _start(base, self.scenario, base)
        started = time.monotonic()
        timeline: list[tuple[float, int]] = []
        while proc.poll() is None:
            done = work()
            if done and (not timeline or done != timeline[-1][1]):
                timeline.append((time.monotonic() - started, done))
            time.sleep(_POLL)
        duration = time.monotonic() - started
        _end_group(proc)
        err = (base / "stderr").read_text(errors="replace")
        assert proc.returncode == 0, f"{self.scenario.name}: {err}"
        timeline.append((duration, work()))
        self._check_done(base)
        reference = Reference(duration, tuple(timeline), before, self.state(base))
        shutil.rmtree(base)
        return reference

    def chains(self, ref: Reference, *, timed: int, progress: int, interrupts: int,
               seed: int) -> list[tuple[KillPoint, ...]]:
        """The kill points, in chains: each SIGKILL at a progress point is followed by a timed
        one of the run that resumes the work, which meets the half-done state it left."""
        rng = random.Random(f"{self.scenario.name}-{seed}")

        def timed_kill() -> KillPoint:
            return KillPoint(signal.SIGKILL, delay=rng.uniform(0, ref.duration))

        # a moment between the first change on disk and the last one; the kill comes once
        # the work done by then is done again, so before the command's last change
        changes = ref.timeline[:-1] or ref.timeline

        def progress_kill(sig: signal.Signals) -> KillPoint:
            moment = rng.uniform(changes[0][0], changes[-1][0])
            return KillPoint(sig, work=max(w for t, w in changes if t <= moment))

        return (
            [(timed_kill(),) for _ in range(scaled(timed))]
            + [(progress_kill(signal.SIGKILL), timed_kill()) for _ in range(scaled(progress))]
            + [(progress_kill(signal.SIGINT),) for _ in range(scaled(interrupts))]
        )

    def trial(self, chain: tuple[KillPoint, ...], ref: Reference) -> list[KillPoint]:
        """Kill the command at each point of ``chain`` in turn (a kill the command outran ends
        the chain), checking after each; then run it to the end and check it finished the job.
        Returns the points that killed it."""
        base = self.copy()
        where = f"{self.scenario.name} (trial {self._trials}, kept at {base})"
        landed: list[KillPoint] = []
        for point in chain:
            if not self._kill(base, point, f"{where}, {point}"):
                break
            landed.append(point)
            assert_consistent(base, self.scenario.repo, self.scenario.stores,
                              remotes=self.scenario.remotes, before=ref.before, kept=ref.after)
            if self.scenario.killed is not None:
                self.scenario.killed(base)
        where = f"{where}, after {', '.join(map(str, landed)) or 'no kill'}"
        code, err = run_to_end(base, self.scenario, base)
        assert code == 0, f"{where}: the rerun failed: {err}"
        assert "Traceback" not in err, f"{where}: {err}"
        self._check_done(base)
        after = self.state(base)
        assert after == ref.after, f"{where}: the rerun did not leave what a full run does: " \
            f"{_difference(ref.after, after)}"
        shutil.rmtree(base)  # kept for a look when a check failed
        return landed

    def _kill(self, base: Path, point: KillPoint, where: str) -> bool:
        work = _Work(base, self.scenario.watch) if point.work is not None else None
        proc = _start(base, self.scenario, base)
        try:
            _wait_for(proc, point, work, where)
            code = proc.wait(timeout=_TIMEOUT)
        finally:
            _end_group(proc)
            proc.wait()
        err = (base / "stderr").read_text(errors="replace")
        if code == 0:
            return False  # it finished before the point came
        assert "Traceback" not in err, f"{where}: {err}"
        if point.sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, f"{where}: exit {code}: {err}"
        else:
            # Ctrl-C: exit 130, or a failure it caused (a stage's command, git) as one error
            # line; or, when it came as the interpreter was ending after the work, death by
            # the signal (Python's way of passing Ctrl-C on to the shell)
            lines = err.strip().splitlines()
            assert code in (_INTERRUPTED, 1, -signal.SIGINT), f"{where}: exit {code}: {err}"
            if code == -signal.SIGINT:
                return True
            assert lines, f"{where}: exit {code} and no message"
            assert lines[-1].startswith(("error: ", "hint: ")), f"{where}: {err}"
        return True

    def _check_done(self, base: Path) -> None:
        if self.scenario.done is not None:
            self.scenario.done(base)


def _wait_for(proc: subprocess.Popen[bytes], point: KillPoint, work: _Work | None,
              where: str) -> None:
    """Send the point's signal once its delay passed or its work was done (unless the command
    ends first)."""
    started = time.monotonic()
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if (point.delay is not None and elapsed >= point.delay) or (
            work is not None and point.work is not None and work() >= point.work
        ):
            _signal_group(proc, point.sig)
            return
        assert elapsed < _TIMEOUT, f"{where}: never reached the kill point"
        time.sleep(_POLL)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _difference(want: State, got: State) -> str:
    paths = sorted(set(want.workspace) ^ set(got.workspace)) + sorted(
        p for p in set(want.workspace) & set(got.workspace) if want.workspace[p] != got.workspace[p]
    )
    stores = {s: (len(want.stores[s] - got.stores.get(s, set())),
                  len(got.stores.get(s, set()) - want.stores[s])) for s in want.stores}
    return f"workspace paths differing {paths[:8]}; store (missing, extra) {stores}"


def crash_test(template: Path, scenario: Scenario, scratch: Path, *, counts: Path, timed: int,
               progress: int, interrupts: int = 0, seed: int = 0) -> Tally:
    """Run every kill point of ``scenario``; returns how many were survived, and appends that
    to the ``counts`` file."""
    harness = Harness(template, scenario, scratch)
    ref = harness.reference()
    tally = Tally(scenario.name)
    chains = harness.chains(ref, timed=timed, progress=progress, interrupts=interrupts, seed=seed)
    for chain in chains:
        landed = harness.trial(chain, ref)
        for point in landed:
            tally.killed[point.sig.name] = tally.killed.get(point.sig.name, 0) + 1
        tally.finished_first += len(landed) < len(chain)
    record(tally, counts)
    # most points must land while the command works, or the test proves little
    assert tally.total() >= len(chains) / 2, tally
    return tally


def record(tally: Tally, counts: Path) -> None:
    line = json.dumps({"scenario": tally.scenario, "killed": tally.killed,
                       "finished_first": tally.finished_first})
    with counts.open("a") as f:
        f.write(line + "\n")


def status_clean(base: Path, repo: str = "repo") -> None:
    """The workspace matches its pointers and lock, and the cache has all their data."""
    with Repo.discover(str(base / repo)) as project:
        found = status(project)
    assert found.entries == (), found.entries
