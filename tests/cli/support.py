"""Helpers for the CLI and end-to-end tests: run ``main()`` in-process, snapshot a tree,
check the one-line ``error:`` format."""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import xxhash

from dvlite.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterable

# Internal bookkeeping a command may touch even when it fails (the lock file, the stat index).
SKIPPED = (".dvlite/tmp",)

Snapshot = dict[str, tuple[str, int, bytes]]


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Call ``dvlite.cli.main(args)``; it must end with SystemExit. Returns code, stdout, stderr."""
    capsys.readouterr()  # whatever came before is not this command's output
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    if code is None:
        code = 0
    assert isinstance(code, int), f"exit code should be a number, got {code!r}"
    return CliResult(code, out, err)


def snapshot(root: Path, skip: Iterable[str] = SKIPPED) -> Snapshot:
    """Every folder, file and symlink below ``root``: kind, permission bits and bytes."""
    skipped = set(skip)
    found: Snapshot = {}
    for folder, dirs, files in os.walk(root):
        rel_folder = Path(folder).relative_to(root).as_posix()
        rel_folder = "" if rel_folder == "." else rel_folder
        dirs[:] = sorted(d for d in dirs if _join(rel_folder, d) not in skipped)
        for name in dirs:
            rel = _join(rel_folder, name)
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", 0, os.readlink(os.path.join(folder, name)).encode())
            else:
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
        for name in files:
            rel = _join(rel_folder, name)
            if rel in skipped:
                continue
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", 0, os.readlink(path).encode())
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode), Path(path).read_bytes())
    return found


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def assert_same_tree(before: Snapshot, after: Snapshot) -> None:
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert (added, removed, changed) == ([], [], []), (
        f"the command changed files on disk: added {added}, removed {removed}, changed {changed}"
    )


def assert_error(
    result: CliResult, *culprits: str, code: int = 1, after_messages: bool = False
) -> str:
    """One ``error: ...`` line on stderr (maybe a blank line and ``hint: ...`` after it),
    naming every culprit; nothing on stdout, no traceback. Returns the error line.

    With ``after_messages``, plain messages (a summary of work done) may come before it.
    """
    assert result.code == code, result
    assert result.out == "", f"an error printed data on stdout: {result.out!r}"
    assert "Traceback" not in result.err, result.err
    lines = result.err_lines
    if after_messages:
        starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
        assert starts, result.err
        lines = lines[starts[0] :]
    assert lines, "no message on stderr"
    assert lines[0].startswith("error: "), result.err
    assert len(lines) == 1 or (
        len(lines) == 3 and lines[1] == "" and lines[2].startswith("hint: ")
    ), f"expected one error line and an optional hint, got:\n{result.err}"
    for culprit in culprits:
        assert culprit in lines[0], f"the error does not name {culprit!r}: {lines[0]}"
    return lines[0]


def cache_objects(cache: Path) -> dict[str, Path]:
    """oid -> file for every object under ``cache`` (``xx/yyyy...`` layout)."""
    objects: dict[str, Path] = {}
    if not cache.is_dir():
        return objects
    for prefix in cache.iterdir():
        if len(prefix.name) != 2 or not prefix.is_dir():
            continue
        for obj in prefix.iterdir():
            objects[prefix.name + obj.name] = obj
    return objects


def assert_cache_valid(cache: Path) -> int:
    """Every object hashes to its name; returns how many there are."""
    objects = cache_objects(cache)
    bad = [
        oid for oid, path in objects.items() if xxhash.xxh3_128_hexdigest(path.read_bytes()) != oid
    ]
    assert bad == [], f"objects whose bytes do not match their name: {bad[:5]}"
    return len(objects)


def read_pointer(path: Path) -> dict[str, object]:
    return tomllib.loads(path.read_text())


def xxh(data: bytes | str) -> str:
    return xxhash.xxh3_128_hexdigest(data.encode() if isinstance(data, str) else data)
