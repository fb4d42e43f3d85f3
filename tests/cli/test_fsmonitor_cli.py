"""``dvlite fsmonitor start|stop|status``, and ``dvlite status`` asking the watcher, end to
end: real daemons, and real ``dvlite`` processes whose folder listings an audit hook reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.fsmonitor_support import DEADLINE, Daemons, daemon_pids, daemons, poll, under

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

# `dvlite ARGS...` in this process's place, then the folders it listed on stderr's last line
_AUDITED = """
import json, os, sys
seen = []
sys.addaudithook(lambda event, args: seen.append(os.fsdecode(args[0]))
                 if event == "os.scandir" else None)
from dvlite.cli import main
try:
    main(sys.argv[1:])
finally:
    sys.stderr.write("\\n" + json.dumps(seen) + "\\n")
"""


@pytest.fixture
def watchers(tracked: TmpRepo) -> Iterator[Daemons]:
    """The watcher of the ``tracked`` repo (data, model.bin), killed at teardown."""
    with daemons() as found:
        found.watch(str(tracked.root))
        yield found


def audited(root: str, *args: str, watching: bool = True) -> tuple[str, list[str]]:
    """``dvlite ARGS`` in a real process: its stdout and the folders below data it listed."""
    env = {**os.environ, "DVLITE_CORE_FSMONITOR": "true" if watching else "false"}
    proc = subprocess.run([sys.executable, "-c", _AUDITED, *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=DEADLINE * 4, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, under(json.loads(proc.stderr.splitlines()[-1]), f"{root}/data")


def state(cli: Cli) -> dict[str, object]:
    result = cli("fsmonitor", "status", "--json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert isinstance(found, dict)
    return found


def test_status_starts_the_watcher_then_skips_the_walk(tracked: TmpRepo,
                                                       watchers: Daemons) -> None:
    root = str(tracked.root)
    walked: list[list[str]] = []
    for _ in range(2):  # none runs: walked, one started; then its first question: walked
        out, seen = audited(root, "status", "--json")
        assert json.loads(out)["changed"] == []
        walked.append(seen)
        Daemons.wait_running(watchers.tmp_dirs[0])
    assert all(walked)
    assert len(daemon_pids(watchers.tmp_dirs[0])) == 1
    assert audited(root, "status")[1] == []

    (tracked.root / "data/sub/b.bin").write_bytes(b"changed")
    tracked.gen({"data": {"new": {"c.txt": "new"}}})
    out, seen = audited(root, "status", "--json")
    assert out == audited(root, "status", "--json", watching=False)[0]
    assert json.loads(out)["changed"] == [{
        "path": "data", "state": "modified", "added": ["new/c.txt"],
        "modified": ["sub/b.bin"], "deleted": []}]
    assert seen == [f"{root}/data/new"]  # the new folder alone


def test_start_twice_runs_one_watcher(tracked: TmpRepo, watchers: Daemons, cli: Cli) -> None:
    first = cli("fsmonitor", "start")
    assert first.code == 0, first.err
    pid = state(cli)["pid"]
    assert f"runs (pid {pid})" in first.err
    second = cli("fsmonitor", "start")
    assert (second.code, f"runs (pid {pid})" in second.err) == (0, True)
    assert daemon_pids(watchers.tmp_dirs[0]) == [pid]
    assert state(cli) == {"running": True, "enabled": False, "pid": pid, "watches": 0,
                          "folders": {}}


def test_status_lists_the_folders_watched(tracked: TmpRepo, watchers: Daemons, cli: Cli,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVLITE_CORE_FSMONITOR", "true")
    assert cli("fsmonitor", "start").code == 0
    assert cli("status").code == 0  # asks about data (model.bin is a file: never asked)
    result = cli("fsmonitor", "status")
    pid = state(cli)["pid"]
    assert result.out == f"running (pid {pid}), 2 folders watched\n  data: watched\n"
    assert "core.fsmonitor" not in result.err  # on: no note


def test_the_note_when_status_does_not_ask(tracked: TmpRepo, watchers: Daemons,
                                           cli: Cli) -> None:
    for args in (("fsmonitor", "start"), ("fsmonitor", "status")):
        result = cli(*args)
        assert result.code == 0, result.err
        assert "`dvlite config core.fsmonitor true`" in result.err


def test_stop_then_status_says_not_running(tracked: TmpRepo, watchers: Daemons,
                                           cli: Cli) -> None:
    assert cli("fsmonitor", "start").code == 0
    pid = state(cli)["pid"]
    stopped = cli("fsmonitor", "stop")
    assert (stopped.code, stopped.err) == (0, "stopped the file-system watcher\n")
    assert not (tracked.root / ".dvlite/tmp/fsmonitor.sock").exists()
    poll(lambda: pid not in daemon_pids(watchers.tmp_dirs[0]), "the watcher to exit")
    result = cli("fsmonitor", "status")
    assert (result.code, result.out) == (0, "not running\n")
    assert state(cli) == {"running": False, "enabled": False, "pid": None, "watches": 0,
                          "folders": {}}


def test_stop_when_none_runs(tracked: TmpRepo, watchers: Daemons, cli: Cli) -> None:
    result = cli("fsmonitor", "stop")
    assert (result.code, result.out, result.err) == (
        0, "", "no file-system watcher was running\n")


def test_the_watcher_leaves_when_its_repo_is_deleted(tracked: TmpRepo, watchers: Daemons,
                                                     cli: Cli) -> None:
    assert cli("fsmonitor", "start").code == 0
    assert len(daemon_pids(watchers.tmp_dirs[0])) == 1
    tracked.close()
    shutil.rmtree(tracked.root)
    poll(lambda: daemon_pids(watchers.tmp_dirs[0]) == [], "the watcher to exit")


def test_the_watcher_leaves_when_another_takes_its_socket(tracked: TmpRepo,
                                                          watchers: Daemons, cli: Cli) -> None:
    assert cli("fsmonitor", "start").code == 0
    assert len(daemon_pids(watchers.tmp_dirs[0])) == 1
    socket_path = tracked.root / ".dvlite/tmp/fsmonitor.sock"
    socket_path.unlink()
    socket_path.write_text("")  # (another file in its place)
    poll(lambda: daemon_pids(watchers.tmp_dirs[0]) == [], "the watcher to exit")
