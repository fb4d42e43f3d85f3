"""transfer.upload / transfer.download against a misbehaving remote (tests/remote/faulty.py):
only what is missing moves, largest first, in parallel; transient faults are retried with
backoff, others are not; every download is verified and bad bytes never reach the cache; a
rerun moves exactly what is still missing."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from dvlite.remote import open_remote
from dvlite.storage import remote_listing, transfer
from dvlite.storage.odb import ObjectStore
from tests.remote.faulty import FaultyRemote, faulty_remote

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dvlite.storage.hashing import Oid
    from dvlite.storage.remote_store import RemoteStore

BACKOFF = transfer._BACKOFF


pytestmark = pytest.mark.usefixtures("no_backoff")  # fixtures in tests/conftest.py


@pytest.fixture
def store(faulty: FaultyRemote) -> RemoteStore:
    return open_remote("flaky", faulty.url, {})


@pytest.fixture
def cache(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def blobs(count: int, *, size: int = 64, tag: str = "obj") -> dict[Oid, bytes]:
    """``count`` distinct objects of ``size`` bytes, keyed by their oid."""
    found = {}
    for i in range(count):
        data = f"{tag} {i} ".encode().ljust(size, b".")[:size]
        found[xxh(data)] = data
    assert len(found) == count
    return found  # type: ignore[return-value]


def fill(cache: ObjectStore, objects: Mapping[Oid, bytes]) -> dict[Oid, int]:
    for oid, data in objects.items():
        assert cache.add_bytes(data) == oid
    return {oid: len(data) for oid, data in objects.items()}


def seed(remote: FaultyRemote, objects: Mapping[str, bytes]) -> None:
    """Put objects straight into the remote's folder, as an earlier push would have."""
    for oid, data in objects.items():
        path = Path(remote.root, oid[:2], oid[2:])
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)


def cached(cache: ObjectStore) -> dict[str, bytes]:
    root = Path(cache.root)
    return {p.parent.name + p.name: p.read_bytes() for p in root.glob("??/*")}


def cache_litter(cache: ObjectStore) -> list[str]:
    tmp = Path(cache.root, "tmp")
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


# --- upload --------------------------------------------------------------------------------


