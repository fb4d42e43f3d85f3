"""The run cache in ``repro``: real stages (Python scripts counting their runs) in real git
repos, restored instead of rerun when their exact inputs ran before."""

from __future__ import annotations

import json
import os
import shlex
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PipelineError, UsageError
from dvlite.ops.gc import collect, plan
from dvlite.ops.repro import repro
from dvlite.ops.runcache import runs_of
from dvlite.ops.sync import Scope
from tests.ops.support import cache_oids, drop_object, ignore_lines, set_config, snapshot, xxh
from tests.ops.test_repro import PARAMS, PY, actions, make_pipe, runs

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


@pytest.fixture
def pipe(tmp_repo: TmpRepo) -> TmpRepo:
    return make_pipe(tmp_repo)


def lock_bytes(t: TmpRepo) -> bytes:
    return (t.root / "dvlite.lock").read_bytes()


def outputs(t: TmpRepo) -> dict[str, bytes]:
    return {p: b for p, b in snapshot(t.root).items()
            if p in ("data/prepared.txt", "model.bin", "metrics.json")}


def set_factor(t: TmpRepo, factor: int) -> None:
    (t.root / "params.toml").write_text(PARAMS.replace("factor = 2", f"factor = {factor}"))


def test_deleted_outs_are_restored_not_rerun(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    before, lock = outputs(pipe), lock_bytes(pipe)
    for name in before:
        (pipe.root / name).unlink()
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "restored", "train": "restored"}
    assert result.stages[0].reasons == ("out `data/prepared.txt` missing",)
    assert result.restored == ("prepare", "train")
    assert runs(pipe) == ["prepare", "train"]  # nothing ran again
    assert outputs(pipe) == before
    assert lock_bytes(pipe) == lock
    assert "/model.bin" in ignore_lines(pipe.root)
    assert "/metrics.json" not in ignore_lines(pipe.root)  # metrics stay in git
    assert actions(repro(pipe.repo)) == {"prepare": "skipped", "train": "skipped"}


def test_a_param_switched_back_restores_the_old_run(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    first, first_lock = outputs(pipe), lock_bytes(pipe)
    set_factor(pipe, 3)
    assert actions(repro(pipe.repo)) == {"prepare": "ran", "train": "ran"}
    assert outputs(pipe) != first
    set_factor(pipe, 2)
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "restored", "train": "restored"}
    assert result.stages[0].reasons == ("param `prepare.factor` changed",)
    assert result.stages[1].reasons == ("dep `data/prepared.txt` changed",)
    assert runs(pipe) == ["prepare", "train"] * 2
    assert outputs(pipe) == first
    assert lock_bytes(pipe) == first_lock
    # the restored files are vouched for in the stat index: the next check hashes nothing
    assert actions(repro(pipe.repo)) == {"prepare": "skipped", "train": "skipped"}


