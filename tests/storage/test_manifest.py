"""Folder manifests: canonical bytes, stable oids, strict and safe decoding."""

from __future__ import annotations

import json
import ntpath
import os
import posixpath

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from dvlite.errors import PathError, PointerError
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.manifest import (
    FORMAT_VERSION,
    Entry,
    Manifest,
    ManifestDiff,
    diff,
    diff_files,
    file_map,
    is_safe_relative_path,
)

OID_A = Oid("a" * 32)
OID_B = Oid("b" * 32)
OID_C = Oid("0123456789abcdef" * 2)
SRC = "object 1234abcd"

# --- strategies -----------------------------------------------------------------------------

_segment_chars = st.characters(exclude_characters="/\\\0", exclude_categories=("Cs",))
segments = st.text(_segment_chars, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@st.composite
def safe_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(segments, min_size=1, max_size=4))
    return "/".join("d" + p if len(p) >= 2 and p[1] == ":" else p for p in parts)


OID_LENGTH = {"xxh128": 32, "sha256": 64}


def oids(algorithm: str = "xxh128") -> st.SearchStrategy[Oid]:
    n = OID_LENGTH[algorithm]
    return st.text("0123456789abcdef", min_size=n, max_size=n).map(Oid)


entries = st.builds(
    Entry,
    path=safe_paths(),
    oid=oids(),
    size=st.integers(min_value=0, max_value=2**63 - 1),
    executable=st.booleans(),
)


def no_file_inside_a_file(items: list[Entry]) -> bool:
    """What a walk can produce: no entry's path is a folder of another's."""
    paths = {e.path for e in items}
    for path in paths:
        parts = path.split("/")
        if any("/".join(parts[:depth]) in paths for depth in range(1, len(parts))):
            return False
    return True


entry_lists = st.lists(entries, max_size=6, unique_by=lambda e: e.path).filter(
    no_file_inside_a_file
)


@st.composite
def unsafe_paths(draw: st.DrawFn) -> str:
    base = draw(st.lists(segments, min_size=1, max_size=3))
    where = draw(st.integers(min_value=0, max_value=len(base)))
    kind = draw(
        st.sampled_from(
            ["dotdot", "dot", "absolute", "backslash", "nul", "empty", "trailing", "drive", "blank"]
        )
    )
    parts = list(base)
    if kind == "dotdot":
        parts.insert(where, "..")
    elif kind == "dot":
        parts.insert(where, ".")
    elif kind == "absolute":
        return "/" + "/".join(parts)
    elif kind == "backslash":
        parts[where % len(parts)] += "\\" + draw(segments)
    elif kind == "nul":
        parts[where % len(parts)] += "\0"
    elif kind == "empty":
        parts.insert(where, "")
    elif kind == "trailing":
        return "/".join(parts) + "/"
    elif kind == "drive":
        letter = draw(st.sampled_from("ACcz"))
        return f"{letter}:" + draw(st.sampled_from(["", "/", "\\"])) + "/".join(parts)
    else:
        return ""
    return "/".join(parts)


def doc_with(*items: object) -> bytes:
    return json.dumps({"dvlite-manifest": 1, "files": list(items)}).encode()


def item(
    path: object = "a.csv", oid: object = OID_A, size: object = 1, exec_: object = False
) -> dict[str, object]:
    return {"path": path, "oid": oid, "size": size, "exec": exec_}


# --- encoding -------------------------------------------------------------------------------


def test_exact_bytes() -> None:
    m = Manifest.build([Entry("b/c.csv", OID_C, 3, executable=True), Entry("a", OID_A, 0)])
    assert m.to_bytes() == (
        b'{"dvlite-manifest":1,"files":[\n'
        b'{"exec":false,"oid":"' + OID_A.encode() + b'","path":"a","size":0},\n'
        b'{"exec":true,"oid":"' + OID_C.encode() + b'","path":"b/c.csv","size":3}\n'
        b"]}\n"
    )
    assert FORMAT_VERSION == 1


def test_empty_manifest_bytes() -> None:
    m = Manifest.build([])
    assert m.to_bytes() == b'{"dvlite-manifest":1,"files":[]}\n'
    assert m.size == 0
    assert Manifest.from_bytes(m.to_bytes(), source=SRC) == m


