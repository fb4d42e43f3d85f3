"""Paths given to the API: relative to the repo's top folder, never out of it, and a clear
PathError naming anything that is not tracked data."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dvlite.api
from dvlite.errors import PathError
from dvlite.ops.read import repo_path
from dvlite.storage.manifest import is_safe_relative_path

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

PARTS = st.sampled_from(["data", "raw.csv", ".", "..", "", "c:", "a\\b", "x\0y", "e\u0301", " "])


@given(st.booleans(), st.lists(PARTS, max_size=6))
def test_an_accepted_path_is_plain_and_inside(absolute: bool, parts: list[str]) -> None:
    text = ("/" if absolute else "") + "/".join(parts)
    try:
        rel = repo_path(text)
    except PathError:
        return
    assert rel == "/".join(part for part in parts if part not in ("", "."))
    assert is_safe_relative_path(rel)


@given(st.booleans(), st.lists(PARTS, max_size=6))
def test_an_absolute_path_or_dotdot_is_refused_by_name(absolute: bool, parts: list[str]) -> None:
    text = ("/" if absolute else "") + "/".join(parts)
    if absolute or ".." in parts:
        with pytest.raises(PathError) as info:
            repo_path(text)
        assert f"`{text}`" in info.value.message


@given(st.lists(PARTS, min_size=1, max_size=6).filter(lambda parts: ".." in parts))
def test_the_api_refuses_dotdot_before_opening_anything(parts: list[str]) -> None:
    # checked first: no repo is looked for, so not even NotARepoError can come before it
    with pytest.raises(PathError, match="not a path inside the repo"):
        dvlite.api.read("/".join(parts), repo="/nonexistent/repo")


@pytest.mark.parametrize("path", ["/etc/passwd", "../repo/data/raw.csv", "data/../../x", "",
                                  "data/../data/raw.csv", "data\\raw.csv"])
def test_unsafe_paths(project: TmpRepo, path: str) -> None:
    with pytest.raises(PathError, match="not a path inside the repo") as info:
        dvlite.api.read(path)
    assert "relative to the repo's top folder" in (info.value.hint or "")


@pytest.mark.parametrize(("path", "rev", "message"), [
    ("nope.csv", None, r"`nope\.csv` is not tracked by dvlite in the workspace"),
    ("nope.csv", "v1", r"`nope\.csv` is not tracked by dvlite at `v1` \([0-9a-f]{12}\)"),
    ("data", "v1", r"`data` is not tracked"),
    ("models/model.pkl/inside", None, r"`models/model\.pkl/inside` is not tracked"),
    ("data/raw/nope.csv", "v1", r"`data/raw/nope\.csv` is not in tracked folder `data/raw`"),
    ("data/raw", None, r"`data/raw` is a folder in the workspace, not a file"),
    ("data/raw/sub", "v1", r"`data/raw/sub` is a folder at `v1`"),
    (".dvlite/config.toml", None, "which dvlite manages"),
])
def test_what_is_not_a_tracked_file(project: TmpRepo, path: str, rev: str | None,
                                    message: str) -> None:
    with pytest.raises(PathError, match=message):
        dvlite.api.read(path, rev=rev)


def test_naming_the_pointer_instead_of_the_data(project: TmpRepo) -> None:
    with pytest.raises(PathError) as info:
        dvlite.api.read("models/model.pkl.dvl", rev="v1")
    assert info.value.hint == "name the data, not its pointer: `models/model.pkl`"


def test_no_reading_through_a_symlink_out_of_the_repo(project: TmpRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.csv.dvl").write_bytes((project.root / "data" / "raw.csv.dvl").read_bytes())
    os.symlink(outside, project.root / "link")

    with pytest.raises(PathError, match="symlink"):
        dvlite.api.read("link/x.csv")
