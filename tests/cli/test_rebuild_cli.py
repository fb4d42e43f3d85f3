"""``dvlite repro --rev`` on the command line: one line per output, exit codes, JSON, and Ctrl-C
in the middle of a stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.repro import repro
from tests.cli.support import assert_error
from tests.helpers import run_dvlite
from tests.ops.test_rebuild import (
    assert_no_worktree_left,
    lock_outs,
    make_history,
    make_noisy,
    private_tempdir,
    state,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


def test_matching_rebuild_prints_matches_and_exits_0(
    tmp_repo: TmpRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp_root = private_tempdir(tmp_path, monkeypatch)
    make_history(tmp_repo)
    before = state(tmp_repo.root)

    result = cli("repro", "--rev", "v1")

    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "matches data/prepared.txt", "matches metrics.json", "matches model.bin"]
    sha = tmp_repo.git("rev-parse", "v1").strip()
    assert result.err_lines == ["rebuilding `prepare`", "rebuilding `train`",
                                f"all 3 output(s) match `v1` ({sha[:12]})"]
    assert state(tmp_repo.root) == before
    assert_no_worktree_left(tmp_repo.root, temp_root)


def test_json_document_and_stage_targets(tmp_repo: TmpRepo, cli: Cli) -> None:
    make_history(tmp_repo)
    result = cli("repro", "--rev", "v1", "prepare", "--json")
    assert result.code == 0, result.err
    oid = lock_outs(tmp_repo, "v1")["data/prepared.txt"]
    assert json.loads(result.out) == {
        "rev": tmp_repo.git("rev-parse", "v1").strip(),
        "outputs": [{"path": "data/prepared.txt", "stage": "prepare", "status": "matches",
                     "expected": oid, "actual": oid}],
        "environment": {},
    }


def test_differing_output_prints_both_oids_and_exits_1(tmp_repo: TmpRepo) -> None:
    make_noisy(tmp_repo)
    recorded = lock_outs(tmp_repo, "v1")["noise.bin"]
    # a real process: the stage's own stdout must not end up in the data
    result = run_dvlite(["repro", "--rev", "v1"], tmp_repo.root)
    assert result.returncode == 1, result.stderr
    status, path, old, arrow, new = result.stdout.splitlines()[-1].split()
    assert (status, path, old, arrow) == ("differs", "noise.bin", recorded, "->")
    assert len(new) == len(old)
    assert new != old
    assert "1 of 1 output(s) do not match `v1`" in result.stderr

    as_json = run_dvlite(["repro", "--rev", "v1", "--json"], tmp_repo.root)
    assert as_json.returncode == 1, as_json.stderr
    [output] = json.loads(as_json.stdout)["outputs"]  # stdout is the JSON document alone
    assert output["status"] == "differs"
    assert "noise stage says hi" in as_json.stderr


def test_bad_usage_and_bad_revisions(tmp_repo: TmpRepo, cli: Cli) -> None:
    make_noisy(tmp_repo)
    assert_error(cli("repro", "--rev", "v1", "--dry-run"), "`--dry-run`", code=2)
    assert_error(cli("repro", "--rev", "v1", "-s", "noise"), "`--single-item`", code=2)
    assert_error(cli("repro", "-r", "store"), "`--rev`", code=2)
    assert_error(cli("repro", "--rev", "v9"), "`v9`")
    tmp_repo.git("rm", "-q", "dvlite.lock")
    tmp_repo.git_commit("forget the lock")
    assert_error(cli("repro", "--rev", "HEAD"), "`dvlite.lock`", "`HEAD`")


SLOW = """\
import os, pathlib, time
marker = os.environ.get("REBUILD_TEST_MARKER")
if marker:  # set only for the rebuild: say where it runs, then take a long time
    pathlib.Path(marker).write_text(os.getcwd())
    time.sleep(60)
with open("slow.txt", "w") as f:
    f.write("done")
"""


@pytest.mark.e2e
def test_ctrl_c_during_a_stage_exits_130_and_removes_the_worktree(
    tmp_repo: TmpRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp_root = private_tempdir(tmp_path, monkeypatch)
    cmd = json.dumps([sys.executable, "slow.py"])
    tmp_repo.gen({"slow.py": SLOW,
                  "dvlite.toml": f'[stages.slow]\ncmd = {cmd}\nouts = ["slow.txt"]\n'})
    repro(tmp_repo.repo)
    tmp_repo.git_commit("v1")
    marker = tmp_path / "marker"
    before = state(tmp_repo.root)

    proc = subprocess.Popen(
        [sys.executable, "-m", "dvlite", "repro", "--rev", "HEAD"], cwd=tmp_repo.root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "REBUILD_TEST_MARKER": str(marker), "TMPDIR": str(temp_root)})
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the stage never started: {proc.communicate()[1]}")
        time.sleep(0.01)
    worktree = marker.read_text()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in err
    assert worktree.startswith(str(temp_root))
    assert_no_worktree_left(tmp_repo.root, temp_root)
    assert state(tmp_repo.root) == before