def test_unicode_paths_are_stored_as_utf8_not_escaped() -> None:
    m = Manifest.build([Entry("données/été.csv", OID_A, 1)])
    data = m.to_bytes()
    assert "données/été.csv".encode() in data
    assert Manifest.from_bytes(data, source=SRC) == m


def test_size_by_path_and_sorting() -> None:
    m = Manifest.build([Entry("z", OID_A, 5), Entry("a/b", OID_B, 7), Entry("a", OID_C, 1)])
    assert [e.path for e in m.entries] == ["a", "a/b", "z"]
    assert m.size == 13
    assert m.by_path() == {
        "a": Entry("a", OID_C, 1),
        "a/b": Entry("a/b", OID_B, 7),
        "z": Entry("z", OID_A, 5),
    }


def test_duplicate_paths_are_rejected() -> None:
    with pytest.raises(PointerError, match=r"`x/y` twice"):
        Manifest.build([Entry("x/y", OID_A, 1), Entry("x/y", OID_B, 2)])
    with pytest.raises(PointerError, match="twice"):
        Manifest.from_bytes(doc_with(item("d"), item("d", OID_B)), source=SRC)


@given(entry_lists, st.randoms(use_true_random=False))
def test_bytes_do_not_depend_on_insertion_order(items: list[Entry], rnd: object) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = Manifest.build(items), Manifest.build(shuffled)
    assert a == b
    assert a.to_bytes() == b.to_bytes()
    assert hash_bytes(a.to_bytes()) == hash_bytes(b.to_bytes())


@given(entry_lists)
def test_round_trip(items: list[Entry]) -> None:
    m = Manifest.build(items)
    data = m.to_bytes()
    back = Manifest.from_bytes(data, source=SRC)
    assert back == m
    assert back.to_bytes() == data
    assert m.size == sum(e.size for e in items)
    assert [e.path for e in m.entries] == sorted(e.path for e in items)


@given(entry_lists, entries)
def test_any_change_changes_the_oid(items: list[Entry], extra: Entry) -> None:
    assume(extra.path not in {e.path for e in items})
    before = hash_bytes(Manifest.build(items).to_bytes())
    assert hash_bytes(Manifest.build([*items, extra]).to_bytes()) != before
    if items:
        first = items[0]
        flipped = Entry(first.path, first.oid, first.size, not first.executable)
        assert hash_bytes(Manifest.build([flipped, *items[1:]]).to_bytes()) != before


@given(entry_lists)
def test_to_bytes_is_canonical_json(items: list[Entry]) -> None:
    data = Manifest.build(items).to_bytes()
    lines = data.decode("utf-8").split("\n")
    doc = json.loads(data)
    assert doc["dvlite-manifest"] == 1
    for line, e in zip(lines[1:-2], sorted(items, key=lambda e: e.path), strict=True):
        fields = {"exec": e.executable, "oid": e.oid, "path": e.path, "size": e.size}
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert line.rstrip(",") == canonical
    assert doc["files"] == [
        {"exec": e.executable, "oid": e.oid, "path": e.path, "size": e.size}
        for e in sorted(items, key=lambda e: e.path)
    ]


@given(
    st.lists(
        st.builds(Entry, path=safe_paths(), oid=oids("sha256"), size=st.integers(0, 10)),
        max_size=4,
        unique_by=lambda e: e.path,
    ).filter(no_file_inside_a_file)
)
def test_round_trip_sha256(items: list[Entry]) -> None:
    m = Manifest.build(items)
    assert Manifest.from_bytes(m.to_bytes(), source=SRC, algorithm="sha256") == m


def test_oids_must_fit_the_repo_hash() -> None:
    sha = "ab" * 32
    m = Manifest.from_bytes(doc_with(item(oid=sha)), source=SRC, algorithm="sha256")
    assert m.entries[0].oid == sha
    with pytest.raises(PointerError, match="bad path or oid"):
        Manifest.from_bytes(doc_with(item(oid=sha)), source=SRC)  # default: xxh128
    with pytest.raises(PointerError, match="bad path or oid"):
        Manifest.from_bytes(doc_with(item(oid=OID_A)), source=SRC, algorithm="sha256")


