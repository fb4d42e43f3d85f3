"""How ``dvlite status`` looks: stable plain lines into a pipe, groups and colour on a
terminal (or with FORCE_COLOR), never colour with NO_COLOR."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

ESC = "\x1b["


@pytest.fixture
def dirty(tracked: TmpRepo, tmp_path: Path, cli: Cli) -> TmpRepo:
    """data modified, model.bin deleted, other.bin not in the cache, nothing on the remote."""
    assert cli("remote", "add", "-d", "store", str(tmp_path / "remote")).code == 0
    tracked.gen({"other.bin": b"other\n"})
    tracked.dvl_add("other.bin")
    for obj in (tracked.root / ".dvlite" / "cache").rglob("*"):
        if obj.is_file() and obj.read_bytes() == b"other\n":
            obj.chmod(0o644)
            obj.unlink()
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    (tracked.root / "model.bin").unlink()
    return tracked


def test_plain_lines_into_a_pipe(dirty: TmpRepo, cli: Cli) -> None:
    result = cli("status", "--remote")
    assert result.code == 0, result
    assert ESC not in result.out
    lines = result.out.splitlines()
    assert lines[:3] == [
        "modified:     data  (1 modified)",
        "deleted:      model.bin",
        "not in cache: other.bin",
    ]
    assert lines[3].startswith("not on remote: ")  # a space after the colon, as on every line
    assert all(line.split(": ", 1)[1].strip() for line in lines)


def test_forced_terminal_groups_and_colours(dirty: TmpRepo, cli: Cli,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = cli("status", "--remote")
    assert result.code == 0, result
    assert ESC + "31m" in result.out  # modified and deleted in red
    assert ESC + "33m" in result.out  # not in cache in yellow
    plain = _strip(result.out).splitlines()
    assert plain[0] == "Changes not stored in the cache:"
    assert plain[1].startswith("  (`dvlite add`")
    assert plain[2].split() == ["modified:", "data", "(1", "modified)"]
    assert plain[3].split() == ["deleted:", "model.bin"]
    assert plain[4] == ""
    assert plain[5] == "Data missing from the cache:"
    assert "Not on the remote yet:" in plain
    assert "dvlite push" in result.out


def test_no_color_wins_over_force_color(dirty: TmpRepo, cli: Cli,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # NO_COLOR=1 comes from the isolate fixture
    result = cli("status")
    assert ESC not in result.out
    assert result.out.splitlines()[0] == "Changes not stored in the cache:"  # still grouped


def test_clean_status_prints_nothing_on_stdout_on_a_terminal(tracked: TmpRepo, cli: Cli,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = cli("status")
    assert (result.code, result.out) == (0, "")
    assert "match their pointers" in result.err


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _run_on_a_terminal(root: Path, env: dict[str, str], *args: str,
                       stream: str = "stdout") -> str:
    """``dvlite ARGS`` (default: status) with its stdout (or stderr) on a pseudo-terminal;
    what it wrote there."""
    leader, follower = pty.openpty()
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: follower}
    try:
        proc = subprocess.run([sys.executable, "-m", "dvlite", *(args or ["status"])],
                              cwd=root, env=env, timeout=60, check=False, **streams)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


@pytest.mark.e2e
def test_a_real_terminal_gets_colour_unless_no_color(dirty: TmpRepo) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    coloured = _run_on_a_terminal(dirty.root, env)
    assert ESC + "31m" in coloured
    assert "Changes not stored in the cache:" in coloured
    bare = _run_on_a_terminal(dirty.root, {**env, "NO_COLOR": "1"})
    assert ESC not in bare
    assert "Changes not stored in the cache:" in bare
    piped = subprocess.run([sys.executable, "-m", "dvlite", "status"], cwd=dirty.root,
                           capture_output=True, text=True, env=env, check=False)
    assert ESC not in piped.stdout
    assert piped.stdout.startswith("modified:     data")


@pytest.mark.e2e
def test_progress_bar_shows_rate_and_eta_on_a_terminal(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"many": {f"{i}.txt": f"file {i}\n" * 50 for i in range(400)}})
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    drawn = _strip(_run_on_a_terminal(tmp_repo.root, env, "add", "many", stream="stderr"))
    assert "hashing" in drawn
    assert "/400" in drawn  # done of total
    assert "files/s" in drawn
    assert "eta" in drawn
    assert "added `many`" in drawn
