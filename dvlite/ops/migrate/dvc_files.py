"""DVC's data files: ``.dvc`` files and their outs, and DVC's md5-addressed cache.

A DVC 3 out records ``hash: md5``; its object is at ``<cache>/files/md5/<2>/<30>``, a
folder's as a ``.dir`` object listing its files' md5s. An out without ``hash`` comes from
DVC 2, whose objects sit at the cache's top level.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvlite import scm
from dvlite.errors import PipelineError
from dvlite.pipeline.params import parse_document
from dvlite.pointer import is_reserved
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvlite.repo import Repo

SUFFIX = ".dvc"
DIR_SUFFIX = ".dir"
DVC_DIR = ".dvc"


@dataclass(frozen=True)
class DvcOut:
    path: str  # relative to the repo root
    md5: str  # without the `.dir` suffix
    is_dir: bool
    legacy: bool  # DVC 2: md5 of text with CRLF turned into LF, objects at the top level
    source: str  # the file that records it, for messages


def read_yaml(path: str, rel: str) -> dict[str, Any]:
    """A DVC YAML file (``.dvc``, ``dvc.yaml``, ``dvc.lock``) as a table."""
    with open(path, "rb") as f:
        raw = f.read()
    return parse_document(raw, "dvc.yaml", where=f"`{rel}`")


def find_dvc_files(repo: Repo) -> list[str]:
    """Every ``.dvc`` file git tracks or would (repo-relative, sorted), outside DVC's
    folder: asking git spares a walk through the data folders."""
    return [p for p in _files(repo, f"*{SUFFIX}") if os.path.isfile(repo.abs(p))]


def find_nested_pipelines(repo: Repo) -> list[str]:
    """The ``dvc.yaml`` files in subfolders, which are not converted."""
    return _files(repo, "*/dvc.yaml")


def _files(repo: Repo, pattern: str) -> list[str]:
    out = scm.run_git("-C", repo.root, "ls-files", "-z", "--cached", "--others",
                      "--exclude-standard", "--", pattern, f":!:{DVC_DIR}/*")
    return sorted({p for p in out.split("\0") if p})


def out_of(item: object, base: str, source: str) -> DvcOut:
    """One out (of a ``.dvc`` file, or a dep/out of ``dvc.lock``); ``base`` is the folder its
    path is relative to."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise PipelineError(f"`{source}`: an out without a `path`")
    path = posixpath.normpath(posixpath.join(base, item["path"]))
    if not is_safe_relative_path(path) or path.startswith("../") or is_reserved(path):
        raise PipelineError(f"`{source}`: out `{item['path']}` is outside the repo",
                            hint="dvlite tracks data inside the repo only")
    md5 = item.get("md5")
    if not isinstance(md5, str) or len(md5.removesuffix(DIR_SUFFIX)) != 32:
        raise PipelineError(f"`{source}`: out `{item['path']}` has no md5",
                            hint=f"run `dvc commit {item['path']}` first, so DVC records it")
    return DvcOut(path, md5.removesuffix(DIR_SUFFIX), md5.endswith(DIR_SUFFIX),
                  item.get("hash") != "md5", source)


def dvc_file_outs(root: str, rel: str) -> tuple[list[DvcOut], list[str]]:
    """The outs a ``.dvc`` file records, and warnings about what it holds besides."""
    doc = read_yaml(os.path.join(root, *rel.split("/")), rel)
    base = posixpath.dirname(rel)
    outs = doc.get("outs") or []
    if not isinstance(outs, list):
        raise PipelineError(f"`{rel}`: `outs` must be a list")
    warnings = []
    if doc.get("deps"):
        warnings.append(f"`{rel}` was made by `dvc import`/`import-url`; dvlite has no "
                        "`update`, so its data is tracked as plain data")
    return [out_of(item, base, rel) for item in outs], warnings


def dir_md5(entries: Iterable[tuple[str, str]]) -> str:
    """The md5 DVC gives a folder: of its ``.dir`` object, the JSON list of (relpath, md5)."""
    listing = sorted(({"md5": md5, "relpath": path} for path, md5 in entries),
                     key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest()  # noqa: S324


_TEXT = bytes(range(32, 127)) + b"\n\r\t\f\b"


def dos2unix_md5(data: bytes) -> str:
    """DVC 2's md5 of a file: CRLF read as LF in a text file, judged as DVC does by its first
    512 bytes (no NUL, at most 30% other than printable ASCII and whitespace)."""
    block = data[:512]
    text = b"\0" not in block and len(block.translate(None, _TEXT)) <= 0.3 * len(block)
    return hashlib.md5(data.replace(b"\r\n", b"\n") if text else data).hexdigest()  # noqa: S324


class DvcCache:
    """DVC's local cache, read directly (DVC need not be installed)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, md5: str, *, is_dir: bool = False, legacy: bool = False) -> str:
        name = md5[2:] + (DIR_SUFFIX if is_dir else "")
        if legacy:
            return os.path.join(self.root, md5[:2], name)
        return os.path.join(self.root, "files", "md5", md5[:2], name)

    def find(self, md5: str, *, is_dir: bool = False, legacy: bool = False) -> str | None:
        """The object's file, in DVC 3's layout or DVC 2's; None when the cache lacks it."""
        for old in (legacy, not legacy):
            path = self.path(md5, is_dir=is_dir, legacy=old)
            if os.path.isfile(path):
                return path
        return None

    def dir_entries(self, out: DvcOut) -> list[tuple[str, str]] | None:
        """A folder's (relpath, md5) list from its ``.dir`` object, checked against its md5;
        None when the cache lacks it."""
        path = self.find(out.md5, is_dir=True, legacy=out.legacy)
        if path is None:
            return None
        with open(path, "rb") as f:
            raw = f.read()
        if hashlib.md5(raw).hexdigest() != out.md5:  # noqa: S324
            raise PipelineError(f"DVC's cache object `{path}` is corrupt (its md5 is not "
                                f"{out.md5})", hint="repair it with `dvc fetch` or `dvc pull`")
        listing = json.loads(raw)
        entries = [(e["relpath"], e["md5"]) for e in listing]
        for relpath, _ in entries:
            if not is_safe_relative_path(relpath):
                raise PipelineError(f"DVC's `{path}` lists an unsafe path {relpath!r}")
        return entries