def test_upload_sends_only_what_the_remote_lacks(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(6)
    sizes = fill(cache, objects)
    there = dict(list(objects.items())[:2])
    seed(faulty, there)

    result = transfer.upload(cache, store, sizes, jobs=4)

    assert set(result.transferred) == objects.keys() - there.keys()
    assert set(result.skipped) == there.keys()
    assert result.failed == {}
    assert sorted(faulty.oids_of("put_file")) == sorted(result.transferred)  # type: ignore[type-var]
    assert faulty.stored() == objects
    assert faulty.litter() == []


def test_upload_goes_largest_first(cache: ObjectStore, store: RemoteStore,
                                   faulty: FaultyRemote) -> None:
    objects = {}
    for i, size in enumerate([10, 70_000, 1, 5_000, 300, 999, 40_000]):
        data = bytes([i]) * size
        objects[xxh(data)] = data
    sizes = fill(cache, objects)
    by_size = sorted(sizes, key=lambda oid: -sizes[oid])
    assert by_size != sorted(sizes), "sizes must not happen to sort like the oids"

    transfer.upload(cache, store, sizes, jobs=1)

    assert faulty.oids_of("put_file") == by_size
    assert faulty.stored() == objects


def test_download_goes_largest_first(cache: ObjectStore, store: RemoteStore,
                                     faulty: FaultyRemote) -> None:
    objects = {}
    for i, size in enumerate([3, 90_000, 20, 4_000, 777]):
        data = bytes([i + 1]) * size
        objects[xxh(data)] = data
    seed(faulty, objects)
    sizes: dict[Oid, int] = {oid: len(data) for oid, data in objects.items()}  # type: ignore[misc]
    by_size = sorted(sizes, key=lambda oid: -sizes[oid])
    assert by_size != sorted(sizes)

    transfer.download(store, cache, sizes, jobs=1)

    assert faulty.oids_of("open") == by_size
    assert cached(cache) == objects


def test_transfers_run_in_parallel(cache: ObjectStore, store: RemoteStore,
                                   faulty: FaultyRemote) -> None:
    sizes = fill(cache, blobs(8))
    faulty.hang("put_file", 0.2)  # a slow server: 1.6 s one after another
    start = time.monotonic()
    result = transfer.upload(cache, store, sizes, jobs=4)
    elapsed = time.monotonic() - start
    assert len(result.transferred) == 8
    assert elapsed < 1.2, f"8 slow uploads on 4 jobs took {elapsed:.2f} s"


# --- retries -------------------------------------------------------------------------------


def test_a_dropped_upload_is_retried(cache: ObjectStore, store: RemoteStore,
                                     faulty: FaultyRemote) -> None:
    objects = blobs(4, size=5000)
    sizes = fill(cache, objects)
    flaky = next(iter(objects))
    faulty.fail("put_file", 2, oid=flaky)  # the connection drops twice, then holds

    result = transfer.upload(cache, store, sizes, jobs=2)

    assert result.failed == {}
    assert set(result.transferred) == set(objects)
    assert faulty.count("put_file", flaky) == 3
    assert faulty.stored() == objects


def test_a_dropped_upload_leaves_no_partial_object_and_no_litter(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(3, size=5000)
    sizes = fill(cache, objects)
    flaky = next(iter(objects))
    faulty.fail("put_file", oid=flaky)  # each attempt sends half the bytes, then drops

    result = transfer.upload(cache, store, sizes, jobs=2)

    assert set(result.failed) == {flaky}
    stored = faulty.stored()
    assert flaky not in stored
    assert stored == {oid: data for oid, data in objects.items() if oid != flaky}
    assert faulty.litter() == [], "failed uploads left their temp files on the remote"


def test_retries_back_off(cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_BACKOFF", BACKOFF)
    slept: list[float] = []
    monkeypatch.setattr(transfer.time, "sleep", slept.append)
    objects = blobs(1)
    sizes = fill(cache, objects)
    faulty.fail("put_file", 3)

    result = transfer.upload(cache, store, sizes, jobs=1, retries=3)

    assert result.failed == {}
    assert len(slept) == 3
    for attempt, seconds in enumerate(slept):
        base = BACKOFF * 2**attempt
        assert 0.5 * base <= seconds <= 1.5 * base, slept
    assert BACKOFF > 0


def test_persistent_faults_are_reported_and_the_rest_moves(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(6)
    sizes = fill(cache, objects)
    down = sorted(objects)[:2]
    for oid in down:
        faulty.fail("put_file", oid=oid)

    result = transfer.upload(cache, store, sizes, jobs=3, retries=3)

    assert set(result.failed) == set(down)
    for oid in down:
        assert faulty.count("put_file", oid) == 4  # the first try and 3 retries
        assert "remote `flaky`" in result.failed[oid]
        assert "ConnectionError" in result.failed[oid]
    assert set(result.transferred) == set(objects) - set(down)
    assert set(faulty.stored()) == set(objects) - set(down)

    # the fault clears; a rerun moves exactly what is missing and nothing else
    faulty.clear_faults()
    faulty.reset_counts()
    again = transfer.upload(cache, store, sizes, jobs=3)
    assert sorted(again.transferred) == sorted(down)
    assert set(again.skipped) == set(objects) - set(down)
    assert again.failed == {}
    assert sorted(faulty.oids_of("put_file")) == sorted(down)  # type: ignore[type-var]
    assert faulty.stored() == objects


def test_retries_are_bounded(cache: ObjectStore, store: RemoteStore,
                             faulty: FaultyRemote) -> None:
    sizes = fill(cache, blobs(1))
    (oid,) = sizes
    faulty.fail("put_file", 2)
    result = transfer.upload(cache, store, sizes, jobs=1, retries=1)
    assert set(result.failed) == {oid}
    assert faulty.count("put_file", oid) == 2


@pytest.mark.parametrize("op", ["put_file", "mv"])
def test_permission_errors_are_not_retried(cache: ObjectStore, store: RemoteStore,
                                           faulty: FaultyRemote, op: str) -> None:
    objects = blobs(4)
    sizes = fill(cache, objects)
    refused = sorted(objects)[0]
    faulty.deny(op, oid=refused)

    result = transfer.upload(cache, store, sizes, jobs=2, retries=3)

    assert set(result.failed) == {refused}
    assert faulty.count(op, refused) == 1
    assert "refused access" in result.failed[refused]
    assert set(faulty.stored()) == set(objects) - {refused}


def test_permission_errors_on_download_are_not_retried(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(3)
    seed(faulty, objects)
    refused = sorted(objects)[1]
    faulty.deny("open", oid=refused)
    sizes: dict[Oid, int] = {oid: len(d) for oid, d in objects.items()}  # type: ignore[misc]

    result = transfer.download(store, cache, sizes, jobs=2, retries=3)

    assert set(result.failed) == {refused}
    assert faulty.count("open", refused) == 1
    assert "refused access" in result.failed[refused]
    assert set(cached(cache)) == set(objects) - {refused}


@pytest.mark.parametrize(("op", "count"), [("exists", 5), ("ls", 400)])
def test_a_transient_fault_while_checking_the_remote_is_retried(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote, op: str, count: int
) -> None:
    objects = blobs(count, size=16)
    sizes = fill(cache, objects)
    faulty.fail(op, 2)

    result = transfer.upload(cache, store, sizes, jobs=2)

    assert faulty.calls[op] > 2  # the check did meet the faults
    assert result.failed == {}
    assert len(result.transferred) == count
    assert faulty.stored() == objects


# --- downloads are verified ----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_a_damaged_object_never_enters_the_cache(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote, damage: str
) -> None:
    objects = blobs(5, size=3000)
    seed(faulty, objects)
    bad = sorted(objects)[2]
    getattr(faulty, damage)(bad)
    sizes: dict[Oid, int] = {oid: len(d) for oid, d in objects.items()}  # type: ignore[misc]

    result = transfer.download(store, cache, sizes, jobs=2)

    assert set(result.failed) == {bad}
    why = result.failed[bad]
    assert bad in why
    assert store.name in why
    assert faulty.url in why
    assert not Path(cache.path(bad)).exists()
    assert not Path(cache.root, bad[:2], bad[2:]).exists()
    assert cache_litter(cache) == []
    assert cached(cache) == {oid: d for oid, d in objects.items() if oid != bad}

    # repaired (served right again): the rerun brings exactly that object
    faulty.clear_faults()
    faulty.reset_counts()
    again = transfer.download(store, cache, sizes, jobs=2)
    assert again.transferred == (bad,)
    assert faulty.oids_of("open") == [bad]
    assert cached(cache) == objects


def test_a_download_dropped_mid_stream_is_retried(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(3, size=10_000)
    seed(faulty, objects)
    flaky = sorted(objects)[0]
    faulty.fail("read", 2, oid=flaky)
    sizes: dict[Oid, int] = {oid: len(d) for oid, d in objects.items()}  # type: ignore[misc]

    result = transfer.download(store, cache, sizes, jobs=2)

    assert result.failed == {}
    assert faulty.count("open", flaky) == 3
    assert cached(cache) == objects
    assert cache_litter(cache) == []


def test_a_download_that_always_drops_is_reported_and_leaves_nothing(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(3, size=10_000)
    seed(faulty, objects)
    flaky = sorted(objects)[0]
    faulty.fail("read", oid=flaky)
    sizes: dict[Oid, int] = {oid: len(d) for oid, d in objects.items()}  # type: ignore[misc]

    result = transfer.download(store, cache, sizes, jobs=2, retries=2)

    assert set(result.failed) == {flaky}
    assert faulty.count("open", flaky) == 3
    assert "cannot be reached" in result.failed[flaky]
    assert cached(cache) == {oid: d for oid, d in objects.items() if oid != flaky}
    assert cache_litter(cache) == []


def test_an_object_missing_from_the_remote_is_reported_not_retried(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    objects = blobs(3)
    seed(faulty, dict(list(objects.items())[1:]))
    gone = next(iter(objects))
    sizes: dict[Oid, int] = {oid: len(d) for oid, d in objects.items()}  # type: ignore[misc]

    result = transfer.download(store, cache, sizes, jobs=2, retries=3)

    assert set(result.failed) == {gone}
    assert gone in result.failed[gone]
    assert faulty.count("open", gone) == 1
    assert set(cached(cache)) == set(objects) - {gone}


# --- how the remote is asked what it has ---------------------------------------------------


def test_a_small_push_checks_each_object_and_lists_nothing(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    seed(faulty, blobs(2000, size=8, tag="old"))
    new = blobs(10, tag="new")
    sizes = fill(cache, new)

    result = transfer.upload(cache, store, sizes, jobs=4)

    assert len(result.transferred) == 10
    # no 2-hex folder is listed: one listing of the packs and one of the recipes, that is all
    assert faulty.calls["ls"] == 2
    assert faulty.calls["find"] == 0
    assert faulty.calls["exists"] == 10


def test_a_large_push_lists_the_2_hex_folders(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    old = blobs(2000, size=8, tag="old")
    seed(faulty, old)
    new = blobs(300, size=8, tag="new")
    again = dict(list(old.items())[:300])
    sizes = fill(cache, {**new, **again})
    prefixes = {oid[:2] for oid in sizes}

    result = transfer.upload(cache, store, sizes, jobs=4)

    assert set(result.transferred) == set(new)
    assert set(result.skipped) == set(again)
    assert faulty.calls["exists"] == 0
    # each folder once, plus a sample, plus the folders of packs and recipes
    assert 2 < faulty.calls["ls"] <= len(prefixes) + 3
    listed = {str(path).rsplit("/", 1)[-1] for path in faulty.oids_of("ls")}
    assert listed == prefixes | {"packs", "recipes"}


def test_folders_too_full_to_list_are_not_paged_through(
    cache: ObjectStore, store: RemoteStore, faulty: FaultyRemote
) -> None:
    sizes = fill(cache, blobs(300, size=8))
    first = min(oid[:2] for oid in sizes)
    crowded = Path(faulty.root, first)  # ~3000 listing pages' worth across the folders
    crowded.mkdir()
    for i in range(2 * remote_listing._PAGE):
        (crowded / f"{i:030x}").touch()

    result = transfer.upload(cache, store, sizes, jobs=4)

    assert len(result.transferred) == 300
    assert faulty.calls["ls"] == 3  # only the sample, and the folders of packs and recipes
    assert faulty.calls["exists"] == 300


# --- any failure schedule ------------------------------------------------------------------

FAULTS = st.sampled_from(["ok", "transient", "always", "deny", "corrupt", "truncate"])


@settings(max_examples=20, deadline=None)
@given(
    contents=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_any_failure_schedule_then_a_clean_rerun_completes_a_download(
    contents: list[bytes], data: st.DataObject
) -> None:
    objects: dict[Oid, bytes] = {xxh(c): c for c in contents}  # type: ignore[misc]
    schedule = {oid: data.draw(FAULTS, label=oid) for oid in objects}
    sizes = {oid: len(c) for oid, c in objects.items()}
    with tempfile.TemporaryDirectory() as tmp, faulty_remote(Path(tmp, "remote")) as remote, \
            mock.patch.object(transfer, "_BACKOFF", 0.0):
        seed(remote, objects)
        cache = ObjectStore(str(Path(tmp, "cache")))
        store = open_remote("flaky", remote.url, {})
        for oid, fault in schedule.items():
            if fault == "transient":
                remote.fail("read", 2, oid=oid)
            elif fault == "always":
                remote.fail("open", oid=oid)
            elif fault == "deny":
                remote.deny("open", oid=oid)
            elif fault in ("corrupt", "truncate"):
                getattr(remote, fault)(oid)
        expected = {oid for oid, f in schedule.items() if f not in ("ok", "transient")}

        first = transfer.download(store, cache, sizes, jobs=3, retries=2)

        assert set(first.failed) == expected
        assert set(first.transferred) == set(objects) - expected
        assert cached(cache) == {oid: c for oid, c in objects.items() if oid not in expected}
        assert cache_litter(cache) == []

        remote.clear_faults()
        second = transfer.download(store, cache, sizes, jobs=3, retries=2)
        assert second.failed == {}
        assert set(second.transferred) == expected
        assert cached(cache) == objects
