"""`core.hash = "sha256"` end to end on the command line: add, status, push, pull in a clone,
checkout, gc, fsck and repro (with its run cache) all use 64-digit sha256 oids, every object
on every store hashes to its name under sha256, and pointers record the hash. A repo keeps
one hash: switching once it tracks data is refused, and a hash changed behind dvlite's back
is an error naming the pointer, not a silent mismatch."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import CliResult, assert_error, cache_objects, run_main

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

SHA = re.compile(r"[0-9a-f]{64}")
PIPELINE = """\
[stages.double]
cmd = "python double.py"
deps = ["double.py", "data"]
outs = ["doubled.txt"]
"""
DOUBLE = """\
from pathlib import Path
text = "".join(p.read_text() for p in sorted(Path("data").rglob("*.csv")))
Path("doubled.txt").write_text(text * 2)
Path("runs.log").open("a").write("ran\\n")
"""


def ok(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> CliResult:
    result = run_main(capsys, "-C", str(root), *args)
    assert result.code == 0, result
    return result


def assert_sha256_store(store: Path) -> int:
    """Every object is named by 64 hex digits and its bytes' sha256 is that name."""
    objects = cache_objects(store)
    assert objects, f"no objects in {store}"
    for oid, path in objects.items():
        assert SHA.fullmatch(oid), oid
        assert hashlib.sha256(path.read_bytes()).hexdigest() == oid, f"{path} is not {oid}"
    return len(objects)


def read_toml(path: Path) -> dict[str, object]:
    return tomllib.loads(path.read_text())


@pytest.fixture
def sha_repo(tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str]) -> TmpRepo:
    ok(capsys, tmp_repo.root, "config", "core.hash", "sha256")
    tmp_repo.gen({"data": {"a.csv": "a\n", "sub": {"b.csv": "b\n"}}, "model.bin": b"w1"})
    ok(capsys, tmp_repo.root, "add", "data", "model.bin")
    ok(capsys, tmp_repo.root, "remote", "add", "-d", "store",
       str(tmp_repo.root.parent / "remote"))
    tmp_repo.git_commit("sha256 data")
    return tmp_repo


