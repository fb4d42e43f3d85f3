"""``dvlite repro``: real stages (Python scripts) in real git repos."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import tomllib
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import PipelineError, PipelineGraphError, StageFailedError
from dvlite.ops.repro import dag, repro
from tests.ops.support import cache_oids, xxh

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

PY = sys.executable

PREPARE = """\
import tomllib
with open("params.toml", "rb") as f:
    factor = tomllib.load(f)["prepare"]["factor"]
with open("data/raw.txt") as f:
    raw = f.read()
with open("data/prepared.txt", "w") as f:
    f.write(raw.upper() * factor)
with open("runs.log", "a") as f:
    f.write("prepare\\n")
"""

TRAIN = """\
import json
with open("data/prepared.txt") as f:
    text = f.read()
with open("model.bin", "wb") as f:
    f.write(b"model:" + text.encode())
with open("metrics.json", "w") as f:
    json.dump({"chars": len(text)}, f)
with open("runs.log", "a") as f:
    f.write("train\\n")
"""

PIPELINE = f"""\
[stages.prepare]
cmd = "{shlex.quote(PY)} prepare.py"
deps = ["prepare.py", "data/raw.txt"]
params = ["prepare.factor"]
outs = ["data/prepared.txt"]

[stages.train]
cmd = [{json.dumps(PY)}, "train.py"]
deps = ["train.py", "data/prepared.txt"]
params = ["train"]
outs = ["model.bin"]
metrics = ["metrics.json"]
"""

PARAMS = "[prepare]\nfactor = 2\n\n[train]\nlr = 0.1\nepochs = 3\n"


def make_pipe(tmp_repo: TmpRepo) -> TmpRepo:
    """The two-stage pipeline (prepare, train) in ``tmp_repo``, not run yet."""
    tmp_repo.gen({
        "prepare.py": PREPARE, "train.py": TRAIN, "dvlite.toml": PIPELINE, "params.toml": PARAMS,
        "data": {"raw.txt": "hello\n"},
    })
    return tmp_repo


@pytest.fixture
def pipe(tmp_repo: TmpRepo) -> TmpRepo:
    return make_pipe(tmp_repo)


def runs(t: TmpRepo) -> list[str]:
    path = t.root / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def lock_doc(t: TmpRepo) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((t.root / "dvlite.lock").read_text())


def actions(result: object) -> dict[str, str]:
    return {s.name: s.action for s in result.stages}  # type: ignore[attr-defined]


def test_first_run_runs_all_and_locks_out_hashes(pipe: TmpRepo) -> None:
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert result.stages[0].reasons == ("no lock entry: never run",)
    assert runs(pipe) == ["prepare", "train"]
    prepared = (pipe.root / "data/prepared.txt").read_bytes()
    assert prepared == b"HELLO\nHELLO\n"
    model = (pipe.root / "model.bin").read_bytes()
    metrics = (pipe.root / "metrics.json").read_bytes()
    doc = lock_doc(pipe)
    assert doc["version"] == 1
    prep = doc["stages"]["prepare"]
    assert prep["outs"] == [{"path": "data/prepared.txt", "oid": xxh(prepared),
                             "size": len(prepared), "kind": "file"}]
    assert {d["path"]: d["oid"] for d in prep["deps"]} == {
        "data/raw.txt": xxh(b"hello\n"),
        "prepare.py": xxh(PREPARE.encode()),
    }
    assert prep["params"] == {"prepare.factor": 2}
    train = doc["stages"]["train"]
    assert {o["path"]: o["oid"] for o in train["outs"]} == {
        "model.bin": xxh(model), "metrics.json": xxh(metrics)}
    assert train["params"] == {"train": {"epochs": 3, "lr": 0.1}}
    assert train["cmd"] == [PY, "train.py"]
    assert [o.get("cache", True) for o in train["outs"]] == [False, True]  # metrics.json first
    assert train["env"]["python"] == platform.python_version()


def test_outs_are_cached_and_ignored_metrics_stay_in_git(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    prepared = (pipe.root / "data/prepared.txt").read_bytes()
    model = (pipe.root / "model.bin").read_bytes()
    metrics = (pipe.root / "metrics.json").read_bytes()
    oids = cache_oids(pipe)
    assert {xxh(prepared), xxh(model)} <= oids
    assert xxh(metrics) in oids  # for the run cache only: the lock says it is not cached
    assert {o["path"]: o.get("cache", True) for o in lock_doc(pipe)["stages"]["train"]["outs"]
            } == {"model.bin": True, "metrics.json": False}
    assert "/prepared.txt" in (pipe.root / "data/.gitignore").read_text().splitlines()
    root_ignore = (pipe.root / ".gitignore").read_text().splitlines()
    assert "/model.bin" in root_ignore
    assert "/metrics.json" not in root_ignore
    ignored = pipe.git("status", "--porcelain", "--ignored")
    assert "!! model.bin" in ignored
    assert "!! data/prepared.txt" in ignored


def test_second_run_skips_all(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    lock_before = (pipe.root / "dvlite.lock").read_bytes()
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "skipped", "train": "skipped"}
    assert all(s.reasons == () for s in result.stages)
    assert runs(pipe) == ["prepare", "train"]
    assert (pipe.root / "dvlite.lock").read_bytes() == lock_before


def test_changed_dep_reruns_that_stage_and_downstream_only(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    (pipe.root / "train.py").write_text(TRAIN + "# tweak\n")
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "skipped", "train": "ran"}
    assert result.stages[1].reasons == ("dep `train.py` changed",)
    assert runs(pipe) == ["prepare", "train", "train"]

    (pipe.root / "data/raw.txt").write_text("bye there\n")
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert result.stages[0].reasons == ("dep `data/raw.txt` changed",)
    assert result.stages[1].reasons == ("dep `data/prepared.txt` changed",)
    assert (pipe.root / "model.bin").read_bytes() == b"model:BYE THERE\nBYE THERE\n"
    lock = lock_doc(pipe)["stages"]["prepare"]
    assert {d["path"]: d["oid"] for d in lock["deps"]}["data/raw.txt"] == xxh(b"bye there\n")


def test_changed_param_reruns(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    (pipe.root / "params.toml").write_text(PARAMS.replace("lr = 0.1", "lr = 0.2"))
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "skipped", "train": "ran"}
    assert result.stages[1].reasons == ("param `train` changed",)
    assert lock_doc(pipe)["stages"]["train"]["params"]["train"]["lr"] == 0.2

    (pipe.root / "params.toml").write_text(PARAMS.replace("factor = 2", "factor = 3"))
    result = repro(pipe.repo)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert "param `prepare.factor` changed" in result.stages[0].reasons


def test_deleted_or_edited_out_reruns_its_stage(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    (pipe.root / "model.bin").unlink()
    result = repro(pipe.repo, run_cache=False)
    assert actions(result) == {"prepare": "skipped", "train": "ran"}
    assert result.stages[1].reasons == ("out `model.bin` missing",)
    assert (pipe.root / "model.bin").exists()

    (pipe.root / "metrics.json").write_text("{}")
    result = repro(pipe.repo, run_cache=False)
    assert actions(result) == {"prepare": "skipped", "train": "ran"}
    assert result.stages[1].reasons == ("out `metrics.json` changed",)


def test_force_reruns_all(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    result = repro(pipe.repo, force=True)
    assert actions(result) == {"prepare": "ran", "train": "ran"}
    assert result.stages[0].reasons == ("forced",)
    assert runs(pipe) == ["prepare", "train"] * 2


def test_dry_run_runs_and_writes_nothing(pipe: TmpRepo) -> None:
    result = repro(pipe.repo, dry_run=True)
    assert actions(result) == {"prepare": "would run", "train": "would run"}
    assert result.dry_run
    assert not (pipe.root / "dvlite.lock").exists()
    assert runs(pipe) == []
    assert not (pipe.root / "data/prepared.txt").exists()
    assert cache_oids(pipe) == set()

    repro(pipe.repo)
    lock_before = (pipe.root / "dvlite.lock").read_bytes()
    model_mtime = (pipe.root / "model.bin").stat().st_mtime_ns
    (pipe.root / "data/raw.txt").write_text("changed\n")
    result = repro(pipe.repo, dry_run=True)
    assert actions(result) == {"prepare": "would run", "train": "would run"}
    assert result.stages[0].reasons == ("dep `data/raw.txt` changed",)
    assert result.stages[1].reasons == ("upstream stage `prepare` would run",)
    assert runs(pipe) == ["prepare", "train"]
    assert (pipe.root / "dvlite.lock").read_bytes() == lock_before
    assert (pipe.root / "model.bin").stat().st_mtime_ns == model_mtime


def test_failing_stage_stops_the_run_and_keeps_its_lock_entry(pipe: TmpRepo) -> None:
    repro(pipe.repo)
    entry = lock_doc(pipe)["stages"]["prepare"]
    oids_before = cache_oids(pipe)
    (pipe.root / "data/raw.txt").write_text("new raw\n")
    failing = PREPARE.replace('f.write(raw.upper() * factor)',
                              'f.write("partial")\nraise SystemExit(3)')
    (pipe.root / "prepare.py").write_text(failing)
    with pytest.raises(StageFailedError) as info:
        repro(pipe.repo)
    assert "`prepare`" in info.value.message
    assert "code 3" in info.value.message
    assert lock_doc(pipe)["stages"]["prepare"] == entry
    assert runs(pipe) == ["prepare", "train"]  # train did not run
    assert xxh(b"partial") not in cache_oids(pipe)
    assert cache_oids(pipe) == oids_before


def test_stage_writing_its_own_dep_is_an_error(pipe: TmpRepo) -> None:
    (pipe.root / "prepare.py").write_text(
        PREPARE + 'with open("data/raw.txt", "a") as f:\n    f.write("more")\n')
    with pytest.raises(PipelineError, match=r"dep `data/raw.txt` changed while"):
        repro(pipe.repo)
    assert not (pipe.root / "dvlite.lock").exists()


def test_cycle_is_a_graph_error(pipe: TmpRepo) -> None:
    (pipe.root / "dvlite.toml").write_text(
        '[stages.a]\ncmd = "true"\ndeps = ["y"]\nouts = ["x"]\n'
        '[stages.b]\ncmd = "true"\ndeps = ["x"]\nouts = ["y"]\n')
    with pytest.raises(PipelineGraphError, match="cycle"):
        repro(pipe.repo)
    assert runs(pipe) == []


def test_targets_run_only_the_target_and_its_upstream(pipe: TmpRepo) -> None:
    result = repro(pipe.repo, ["prepare"])
    assert actions(result) == {"prepare": "ran"}
    assert runs(pipe) == ["prepare"]
    assert set(lock_doc(pipe)["stages"]) == {"prepare"}
    result = repro(pipe.repo, ["train"])
    assert actions(result) == {"prepare": "skipped", "train": "ran"}
    with pytest.raises(PipelineError, match="no stage named `trian`"):
        repro(pipe.repo, ["trian"])


def test_no_pipeline_file_is_an_error(tmp_repo: TmpRepo) -> None:
    with pytest.raises(PipelineError, match=r"dvlite\.toml") as info:
        repro(tmp_repo.repo)
    assert info.value.hint


def test_missing_dep_is_an_error_naming_stage_and_path(pipe: TmpRepo) -> None:
    (pipe.root / "data/raw.txt").unlink()
    with pytest.raises(PipelineError, match=r"stage `prepare`: dep `data/raw.txt`"):
        repro(pipe.repo)
    assert runs(pipe) == []


def test_stage_that_does_not_write_its_out_is_an_error(pipe: TmpRepo) -> None:
    (pipe.root / "train.py").write_text(TRAIN.replace('"model.bin"', '"other.bin"'))
    with pytest.raises(PipelineError, match=r"did not write its out `model\.bin`"):
        repro(pipe.repo)
    assert set(lock_doc(pipe)["stages"]) == {"prepare"}


def test_folder_out_uncached_out_and_wdir(tmp_repo: TmpRepo) -> None:
    script = ("import os\nos.makedirs('out/d', exist_ok=True)\n"
              "open('out/d/a.txt', 'w').write('a')\nopen('log.txt', 'w').write('log')\n")
    tmp_repo.gen({"sub": {"make.py": script}, "dvlite.toml": (
        f'[stages.make]\ncmd = "{shlex.quote(PY)} make.py"\nwdir = "sub"\n'
        'deps = ["make.py"]\nouts = ["out", {path = "log.txt", cache = false}]\n')})
    assert actions(repro(tmp_repo.repo)) == {"make": "ran"}
    outs = {o["path"]: o for o in lock_doc(tmp_repo)["stages"]["make"]["outs"]}
    assert set(outs) == {"out", "log.txt"}
    assert outs["log.txt"]["oid"] == xxh(b"log")
    assert xxh(b"a") in cache_oids(tmp_repo)
    assert outs["out"]["oid"] in cache_oids(tmp_repo)  # the folder's manifest
    assert xxh(b"log") in cache_oids(tmp_repo)  # for the run cache; the lock says uncached
    assert (tmp_repo.root / "sub/.gitignore").read_text().splitlines() == ["/out"]
    assert actions(repro(tmp_repo.repo)) == {"make": "skipped"}


def test_dag_lists_stages_in_order_with_upstream(pipe: TmpRepo) -> None:
    nodes = dag(pipe.repo)
    assert [(n.name, n.upstream) for n in nodes] == [("prepare", ()), ("train", ("prepare",))]


def test_stage_stdout_can_go_to_stderr(
    tmp_repo: TmpRepo, capfd: pytest.CaptureFixture[str]
) -> None:
    tmp_repo.gen({"dvlite.toml": '[stages.talk]\ncmd = "echo hi"\nalways_changed = true\n'})
    repro(tmp_repo.repo)
    assert capfd.readouterr().out == "hi\n"
    result = repro(tmp_repo.repo, output_to_stderr=True)
    assert result.stages[0].reasons == ("always_changed is set",)
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "hi\n")


def test_gc_keeps_outputs_that_a_committed_lock_records(pipe: TmpRepo) -> None:
    from dvlite.ops.gc import collect, plan

    repro(pipe.repo)
    first_model = xxh((pipe.root / "model.bin").read_bytes())
    pipe.git_commit("v1: lock records the first model")
    (pipe.root / "params.toml").write_text(PARAMS.replace("factor = 2", "factor = 3"))
    repro(pipe.repo)
    second_model = xxh((pipe.root / "model.bin").read_bytes())
    assert first_model != second_model

    collect(pipe.repo, plan(pipe.repo))

    # the workspace lock's output and the one the v1 commit pins both survive
    assert {first_model, second_model} <= cache_oids(pipe)