def test_stable_oid_golden() -> None:
    m = Manifest.build([Entry("a", OID_A, 0)])
    assert hash_bytes(m.to_bytes()) == hash_bytes(
        b'{"dvlite-manifest":1,"files":[\n'
        b'{"exec":false,"oid":"' + OID_A.encode() + b'","path":"a","size":0}\n]}\n'
    )


# --- strict decoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "unknown format"),
        (b'{"files": []}', "unknown format"),
        (b'{"dvlite-manifest": 2, "files": []}', "unknown format"),
        (b'{"dvlite-manifest": "1", "files": []}', "unknown format"),
        (b'{"dvlite-manifest": true, "files": []}', "unknown format"),
        (b'{"dvlite-manifest": 1.0, "files": []}', "unknown format"),
        (b'{"dvlite-manifest": 1}', "no file list"),
        (b'{"dvlite-manifest": 1, "files": {}}', "no file list"),
        (b'{"dvlite-manifest": 1, "files": ["a"]}', "not a table"),
        (doc_with(item(path=3)), "bad path or oid"),
        (doc_with(item(oid="A" * 32)), "bad path or oid"),
        (doc_with(item(oid="a" * 31)), "bad path or oid"),
        (doc_with(item(oid=None)), "bad path or oid"),
        (doc_with(item(size=-1)), "bad size or exec"),
        (doc_with(item(size=True)), "bad size or exec"),
        (doc_with(item(size=1.0)), "bad size or exec"),
        (doc_with(item(size="1")), "bad size or exec"),
        (doc_with(item(exec_=1)), "bad size or exec"),
        (doc_with(item(exec_=None)), "bad size or exec"),
        (doc_with(item(path="../x")), "unsafe path"),
        (doc_with(item(path="/etc/passwd")), "unsafe path"),
    ],
)
def test_malformed_manifests_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(PointerError, match=match) as exc:
        Manifest.from_bytes(data, source=SRC)
    if match != "unsafe path":
        assert SRC in exc.value.message


@pytest.mark.parametrize(
    "paths",
    [["a", "a/b"], ["d/e", "d/e/f/g"], ["x", "x/y", "z"]],
)
def test_from_bytes_rejects_a_file_inside_a_file(paths: list[str]) -> None:
    with pytest.raises(PointerError, match="inside a file") as exc:
        Manifest.from_bytes(doc_with(*(item(p) for p in paths)), source=SRC)
    assert SRC in exc.value.message


def test_names_that_only_share_a_prefix_are_fine() -> None:
    paths = ["a", "a.txt", "ab/c", "a-b/c"]
    m = Manifest.from_bytes(doc_with(*(item(p) for p in sorted(paths))), source=SRC)
    assert [e.path for e in m.entries] == sorted(paths)


def test_build_rejects_names_that_are_not_utf8() -> None:
    with pytest.raises(PathError, match="UTF-8"):
        Manifest.build([Entry("bad\udcffname", OID_A, 1)])


def test_from_bytes_rejects_unsorted_input() -> None:
    with pytest.raises(PointerError, match="not sorted") as exc:
        Manifest.from_bytes(doc_with(item("b", OID_B), item("a", OID_A)), source=SRC)
    assert SRC in exc.value.message


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/abs",
        "..",
        "../x",
        "a/../b",
        "a/..",
        ".",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "..\\x",
        "a\0b",
        "C:",
        "C:/x",
        "c:x",
        "C:\\x",
    ],
)
def test_unsafe_relative_paths(path: str) -> None:
    assert is_safe_relative_path(path) is False
    with pytest.raises(PointerError, match="unsafe path") as exc:
        Manifest.from_bytes(doc_with(item(path=path)), source=SRC)
    assert SRC in exc.value.message
    with pytest.raises(PathError):
        Manifest.build([Entry(path, OID_A, 1)])


@pytest.mark.parametrize("path", ["a", "a/b/c.csv", "...", "a..b/..c", ".hidden", "C", "é/ü"])
def test_safe_relative_paths(path: str) -> None:
    assert is_safe_relative_path(path) is True


@given(unsafe_paths())
@example("C:data")
@example("../x")
def test_unsafe_paths_are_rejected(path: str) -> None:
    assert not is_safe_relative_path(path)
    with pytest.raises(PointerError):
        Manifest.from_bytes(doc_with(item(path=path)), source=SRC)
    with pytest.raises(PathError):
        Manifest.build([Entry(path, OID_A, 1)])


