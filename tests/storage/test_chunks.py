"""Content-defined chunks: the recipe codec, chunk_file, the recipe store and assemble."""

from __future__ import annotations

import itertools
import os
import random
import threading
from typing import TYPE_CHECKING, BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import CorruptObjectError, MissingObjectError
from dvlite.storage.chunks import (
    CHUNK_MAX,
    CHUNK_MIN,
    Chunk,
    Recipe,
    RecipeStore,
    assemble,
    chunk_file,
)
from dvlite.storage.hashing import ALGORITHMS, Oid, hash_bytes, hash_file
from dvlite.storage.odb import READ_ONLY, ObjectStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MiB = 1 << 20
SRC = "remote `origin`"
OID = Oid("0123456789abcdef" * 2)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def recipe_of(data: bytes, cuts: list[int], algorithm: str = "xxh128") -> Recipe:
    """The recipe that cuts ``data`` at ``cuts`` (offsets), with real chunk oids."""
    edges = [0, *cuts, len(data)]
    chunks = tuple(Chunk(hash_bytes(data[a:b], algorithm), a, b - a)
                   for a, b in itertools.pairwise(edges))
    return Recipe(hash_bytes(data, algorithm), len(data), chunks)


def encoded(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


# --- the recipe codec ---------------------------------------------------------------------------

oids = {name: st.text("0123456789abcdef", min_size=n, max_size=n).map(Oid)
        for name, n in (("xxh128", 32), ("sha256", 64))}


@st.composite
def recipes(draw: st.DrawFn, algorithm: str) -> Recipe:
    sizes = draw(st.lists(st.integers(1, 1 << 40), max_size=8))
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    chunks = tuple(Chunk(draw(oids[algorithm]), offset, size)
                   for offset, size in zip(offsets, sizes, strict=True))
    return Recipe(draw(oids[algorithm]), sum(sizes), chunks)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(data=st.data())
def test_recipe_round_trips(algorithm: str, data: st.DataObject) -> None:
    recipe = data.draw(recipes(algorithm))
    raw = recipe.to_bytes(algorithm)
    assert Recipe.parse(raw, recipe.oid, algorithm=algorithm, source=SRC) == recipe
    assert raw.startswith(f"dvlite-recipe 1 {algorithm}\n{recipe.oid} {recipe.size}\n".encode())
    assert raw.count(b"\n") == 2 + len(recipe.chunks)


def test_recipe_text_is_the_documented_one() -> None:
    a, b = Oid("a" * 32), Oid("b" * 32)
    recipe = Recipe(OID, 7, (Chunk(a, 0, 3), Chunk(b, 3, 4)))
    assert recipe.to_bytes("xxh128") == encoded(
        "dvlite-recipe 1 xxh128", f"{OID} 7", f"{a} 3", f"{b} 4")


GOOD = ("dvlite-recipe 1 xxh128", f"{OID} 7", f"{'a' * 32} 3", f"{'b' * 32} 4")


@pytest.mark.parametrize(("raw", "why"), [
    (encoded("dvlite-recipe 2 xxh128", *GOOD[1:]), "first line"),
    (encoded("dvlite-recipe 1 sha256", *GOOD[1:]), "first line"),
    (encoded("dvlite-pack 1 xxh128", *GOOD[1:]), "first line"),
    (encoded(GOOD[0], f"{'c' * 32} 7", *GOOD[2:]), f"the recipe of {'c' * 32}"),
    (encoded(GOOD[0], f"{OID} 8", *GOOD[2:]), "add up to 7 bytes, not 8"),
    (encoded(*GOOD[:2], f"{'a' * 32} 3", f"{'d' * 32} 0", f"{'b' * 32} 4"), "is empty"),
    (encoded(*GOOD, "junk"), "line 5"),
    (encoded(*GOOD, ""), "line 5"),
    (encoded(*GOOD[:2], f"{'A' * 32} 3", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 31} 3", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 64} 3", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 32} 03", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 32}  3", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 32} -3", GOOD[3]), "line 3"),
    (encoded(*GOOD[:2], f"{'a' * 32} 3 x", GOOD[3]), "line 3"),
    (encoded(GOOD[0], f"{OID} 7 ", *GOOD[2:]), "line 2"),
    (encoded(GOOD[0]), "names no file"),
    (encoded(*GOOD)[:-1], "newline"),
    (encoded(*GOOD).replace(b"\n", b"\r\n"), "first line"),
    (b"", "newline"),
    (encoded(*GOOD) + b"\xff\n", "ASCII"),
])
def test_malformed_recipes_are_corrupt(raw: bytes, why: str) -> None:
    assert Recipe.parse(encoded(*GOOD), OID, algorithm="xxh128", source=SRC).size == 7
    with pytest.raises(CorruptObjectError) as caught:
        Recipe.parse(raw, OID, algorithm="xxh128", source=SRC)
    assert f"recipe of {OID} from {SRC} is corrupt" in str(caught.value)
    assert why in str(caught.value)


