"""Chunks and packs shared: repos with and without them on one remote, gc of shared chunks and
partly dead packs, and what pushes and pulls of packs cost in requests on S3 (helpers and
data: chunks_packs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from dvlite.ops.gc import STALE_AFTER
from dvlite.ops.init import config_set
from tests.ops.support import snapshot, xxh
from tests.remote import chunks_packs, test_backends
from tests.remote.chunks_packs import (
    MIB,
    WRITABLE,
    assert_same_data,
    delete,
    dvl,
    edit_big,
    held,
    make_origin,
    packed,
    publish,
    randbytes,
    recipe,
    small_files,
    sync_git,
)
from tests.remote.contract import assert_cache_clean, configure, in_clone, oid_of, on
from tests.remote.test_requests import difference, requests_to

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.helpers import TmpRepo
    from tests.remote.servers import Backend, S3Server

    Clone = Callable[[TmpRepo], TmpRepo]

# each test runs on the backends its `@on(...)` names, a fresh store each, as the contract does
pytest_generate_tests = test_backends.pytest_generate_tests
backend = test_backends.backend
origin = chunks_packs.origin


# --- repos with and without chunks and packs on one remote ------------------------------------

@on(*WRITABLE)
def test_repos_with_and_without_chunks_and_packs_share_one_remote(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    before = held(backend)
    # B: a clone that sends every object whole; it reads what A sent as chunks and packs
    b = in_clone(clone, origin, backend)
    dvl(b, "config", "--local", "core.chunk_min_size", "0")
    config_set(b.repo, "core.pack_size", "0", level="local")
    dvl(b, "pull")
    assert_same_data(b, origin)
    b.gen({"data": small_files(seed=1, count=20, prefix="g"), "big2.bin": randbytes(3, 3 * MIB)})
    dvl(b, "add", "data", "big2.bin")
    b.git_commit("more data, whole")

    pushed = dvl(b, "push")

    # what A's recipe and packs hold is not sent again: 40 small files and big.bin
    assert "22 pushed, 41 already there, 0 failed" in pushed.stderr
    new = {xxh(content) for content in small_files(seed=1, count=20, prefix="g").values()}
    new |= {xxh(randbytes(3, 3 * MIB)), oid_of(b, "data")}
    after = held(backend)
    assert set(after.objects) == set(before.objects) | new
    assert (after.recipes, after.packs) == (before.recipes, before.packs)

    # A reads what B sent whole, and a clone of B reads both kinds
    sync_git(origin, b)
    dvl(origin, "pull")
    assert_same_data(origin, b)
    assert (origin.root / "big2.bin").read_bytes() == (b.root / "big2.bin").read_bytes()
    # and sends none of it again as chunks or packs: a whole object is as good
    assert "0 pushed, 63 already there" in dvl(origin, "push").stderr
    assert held(backend) == after
    fresh = in_clone(clone, b, backend)
    dvl(fresh, "pull")
    assert_same_data(fresh, b)
    assert_cache_clean(fresh)


# --- gc ----------------------------------------------------------------------------------------

@on(*WRITABLE)
def test_gc_keeps_the_chunks_a_live_version_shares_with_a_dead_one(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    old = recipe(backend, xxh((origin.root / "big.bin").read_bytes()))
    new_bytes = edit_big(origin)
    publish(origin, backend)
    new = recipe(backend, xxh(new_bytes))
    shared = {c.oid for c in old.chunks} & {c.oid for c in new.chunks}
    assert shared
    before = held(backend)

    planned = dvl(origin, "gc", "--cloud", "--workspace", "--dry-run")
    assert "and 1 chunk lists of unreferenced files" in planned.stderr
    dvl(origin, "gc", "--cloud", "--workspace", "--force")  # the old version is out of scope

    after = held(backend)
    assert after.recipes == {new.oid}
    assert set(after.objects) == set(before.objects) - ({c.oid for c in old.chunks} - shared)
    assert after.packs == before.packs
    other = in_clone(clone, origin, backend)
    dvl(other, "pull")
    assert (other.root / "big.bin").read_bytes() == new_bytes
    assert_cache_clean(other)


@on(*WRITABLE)
def test_gc_rewrites_a_mostly_dead_pack_keeps_a_little_dead_one_and_drops_a_dead_one(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    origin = make_origin(tmp_repo, backend, big=False)
    names = {xxh(content): name for name, content in small_files().items()}
    packs = sorted(packed(backend).values(), key=lambda index: index.pack)
    assert len(packs) >= 3
    dead_pack, mostly_dead, little_dead = packs[:3]
    keep = [e.oid for e in mostly_dead.entries[:2]]  # 2 of about 16 objects stay live
    drop = ({e.oid for e in dead_pack.entries} | {e.oid for e in mostly_dead.entries[2:]}
            | {little_dead.entries[0].oid})
    for oid in drop:
        (origin.root / "data" / names[oid]).unlink()
    dvl(origin, "add", "data")
    origin.git_commit("drop files")
    assert "1 pushed" in publish(origin, backend).stderr  # the folder's new manifest

    dvl(origin, "gc", "--cloud", "--workspace", "--force")

    after = packed(backend)
    assert dead_pack.pack not in after
    assert mostly_dead.pack not in after
    assert after[little_dead.pack] == little_dead  # not worth rewriting: kept as it is
    rewritten = [index for pack, index in after.items()
                 if pack not in {p.pack for p in packs}]
    assert [sorted(e.oid for e in index.entries) for index in rewritten] == [sorted(keep)]
    assert set(held(backend).packs) == set(after)
    other = in_clone(clone, origin, backend)
    dvl(other, "pull")
    assert snapshot(other.root / "data") == snapshot(origin.root / "data")
    assert_cache_clean(other)


# --- requests, on S3 -------------------------------------------------------------------------

MANY = 500  # small files: one request each would be 500 PUTs and 500 GETs


@contextlib.contextmanager
def recording(server: S3Server) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """moto's request recorder, on for the block: it gives every request recorded so far
    (method, url, headers), whichever bucket it was for."""

    def call(action: str, method: str = "POST") -> str:
        request = urllib.request.Request(f"{server.endpoint}/moto-api/recorder/{action}",
                                         method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(answer.read().decode())

    call("reset-recording")
    call("start-recording")
    try:
        yield lambda: [json.loads(line) for line in call("download-recording", "GET").splitlines()]
    finally:
        call("stop-recording")
        call("reset-recording")


@on("s3")
def test_pulling_one_packed_file_from_s3_is_one_ranged_read_of_its_bytes(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone, moto_server: S3Server,
) -> None:
    origin = make_origin(tmp_repo, backend, big=False)
    wanted = small_files()["f07.bin"]
    where = next(entry for index in packed(backend).values() for entry in index.entries
                 if entry.oid == xxh(wanted))
    pack = next(pack for pack, index in packed(backend).items() if where in index.entries)
    other = in_clone(clone, origin, backend)

    with recording(moto_server) as recorded:
        dvl(other, "pull", "data/f07.bin")
        reads = [r for r in recorded() if r["method"] == "GET" and ".pack" in r["url"]
                 and f"/{backend.root}/" in r["url"]]

    assert [r["url"].rsplit("/", 1)[1] for r in reads] == [f"{pack}.pack"]
    assert reads[0]["headers"]["Range"] == f"bytes={where.offset}-{where.offset + where.size - 1}"
    assert (other.root / "data/f07.bin").read_bytes() == wanted
    assert not (other.root / "data/f08.bin").exists()


@on("s3")
def test_many_small_files_go_to_s3_and_back_in_a_few_requests(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone, moto_server: S3Server,
) -> None:
    configure(tmp_repo, backend)  # packing as configured by default
    tmp_repo.gen({"data": {f"f{i:03d}.txt": f"small file {i}\n" for i in range(MANY)}})
    dvl(tmp_repo, "add", "data")
    tmp_repo.git_commit("many small files")
    before = requests_to(moto_server, backend)

    assert f"{MANY + 1} pushed" in dvl(tmp_repo, "push").stderr

    pushed = difference(requests_to(moto_server, backend), before)
    assert pushed.total() <= MANY // 10, pushed
    assert pushed["PUT"] <= 3, pushed  # a pack, its index, the folder's manifest
    other = in_clone(clone, tmp_repo, backend)
    before = requests_to(moto_server, backend)
    dvl(other, "pull")
    pulled = difference(requests_to(moto_server, backend), before)
    assert pulled.total() <= MANY // 10, pulled
    assert snapshot(other.root / "data") == snapshot(tmp_repo.root / "data")


@on("local", "ssh", "webdav")  # served from a folder here, where a file's age can be set
def test_gc_drops_a_stale_pack_left_without_its_index_and_keeps_a_young_one(
    tmp_repo: TmpRepo, backend: Backend,
) -> None:
    make_origin(tmp_repo, backend, big=False)
    stale, young = sorted(packed(backend))[:2]
    for pack in (stale, young):  # as pushes killed before the index leave them
        delete(backend, f"packs/{pack}.idx")
    long_ago = time.time() - 2 * STALE_AFTER
    os.utime(f"{backend.root}/packs/{stale}.pack", (long_ago, long_ago))

    dvl(tmp_repo, "gc", "--cloud", "--force")

    left = held(backend)
    assert stale not in left.packs
    assert young in left.packs  # may be a push still under way