@given(st.text(st.sampled_from(["a", "b", ".", "/", "\\", ":", "C", "\0", "é"]), max_size=12))
@example("a:b")
@example(":/::")
def test_accepted_paths_never_escape(path: str) -> None:
    root = "/srv/repo/folder"
    try:
        m = Manifest.from_bytes(doc_with(item(path=path)), source=SRC)
    except PointerError:
        return
    (entry,) = m.entries
    full = posixpath.normpath(posixpath.join(root, entry.path))
    assert full.startswith(root + "/")
    assert full != root
    assert posixpath.relpath(full, root) == entry.path
    assert "\\" not in entry.path
    assert "\0" not in entry.path
    assert os.path.normpath(os.path.join(root, *entry.path.split("/"))).startswith(root + os.sep)
    # and on Windows: no drive (``C:x`` is relative to drive C's cwd), nothing absolute
    win_root = "C:\\repo\\folder"
    assert ntpath.splitdrive(entry.path)[0] == ""
    assert not ntpath.isabs(entry.path)
    win_full = ntpath.normpath(ntpath.join(win_root, *entry.path.split("/")))
    assert win_full.startswith(win_root + "\\")


@given(safe_paths())
def test_safe_paths_are_accepted(path: str) -> None:
    assert is_safe_relative_path(path)
    m = Manifest.from_bytes(doc_with(item(path=path)), source=SRC)
    assert m.entries[0].path == path


# --- diff -----------------------------------------------------------------------------------


def test_diff() -> None:
    old = Manifest.build(
        [
            Entry("same", OID_A, 1),
            Entry("gone", OID_A, 1),
            Entry("changed", OID_A, 1),
            Entry("mode", OID_A, 1),
        ]
    ).by_path()
    new = Manifest.build(
        [
            Entry("same", OID_A, 1),
            Entry("added", OID_B, 2),
            Entry("changed", OID_B, 1),
            Entry("mode", OID_A, 1, executable=True),
        ]
    ).by_path()
    d = diff(old, new)
    assert d.added == (Entry("added", OID_B, 2),)
    assert d.removed == (Entry("gone", OID_A, 1),)
    assert d.modified == (
        (Entry("changed", OID_A, 1), Entry("changed", OID_B, 1)),
        (Entry("mode", OID_A, 1), Entry("mode", OID_A, 1, executable=True)),
    )
    assert bool(d) is True


def test_diff_of_equal_manifests_is_empty() -> None:
    m = Manifest.build([Entry("a", OID_A, 1), Entry("b/c", OID_B, 2)]).by_path()
    d = diff(m, dict(m))
    assert d == ManifestDiff((), (), ())
    assert bool(d) is False


@given(entry_lists, entry_lists)
def test_diff_accounts_for_every_path(a: list[Entry], b: list[Entry]) -> None:
    old, new = Manifest.build(a).by_path(), Manifest.build(b).by_path()
    d = diff(old, new)
    assert {e.path for e in d.added} == new.keys() - old.keys()
    assert {e.path for e in d.removed} == old.keys() - new.keys()
    for before, after in d.modified:
        assert before.path == after.path
        assert (before.oid, before.executable) != (after.oid, after.executable)
    assert bool(d) == any(
        p not in old
        or p not in new
        or (old[p].oid, old[p].executable) != (new[p].oid, new[p].executable)
        for p in old.keys() | new.keys()
    )


@given(entry_lists, entry_lists)
def test_diff_files_is_the_diff_of_whole_entries(a: list[Entry], b: list[Entry]) -> None:
    """The light diff gives, in path order, exactly the entries a diff of every entry
    would: a file is modified when its oid or executable bit differs."""
    old, new = Manifest.build(a).by_path(), Manifest.build(b).by_path()

    d = diff_files(file_map(old), file_map(new))

    assert d.added == tuple(new[p] for p in sorted(new.keys() - old.keys()))
    assert d.removed == tuple(old[p] for p in sorted(old.keys() - new.keys()))
    assert d.modified == tuple(
        (old[p], new[p]) for p in sorted(old.keys() & new.keys())
        if (old[p].oid, old[p].executable) != (new[p].oid, new[p].executable)
    )
