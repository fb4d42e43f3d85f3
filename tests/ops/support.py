"""Helpers for the ops tests: independent looks at the cache, pointers and work tree."""

from __future__ import annotations

import json
import os
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xxhash

from dvlite.ops.init import config_set

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

PAST = time.time() - 3600  # an hour ago: well before any stat index stamp


def xxh(data: bytes) -> str:
    """The spec's content hash, computed without dvlite."""
    return xxhash.xxh3_128_hexdigest(data)


def age(path: Path, when: float = PAST) -> None:
    """Move the mtime of ``path`` (and every file below it) into the past."""
    targets = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file()]
    for target in targets:
        os.utime(target, (when, when), follow_symlinks=False)


def cache_root(tmp_repo: TmpRepo) -> Path:
    return Path(tmp_repo.repo.cache_dir)


def object_path(tmp_repo: TmpRepo, oid: str) -> Path:
    return cache_root(tmp_repo) / oid[:2] / oid[2:]


def cache_oids(tmp_repo: TmpRepo) -> set[str]:
    """Every object under its final name in the cache, found by walking the folders."""
    root = cache_root(tmp_repo)
    if not root.exists():
        return set()
    return {
        prefix.name + obj.name
        for prefix in root.iterdir()
        if prefix.is_dir() and len(prefix.name) == 2
        for obj in prefix.iterdir()
    }


def drop_object(tmp_repo: TmpRepo, oid: str) -> None:
    object_path(tmp_repo, oid).unlink()


def corrupt_object(tmp_repo: TmpRepo, oid: str, data: bytes = b"rotten bits") -> None:
    path = object_path(tmp_repo, oid)
    path.chmod(0o644)
    path.write_bytes(data)


def read_pointer(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def manifest_files(tmp_repo: TmpRepo, oid: str) -> dict[str, dict[str, Any]]:
    """The file list a cached manifest object holds, keyed by path."""
    doc = json.loads(object_path(tmp_repo, oid).read_bytes())
    return {item["path"]: item for item in doc["files"]}


def ignore_lines(folder: Path) -> list[str]:
    path = folder / ".gitignore"
    return path.read_text().splitlines() if path.exists() else []


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the work tree outside .git and .dvlite, with its bytes."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in (".git", ".dvlite"):
            continue
        if path.is_file() and not path.is_symlink():
            found[rel] = path.read_bytes()
    return found


def set_config(tmp_repo: TmpRepo, key: str, value: str, *, level: str = "project") -> None:
    """Write a config value and reopen the repo so it takes effect."""
    config_set(tmp_repo.repo, key, value, level=level)
    tmp_repo.reopen()


def tracked_file_names(tmp_repo: TmpRepo) -> list[str]:
    return sorted(p for p in tmp_repo.git("ls-files").splitlines() if p)


def staged(tmp_repo: TmpRepo) -> list[str]:
    return sorted(p for p in tmp_repo.git("diff", "--cached", "--name-only").splitlines() if p)
