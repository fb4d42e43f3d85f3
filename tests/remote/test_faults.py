"""push / fetch against a misbehaving remote (tests/remote/faulty.py), with real bytes: bad
bytes never reach the cache and the error names the object and the remote; a folder's manifest
goes up only once every one of its files is there; a rerun finishes the job and moves nothing
twice."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from dvlite.ops import sync
from dvlite.ops.init import remote_add
from dvlite.storage import transfer
from tests.cli.support import assert_error, run_main
from tests.helpers import TmpRepo
from tests.remote.faulty import FaultyRemote, faulty_remote

if TYPE_CHECKING:

    from dvlite.repo import Repo


pytestmark = pytest.mark.usefixtures("no_backoff")  # fixtures in tests/conftest.py


@pytest.fixture
def repo(tmp_repo: TmpRepo, faulty: FaultyRemote) -> TmpRepo:
    """A repo whose default remote, `flaky`, is the faulty one."""
    remote_add(tmp_repo.repo, "flaky", faulty.url, default=True)
    tmp_repo.reopen()
    return tmp_repo


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def pointer_oid(root: Path, name: str) -> str:
    oid = tomllib.loads((root / f"{name}.dvl").read_text())["oid"]
    assert isinstance(oid, str)
    return oid


def cached(repo: Repo) -> dict[str, bytes]:
    return {p.parent.name + p.name: p.read_bytes() for p in Path(repo.cache_dir).glob("??/*")}


def cache_litter(repo: Repo) -> list[str]:
    tmp = Path(repo.cache_dir, "tmp")
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def assert_valid(objects: dict[str, bytes]) -> None:
    bad = [oid for oid, data in objects.items() if xxh(data) != oid]
    assert bad == [], f"objects whose bytes do not hash to their name: {bad}"


DATA = {"a.bin": b"A" * 3000, "b.bin": b"B" * 2000, "c.bin": b"C" * 1000}
MORE = {"x.txt": "x\n", "y.txt": "y\n"}


@pytest.fixture
def pushed(repo: TmpRepo, faulty: FaultyRemote) -> TmpRepo:
    """Folder ``data`` pushed whole, then the local cache thrown away (as in a fresh clone)."""
    repo.gen({"data": DATA})
    repo.dvl_add("data")
    assert sync.push(repo.repo).failed == {}
    shutil.rmtree(repo.repo.cache_dir)
    faulty.reset_counts()
    return repo


# --- fetch verifies every object -----------------------------------------------------------


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_fetch_refuses_a_damaged_object_and_fetches_the_rest(
    pushed: TmpRepo, faulty: FaultyRemote, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    bad = xxh(DATA["b.bin"])
    getattr(faulty, damage)(bad)

    result = sync.fetch(pushed.repo)

    assert set(result.failed) == {bad}
    assert bad in result.failed[bad]
    assert "remote `flaky`" in result.failed[bad]
    assert faulty.url in result.failed[bad]
    assert not Path(pushed.repo.cache_dir, bad[:2], bad[2:]).exists()
    assert cache_litter(pushed.repo) == []
    got = cached(pushed.repo)
    assert_valid(got)
    assert set(got) == {pointer_oid(pushed.root, "data"), xxh(DATA["a.bin"]), xxh(DATA["c.bin"])}

    # the command line says the same in its one error line, and exits 1
    line = assert_error(run_main(capsys, "fetch"), bad, "flaky", after_messages=True)
    assert "corrupt" in line
    assert not Path(pushed.repo.cache_dir, bad[:2], bad[2:]).exists()

    # once the remote serves it right, a rerun brings that object and nothing else
    faulty.clear_faults()
    faulty.reset_counts()
    again = sync.fetch(pushed.repo)
    assert again.failed == {}
    assert again.transferred == 1
    assert faulty.oids_of("open") == [bad]
    assert cached(pushed.repo)[bad] == DATA["b.bin"]


def test_a_corrupt_manifest_is_refused(pushed: TmpRepo, faulty: FaultyRemote) -> None:
    manifest = pointer_oid(pushed.root, "data")
    faulty.corrupt(manifest)

    result = sync.fetch(pushed.repo)

    assert set(result.failed) == {manifest}
    assert manifest in result.failed[manifest]
    assert "remote `flaky`" in result.failed[manifest]
    assert cached(pushed.repo) == {}  # nothing was read from a manifest that failed its hash
    assert cache_litter(pushed.repo) == []


def test_fetch_retries_a_flaky_connection(pushed: TmpRepo, faulty: FaultyRemote) -> None:
    flaky = xxh(DATA["a.bin"])
    faulty.fail("open", 2, oid=flaky)
    faulty.fail("read", 1, oid=xxh(DATA["c.bin"]))
    result = sync.fetch(pushed.repo)
    assert result.failed == {}
    assert faulty.count("open", flaky) == 3
    got = cached(pushed.repo)
    assert_valid(got)
    assert len(got) == 4


# --- push: manifests only after all their files ----------------------------------------------


@pytest.mark.parametrize(("fault", "attempts"), [("always", 4), ("deny", 1)])
def test_a_manifest_waits_until_all_its_files_are_up(
    repo: TmpRepo, faulty: FaultyRemote, fault: str, attempts: int
) -> None:
    repo.gen({"data": DATA, "more": MORE})
    repo.dvl_add("data", "more")
    data_manifest = pointer_oid(repo.root, "data")
    more_manifest = pointer_oid(repo.root, "more")
    stuck = xxh(DATA["b.bin"])
    if fault == "deny":
        faulty.deny("put_file", oid=stuck)
    else:
        faulty.fail("put_file", oid=stuck)

    result = sync.push(repo.repo)

    assert set(result.failed) == {stuck}
    assert faulty.count("put_file", stuck) == attempts
    stored = faulty.stored()
    assert data_manifest not in stored, "a manifest went up while one of its files was missing"
    assert data_manifest not in faulty.oids_of("put_file")
    assert more_manifest in stored  # the other folder is whole, so its manifest went up
    assert set(stored) == {xxh(DATA["a.bin"]), xxh(DATA["c.bin"]), more_manifest,
                           *(xxh(v.encode()) for v in MORE.values())}
    assert_valid(stored)
    assert faulty.litter() == []

    faulty.clear_faults()
    faulty.reset_counts()
    again = sync.push(repo.repo)
    assert again.failed == {}
    assert again.transferred == 2
    assert again.skipped == len(stored)
    assert faulty.oids_of("put_file") == [stuck, data_manifest]  # files first, then the manifest
    stored = faulty.stored()
    assert data_manifest in stored
    assert_valid(stored)


def test_push_retries_a_flaky_connection(repo: TmpRepo, faulty: FaultyRemote) -> None:
    repo.gen({"data": DATA})
    repo.dvl_add("data")
    faulty.fail("put_file", 2, oid=xxh(DATA["a.bin"]))
    faulty.fail("mv", 1, oid=xxh(DATA["c.bin"]))
    faulty.fail("exists", 1)

    result = sync.push(repo.repo)

    assert result.failed == {}
    assert result.transferred == 4
    stored = faulty.stored()
    assert len(stored) == 4
    assert_valid(stored)
    assert faulty.litter() == []


def test_push_failure_on_the_command_line(
    repo: TmpRepo, faulty: FaultyRemote, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.gen({"data": DATA})
    repo.dvl_add("data")
    stuck = xxh(DATA["c.bin"])
    faulty.fail("put_file", oid=stuck)

    line = assert_error(run_main(capsys, "push"), stuck, "remote `flaky`", after_messages=True)
    assert "1 object(s) failed" in line
    assert "Traceback" not in capsys.readouterr().err

    faulty.clear_faults()
    assert run_main(capsys, "push").code == 0
    assert len(faulty.stored()) == 4


# --- asking the remote what it has ---------------------------------------------------------


def seed_remote(remote: FaultyRemote, count: int) -> None:
    for i in range(count):
        data = f"already there {i}".encode()
        oid = xxh(data)
        path = Path(remote.root, oid[:2], oid[2:])
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)


def test_a_small_push_to_a_big_remote_asks_per_object(repo: TmpRepo,
                                                      faulty: FaultyRemote) -> None:
    seed_remote(faulty, 2000)
    repo.gen({"data": {f"f{i}.txt": f"new {i}\n" for i in range(10)}})
    repo.dvl_add("data")

    result = sync.push(repo.repo)

    assert result.transferred == 11
    # no 2-hex folder: the folders of packs and recipes, once for the whole push
    assert faulty.calls["ls"] == 2
    assert faulty.calls["find"] == 0
    assert faulty.calls["exists"] == 11  # 10 files, then the manifest


def test_a_large_push_lists_folders_instead(repo: TmpRepo, faulty: FaultyRemote) -> None:
    seed_remote(faulty, 2000)
    repo.gen({"data": {f"f{i}.txt": f"new {i}\n" for i in range(400)}})
    repo.dvl_add("data")

    result = sync.push(repo.repo)

    assert result.transferred == 401
    assert faulty.calls["exists"] == 1  # only the manifest's own check
    assert 2 < faulty.calls["ls"] <= 259  # and the folders of packs and recipes


# --- any failure schedule ------------------------------------------------------------------

FAULTS = st.sampled_from(["ok", "ok", "transient", "always", "deny", "drop-mv"])
FOLDERS = st.lists(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3),
    min_size=1, max_size=2,
)


def _inject(remote: FaultyRemote, oid: str, fault: str) -> None:
    if fault == "transient":
        remote.fail("put_file", 2, oid=oid)
    elif fault == "always":
        remote.fail("put_file", oid=oid)
    elif fault == "deny":
        remote.deny("put_file", oid=oid)
    elif fault == "drop-mv":
        remote.fail("mv", oid=oid)


def _assert_no_manifest_without_its_files(stored: dict[str, bytes],
                                          folders: dict[str, set[str]]) -> None:
    for manifest, members in folders.items():
        if manifest in stored:
            assert members <= set(stored), "a manifest is on the remote without all its files"


@settings(max_examples=20, deadline=None)
@given(folders=FOLDERS, loose=st.binary(min_size=1, max_size=40), data=st.data())
def test_any_failure_schedule_then_a_clean_rerun_completes_a_push(
    folders: list[list[bytes]], loose: bytes, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            faulty_remote(Path(tmp, "remote")) as remote, \
            mock.patch.object(transfer, "_BACKOFF", 0.0):
        root = Path(tmp, "repo")
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        repo = TmpRepo.create(root)
        try:
            tree = {f"d{i}": {f"f{j}.bin": content for j, content in enumerate(files)}
                    for i, files in enumerate(folders)}
            repo.gen({**tree, "loose.bin": loose})
            repo.dvl_add(*tree, "loose.bin")
            remote_add(repo.repo, "flaky", remote.url, default=True)
            repo.reopen()

            members = {pointer_oid(root, name): {xxh(c) for c in files}
                       for name, files in zip(tree, folders, strict=True)}
            file_oids = {xxh(c) for files in folders for c in files} | {xxh(loose)}
            schedule = {oid: data.draw(FAULTS, label=f"fault of {oid}")
                        for oid in sorted(file_oids | set(members))}
            for oid, fault in schedule.items():
                _inject(remote, oid, fault)
            bad = {oid for oid, fault in schedule.items() if fault not in ("ok", "transient")}
            failed_files = bad & file_oids
            tried = {m for m, files in members.items() if not files & failed_files}

            first = sync.push(repo.repo)

            assert set(first.failed) == failed_files | (tried & bad)
            stored = remote.stored()
            assert_valid(stored)
            _assert_no_manifest_without_its_files(stored, members)
            assert set(stored) == (file_oids | tried) - bad
            assert remote.litter() == []
            there = set(stored)

            remote.clear_faults()
            remote.reset_counts()
            second = sync.push(repo.repo)

            assert second.failed == {}
            stored = remote.stored()
            assert set(stored) == file_oids | set(members)
            assert_valid(stored)
            _assert_no_manifest_without_its_files(stored, members)
            sent = remote.oids_of("put_file")
            assert len(sent) == len(set(sent)), "the rerun sent an object twice"
            assert set(sent) == set(stored) - there  # exactly what was missing
        finally:
            repo.close()
