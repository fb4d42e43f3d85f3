"""`push/fetch/pull --run-cache` on every backend: a teammate's clone restores the runs
instead of repeating them."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.repro import repro
from dvlite.ops.sync import fetch, pull, push
from tests.ops.support import snapshot
from tests.ops.test_repro import PY, actions, make_pipe, runs
from tests.remote.contract import ANY, OBJECT, WRITABLE, configure, in_clone

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.helpers import TmpRepo
    from tests.remote.servers import Backend

    Clone = Callable[[TmpRepo], TmpRepo]

INDEX = r"runs/[0-9a-f]{2}/[0-9a-f]{30}"


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    store: Backend = request.getfixturevalue(f"{request.param}_remote")
    return store


def sent_to(backend: Backend) -> str:
    """The remote a test pushes to: a read-only backend is filled through its folder."""
    return "store" if backend.writable else "filler"


def outputs(t: TmpRepo) -> dict[str, bytes]:
    return {p: b for p, b in snapshot(t.root).items()
            if p in ("data/prepared.txt", "model.bin", "metrics.json", "noise.bin")}


@pytest.mark.parametrize("backend", ANY, indirect=True)
def test_a_teammate_restores_the_runs_pushed_with_the_run_cache(
    backend: Backend, tmp_repo: TmpRepo, clone: Clone,
) -> None:
    configure(tmp_repo, backend)
    make_pipe(tmp_repo)
    tmp_repo.git_commit("a pipeline, not run yet")
    repro(tmp_repo.repo)
    lock = (tmp_repo.root / "dvlite.lock").read_bytes()
    pushed = push(tmp_repo.repo, remote=sent_to(backend), run_cache=True)
    assert pushed.failed == {}
    files = backend.files()
    indexes = [f for f in files if not OBJECT.fullmatch(f)]
    assert len(indexes) == 2
    assert all(re.fullmatch(INDEX, f) for f in indexes), indexes
    # the index files are not objects to a listing of the store (gc --cloud, say)
    listed = set(tmp_repo.repo.remote(sent_to(backend)).iter_oids())
    assert listed == {f.replace("/", "") for f in files if OBJECT.fullmatch(f)}

    other = in_clone(clone, tmp_repo, backend)
    assert fetch(other.repo).transferred == 0  # without the flag, no runs
    fetched, _ = pull(other.repo, run_cache=True)
    assert fetched.failed == {}
    assert fetched.transferred == len(listed)
    result = repro(other.repo)
    assert actions(result) == {"prepare": "restored", "train": "restored"}
    assert runs(other) == []  # nothing ran in the clone
    assert outputs(other) == outputs(tmp_repo)
    assert (other.root / "dvlite.lock").read_bytes() == lock


NOISE = """\
import os
open("noise.bin", "wb").write(os.urandom(16))
open("runs.log", "a").write("noise\\n")
"""


@pytest.mark.parametrize("backend", WRITABLE, indirect=True)
def test_the_run_pushed_last_is_the_one_a_teammate_restores(
    backend: Backend, tmp_repo: TmpRepo, clone: Clone,
) -> None:
    configure(tmp_repo, backend)
    tmp_repo.gen({"noise.py": NOISE, "dvlite.toml": (
        f'[stages.noise]\ncmd = "{shlex.quote(PY)} noise.py"\ndeps = ["noise.py"]\n'
        'outs = ["noise.bin"]\n')})
    tmp_repo.git_commit("a nondeterministic stage")
    repro(tmp_repo.repo)
    first = (tmp_repo.root / "noise.bin").read_bytes()
    push(tmp_repo.repo, run_cache=True)
    assert push(tmp_repo.repo, run_cache=True).transferred == 0  # nothing new

    second = in_clone(clone, tmp_repo, backend)
    pull(second.repo, run_cache=True)
    repro(second.repo, force=True)  # a different result for the same inputs
    rerun = (second.root / "noise.bin").read_bytes()
    assert rerun != first
    assert push(second.repo, run_cache=True).failed == {}  # the remote's index grows

    third = in_clone(clone, tmp_repo, backend)
    pull(third.repo, run_cache=True)
    assert actions(repro(third.repo)) == {"noise": "restored"}
    assert (third.root / "noise.bin").read_bytes() == rerun
    # the first clone keeps its own run: entries new to it count as newer, so it takes
    # the pushed rerun when it fetches
    pull(tmp_repo.repo, run_cache=True)
    (tmp_repo.root / "noise.bin").unlink()
    assert actions(repro(tmp_repo.repo)) == {"noise": "restored"}
    assert (tmp_repo.root / "noise.bin").read_bytes() == rerun