def spoiled(recipe: Recipe, how: str, junk: str) -> bytes:
    """The recipe's bytes, wrong in one way."""
    lines = recipe.to_bytes("xxh128").decode().splitlines()
    if how == "header":
        lines[0] = junk or "dvlite-recipe 1"
    elif how == "algorithm":
        lines[0] = "dvlite-recipe 1 sha256"
    elif how == "oid":
        lines[1] = f"{'f' * 32 if recipe.oid != 'f' * 32 else 'e' * 32} {recipe.size}"
    elif how == "size":
        lines[1] = f"{recipe.oid} {recipe.size + 1}"
    elif how == "empty chunk":
        lines.insert(2, f"{'c' * 32} 0")
    else:  # a line of junk
        lines.insert(2, junk)
    return encoded(*lines)


@given(recipes("xxh128"),
       st.sampled_from(["header", "algorithm", "oid", "size", "empty chunk", "junk"]),
       st.text(max_size=40).filter(
           lambda t: "\n" not in t and "\r" not in t and t != "dvlite-recipe 1 xxh128"))
def test_a_spoiled_recipe_is_corrupt_and_names_its_source(recipe: Recipe, how: str,
                                                           junk: str) -> None:
    with pytest.raises(CorruptObjectError) as caught:
        Recipe.parse(spoiled(recipe, how, junk), recipe.oid, algorithm="xxh128", source=SRC)
    assert f"recipe of {recipe.oid} from {SRC} is corrupt" in str(caught.value)


@given(st.binary(max_size=200) | st.builds(
    lambda cut, junk: encoded(*GOOD)[:cut] + junk + encoded(*GOOD)[cut + 1:],
    st.integers(0, len(encoded(*GOOD)) - 1), st.binary(max_size=3)))
def test_parse_accepts_only_canonical_bytes(raw: bytes) -> None:
    """Whatever parses is exactly what to_bytes writes; everything else is corrupt."""
    outcome: Recipe | CorruptObjectError
    try:
        outcome = Recipe.parse(raw, OID, algorithm="xxh128", source=SRC)
    except CorruptObjectError as e:
        outcome = e
    if isinstance(outcome, Recipe):
        assert outcome.to_bytes("xxh128") == raw
    else:
        assert SRC in str(outcome)


# --- chunk_file ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """A 40 MiB file of random bytes (some ten chunks)."""
    data = random_bytes(40 * MiB, seed=9)
    path = tmp_path_factory.mktemp("big") / "big.bin"
    path.write_bytes(data)
    return str(path), data


def assert_covers(recipe: Recipe, data: bytes, algorithm: str = "xxh128") -> None:
    assert recipe.size == len(data)
    assert recipe.oid == hash_bytes(data, algorithm)
    offset = 0
    for chunk in recipe.chunks:
        assert chunk.offset == offset
        assert chunk.oid == hash_bytes(data[offset:offset + chunk.size], algorithm)
        offset += chunk.size
    assert offset == len(data)


def test_chunk_file_covers_the_file_with_content_defined_chunks(big: tuple[str, bytes]) -> None:
    path, data = big
    recipe = chunk_file(path, hash_file(path), "xxh128")
    assert_covers(recipe, data)
    assert 3 <= len(recipe.chunks) <= 40
    assert all(CHUNK_MIN <= c.size <= CHUNK_MAX for c in recipe.chunks[:-1])
    assert Recipe.parse(recipe.to_bytes("xxh128"), recipe.oid, algorithm="xxh128",
                        source=SRC) == recipe


