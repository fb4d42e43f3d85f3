"""dvlite.api.ls: what is tracked at a path, at any revision, one level or recursively."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import dvlite.api
from dvlite.errors import PathError
from tests.api.conftest import M1, M2, RAW1, RAW2, A, B
from tests.ops.support import xxh

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


def test_top_level_listing(project: TmpRepo) -> None:
    assert dvlite.api.ls() == [
        {"path": "data", "type": "directory", "size": len(RAW2) + len(A) + len(B), "oid": None},
        {"path": "models", "type": "directory", "size": len(M2), "oid": None},
    ]


def test_one_level_inside_and_through_a_tracked_folder(project: TmpRepo) -> None:
    assert dvlite.api.ls("data", rev="v1") == [
        {"path": "data/raw", "type": "directory", "size": len(A) + len(B), "oid": None},
        {"path": "data/raw.csv", "type": "file", "size": len(RAW1), "oid": xxh(RAW1.encode())},
    ]
    assert dvlite.api.ls("data/raw/") == [
        {"path": "data/raw/a.csv", "type": "file", "size": len(A), "oid": xxh(A.encode())},
        {"path": "data/raw/sub", "type": "directory", "size": len(B), "oid": None},
    ]


def test_recursive_lists_every_file(project: TmpRepo) -> None:
    listed = dvlite.api.ls(rev="v1", recursive=True)
    assert [(e["path"], e["oid"]) for e in listed] == [
        ("data/raw.csv", xxh(RAW1.encode())),
        ("data/raw/a.csv", xxh(A.encode())),
        ("data/raw/sub/b.txt", xxh(B.encode())),
        ("models/model.pkl", xxh(M1)),
    ]


def test_a_file_lists_itself(project: TmpRepo) -> None:
    assert dvlite.api.ls("models/model.pkl", rev="v1") == [
        {"path": "models/model.pkl", "type": "file", "size": len(M1), "oid": xxh(M1)}]


@pytest.mark.parametrize("path", ["nothing", "data/raw/none", "../x"])
def test_untracked_or_unsafe_paths_are_errors(project: TmpRepo, path: str) -> None:
    with pytest.raises(PathError):
        dvlite.api.ls(path)


def test_stage_outputs_are_listed(pipeline: TmpRepo) -> None:
    assert [e["path"] for e in dvlite.api.ls("models", recursive=True)] == ["models/model.pkl"]
