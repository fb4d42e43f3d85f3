"""Helpers for the end-to-end tests of chunks and packs (test_chunks_packs*.py): repos that
chunk and pack, and a direct look at what a remote holds, through the backend's own view of
it, not through dvlite.

A 6 MiB file is chunked (``core.chunk_min_size`` 2 MiB: three chunks of 1.5 to 2.5 MiB) and a
folder of 40 small files is packed (``core.pack_size`` 64 KiB: a few packs).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.init import config_set
from dvlite.storage.chunks import Recipe
from dvlite.storage.hashing import Oid
from dvlite.storage.packs import PackIndex
from tests.helpers import run_dvlite
from tests.ops.support import snapshot
from tests.remote.contract import configure

if TYPE_CHECKING:
    from tests.helpers import Run, TmpRepo
    from tests.remote.servers import Backend

MIB = 1 << 20
BIG = 6 * MIB  # three chunks
SMALL = 40  # files in `data`, 4 KiB each: three packs of at most 64 KiB
CHUNKING = str(2 * MIB)
PACKING = str(64 << 10)
EDIT = slice(BIG - MIB, BIG)  # 1 MiB rewritten in place, in the file's last chunk
# every real server: the CLI runs in a child process, which an in-memory remote cannot reach
WRITABLE = ("local", "s3", "azure", "ssh", "webdav")
ANY = (*WRITABLE, "http")


def randbytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def dvl(t: TmpRepo, *args: str, code: int = 0) -> Run:
    run = run_dvlite(args, t.root)
    assert run.returncode == code, (args, run.stdout, run.stderr)
    return run


def publish(t: TmpRepo, backend: Backend) -> Run:
    """`dvlite push`; a read-only backend is filled through the folder its server serves."""
    return dvl(t, "push", *(() if backend.writable else ("-r", "filler")))


# --- what the remote holds, seen directly ----------------------------------------------------

@dataclass(frozen=True)
class Held:
    objects: dict[str, int]  # plain object oid → size
    recipes: frozenset[str]
    packs: dict[str, int]  # pack id → .pack size
    indexes: frozenset[str]  # pack ids with an .idx


def held(backend: Backend) -> Held:
    fs, root = backend.view()
    prefix = fs._strip_protocol(root).rstrip("/") + "/"
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        found = {}
    files = {fs._strip_protocol(p).removeprefix(prefix): int(info["size"])
             for p, info in found.items()}
    objects, recipes, packs, indexes = {}, set(), {}, set()
    for rel, size in files.items():
        parts = rel.split("/")
        if len(parts) == 2 and len(parts[0]) == 2:
            objects[rel.replace("/", "")] = size
        elif parts[0] == "recipes" and len(parts) == 2:
            recipes.add(parts[1])
        elif parts[0] == "packs" and rel.endswith(".pack"):
            packs[parts[1].removesuffix(".pack")] = size
        elif parts[0] == "packs" and rel.endswith(".idx"):
            indexes.add(parts[1].removesuffix(".idx"))
        else:
            raise AssertionError(f"unexpected file on the remote: {rel}")
    return Held(objects, frozenset(recipes), packs, frozenset(indexes))


def read(backend: Backend, rel: str) -> bytes:
    fs, root = backend.view()
    data: bytes = fs.cat_file(f"{root}/{rel}")
    return data


def write(backend: Backend, rel: str, data: bytes) -> None:
    """Replace a file on the remote behind dvlite's back."""
    fs, root = backend.view()
    with warnings.catch_warnings():  # aiohttp (azure) warns of a large body sent as bytes
        warnings.simplefilter("ignore", ResourceWarning)
        if rel.count("/") == 1 and len(rel.split("/", 1)[0]) == 2:
            backend.overwrite_object(rel.replace("/", ""), data)
            return
        fs.rm_file(f"{root}/{rel}")
        fs.pipe_file(f"{root}/{rel}", data)
    fs.invalidate_cache()


def delete(backend: Backend, rel: str) -> None:
    fs, root = backend.view()
    fs.rm_file(f"{root}/{rel}")
    fs.invalidate_cache()


def recipe(backend: Backend, oid: str) -> Recipe:
    return Recipe.parse(read(backend, f"recipes/{oid}"), Oid(oid),
                        algorithm="xxh128", source="test")


def pack_index(backend: Backend, pack: str) -> PackIndex:
    return PackIndex.parse(read(backend, f"packs/{pack}.idx"), pack, algorithm="xxh128",
                           source="test")


def packed(backend: Backend) -> dict[str, PackIndex]:
    return {pack: pack_index(backend, pack) for pack in held(backend).indexes}


# --- repos -------------------------------------------------------------------------------------

def small_files(seed: int = 0, count: int = SMALL, prefix: str = "f") -> dict[str, bytes]:
    return {f"{prefix}{i:02d}.bin": randbytes(seed * 1000 + i, 4096) for i in range(count)}


def make_origin(t: TmpRepo, backend: Backend, *, big: bool = True) -> TmpRepo:
    """A repo chunking and packing to the backend, tracking data/ (and big.bin), committed
    and pushed."""
    configure(t, backend)
    config_set(t.repo, "core.chunk_min_size", CHUNKING)
    config_set(t.repo, "core.pack_size", PACKING)
    t.gen({"data": small_files(), **({"big.bin": randbytes(1, BIG)} if big else {})})
    t.dvl_add("data", *(["big.bin"] if big else []))
    t.git_commit("big file and small files")
    publish(t, backend)
    return t


@pytest.fixture
def origin(tmp_repo: TmpRepo, backend: Backend) -> TmpRepo:
    return make_origin(tmp_repo, backend)


def edit_big(t: TmpRepo) -> bytes:
    """Rewrite 1 MiB of big.bin in place; commit it. The new bytes."""
    data = bytearray((t.root / "big.bin").read_bytes())
    data[EDIT] = randbytes(2, EDIT.stop - EDIT.start)
    (t.root / "big.bin").write_bytes(data)
    dvl(t, "add", "big.bin")
    t.git_commit("edit big.bin")
    return bytes(data)


def sync_git(t: TmpRepo, source: TmpRepo) -> None:
    t.git("pull", "-q", "--no-rebase", str(source.root), "main")


def assert_same_data(t: TmpRepo, expected: TmpRepo) -> None:
    assert (t.root / "big.bin").read_bytes() == (expected.root / "big.bin").read_bytes()
    assert snapshot(t.root / "data") == snapshot(expected.root / "data")


def assert_one_error(run: Run, *names: str) -> None:
    """A failure said on one `error:` line (and a hint) naming each of ``names``."""
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert "Traceback" not in run.stderr
    for name in names:
        assert name in errors[0], (name, errors[0])