def test_chunk_file_with_sha256(tmp_path: Path) -> None:
    data = random_bytes(3 * MiB, seed=3)
    (tmp_path / "f").write_bytes(data)
    recipe = chunk_file(str(tmp_path / "f"), hash_bytes(data, "sha256"), "sha256")
    assert_covers(recipe, data, "sha256")


def test_an_insertion_in_the_middle_changes_only_the_chunks_around_it(
        big: tuple[str, bytes], tmp_path: Path) -> None:
    path, data = big
    middle = len(data) // 2
    edited = data[:middle] + random_bytes(300_000, seed=10) + data[middle:]
    (tmp_path / "edited").write_bytes(edited)
    old = chunk_file(path, hash_bytes(data), "xxh128")
    new = chunk_file(str(tmp_path / "edited"), hash_bytes(edited), "xxh128")
    assert_covers(new, edited)
    old_oids = {c.oid for c in old.chunks}
    fresh = [c for c in new.chunks if c.oid not in old_oids]
    # fixed-size blocks would all change after the insertion; content-defined cuts resync
    # within a chunk or two, so the chunks before and after the edit are shared
    assert len(old.chunks) >= 8
    assert 1 <= len(fresh) <= 3
    assert len(new.chunks) - len(fresh) >= len(old.chunks) - 2


def test_a_file_below_chunk_min_is_one_chunk(tmp_path: Path) -> None:
    data = random_bytes(CHUNK_MIN - 1, seed=1)
    (tmp_path / "small").write_bytes(data)
    recipe = chunk_file(str(tmp_path / "small"), hash_bytes(data), "xxh128")
    assert recipe.chunks == (Chunk(hash_bytes(data), 0, len(data)),)
    (tmp_path / "empty").write_bytes(b"")
    empty = chunk_file(str(tmp_path / "empty"), hash_bytes(b""), "xxh128")
    assert (empty.size, empty.chunks) == (0, ())
    assert Recipe.parse(empty.to_bytes("xxh128"), empty.oid, algorithm="xxh128",
                        source=SRC) == empty


@pytest.mark.parametrize("size", [100, 3 * MiB])
def test_chunk_file_refuses_a_file_that_is_not_its_oid(tmp_path: Path, size: int) -> None:
    (tmp_path / "f").write_bytes(random_bytes(size, seed=2))
    with pytest.raises(CorruptObjectError, match=f"does not hash to {OID}"):
        chunk_file(str(tmp_path / "f"), OID, "xxh128")


# --- the recipe store ---------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


def test_recipe_store_put_get_delete_and_listing(cache: ObjectStore) -> None:
    store = RecipeStore(cache)
    data = random_bytes(1000, seed=4)
    recipe = recipe_of(data, [10, 600])
    assert store.get(recipe.oid) is None
    assert list(store.iter_oids()) == []
    store.put(recipe)
    path = os.path.join(cache.root, "recipes", recipe.oid[:2], recipe.oid[2:])
    with open(path, "rb") as f:
        assert f.read() == recipe.to_bytes("xxh128")
    assert store.get(recipe.oid) == recipe
    assert list(store.iter_oids()) == [recipe.oid]
    assert list(cache.iter_oids()) == []  # recipes are not mistaken for objects
    os.makedirs(os.path.join(store.root, "zz"))
    with open(os.path.join(store.root, recipe.oid[:2], "stray.tmp"), "wb"):
        pass
    assert list(store.iter_oids()) == [recipe.oid]
    store.delete(recipe.oid)
    store.delete(recipe.oid)  # already gone: fine
    assert store.get(recipe.oid) is None
    assert list(store.iter_oids()) == []


def test_a_corrupt_recipe_file_is_dropped(cache: ObjectStore) -> None:
    store = RecipeStore(cache)
    recipe = recipe_of(random_bytes(1000, seed=5), [500])
    store.put(recipe)
    path = store.path(recipe.oid)
    with open(path, "ab") as f:
        f.write(b"junk\n")
    assert store.get(recipe.oid) is None
    assert not os.path.exists(path)


def test_of_computes_keeps_and_reuses_the_recipe(cache: ObjectStore, big: tuple[str, bytes]
                                                  ) -> None:
    path, data = big
    oid = cache.add_file(path)
    store = RecipeStore(cache)
    recipe = store.of(oid)
    assert_covers(recipe, data)
    assert store.get(oid) == recipe
    assert store.of(oid) == recipe
    with pytest.raises(MissingObjectError, match=OID):
        store.of(OID)
    assert store.get(OID) is None