def test_force_and_no_run_cache_really_run(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    set_factor(pipe, 3)
    repro(pipe.repo)
    set_factor(pipe, 2)
    assert actions(repro(pipe.repo, run_cache=False)) == {"prepare": "ran", "train": "ran"}
    set_factor(pipe, 3)
    result = repro(pipe.repo, force=True)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert result.stages[0].reasons == ("param `prepare.factor` changed",)
    assert runs(pipe) == ["prepare", "train"] * 4


def test_dry_run_says_what_would_be_restored(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    set_factor(pipe, 3)
    repro(pipe.repo)
    set_factor(pipe, 2)
    lock = lock_bytes(pipe)
    result = repro(pipe.repo, dry_run=True)
    # train's dep would change under it, so whether its run is cached is not known yet
    assert actions(result) == {"prepare": "would restore", "train": "would run"}
    assert result.stages[1].reasons == ("upstream stage `prepare` would be restored",)
    assert lock_bytes(pipe) == lock
    assert runs(pipe) == ["prepare", "train"] * 2


def test_a_run_whose_objects_gc_deleted_is_ignored(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    old_model = xxh((pipe.root / "model.bin").read_bytes())
    set_factor(pipe, 3)
    repro(pipe.repo)
    collect(pipe.repo, plan(pipe.repo, scope=Scope()))  # keeps only what the workspace uses
    assert old_model not in cache_oids(pipe)
    set_factor(pipe, 2)
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert xxh((pipe.root / "model.bin").read_bytes()) == old_model


def test_a_run_missing_one_object_is_ignored_silently(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    metrics = xxh((pipe.root / "metrics.json").read_bytes())
    set_factor(pipe, 3)
    repro(pipe.repo)
    drop_object(pipe, metrics)  # an uncached out, kept in the cache only for the run cache
    set_factor(pipe, 2)
    assert actions(repro(pipe.repo)) == {"prepare": "restored", "train": "ran"}


NONDETERMINISTIC = """\
import os
open("noise.bin", "wb").write(os.urandom(16))
open("runs.log", "a").write("noise\\n")
"""


@pytest.fixture
def noisy(tmp_repo: TmpRepo) -> TmpRepo:
    tmp_repo.gen({"noise.py": NONDETERMINISTIC, "params.toml": "seed = 1\n", "dvlite.toml": (
        f'[stages.noise]\ncmd = "{shlex.quote(PY)} noise.py"\ndeps = ["noise.py"]\n'
        'params = ["seed"]\nouts = ["noise.bin"]\n')})
    return tmp_repo


def test_the_latest_run_of_a_nondeterministic_stage_wins(noisy: TmpRepo) -> None:
    repro(noisy.repo)
    first = (noisy.root / "noise.bin").read_bytes()
    repro(noisy.repo, force=True)
    second = (noisy.root / "noise.bin").read_bytes()
    assert first != second
    (noisy.root / "params.toml").write_text("seed = 2\n")
    repro(noisy.repo)
    (noisy.root / "params.toml").write_text("seed = 1\n")
    assert actions(repro(noisy.repo)) == {"noise": "restored"}
    assert (noisy.root / "noise.bin").read_bytes() == second
    assert runs(noisy) == ["noise"] * 3
    runs_cache = runs_of(noisy.repo)
    keys = runs_cache.stored_keys()
    assert sorted(len(runs_cache.entry_oids(k)) for k in keys) == [1, 2]


def test_always_changed_stages_are_never_restored_nor_kept(noisy: TmpRepo) -> None:
    text = (noisy.root / "dvlite.toml").read_text()
    (noisy.root / "dvlite.toml").write_text(text + "always_changed = true\n")
    repro(noisy.repo)
    repro(noisy.repo)
    assert runs(noisy) == ["noise", "noise"]
    assert runs_of(noisy.repo).stored_keys() == []


def test_folder_and_uncached_outs_in_a_wdir_are_restored(tmp_repo: TmpRepo) -> None:
    script = ("import os, sys\nos.makedirs('out/d', exist_ok=True)\n"
              "open('out/d/a.txt', 'w').write(sys.argv[1])\nopen('out/b.txt', 'w').write('b')\n"
              "open('log.txt', 'w').write('log ' + sys.argv[1])\n"
              "open('../runs.log', 'a').write('make\\n')\n")
    stages = ('[stages.make]\ncmd = "{py} make.py {arg}"\nwdir = "sub"\n'
              'deps = ["make.py"]\nouts = ["out", {{path = "log.txt", cache = false}}]\n')
    tmp_repo.gen({"sub": {"make.py": script},
                  "dvlite.toml": stages.format(py=shlex.quote(PY), arg="one")})
    repro(tmp_repo.repo)
    first, lock = snapshot(tmp_repo.root / "sub"), lock_bytes(tmp_repo)
    (tmp_repo.root / "dvlite.toml").write_text(stages.format(py=shlex.quote(PY), arg="two"))
    repro(tmp_repo.repo)
    (tmp_repo.root / "sub/out/extra.txt").write_text("not the stage's")
    (tmp_repo.root / "dvlite.toml").write_text(stages.format(py=shlex.quote(PY), arg="one"))
    assert actions(repro(tmp_repo.repo)) == {"make": "restored"}
    assert snapshot(tmp_repo.root / "sub") == first  # the folder is exactly as recorded
    assert lock_bytes(tmp_repo) == lock
    assert runs(tmp_repo) == ["make", "make"]
    assert ignore_lines(tmp_repo.root / "sub") == ["/out"]
    log = tmp_repo.root / "sub/log.txt"
    assert os.stat(log).st_nlink == 1
    assert os.access(log, os.W_OK)


def test_restored_cached_outs_follow_the_link_setting(pipe: TmpRepo) -> None:
    set_config(pipe, "cache.link", "hardlink")
    repro(pipe.repo)
    for name in ("model.bin", "metrics.json"):
        (pipe.root / name).unlink()
    assert actions(repro(pipe.repo))["train"] == "restored"
    assert os.stat(pipe.root / "model.bin").st_nlink == 2  # shares the cache's object
    assert os.stat(pipe.root / "metrics.json").st_nlink == 1  # a private copy, for git
    assert os.access(pipe.root / "metrics.json", os.W_OK)


def test_single_item_runs_only_the_named_stages(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    (pipe.root / "data/raw.txt").write_text("changed\n")
    (pipe.root / "train.py").write_text((pipe.root / "train.py").read_text() + "# edit\n")
    result = repro(pipe.repo, ["train"], single_item=True, dry_run=True)
    assert actions(result) == {"train": "would run"}
    result = repro(pipe.repo, ["train"], single_item=True)
    assert actions(result) == {"train": "ran"}
    assert runs(pipe) == ["prepare", "train", "train"]
    result = repro(pipe.repo, ["train", "prepare"], single_item=True, dry_run=True)
    assert [s.name for s in result.stages] == ["prepare", "train"]  # still in dependency order
    with pytest.raises(UsageError, match="single-item"):
        repro(pipe.repo, single_item=True)


def test_single_item_does_not_make_a_missing_upstream_out(pipe: TmpRepo) -> None:
    with pytest.raises(PipelineError, match=r"stage `train`: dep `data/prepared.txt`"):
        repro(pipe.repo, ["train"], single_item=True)
    assert runs(pipe) == []


def test_an_out_tracked_by_git_is_refused_before_anything_runs(pipe: TmpRepo) -> None:
    (pipe.root / "model.bin").write_text("old")
    pipe.git("add", "model.bin")
    with pytest.raises(PipelineError) as info:
        repro(pipe.repo)
    assert info.value.message.startswith(
        "`model.bin` is tracked by git; stop tracking it with `git rm --cached model.bin`")
    assert "`train`" in info.value.message
    assert runs(pipe) == []
    pipe.git("rm", "-q", "--cached", "model.bin")
    (pipe.root / "data/prepared.txt").write_text("x")
    pipe.git("add", "data/prepared.txt")
    with pytest.raises(PipelineError, match=r"`git rm --cached data/prepared.txt`"):
        repro(pipe.repo, dry_run=True)


def test_a_folder_out_tracked_by_git_names_the_recursive_command(tmp_repo: TmpRepo) -> None:
    tmp_repo.gen({"make.py": "", "out": {"a.txt": "a"}, "log.txt": "", "m.json": "{}",
                  "dvlite.toml": (
        '[stages.make]\ncmd = "true"\ndeps = ["make.py"]\n'
        'outs = ["out", {path = "log.txt", cache = false}]\nmetrics = ["m.json"]\n')})
    tmp_repo.git("add", "out", "m.json", "log.txt")  # git keeps metrics and uncached outs
    with pytest.raises(PipelineError, match=r"`git rm -r --cached out`"):
        repro(tmp_repo.repo)
    tmp_repo.git("rm", "-rq", "--cached", "out")
    assert actions(repro(tmp_repo.repo, dry_run=True)) == {"make": "would run"}


def test_an_index_naming_a_missing_entry_is_ignored(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    runs_cache = runs_of(pipe.repo)
    for key in runs_cache.stored_keys():
        for oid in runs_cache.entry_oids(key):
            drop_object(pipe, oid)
    (pipe.root / "model.bin").unlink()
    assert actions(repro(pipe.repo)) == {"prepare": "skipped", "train": "ran"}
    assert json.loads((pipe.root / "metrics.json").read_text())["chars"] == 12
