"""The benchmark harness (benchmarks/run.py) without the benchmark: its workloads are
deterministic, its command templates expand, its report applies the targets. No timings."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the harness runs as a script folder
    names = ("workloads", "tools", "report", "measure", "references")
    return SimpleNamespace(**{name: importlib.import_module(name) for name in names})


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_workloads_are_deterministic(bench: SimpleNamespace, tmp_path: Path) -> None:
    w = bench.workloads
    spec = w.Workload("T", "data", 30, 1, 2048, 4, seed=7, change=w.Change(rewritten=3, added=2))
    first, second = w.generate(spec, tmp_path / "a"), w.generate(spec, tmp_path / "b")
    assert _contents(first) == _contents(second)
    data = _contents(first / "data")
    assert len(data) == 30
    assert all(1 <= len(content) <= 2048 for content in data.values())
    assert bench.references.stat_walk(first / "data") == 30

    shutil.copytree(first, tmp_path / "c")
    changed = w.apply_change(spec, first)
    assert len(changed) == 5
    assert w.apply_change(spec, tmp_path / "c") == changed
    assert _contents(first) == _contents(tmp_path / "c")
    assert len(_contents(first / "data")) == 32


def test_templates_expand_into_argv(bench: SimpleNamespace) -> None:
    dvlite = bench.tools.dvlite()
    [add, modify] = dvlite.commands("remote s3", url="s3://b/store", endpoint="http://x")
    assert add[:len(dvlite.exe)] == list(dvlite.exe)
    assert add[len(dvlite.exe):] == ["remote", "add", "--local", "-f", "-d", "bench",
                                     "s3://b/store"]
    assert modify[-2:] == ["endpoint_url", "http://x"]
    assert dvlite.commands("no such step") == []


def test_report_applies_the_targets(bench: SimpleNamespace) -> None:
    results = bench.report.Results()
    results.references["W2"] = {"xxh3-128 all": 0.2, "cp -r": 0.3}
    sample = bench.measure.Sample
    results.record("W2 copy", "add", "dvlite", sample(1.0, 40_000))
    results.record("W2 copy", "add", "DVC", sample(10.0, 80_000))
    results.record("W2 copy", "gc", "DVC", sample(1.0, 80_000))
    add, gc = results.rows()
    assert add["vs_dvc"] == pytest.approx(0.1)
    assert add["limit_s"] == pytest.approx(0.5)
    assert add["misses"] == ["limit x2.00 > 1.5"]
    assert gc["misses"] is None  # no dvlite figure: nothing to judge
    assert "| W2 copy | add | 1.000 | 10.000 | 0.10 | 0.500 | 2.0 |" in bench.report.table(
        results.rows(), ["dvlite", "DVC"])


def test_run_reports_failures(bench: SimpleNamespace, tmp_path: Path) -> None:
    log = tmp_path / "log"
    ok = bench.measure.run([["true"]], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, log=log)
    assert ok.peak_kib > 0
    with pytest.raises(bench.measure.CommandError, match="exited with 1"):
        bench.measure.run([["false"]], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, log=log)