def test_local_chunks_only_from_objects_in_the_cache(cache: ObjectStore) -> None:
    store = RecipeStore(cache)
    here = random_bytes(3000, seed=6)
    gone = random_bytes(2000, seed=7)
    cache.add_bytes(here)
    store.put(recipe_of(here, [1000, 2500]))
    store.put(recipe_of(gone, [1000]))  # a recipe kept after gc removed its object
    assert store.local_chunks() == {
        hash_bytes(here[:1000]): (hash_bytes(here), 0, 1000),
        hash_bytes(here[1000:2500]): (hash_bytes(here), 1000, 1500),
        hash_bytes(here[2500:]): (hash_bytes(here), 2500, 500),
    }


# --- assemble -----------------------------------------------------------------------------------

class Remote:
    """Chunks as plain objects of a real store; counts and optionally spoils what it serves."""

    def __init__(self, root: str) -> None:
        self.store = ObjectStore(root)
        self.fetched: list[Oid] = []
        self.lock = threading.Lock()
        self.spoil: Callable[[Chunk, bytes], bytes] = lambda _chunk, data: data

    def fetch(self, chunk: Chunk) -> bytes:
        with self.lock:
            self.fetched.append(chunk.oid)
        with self.store.open(chunk.oid) as f:
            return self.spoil(chunk, f.read())


def pushed(remote: Remote, recipe: Recipe, data: bytes) -> None:
    for chunk in recipe.chunks:
        remote.store.add_bytes(data[chunk.offset:chunk.offset + chunk.size])


def assert_nothing_stored(cache: ObjectStore, oid: Oid) -> None:
    assert not cache.exists(oid)
    tmp = os.path.join(cache.root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def read(cache: ObjectStore, oid: Oid) -> bytes:
    with cache.open(oid) as f:
        return f.read()


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(str(tmp_path / "remote"))


def test_assemble_from_fetched_chunks(cache: ObjectStore, remote: Remote,
                                      big: tuple[str, bytes]) -> None:
    path, data = big
    recipe = chunk_file(path, hash_bytes(data), "xxh128")
    pushed(remote, recipe, data)
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=3, local={})
    assert read(cache, recipe.oid) == data
    assert sorted(remote.fetched) == sorted(c.oid for c in recipe.chunks)


def test_assemble_from_local_chunks(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(5000, seed=11)
    recipe = recipe_of(data, [1200, 3000, 4100])
    # another cached file made of the same chunks in the opposite order
    other = b"".join(data[c.offset:c.offset + c.size] for c in reversed(recipe.chunks))
    cache.add_bytes(other)
    store = RecipeStore(cache)
    store.put(recipe_of(other, [900, 2000, 3800]))
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=2, local=store.local_chunks())
    assert read(cache, recipe.oid) == data
    assert remote.fetched == []


def test_assemble_from_local_and_fetched_chunks(cache: ObjectStore, remote: Remote,
                                                big: tuple[str, bytes], tmp_path: Path) -> None:
    """The new version of a file: unchanged chunks come from the old one in the cache."""
    path, data = big
    store = RecipeStore(cache)
    old = store.of(cache.add_file(path))
    middle = len(data) // 2
    edited = data[:middle] + random_bytes(300_000, seed=12) + data[middle:]
    (tmp_path / "edited").write_bytes(edited)
    new = chunk_file(str(tmp_path / "edited"), hash_bytes(edited), "xxh128")
    pushed(remote, new, edited)
    assemble(new, cache, remote.fetch, source=SRC, jobs=2, local=store.local_chunks())
    assert read(cache, new.oid) == edited
    old_oids = {c.oid for c in old.chunks}
    assert sorted(remote.fetched) == sorted(c.oid for c in new.chunks if c.oid not in old_oids)
    assert 1 <= len(remote.fetched) <= 3


def test_a_local_holder_gone_since_is_fetched_instead(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(3000, seed=13)
    recipe = recipe_of(data, [1000])
    pushed(remote, recipe, data)
    local = {c.oid: (OID, c.offset, c.size) for c in recipe.chunks}  # OID is not cached
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=0, local=local)  # 0: one at a time
    assert read(cache, recipe.oid) == data
    assert len(remote.fetched) == 2


