"""Chunks and packs end to end, on every real remote server (tests/remote/conftest.py): the
real `dvlite` CLI in real git repos pushes a chunked file and packed small files, pulls them
back, and meets damaged pieces (helpers and data: chunks_packs.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from dvlite.storage.chunks import CHUNK_MAX, CHUNK_MIN
from tests.ops.support import cache_oids, snapshot, xxh
from tests.remote import chunks_packs, test_backends
from tests.remote.chunks_packs import (
    ANY,
    BIG,
    EDIT,
    WRITABLE,
    assert_one_error,
    assert_same_data,
    delete,
    dvl,
    edit_big,
    held,
    make_origin,
    packed,
    publish,
    read,
    recipe,
    small_files,
    sync_git,
    write,
)
from tests.remote.contract import assert_cache_clean, in_clone, oid_of, on

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.helpers import TmpRepo
    from tests.remote.servers import Backend

    Clone = Callable[[TmpRepo], TmpRepo]

# each test runs on the backends its `@on(...)` names, a fresh store each, as the contract does
pytest_generate_tests = test_backends.pytest_generate_tests
backend = test_backends.backend
origin = chunks_packs.origin


# --- push and pull -----------------------------------------------------------------------------

@on(*ANY)
def test_push_then_pull_restores_every_byte_from_chunks_and_packs(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    big = (origin.root / "big.bin").read_bytes()
    smalls = {xxh(content) for content in snapshot(origin.root / "data").values()}
    there = held(backend)

    # the big file: a recipe of a few chunks, each a plain object; never the whole file
    assert there.recipes == {xxh(big)}
    chunks = recipe(backend, xxh(big)).chunks
    assert len(chunks) >= 3
    assert all(CHUNK_MIN <= c.size <= CHUNK_MAX for c in chunks[:-1])
    assert b"".join(read(backend, f"{c.oid[:2]}/{c.oid[2:]}") for c in chunks) == big
    assert xxh(big) not in there.objects
    # the small files: in packs only, each pack with its index
    indexes = packed(backend)
    assert len(indexes) >= 3
    assert set(there.packs) == there.indexes
    assert {e.oid for index in indexes.values() for e in index.entries} == smalls
    assert all(there.packs[pack] == index.size for pack, index in indexes.items())
    assert not smalls & set(there.objects)
    # plain: the chunks and the folder's manifest
    assert set(there.objects) == {c.oid for c in chunks} | {oid_of(origin, "data")}

    other = in_clone(clone, origin, backend)
    pulled = dvl(other, "pull")
    assert "fetched 42 objects" in pulled.stderr + pulled.stdout
    assert_same_data(other, origin)
    assert_cache_clean(other)


@on(*ANY)
def test_an_edit_in_place_pushes_and_pulls_only_the_changed_chunks(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    other = in_clone(clone, origin, backend)
    dvl(other, "pull")
    old = recipe(backend, xxh((origin.root / "big.bin").read_bytes()))
    before = held(backend)

    new_bytes = edit_big(origin)
    publish(origin, backend)

    after = held(backend)
    new = recipe(backend, xxh(new_bytes))
    sent = {oid: size for oid, size in after.objects.items() if oid not in before.objects}
    assert set(sent) == {c.oid for c in new.chunks} - {c.oid for c in old.chunks}
    assert 0 < sum(sent.values()) <= BIG // 3  # a chunk or two around the edit, not the file
    assert after.recipes == before.recipes | {new.oid}
    assert after.packs == before.packs
    kept = [c for c in old.chunks if c.offset + c.size <= EDIT.start]
    assert kept
    assert set(kept) <= set(new.chunks)

    # the clone holds the old version: the chunks both share come from its cache, so the pull
    # works with the remote holding only the new ones
    for chunk in {c.oid for c in new.chunks} - set(sent):
        delete(backend, f"{chunk[:2]}/{chunk[2:]}")
    sync_git(other, origin)
    dvl(other, "pull")
    assert (other.root / "big.bin").read_bytes() == new_bytes
    assert_cache_clean(other)


@on(*ANY)
def test_pulling_one_packed_file_fetches_only_it(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    origin = make_origin(tmp_repo, backend, big=False)
    other = in_clone(clone, origin, backend)

    dvl(other, "pull", "data/f07.bin")

    # a ranged read of its pack (backends whose whole-file read ignores the range, sftp, would
    # hand the whole pack over: refused as not what the index says)
    assert cache_oids(other) == {oid_of(origin, "data"), xxh(small_files()["f07.bin"])}
    assert os.listdir(other.root / "data") == ["f07.bin"]
    assert (other.root / "data/f07.bin").read_bytes() == small_files()["f07.bin"]


@on(*WRITABLE)
def test_a_second_push_moves_nothing_and_status_says_all_is_there(
    origin: TmpRepo, backend: Backend,
) -> None:
    before = held(backend)

    again = dvl(origin, "push")

    assert "0 pushed, 42 already there, 0 failed" in again.stderr + again.stdout
    assert held(backend) == before
    status = dvl(origin, "status", "--remote")
    assert "are on the remote" in status.stderr + status.stdout
    dvl(origin, "status", "--remote", "--exit-code")


@on(*WRITABLE)
def test_a_push_killed_before_its_recipe_and_indexes_is_finished_by_a_rerun(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    done = held(backend)
    # as a push killed after the chunks and packs, before what names them, leaves the remote
    for oid in done.recipes:
        delete(backend, f"recipes/{oid}")
    for pack in done.indexes:
        delete(backend, f"packs/{pack}.idx")
    manifest = oid_of(origin, "data")  # it goes up after the files it lists
    delete(backend, f"{manifest[:2]}/{manifest[2:]}")
    other = in_clone(clone, origin, backend)
    pulled = dvl(other, "pull", code=1)  # a reader sees neither the file nor the packed ones
    assert "fetched 0 objects; 0 files written" in pulled.stderr

    again = dvl(origin, "push")

    assert "42 pushed, 0 already there, 0 failed" in again.stderr
    assert held(backend) == done  # the same packs again (an id is a hash), nothing more
    dvl(other, "pull")
    assert_same_data(other, origin)


# --- damage on the remote ----------------------------------------------------------------------

DAMAGES = ("corrupt chunk", "missing chunk", "corrupt pack entry", "truncated pack")


def damage(backend: Backend, origin: TmpRepo, how: str) -> tuple[list[str], str]:
    """Break one piece on the remote: the paths of the files it holds bytes of, and its name."""
    if how.endswith("chunk"):
        chunk = recipe(backend, xxh((origin.root / "big.bin").read_bytes())).chunks[1]
        rel = f"{chunk.oid[:2]}/{chunk.oid[2:]}"
        if how == "missing chunk":
            delete(backend, rel)
        else:  # same length, other bytes: only the hash can tell
            data = read(backend, rel)
            write(backend, rel, bytes([data[0] ^ 0xFF]) + data[1:])
        return ["big.bin"], chunk.oid
    pack, index = sorted(packed(backend).items())[0]
    rel = f"packs/{pack}.pack"
    data = read(backend, rel)
    names = {xxh(content): f"data/{name}"
             for name, content in snapshot(origin.root / "data").items()}
    if how == "truncated pack":
        write(backend, rel, data[: len(data) // 2])
        return [names[e.oid] for e in index.entries], pack
    entry = index.entries[len(index.entries) // 2]
    write(backend, rel, data[: entry.offset] + bytes([data[entry.offset] ^ 0xFF])
          + data[entry.offset + 1:])
    return [names[entry.oid]], entry.oid


@on(*ANY)
@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_piece_fails_the_pull_naming_it(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone, how: str,
) -> None:
    origin = make_origin(tmp_repo, backend, big=how.endswith("chunk"))
    paths, piece = damage(backend, origin, how)
    other = in_clone(clone, origin, backend)

    big = [xxh((origin.root / "big.bin").read_bytes())] if paths == ["big.bin"] else []
    assert_one_error(dvl(other, "pull", code=1), piece, *big)  # the piece, and its file

    assert not any((other.root / path).exists() for path in paths)  # nothing half-written
    assert_cache_clean(other)  # nothing unverified kept
    if paths == ["big.bin"]:  # the files of every sound piece are there
        assert snapshot(other.root / "data") == snapshot(origin.root / "data")
    else:
        assert {f"data/{name}" for name in snapshot(other.root / "data")} == {
            f"data/{name}" for name in snapshot(origin.root / "data")} - set(paths)



@on(*ANY)
def test_an_empty_file_travels_in_a_pack_too(
    tmp_repo: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    tmp_repo.gen({"data": {"empty.txt": b""}})
    origin = make_origin(tmp_repo, backend, big=False)
    assert xxh(b"") in {e.oid for index in packed(backend).values() for e in index.entries}
    other = in_clone(clone, origin, backend)

    dvl(other, "pull", "data/empty.txt")  # a read of no bytes

    assert (other.root / "data/empty.txt").read_bytes() == b""
    dvl(other, "pull")
    assert snapshot(other.root / "data") == snapshot(origin.root / "data")


@on("local")  # the same logic on every backend
def test_fsck_repair_then_a_push_from_a_clone_with_the_file_restores_a_missing_chunk(
    origin: TmpRepo, backend: Backend, clone: Clone,
) -> None:
    lost = recipe(backend, xxh((origin.root / "big.bin").read_bytes())).chunks[1]
    delete(backend, f"{lost.oid[:2]}/{lost.oid[2:]}")
    dvl(origin, "push")  # the recipe says the file is there: nothing to send
    assert lost.oid not in held(backend).objects

    checked = dvl(origin, "fsck", "--remote", code=1)
    assert f"chunk {lost.oid}: the chunk is not on the remote" in checked.stdout
    assert "fsck --remote --repair" in checked.stderr
    dvl(origin, "fsck", "--remote", "--repair")
    dvl(origin, "push")

    assert lost.oid in held(backend).objects
    assert dvl(origin, "fsck", "--remote").returncode == 0
    other = in_clone(clone, origin, backend)
    dvl(other, "pull")
    assert_same_data(other, origin)