def test_every_command_works_with_sha256(
    sha_repo: TmpRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    root = sha_repo.root
    for name, kind in (("data", "dir"), ("model.bin", "file")):
        doc = read_toml(root / f"{name}.dvl")
        assert SHA.fullmatch(str(doc["oid"]))
        assert (doc["kind"], doc["hash"]) == (kind, "sha256")
    model = read_toml(root / "model.bin.dvl")["oid"]
    assert model == hashlib.sha256(b"w1").hexdigest()
    cache = root / ".dvlite" / "cache"
    assert assert_sha256_store(cache) == 4  # two csv files, their manifest, the model
    assert ok(capsys, root, "status", "--exit-code").code == 0

    ok(capsys, root, "push")
    assert assert_sha256_store(tmp_path / "remote") == 4
    assert "not in remote" not in ok(capsys, root, "status", "--remote").out

    # a clone: pull brings every byte back, verified under sha256
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    ok(capsys, clone, "pull")
    assert (clone / "data" / "sub" / "b.csv").read_text() == "b\n"
    assert (clone / "model.bin").read_bytes() == b"w1"
    assert_sha256_store(clone / ".dvlite" / "cache")

    # a new version, then back: checkout restores each from the cache
    (root / "model.bin").write_bytes(b"w2")
    assert run_main(capsys, "-C", str(root), "status", "--exit-code").code == 1
    ok(capsys, root, "add", "model.bin")
    sha_repo.git_commit("v2")
    sha_repo.git("checkout", "-q", "HEAD~1")
    ok(capsys, root, "checkout")
    assert (root / "model.bin").read_bytes() == b"w1"
    sha_repo.git("checkout", "-q", "main")
    ok(capsys, root, "checkout")
    assert (root / "model.bin").read_bytes() == b"w2"

    # gc of the workspace only drops w1; fsck finds everything intact
    ok(capsys, root, "gc", "--workspace", "--force")
    assert model not in cache_objects(cache)
    assert assert_sha256_store(cache) == 4
    assert "0 bad" in ok(capsys, root, "fsck").err


def test_repro_and_its_run_cache_use_sha256(
    sha_repo: TmpRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    root = sha_repo.root
    sha_repo.gen({"dvlite.toml": PIPELINE, "double.py": DOUBLE})
    (root / "data.dvl").unlink()  # data becomes a plain dep, tracked by the stage's lock
    ok(capsys, root, "repro")
    lock = tomllib.loads((root / "dvlite.lock").read_text())["stages"]["double"]
    oids = [d["oid"] for d in lock["deps"]] + [o["oid"] for o in lock["outs"]]
    assert all(SHA.fullmatch(oid) for oid in oids), oids
    assert lock["outs"][0]["oid"] == hashlib.sha256(b"a\nb\n" * 2).hexdigest()
    assert_sha256_store(root / ".dvlite" / "cache")

    # the same inputs again: skipped; after a change and back, restored from the run cache
    ok(capsys, root, "repro")
    (root / "data" / "a.csv").write_text("A\n")
    ok(capsys, root, "repro")
    (root / "data" / "a.csv").write_text("a\n")
    ok(capsys, root, "repro")
    assert (root / "runs.log").read_text() == "ran\nran\n"  # the third was restored
    assert (root / "doubled.txt").read_text() == "a\nb\n" * 2
    assert_sha256_store(root / ".dvlite" / "cache")


def test_the_hash_cannot_be_switched_once_data_is_tracked(
    sha_repo: TmpRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    root = sha_repo.root
    for level in ((), ("--local",), ("--user",)):
        refused = run_main(capsys, "-C", str(root), "config", *level, "core.hash", "xxh128")
        assert "a repo keeps one hash" in assert_error(refused)
    assert read_toml(root / ".dvlite" / "config.toml")["core"]["hash"] == "sha256"

    # a clone has no cache yet, and its pointers alone are enough to refuse
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    refused = run_main(capsys, "-C", str(clone), "config", "core.hash", "xxh128")
    assert "a repo keeps one hash" in assert_error(refused)


@pytest.mark.parametrize("how", ["project config", "environment"])
def test_a_hash_changed_behind_dvlites_back_names_the_pointer(
    sha_repo: TmpRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    root = sha_repo.root
    if how == "environment":
        monkeypatch.setenv("DVLITE_CORE_HASH", "xxh128")
    else:  # an edit by hand, or a merge of a teammate's change
        config = root / ".dvlite" / "config.toml"
        config.write_text(config.read_text().replace('"sha256"', '"xxh128"'))
    for command in (("status",), ("checkout",), ("push",), ("gc", "--force"), ("add", "data")):
        result = run_main(capsys, "-C", str(root), *command)
        line = assert_error(result, "data.dvl")
        assert "records a sha256 oid, but this repo hashes with xxh128" in line
    assert "core.hash" in result.err  # the hint says what to set back


def test_one_cache_two_hashes(tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    """An xxh128 repo and a sha256 repo on one cache folder: each lists, checks and collects
    only the objects of its own hash (fsck once called the other's objects corrupt)."""
    shared = tmp_path / "shared-cache"
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    ok(capsys, other, "init")
    ok(capsys, other, "config", "core.hash", "sha256")
    for root in (tmp_repo.root, other):
        ok(capsys, root, "config", "cache.dir", str(shared))
        (root / "f.txt").write_text(f"{root.name}\n")
        ok(capsys, root, "add", "f.txt")
    before = set(cache_objects(shared))
    assert {len(oid) for oid in before} == {32, 64}
    for root in (tmp_repo.root, other):
        assert "0 bad" in ok(capsys, root, "fsck").err
        assert set(cache_objects(shared)) == before  # nothing quarantined
