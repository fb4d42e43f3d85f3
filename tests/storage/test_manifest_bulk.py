"""The checks manifests make over all their entries at once agree with the per-entry ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import PointerError
from dvlite.storage.hashing import all_oids, is_oid
from dvlite.storage.manifest import Entry, Manifest, all_safe, is_safe_relative_path
from tests.storage.test_manifest import OID_A, OID_B, SRC, safe_paths, unsafe_paths

# every character that matters to a path check, and a few that do not
_chars = st.sampled_from(["a", "b", ".", "/", "\\", ":", "\0", "\n", "é", "\udc80", "C"])
any_paths = st.text(_chars, max_size=8)


@given(st.lists(st.one_of(any_paths, safe_paths(), unsafe_paths()), max_size=6))
def test_all_safe_is_every_path_safe_and_utf8(paths: list[str]) -> None:
    def one(path: str) -> bool:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return is_safe_relative_path(path)

    assert all_safe(paths) == all(map(one, paths))


@given(st.lists(st.text("0123456789abcdefA\n", max_size=34), max_size=4),
       st.sampled_from(["xxh128", "sha256"]))
def test_all_oids_is_every_value_an_oid(values: list[str], algorithm: str) -> None:
    assert all_oids(values, algorithm) == all(is_oid(v, algorithm) for v in values)


def test_a_large_manifest_round_trips() -> None:
    entries = [Entry(f"d{i % 7}/f{i:05}", OID_A if i % 2 else OID_B, i, i % 3 == 0)
               for i in range(2000)]
    manifest = Manifest.build(reversed(entries))

    decoded = Manifest.from_bytes(manifest.to_bytes(), source=SRC)

    assert decoded == manifest
    assert decoded.entries == tuple(sorted(entries, key=lambda e: e.path))


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["a", "a/b"], "lists `a/b` inside a file"),
        (["x/y", "x/y/z/w"], "lists `x/y/z/w` inside a file"),
        (["a", "b", "b"], "not sorted or lists `b` twice"),
        (["b", "a"], "not sorted or lists `a` twice"),
    ],
)
def test_bad_file_lists_are_named(paths: list[str], message: str) -> None:
    files = [{"path": p, "oid": OID_A, "size": 1, "exec": False} for p in paths]
    data = json.dumps({"dvlite-manifest": 1, "files": files}).encode()

    with pytest.raises(PointerError, match=message):
        Manifest.from_bytes(data, source=SRC)
