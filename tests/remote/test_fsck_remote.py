"""``dvlite fsck --remote``: every piece a remote holds is read and checked (plain objects,
objects in packs, pack indexes, chunk lists and their chunks); each bad one is named, the
command fails, and nothing on the remote changes unless a repair is asked for. Damage is
done through a direct view of the store, never through dvlite; on a folder remote, an
in-memory one and S3 (moto)."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.fsck_remote import BadPiece, fsck_remote, repair
from dvlite.ops.init import config_set
from dvlite.ops.sync import pull, push
from dvlite.repo import Repo
from tests.cli.support import run_main
from tests.helpers import TmpRepo, git
from tests.ops.support import xxh
from tests.remote.contract import configure, set_local

if TYPE_CHECKING:
    from pathlib import Path

    from tests.remote.servers import Backend

MIB = 1 << 20
SMALL = 40  # files in the folder: above PACK_MIN_OBJECTS, so they travel in packs


@pytest.fixture(params=["local_remote", "memory_remote", "s3_remote"])
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def pushed(tmp_repo: TmpRepo, backend: Backend) -> TmpRepo:
    """A repo that pushed a big file (as chunks and a chunk list) and a folder of small files
    (in two packs; its manifest alone, plain) to ``backend``."""
    config_set(tmp_repo.repo, "core.chunk_min_size", "2000000")
    config_set(tmp_repo.repo, "core.pack_size", "3000")
    configure(tmp_repo, backend)
    rng = random.Random(3)
    tmp_repo.gen({"big.bin": rng.randbytes(12 * MIB),
                  "small": {f"f{i:02d}": rng.randbytes(100 + i) for i in range(SMALL)}})
    tmp_repo.reopen()
    tmp_repo.dvl_add("big.bin", "small")
    assert push(tmp_repo.repo).failed == {}
    return tmp_repo


def delete(backend: Backend, rel: str) -> None:
    fs, root = backend.view()
    fs.rm_file(f"{root}/{rel}")


def remote_files(backend: Backend) -> dict[str, bytes]:
    return {rel: backend.read(rel) for rel in backend.files() if not rel.startswith("tmp/")}


def recipe_rel(backend: Backend) -> str:
    (rel,) = [f for f in backend.files() if f.startswith("recipes/")]
    return rel


def chunks(backend: Backend) -> list[tuple[str, int]]:
    """The chunks the one chunk list names: (oid, size), read without dvlite."""
    lines = backend.read(recipe_rel(backend)).decode().splitlines()[2:]
    return [(oid, int(size)) for oid, size in (line.split() for line in lines)]


def packs(backend: Backend) -> dict[str, list[tuple[str, int, int]]]:
    """pack id → its entries (oid, offset, size), read without dvlite."""
    found = {}
    for rel in backend.files():
        if rel.startswith("packs/") and rel.endswith(".idx"):
            lines = backend.read(rel).decode().splitlines()[2:]
            found[rel[len("packs/"):-len(".idx")]] = [
                (oid, int(at), int(size)) for oid, at, size in (line.split() for line in lines)]
    return found


def plain(rel: str) -> bool:
    head, _, rest = rel.partition("/")
    return len(head) == 2 and "/" not in rest


def test_a_sound_remote_is_read_whole(pushed: TmpRepo, backend: Backend) -> None:
    objects = [rel for rel in backend.files() if plain(rel)]
    found = packs(backend)
    before = remote_files(backend)
    assert len(chunks(backend)) >= 2, "the layout this test is about"
    assert len(found) >= 2

    result = fsck_remote(pushed.repo)

    assert result.bad == ()
    assert (result.objects, result.packs, result.packed, result.recipes) == (
        len(objects), len(found), SMALL, 1)
    assert result.bytes_checked == sum(len(before[rel]) for rel in objects) + sum(
        size for entries in found.values() for _, _, size in entries)
    assert remote_files(backend) == before


def test_corrupt_object_in_a_pack_is_named(pushed: TmpRepo, backend: Backend) -> None:
    pack, entries = sorted(packs(backend).items())[0]
    oid, at, size = entries[1]
    data = bytearray(backend.read(f"packs/{pack}.pack"))
    data[at] ^= 0xFF
    backend.replace(f"packs/{pack}.pack", bytes(data))
    wrong = xxh(bytes(data[at:at + size]))

    result = fsck_remote(pushed.repo)

    assert result.bad == (BadPiece("pack", pack, oid, f"its bytes hash to {wrong}"),)


def test_repair_rewrites_a_pack_without_its_bad_object(pushed: TmpRepo,
                                                      backend: Backend) -> None:
    before = packs(backend)
    pack, entries = sorted(before.items())[0]
    oid, at, _ = entries[1]
    data = bytearray(backend.read(f"packs/{pack}.pack"))
    data[at] ^= 0xFF
    backend.replace(f"packs/{pack}.pack", bytes(data))

    repair(pushed.repo, fsck_remote(pushed.repo))

    pushed.repo.remote().fs.invalidate_cache()
    after = packs(backend)
    assert pack not in after
    held = {o for found in after.values() for o, _, _ in found}
    assert held == {o for found in before.values() for o, _, _ in found} - {oid}
    assert fsck_remote(pushed.repo).bad == ()


def test_pack_shorter_than_its_index(pushed: TmpRepo, backend: Backend) -> None:
    pack = sorted(packs(backend))[0]
    backend.replace(f"packs/{pack}.pack", backend.read(f"packs/{pack}.pack")[:-10])

    (bad,) = fsck_remote(pushed.repo).bad

    assert (bad.kind, bad.name, bad.piece) == ("pack", pack, None)
    assert "missing" in bad.why


def test_corrupt_pack_index(pushed: TmpRepo, backend: Backend) -> None:
    count = len(packs(backend))
    pack = sorted(packs(backend))[0]
    backend.replace(f"packs/{pack}.idx", backend.read(f"packs/{pack}.idx") + b"junk\n")

    result = fsck_remote(pushed.repo)

    (bad,) = result.bad
    assert (bad.kind, bad.name, bad.piece) == ("pack", pack, None)
    assert bad.why.startswith("its index is corrupt: its bytes hash to ")
    assert result.packs == count - 1, "the other packs are still checked"


def test_missing_and_corrupt_chunks_name_the_file(pushed: TmpRepo, backend: Backend) -> None:
    file_oid = recipe_rel(backend).removeprefix("recipes/")
    (gone, _), (rotten, _), *_ = chunks(backend)
    delete(backend, f"{gone[:2]}/{gone[2:]}")
    backend.replace(f"{rotten[:2]}/{rotten[2:]}", b"rotten")

    result = fsck_remote(pushed.repo)

    assert sorted(result.bad, key=str) == sorted([
        BadPiece("object", rotten, None, f"its bytes hash to {xxh(b'rotten')}"),
        BadPiece("recipe", file_oid, gone, "the chunk is not on the remote"),
        BadPiece("recipe", file_oid, rotten, "the chunk is corrupt"),
    ], key=str)


def test_chunk_list_that_does_not_parse(pushed: TmpRepo, backend: Backend) -> None:
    rel = recipe_rel(backend)
    backend.replace(rel, b"garbage\n")

    (bad,) = fsck_remote(pushed.repo).bad

    assert (bad.kind, bad.name, bad.piece) == ("recipe", rel.removeprefix("recipes/"), None)
    assert bad.why.startswith("it does not parse: its first line is not `dvlite-recipe 1")


def test_chunk_list_with_a_wrong_size(pushed: TmpRepo, backend: Backend) -> None:
    rel = recipe_rel(backend)
    (first, size), (second, size2), *rest = chunks(backend)
    head = backend.read(rel).decode().splitlines()[:2]
    lines = [*head, f"{first} {size - 1}", f"{second} {size2 + 1}",
             *(f"{oid} {n}" for oid, n in rest)]
    backend.replace(rel, "".join(line + "\n" for line in lines).encode())

    result = fsck_remote(pushed.repo)

    file_oid = rel.removeprefix("recipes/")
    assert set(result.bad) == {
        BadPiece("recipe", file_oid, first, f"the chunk has {size} bytes, not {size - 1}"),
        BadPiece("recipe", file_oid, second, f"the chunk has {size2} bytes, not {size2 + 1}"),
    }


def test_corrupt_plain_object(pushed: TmpRepo, backend: Backend) -> None:
    chunk_oids = {oid for oid, _ in chunks(backend)}
    # the folder's manifest: the one plain object that is no chunk
    (rel,) = [r for r in backend.files() if plain(r) and r.replace("/", "") not in chunk_oids]
    backend.replace(rel, b"{}")

    result = fsck_remote(pushed.repo)

    assert result.bad == (BadPiece("object", rel.replace("/", ""), None,
                                   f"its bytes hash to {xxh(b'{}')}"),)


def test_cli_names_every_bad_piece_and_fails(pushed: TmpRepo, backend: Backend,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pack = sorted(packs(backend))[0]
    backend.replace(f"packs/{pack}.pack", b"")
    (gone, _), *_ = chunks(backend)
    delete(backend, f"{gone[:2]}/{gone[2:]}")
    before = remote_files(backend)

    result = run_main(capsys, "-C", str(pushed.root), "fsck", "--remote")

    assert result.code == 1, result
    assert result.out.splitlines() == [
        f"bad: pack {pack}: bytes 0-{packs(backend)[pack][-1][1] + packs(backend)[pack][-1][2]}"
        " are missing: the pack is shorter than its index says, or gone",
        f"bad: chunk list of {recipe_rel(backend).removeprefix('recipes/')}, chunk {gone}: "
        "the chunk is not on the remote",
    ]
    assert "Traceback" not in result.err
    error, blank, hint = result.err_lines[-3:]
    assert error.startswith(f"error: 2 bad piece(s) on remote `store` ({backend.url}")
    assert f"first the pack {pack}" in error
    assert (blank, hint.startswith("hint: nothing was changed on the remote")) == ("", True)
    assert remote_files(backend) == before, "fsck repairs nothing on the remote"

    as_json = run_main(capsys, "-C", str(pushed.root), "-q", "fsck", "-r", "store", "--json")
    assert as_json.code == 1
    document = json.loads(as_json.out)
    assert [(b["kind"], b["name"], b["piece"]) for b in document["bad"]] == [
        ("pack", pack, None), ("recipe", recipe_rel(backend).removeprefix("recipes/"), gone)]
    assert document["packs"] == len(packs(backend))


def test_cli_on_a_sound_remote(pushed: TmpRepo, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(capsys, "-C", str(pushed.root), "fsck", "--remote", "store")

    assert (result.code, result.out) == (0, "")
    assert result.err_lines[-1].endswith(", 0 bad")
    assert "1 chunk lists" in result.err_lines[-1]


def test_the_hint_repairs(pushed: TmpRepo, backend: Backend, tmp_path: Path) -> None:
    """`--repair` takes the bad pieces off the remote, a push from a clone with the data sends
    them again: fsck is clean, and a fresh clone pulls every byte."""
    pack, entries = sorted(packs(backend).items())[0]
    backend.replace(f"packs/{pack}.pack", b"\0" * (entries[-1][1] + entries[-1][2]))
    (rotten, _), *_ = chunks(backend)
    backend.replace(f"{rotten[:2]}/{rotten[2:]}", b"rotten")
    assert len(fsck_remote(pushed.repo).bad) == len(entries) + 2

    assert repair(pushed.repo, fsck_remote(pushed.repo)) == len(entries) + 2
    pushed.repo.remote().fs.invalidate_cache()  # as a new command starts: no stale listing
    assert pack not in packs(backend)
    assert push(pushed.repo).failed == {}

    assert fsck_remote(pushed.repo).bad == ()
    pushed.git_commit("data")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(pushed.root), str(clone))
    other = TmpRepo(clone, Repo.discover(str(clone)))
    try:
        set_local(other, backend.secrets)
        result, _ = pull(other.repo)
        assert result.failed == {}
        for rel in ("big.bin", *(f"small/f{i:02d}" for i in range(SMALL))):
            assert (clone / rel).read_bytes() == (pushed.root / rel).read_bytes(), rel
    finally:
        other.close()
