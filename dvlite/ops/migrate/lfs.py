"""``dvlite import-lfs PATTERN...``: files git-lfs tracks become dvlite data.

The files are those git's index holds as LFS pointers at HEAD whose paths match a pattern
(as ``.gitattributes`` matches them). Their content comes through git-lfs (``git lfs
pull``, else git-lfs's local object store) and is checked against the LFS pointer's sha256
on the copy in dvlite's cache. Then each gets its ``.dvl`` pointer and ``.gitignore`` line,
leaves git's index (``git rm --cached``: the work tree keeps the file), and its pattern
leaves ``.gitattributes``. Pointers come first, so a killed run leaves nothing untracked,
and a second run finishes the job.
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import TYPE_CHECKING

from dvlite import scm
from dvlite.errors import DvliteError, GitError, MissingObjectError, UsageError
from dvlite.ops.migrate.common import (
    Converted,
    ImportResult,
    digest_of,
    initialise,
    refuse_dirty,
    verify,
    write_pointer,
)
from dvlite.pointer import Pointer, pointer_file_for
from dvlite.scm.plumbing import edit_attributes, git_path
from dvlite.workspace import scan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvlite.repo import Repo
    from dvlite.storage.hashing import Oid

_CHUNK = 200  # paths per git command line


def import_lfs(repo: Repo, patterns: Sequence[str], *, force: bool = False,
               dry_run: bool = False) -> ImportResult:
    if not patterns:
        raise UsageError("name the git-lfs patterns to import",
                         hint="e.g. `dvlite import-lfs '*.bin' 'models/**'`")
    try:
        scm.run_git("-C", repo.root, "lfs", "version")
    except GitError:
        raise DvliteError("git-lfs is not installed, and its content is read through it",
                          hint="install it (`apt-get install git-lfs`, `brew install "
                          "git-lfs`), then run `git lfs install`") from None
    files = _lfs_files(repo, patterns)
    if dry_run or not files:
        return ImportResult(
            tuple(Converted(p, pointer_file_for(p), None, size, None, "git-lfs", "would write")
                  for p, _, size in files),
            warnings=() if files else (f"no file in git's index is tracked by git-lfs and "
                                       f"matches {', '.join(map(repr, patterns))}",),
            dry_run=dry_run)
    paths = {p for p, _, _ in files}
    refuse_dirty(repo, lambda p: p in paths or p == ".gitattributes", force=force)
    initialise(repo)
    with repo.lock():
        stored = _store(repo, files)
        converted, checked, warnings = [], [], []
        for path, _, size in files:
            ptr = Pointer(path.rpartition("/")[2], stored[path], size, "file")
            action = write_pointer(repo, path, ptr, force=force)
            if action == "kept":
                warnings.append(f"`{pointer_file_for(path)}` exists and says otherwise; kept, "
                                "and the file stays in git-lfs (`--force` replaces it)")
                paths.discard(path)
                continue
            checked.append((path, ptr))
            converted.append(Converted(path, pointer_file_for(path), stored[path], size, None,
                                       "git-lfs", action))
        ordered = sorted(paths)
        for i in range(0, len(ordered), _CHUNK):
            scm.run_git("-C", repo.root, "rm", "--cached", "-q", "--", *ordered[i:i + _CHUNK])
        attributes = _attribute_lines(repo.root, patterns)
        edit_attributes(repo.root, remove=attributes)
        written = [c.pointer_file for c in converted if c.action == "written"]
        return ImportResult(
            tuple(converted), unindexed=tuple(ordered),
            written=tuple(written + ([".gitattributes"] if attributes else [])),
            warnings=tuple(warnings), verified_objects=verify(repo, checked),
            next_steps=("commit the change: `git add -A && git commit -m 'Move "
                        + " ".join(patterns) + " from git-lfs to dvlite'`",
                        "then `dvlite push` the data to a dvlite remote"))


def matches(path: str, pattern: str) -> bool:
    """Whether ``.gitattributes`` line ``pattern`` covers ``path``: a pattern with no slash
    but a trailing one matches a name at any depth, any other from the top; a trailing
    slash names a folder, whose files it covers."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    parts = path.split("/")
    if pattern.endswith("/"):
        folders = parts[:-1]
        if anchored:
            return any(fnmatch.fnmatchcase("/".join(folders[:k]), body)
                       for k in range(1, len(folders) + 1))
        return any(fnmatch.fnmatchcase(name, body) for name in folders)
    if anchored:
        return fnmatch.fnmatchcase(path, body)
    return fnmatch.fnmatchcase(parts[-1], body)


def _lfs_files(repo: Repo, patterns: Sequence[str]) -> list[tuple[str, str, int]]:
    """(path, sha256, size) of the LFS files at HEAD that git's index still holds and a
    pattern matches."""
    listing = json.loads(scm.run_git("-C", repo.root, "lfs", "ls-files", "--json"))
    in_index = set(scm.run_git("-C", repo.root, "ls-files", "-z").split("\0"))
    return sorted((f["name"], f["oid"], int(f["size"])) for f in listing.get("files") or []
                  if f["name"] in in_index and any(matches(f["name"], p) for p in patterns))


def _store(repo: Repo, files: list[tuple[str, str, int]]) -> dict[str, Oid]:
    """Each file's bytes in dvlite's cache, checked against its LFS sha256."""
    stored: dict[str, Oid] = {}
    for attempt in ("workspace", "pull", "object store"):
        todo = [(p, sha) for p, sha, _ in files if p not in stored]
        if not todo:
            break
        for i in range(0, len(todo) if attempt == "pull" else 0, _CHUNK):
            include = ",".join(p for p, _ in todo[i:i + _CHUNK])
            scm.run_git("-C", repo.root, "lfs", "pull", f"--include={include}")
        for path, sha in todo:
            if attempt == "object store":
                obj = os.path.join(git_path(repo.root, "lfs/objects"), sha[:2], sha[2:4], sha)
                oid = repo.cache.add_file(obj) if os.path.isfile(obj) else None
            else:
                oid = scan(repo, path, store=repo.cache).state.oid
            if oid is not None and digest_of(repo.cache, oid, "sha256") == sha:
                stored[path] = oid
    missing = [p for p, _, _ in files if p not in stored]
    if missing:
        raise MissingObjectError(
            f"git-lfs could not give the content of `{missing[0]}`"
            + (f" and {len(missing) - 1} more" if missing[1:] else "") + "; no pointer was written",
            hint="check that `git lfs pull` works here (its remote, your access), then import "
            "again")
    return stored


def _attribute_lines(root: str, patterns: Sequence[str]) -> list[str]:
    """The lines of ``.gitattributes`` that send one of ``patterns`` through git-lfs."""
    try:
        with open(os.path.join(root, ".gitattributes"), encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except FileNotFoundError:
        return []
    return [line for line in lines if line.split() and line.split()[0] in patterns
            and "filter=lfs" in line.split()[1:]]