def test_a_corrupt_fetched_chunk_stores_nothing(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(6000, seed=14)
    recipe = recipe_of(data, [1000, 2000, 4000])
    pushed(remote, recipe, data)
    bad = recipe.chunks[2]
    remote.spoil = lambda chunk, raw: raw[:-1] + b"!" if chunk == bad else raw
    with pytest.raises(CorruptObjectError) as caught:
        assemble(recipe, cache, remote.fetch, source=SRC, jobs=2, local={})
    message = str(caught.value)
    assert f"chunk {bad.oid} (bytes 2000-4000 of {recipe.oid}) from {SRC} is corrupt" in message
    assert_nothing_stored(cache, recipe.oid)


def test_a_truncated_fetched_chunk_stores_nothing(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(3000, seed=15)
    recipe = recipe_of(data, [1000])
    pushed(remote, recipe, data)
    remote.spoil = lambda _chunk, raw: raw[:10]
    with pytest.raises(CorruptObjectError, match=f"chunk {recipe.chunks[0].oid}"):
        assemble(recipe, cache, remote.fetch, source=SRC, jobs=1, local={})
    assert_nothing_stored(cache, recipe.oid)


def test_a_corrupt_local_range_is_fetched_instead(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(4000, seed=16)
    recipe = recipe_of(data, [1500])
    pushed(remote, recipe, data)
    holder = cache.add_bytes(data + b"tail")
    local = {c.oid: (holder, c.offset, c.size) for c in recipe.chunks}
    os.chmod(cache.path(holder), 0o644)  # bit rot in the cached copy
    with open(cache.path(holder), "r+b") as f:
        f.seek(2000)
        f.write(b"?")
    os.chmod(cache.path(holder), READ_ONLY)

    assemble(recipe, cache, remote.fetch, source=SRC, jobs=2, local=local)

    assert remote.fetched == [recipe.chunks[1].oid]  # the sound one came from the cache
    with cache.open(recipe.oid) as f:
        assert f.read() == data


def test_a_recipe_whose_chunks_make_another_file_stores_nothing(cache: ObjectStore,
                                                                 remote: Remote) -> None:
    data = random_bytes(3000, seed=17)
    good = recipe_of(data, [1000])
    pushed(remote, good, data)
    lying = Recipe(OID, good.size, good.chunks)
    with pytest.raises(CorruptObjectError, match=f"object {OID} from {SRC} is corrupt"):
        assemble(lying, cache, remote.fetch, source=SRC, jobs=2, local={})
    assert_nothing_stored(cache, OID)


def test_a_failing_fetch_stores_nothing_and_stops_fetching(cache: ObjectStore,
                                                           remote: Remote) -> None:
    data = random_bytes(20_000, seed=18)
    recipe = recipe_of(data, list(range(1000, 20_000, 1000)))
    pushed(remote, recipe, data)
    broken = recipe.chunks[3]

    def spoil(chunk: Chunk, raw: bytes) -> bytes:
        if chunk == broken:
            raise ConnectionError("the network went away")
        return raw

    remote.spoil = spoil
    with pytest.raises(ConnectionError):
        assemble(recipe, cache, remote.fetch, source=SRC, jobs=1, local={})
    assert_nothing_stored(cache, recipe.oid)
    # the window: never more than 2 * jobs chunks ahead of the one being written
    assert len(remote.fetched) <= 3 + 2 + 1
    assert len(remote.fetched) < len(recipe.chunks)


def test_assemble_of_a_cached_file_does_nothing(cache: ObjectStore, remote: Remote) -> None:
    data = random_bytes(2000, seed=19)
    cache.add_bytes(data)
    assemble(recipe_of(data, [1000]), cache, remote.fetch, source=SRC, jobs=1, local={})
    assert remote.fetched == []


def test_a_chunk_repeated_nearby_is_fetched_once(cache: ObjectStore, remote: Remote) -> None:
    block = random_bytes(1000, seed=20)
    others = [random_bytes(500, seed=seed) for seed in (21, 22, 23)]
    data = block * 6 + b"".join(others) + block
    recipe = recipe_of(data, [*range(1000, 6001, 1000), 6500, 7000, 7500])
    pushed(remote, recipe, data)
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=1, local={})
    assert read(cache, recipe.oid) == data
    # the six copies in a row come from one fetch; the last copy, three chunks further on,
    # is out of the window by then and fetched again
    assert remote.fetched == [hash_bytes(block), *map(hash_bytes, others), hash_bytes(block)]


# a folder remote: its chunks are copied from its own files, block by block, none fetched

def test_assemble_from_a_folder_copies_its_chunks_and_fetches_none(
        cache: ObjectStore, remote: Remote, big: tuple[str, bytes]) -> None:
    path, data = big
    recipe = chunk_file(path, hash_bytes(data), "xxh128")
    pushed(remote, recipe, data)
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=3, local={},
             open_chunk=remote.store.open)
    assert read(cache, recipe.oid) == data
    assert remote.fetched == []


def test_a_chunk_the_folder_keeps_otherwise_is_fetched(cache: ObjectStore, remote: Remote,
                                                        tmp_path: Path) -> None:
    data = random_bytes(5000, seed=24)
    recipe = recipe_of(data, [1000, 3000])
    pushed(remote, recipe, data)
    folder = ObjectStore(str(tmp_path / "folder"))  # lacks the middle chunk (in a pack, say)
    for chunk in (recipe.chunks[0], recipe.chunks[2]):
        folder.add_bytes(data[chunk.offset:chunk.offset + chunk.size])
    assemble(recipe, cache, remote.fetch, source=SRC, jobs=2, local={}, open_chunk=folder.open)
    assert read(cache, recipe.oid) == data
    assert remote.fetched == [recipe.chunks[1].oid]


@pytest.mark.parametrize("spoil", [b"?", b""], ids=["changed", "truncated"])
def test_a_corrupt_chunk_in_the_folder_stores_nothing(cache: ObjectStore, remote: Remote,
                                                      spoil: bytes) -> None:
    data = random_bytes(6000, seed=25)
    recipe = recipe_of(data, [1000, 2000, 4000])
    pushed(remote, recipe, data)
    bad = recipe.chunks[2]
    path = remote.store.path(bad.oid)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(bad.size - 1)
        f.seek(0, os.SEEK_END)
        f.write(spoil)
    opened: list[Oid] = []

    def open_chunk(oid: Oid) -> BinaryIO:
        opened.append(oid)
        return remote.store.open(oid)

    with pytest.raises(CorruptObjectError) as caught:
        assemble(recipe, cache, remote.fetch, source=SRC, jobs=2, local={},
                 open_chunk=open_chunk)
    assert f"chunk {bad.oid} (bytes 2000-4000 of {recipe.oid}) from {SRC} is corrupt" \
        in str(caught.value)
    assert_nothing_stored(cache, recipe.oid)
    assert remote.fetched == []
    # each chunk is checked as it is copied: the copying stops at the bad one
    assert opened == [c.oid for c in recipe.chunks[:3]]


@pytest.mark.parametrize("which", [1, -1], ids=["middle", "last"])
def test_a_fetched_chunk_longer_than_its_size_stores_nothing(cache: ObjectStore,
                                                             remote: Remote, which: int) -> None:
    data = random_bytes(3000, seed=27)
    recipe = recipe_of(data, [1000, 2000])
    pushed(remote, recipe, data)
    longer = recipe.chunks[which]
    remote.spoil = lambda chunk, raw: raw + b"past the end" if chunk == longer else raw
    with pytest.raises(CorruptObjectError, match=f"chunk {longer.oid} \\(bytes "):
        assemble(recipe, cache, remote.fetch, source=SRC, jobs=1, local={})
    assert_nothing_stored(cache, recipe.oid)


def test_assemble_from_a_folder_with_sha256(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "sha"), algorithm="sha256")
    folder = ObjectStore(str(tmp_path / "folder"), algorithm="sha256")
    data = random_bytes(5000, seed=28)
    recipe = recipe_of(data, [1000, 3000], "sha256")
    for chunk in recipe.chunks:
        folder.add_bytes(data[chunk.offset:chunk.offset + chunk.size])
    assemble(recipe, store, Remote(str(tmp_path / "none")).fetch, source=SRC, jobs=1,
             local={}, open_chunk=folder.open)
    assert read(store, recipe.oid) == data
    assert hash_file(store.path(recipe.oid), "sha256") == recipe.oid
