"""Coverage-guided fuzzing (atheris) of every parser, from a seed corpus of valid files: no
input makes one raise anything but a dvlite error. Skipped where atheris is not installed
(it is in the `test` extra on Linux x86-64). ``DVLITE_ATHERIS_RUNS`` sets the number of runs
(30,000 by default, about ten seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from dvlite.pointer import Pointer
from dvlite.storage.hashing import hash_bytes
from dvlite.storage.manifest import Entry, Manifest

pytest.importorskip("atheris")

TARGET = Path(__file__).with_name("atheris_target.py")
RUNS = int(os.environ.get("DVLITE_ATHERIS_RUNS", "30000"))
OID = hash_bytes(b"x")
STAGE = {"cmd": "python x.py", "deps": [{"path": "a", "oid": OID}],
         "outs": [{"path": "m", "oid": OID, "size": 1, "kind": "file"}], "params": {"lr": 0.1}}
# the first byte picks the parser, in the order of atheris_target.PARSERS
SEEDS = {
    "pointer": bytes([0]) + Pointer("data", OID, 5, "dir", 2, {"note": "x"}).encode(),
    "manifest": bytes([1]) + Manifest.build([Entry("a/b.csv", OID, 3)]).to_bytes(),
    "pipeline": bytes([2]) + b'[stages.a]\ncmd = "x"\ndeps = ["a"]\nouts = ["b"]\n'
                             b'params = ["p.yaml:k"]\nmetrics = ["m.json"]\n',
    "lock": bytes([3]) + tomli_w.dumps({"version": 1, "stages": {"a": STAGE}}).encode(),
    "run": bytes([4]) + tomli_w.dumps({"version": 1, "run": STAGE}).encode(),
    "config": bytes([5]) + b'[core]\nhash = "sha256"\njobs = 4\n[remote.a]\nurl = "s3://b"\n',
    "toml": bytes([6]) + b'[train]\nlr = 0.1\nlayers = [1, 2]\n',
    "json": bytes([7]) + b'{"train": {"lr": 0.1, "layers": [1, 2]}}',
    "yaml": bytes([8]) + b'train:\n  lr: 0.1\n  name: "a\\u00e9 \\U0001F600"\n  d: &d [1]\n'
                         b'  e: *d\n  when: 2024-01-02\n',
}


@pytest.mark.slow
def test_atheris_finds_no_crash_in_any_parser(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    proc = subprocess.run(
        [sys.executable, str(TARGET), f"-atheris_runs={RUNS}", "-max_total_time=90",
         "-rss_limit_mb=1024", str(corpus)],
        cwd=tmp_path, capture_output=True, text=True, timeout=110, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    report = proc.stderr[-4000:]
    assert proc.returncode == 0, f"atheris found a crash:\n{report}"
    assert "Uncaught Python exception" not in proc.stderr, report
    assert "Done" in proc.stderr, report
