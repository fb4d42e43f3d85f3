"""The benchmark harness (benchmarks/run.py) without the benchmark: its workloads are
deterministic, its command templates expand, its report applies the targets. No timings."""

from __future__ import annotations

import contextlib
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


def test_the_watched_dvlite_turns_the_watcher_on_and_warms_it(bench: SimpleNamespace) -> None:
    dvlite = bench.tools.dvlite()
    watched = bench.tools.dvlite_watched(dvlite)
    exe = len(dvlite.exe)
    assert watched.name == "dvlite-fsmon"
    assert watched.commands("init", link="copy")[-1][exe:] == ["config", "core.fsmonitor", "true"]
    assert [argv[exe:] for argv in watched.commands("warm")] == [
        ["-q", "fsmonitor", "start"], ["-q", "status"]]
    assert watched.commands("status") == dvlite.commands("status")
    assert not any(watched.has(step) for step in ("push", "pull", "remote local", "gc"))


def test_report_applies_the_targets(bench: SimpleNamespace) -> None:
    results = bench.report.Results()
    results.references["W2"] = {"xxh3-128 all": 0.2, "cp -r": 0.3}
    sample = bench.measure.Sample
    results.record("W2 copy", "add", "dvlite", sample(1.0, 40_000))
    results.record("W2 copy", "add", "DVC", sample(10.0, 80_000))
    results.record("W2 copy", "add", "dvlite-fsmon", sample(0.5, 40_000))
    results.record("W2 copy", "gc", "DVC", sample(1.0, 80_000))
    add, gc = results.rows()
    assert add["vs_dvc"] == pytest.approx(0.1)
    assert add["variants_vs_dvc"] == {"dvlite-fsmon": pytest.approx(0.05)}
    lines = bench.report.table([add], ["dvlite", "dvlite-fsmon", "DVC"]).splitlines()
    assert "| dvlite/DVC | dvlite-fsmon/DVC |" in lines[0]
    assert "| 0.10 | 0.05 |" in lines[2]
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


@pytest.fixture
def issue9(bench: SimpleNamespace) -> SimpleNamespace:
    names = ("versions", "remotes", "wire")
    return SimpleNamespace(**{name: importlib.import_module(name) for name in names})


def test_version_edits_change_what_they_say(issue9: SimpleNamespace, tmp_path: Path) -> None:
    v = issue9.versions
    kib = 1024
    spec = v.Versions("T", "model.ckpt", 64 * kib, 4 * kib, seed=1, edits=(
        v.Edit("a", "overwrite", kib, seed=2), v.Edit("b", "append", 2 * kib, seed=3),
        v.Edit("c", "insert", 0, seed=4), v.Edit("d", "tensors", 2, seed=5)))
    first = v.generate_first(spec, tmp_path / "one")
    assert _contents(first) == _contents(v.generate_first(spec, tmp_path / "two"))
    path = first / "model.ckpt"
    size = v.HEADER + 64 * kib
    assert path.stat().st_size == size
    assert all(b & 0x7C == 0x3C for b in path.read_bytes()[v.HEADER + 3::4])  # float-ish
    versions = [path.read_bytes()]
    for number, edit in enumerate(spec.edits, start=2):
        v.apply_edit(spec, edit, path, number)
        versions.append(path.read_bytes())
    before, edited, appended, inserted, tensors = versions
    assert len(edited) == size
    assert sum(x != y for x, y in zip(before, edited, strict=True)) > kib * 0.9
    assert appended[:size] == edited
    assert len(appended) == size + 2 * kib
    half, grown = len(appended) // 2, len(appended) // 100
    assert inserted[:half] + inserted[half + grown:] == appended
    differ = {i // (4 * kib) for i, (x, y) in enumerate(zip(inserted, tensors, strict=True))
              if x != y}
    assert sorted(differ)[0] == 0  # the header (block 0), and two tensors
    assert len(differ) == 3


def test_traffic_is_measured_and_summed(bench: SimpleNamespace, issue9: SimpleNamespace,
                                        tmp_path: Path) -> None:
    remote = issue9.remotes.LocalRemote(tmp_path)
    remote.fresh("k")
    watch = issue9.remotes.Watch(remote, "k")
    (tmp_path / "k" / "ab").mkdir()
    (tmp_path / "k" / "ab" / "cdef").write_bytes(b"x" * 1000)
    traffic = watch.done()
    assert (traffic.uploaded, traffic.stored, traffic.objects) == (1000, 1000, 1)
    assert traffic.requests is None
    m = bench.measure
    both = m.total([m.Sample(1.0, 10, m.Traffic(5, 5, 1, 2, 30, 40)),
                    m.Sample(2.0, 20, m.Traffic(7, 12, 2, 3, 50, 60))])
    assert both == m.Sample(3.0, 20, m.Traffic(12, 12, 2, 5, 80, 100))
    results = bench.report.Results()
    results.record("W7 s3", "push", "dvlite", both)
    assert "| W7 s3 | push | dvlite | 3.000 | 0.0 | 0.0 | 2 | 5 |" in bench.report.storage_table(
        results.rows(), ["dvlite", "DVC"])


def test_proxy_and_request_log_count_http(issue9: SimpleNamespace, tmp_path: Path) -> None:
    import http.server
    import threading
    import urllib.request

    log = tmp_path / "server.log"
    log.write_bytes(b"")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"y" * 5000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            with log.open("a") as out:  # the access-log format werkzeug (moto_server) writes
                out.write(f"127.0.0.1 - - [{self.log_date_time_string()}] {format % args}\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        requests = issue9.wire.RequestLog(log, upstream)
        with contextlib.closing(issue9.wire.CountingProxy(upstream)) as proxy:
            for name in ("a", "b", "c"):
                with urllib.request.urlopen(f"{proxy.endpoint}/bucket/{name}") as response:
                    assert len(response.read()) == 5000
            assert requests.requests() == 3
            assert list(requests.recent) == ["GET /bucket/a", "GET /bucket/b", "GET /bucket/c"]
            sent, received = proxy.counts()
        assert 3 * 5000 < received < 3 * 6000
        assert 0 < sent < 3 * 500
    finally:
        server.shutdown()
        server.server_close()
