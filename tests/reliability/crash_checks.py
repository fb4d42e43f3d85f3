"""What must hold after dvlite was killed at any point, checked without trusting dvlite where
that matters: object names are checked with xxhash directly, and stores are walked by hand.

- every object under a final name, in the cache and on a remote, hashes to that name;
- a store holds objects, temp files in ``tmp/`` and the run cache's ``runs/``: nothing else;
- a remote holds a folder's manifest only together with all of that folder's files, and
  shows a pack only whole and a chunked file only with all its chunks;
- `dvlite fsck` finds nothing to quarantine;
- config, pointers and ``dvlite.lock`` parse;
- no bytes the workspace held before the command are gone: each file's content is still in
  the workspace or in the cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import xxhash

from dvlite import pointer as pointers
from dvlite.ops.fsck import fsck
from dvlite.pipeline import lockfile as lockfiles
from dvlite.repo import Repo

_MANIFEST_START = b'{"dvlite-manifest":'
_SKIPPED = (".git", ".dvlite")  # not workspace data
_METADATA = (pointers.SUFFIX, ".gitignore", lockfiles.FILENAME)  # dvlite's own files, kept in git


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def file_digest(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def store_objects(store: Path) -> dict[str, Path]:
    """oid → path of every file under a final name (``<2 hex>/<30 hex>``) in ``store``."""
    found: dict[str, Path] = {}
    if not store.is_dir():
        return found
    for prefix in store.iterdir():
        if len(prefix.name) == 2 and prefix.is_dir():
            found.update((prefix.name + obj.name, obj) for obj in prefix.iterdir())
    return found


def assert_store_sound(store: Path) -> set[str]:
    """Every file under an object's name (``<2 hex>/<30 hex>``, and nothing else is in those
    folders) hashes to that name; returns the oids. Temp files, the run cache's index and the
    cache's own bookkeeping live in other folders of the store."""
    objects = store_objects(store)
    strays = [str(path) for oid, path in objects.items()
              if len(oid) != 32 or set(oid) - set("0123456789abcdef") or not path.is_file()]
    assert strays == [], f"not objects, in the object folders of `{store}`: {strays}"
    bad = sorted(oid for oid, path in objects.items() if file_digest(path) != oid)
    assert bad == [], f"objects in `{store}` whose bytes do not hash to their name: {bad[:5]}"
    return set(objects)


def remote_contents(store: Path) -> dict[str, bytes | Path]:
    """oid → its bytes (packed, or put together from a recipe's chunks) or its file (plain),
    for everything a remote shows. Read by hand: every pack an index names is whole and each
    of its objects hashes to its oid; every recipe lists chunks that are all there and make
    the file it names."""
    found: dict[str, bytes | Path] = dict(store_objects(store))
    packs = store / "packs"
    for index in sorted(packs.glob("*.idx")) if packs.is_dir() else []:
        text = index.read_text()
        assert xxh(text.encode()) == index.stem, f"pack index `{index}` is damaged"
        _, size, *lines = text.splitlines()
        data = (packs / f"{index.stem}.pack").read_bytes()
        assert len(data) == int(size), f"pack `{index.stem}` in `{store}` is incomplete"
        for line in lines:
            oid, offset, length = line.split()
            piece = data[int(offset):int(offset) + int(length)]
            assert xxh(piece) == oid, f"object {oid} in pack `{index.stem}` is corrupt"
            found[oid] = piece
    recipes = store / "recipes"
    for recipe in sorted(recipes.iterdir()) if recipes.is_dir() else []:
        _, _, *chunks = recipe.read_text().splitlines()
        pieces = []
        for line in chunks:
            chunk = line.split()[0]
            assert chunk in found, f"recipe {recipe.name} in `{store}` lacks chunk {chunk}"
            held = found[chunk]
            pieces.append(held if isinstance(held, bytes) else held.read_bytes())
        assert xxh(b"".join(pieces)) == recipe.name, f"recipe {recipe.name} makes another file"
        found[recipe.name] = b"".join(pieces)
    return found


def assert_folders_complete(store: Path) -> None:
    """A remote never lists a folder whose files it lacks (manifests go up last), in any of
    the ways it holds them: plain, packed, or as chunks and a recipe."""
    objects = remote_contents(store)
    for oid, held in objects.items():
        data = held if isinstance(held, bytes) else held.read_bytes()
        if not data.startswith(_MANIFEST_START):
            continue
        files = json.loads(data)["files"]
        lacking = [e["path"] for e in files if e["oid"] not in objects]
        assert lacking == [], f"`{store}` has folder {oid} without its files {lacking[:5]}"


def workspace_files(root: Path) -> dict[str, str]:
    """Relative path → content hash of every file in the work tree, ``.git`` and ``.dvlite``
    aside."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in _SKIPPED]
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink() or path.exists():
                found[path.relative_to(root).as_posix()] = file_digest(path)
    return found


def assert_parses(root: Path) -> Repo:
    """Config, every pointer and the lock parse; returns the open repo (strict config)."""
    repo = Repo.discover(str(root))
    try:
        for folder, dirs, files in os.walk(root):
            if Path(folder) == root:
                dirs[:] = [d for d in dirs if d not in _SKIPPED]
            for name in files:
                if name.endswith(pointers.SUFFIX):
                    pointers.load(os.path.join(folder, name), repo.cache.algorithm)
        lockfiles.load(str(root / lockfiles.FILENAME), algorithm=repo.cache.algorithm)
    except BaseException:
        repo.close()
        raise
    return repo


@dataclass(frozen=True)
class State:
    """What a project holds: its workspace files and each store's objects."""

    workspace: dict[str, str]  # path → content hash
    stores: dict[str, set[str]]  # store (relative to the project's base) → oids

    def data(self) -> dict[str, str]:
        """The user's files: the workspace less the pointers, ignore files and lock that
        dvlite rewrites (their old versions are in git; that they parse is checked apart)."""
        return {p: h for p, h in self.workspace.items() if not p.endswith(_METADATA)}

    @classmethod
    def of(cls, base: Path, repo: str, stores: tuple[str, ...]) -> State:
        return cls(workspace_files(base / repo),
                   {s: assert_store_sound(base / s) for s in stores})


def assert_consistent(base: Path, repo: str, stores: tuple[str, ...], *, remotes: tuple[str, ...],
                      before: State, kept: State) -> None:
    """Everything that must hold at any moment, however the last command ended.

    ``before`` is the project before the command and ``kept`` what a complete run leaves:
    an object in both may never be missing, and no workspace content may be lost.
    """
    now = State.of(base, repo, stores)
    for store in stores:
        lost = (before.stores[store] & kept.stores[store]) - now.stores[store]
        assert not lost, f"objects lost from `{store}`: {sorted(lost)[:5]}"
    for remote in remotes:
        assert_folders_complete(base / remote)
    with assert_parses(base / repo) as project:
        result = fsck(project)
        assert result.quarantined == (), f"fsck found bad objects: {result.quarantined}"
        cached = now.stores[os.path.relpath(project.cache_dir, base)]
    lost_data = set(before.data().values()) - set(now.workspace.values()) - cached
    assert not lost_data, f"workspace content lost (in neither workspace nor cache): {lost_data}"
