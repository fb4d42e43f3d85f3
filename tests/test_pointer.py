"""``.dvl`` pointer files: canonical encoding, strict decoding, errors that name the file."""

from __future__ import annotations

import ntpath
import os
import posixpath
from typing import TYPE_CHECKING, Any

import pytest
import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from dvlite.errors import PointerError
from dvlite.pointer import (
    HEADER,
    MAX_BYTES,
    SUFFIX,
    VERSION,
    Pointer,
    data_path_for,
    decode,
    is_reserved,
    load,
    pointer_file_for,
)
from dvlite.storage.hashing import Oid

if TYPE_CHECKING:
    from pathlib import Path

OID = Oid("3f2a" + "0" * 28)
SHA_OID = Oid("ab" * 32)
SRC = "data/images.dvl"
KNOWN_KEYS = ("version", "path", "oid", "size", "files", "kind", "hash")

FILE_POINTER = (
    HEADER + f'version = 1\npath = "model.pkl"\noid = "{OID}"\nsize = 12\nkind = "file"\n'
).encode()
DIR_POINTER = (
    HEADER
    + f'version = 1\npath = "images"\noid = "{OID}"\nsize = 330123456\nfiles = 20000\n'
    + 'kind = "dir"\n'
).encode()


def toml(**fields: Any) -> bytes:
    """A pointer document with the given fields (None drops a field)."""
    doc: dict[str, Any] = {"version": 1, "path": "data", "oid": OID, "size": 5, "kind": "file"}
    doc.update(fields)
    return tomli_w.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def decode_error(data: bytes, source: str = SRC) -> PointerError:
    with pytest.raises(PointerError) as exc:
        decode(data, source=source)
    assert f"`{source}`" in exc.value.message  # every error names the file
    return exc.value


# --- strategies -----------------------------------------------------------------------------

_segment = st.text(
    st.characters(exclude_characters="/\\\0:", exclude_categories=("Cs",)), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))
# a pointer names the data beside it: one plain name, neither git's or dvlite's folder nor a
# pointer file
safe_names = _segment.filter(lambda s: not is_reserved(s) and not s.endswith(SUFFIX))
OID_LENGTH = {"xxh128": 32, "sha256": 64}


def oids(algorithm: str = "xxh128") -> st.SearchStrategy[str]:
    n = OID_LENGTH[algorithm]
    return st.text("0123456789abcdef", min_size=n, max_size=n)


_scalars = (
    st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
)
_keys = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
toml_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=6,
)
extras = st.dictionaries(_keys.filter(lambda k: k not in KNOWN_KEYS), toml_values, max_size=4)


@st.composite
def pointers(draw: st.DrawFn, algorithm: str = "xxh128") -> Pointer:
    kind = draw(st.sampled_from(["file", "dir"]))
    return Pointer(
        path=draw(safe_names),
        oid=Oid(draw(oids(algorithm))),
        size=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        kind=kind,
        files=draw(st.integers(min_value=0, max_value=2**40)) if kind == "dir" else None,
        extra=draw(extras),
    )


@st.composite
def unsafe_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_segment, min_size=1, max_size=3))
    at = draw(st.integers(min_value=0, max_value=len(parts)))
    how = draw(
        st.sampled_from(["..", ".", "", "abs", "backslash", "nul", "drive", "none", "nested"])
    )
    if how in ("..", ".", ""):
        parts.insert(at, how)
    elif how == "abs":
        return "/" + "/".join(parts)
    elif how == "backslash":
        return "\\".join(parts) + ("\\" if len(parts) == 1 else "")
    elif how == "nul":
        parts[at % len(parts)] += "\0"
    elif how == "drive":
        return (
            draw(st.sampled_from("CcZ"))
            + ":"
            + draw(st.sampled_from(["", "/", "\\"]))
            + ("/".join(parts))
        )
    elif how == "nested":
        return "/".join([*parts, draw(_segment)])
    else:
        return ""
    return "/".join(parts)


# --- canonical form -------------------------------------------------------------------------


def test_file_pointer_golden_bytes() -> None:
    p = Pointer("model.pkl", OID, 12, "file")
    assert p.encode() == FILE_POINTER
    assert decode(FILE_POINTER, source=SRC) == p


def test_dir_pointer_golden_bytes() -> None:
    p = Pointer("images", OID, 330123456, "dir", files=20000)
    assert p.encode() == DIR_POINTER
    assert decode(DIR_POINTER, source=SRC) == p


def test_header_is_a_comment_and_version_is_1() -> None:
    assert HEADER.startswith("# ")
    assert HEADER.endswith("\n")
    assert VERSION == 1


def test_unknown_keys_are_kept_sorted_after_known_ones() -> None:
    data = (
        HEADER
        + f'version = 1\nzeta = 1\npath = "d"\noid = "{OID}"\nsize = 1\nalpha = "x"\n'
        + 'kind = "file"\n\n[meta]\nb = 1\na = "y"\n'
    ).encode()
    p = decode(data, source=SRC)
    assert p.extra == {"zeta": 1, "alpha": "x", "meta": {"b": 1, "a": "y"}}
    assert (
        p.encode()
        == (
            HEADER
            + f'version = 1\npath = "d"\noid = "{OID}"\nsize = 1\nkind = "file"\n'
            + 'alpha = "x"\nzeta = 1\n\n[meta]\nb = 1\na = "y"\n'
        ).encode()
    )


def test_with_data_keeps_path_and_unknown_keys() -> None:
    p = decode(toml(note="keep me", remote={"name": "s3"}), source=SRC)
    q = p.with_data(Oid("b" * 32), 99, 3, "dir")
    assert (q.path, q.oid, q.size, q.files, q.kind) == ("data", "b" * 32, 99, 3, "dir")
    again = decode(q.encode(), source=SRC)
    assert again.extra == {"note": "keep me", "remote": {"name": "s3"}}
    assert again == q


def test_non_canonical_input_is_rewritten_canonically() -> None:
    data = (
        f"# my own comment\nkind = 'file'\nsize = 0x10\noid = '{OID}'\npath = \"m\"\nversion = 1\n"
    ).encode()
    p = decode(data, source=SRC)
    assert p == Pointer("m", OID, 16, "file")
    assert p.encode() == Pointer("m", OID, 16, "file").encode()
    assert p.encode().startswith(HEADER.encode())


@given(pointers())
def test_round_trip(p: Pointer) -> None:
    data = p.encode()
    assert data.startswith(HEADER.encode())
    back = decode(data, source=SRC)
    assert back == p
    assert back.extra == p.extra
    assert back.encode() == data  # canonical bytes are a fixed point


@given(pointers(algorithm="sha256"))
def test_round_trip_sha256(p: Pointer) -> None:
    data = p.encode()
    assert decode(data, source=SRC, algorithm="sha256") == p
    assert decode(data, source=SRC, algorithm="sha256").encode() == data
    assert b'\nkind = "' + p.kind.encode() + b'"\nhash = "sha256"\n' in data  # recorded
    with pytest.raises(PointerError, match="records a sha256 oid, but this repo hashes with "
                       "xxh128"):
        decode(data, source=SRC)  # an xxh128 repo does not take sha256 oids


@given(pointers(), extras)
def test_unknown_keys_survive_a_rewrite(p: Pointer, more: dict[str, Any]) -> None:
    withextra = Pointer(p.path, p.oid, p.size, p.kind, p.files, {**p.extra, **more})
    rewritten = decode(withextra.encode(), source=SRC).with_data(
        Oid("c" * 32), p.size + 1, 1, "dir"
    )
    assert decode(rewritten.encode(), source=SRC).extra == withextra.extra


# --- strict decoding ------------------------------------------------------------------------


def test_bad_toml() -> None:
    err = decode_error(b"version = 1\npath = \n")
    assert "not a valid pointer" in err.message
    assert err.hint is not None
    assert "git checkout" in err.hint


def test_not_utf8() -> None:
    assert "not a valid pointer" in decode_error(b'version = 1\npath = "\xff"\n').message


def test_empty_file() -> None:
    assert "version" in decode_error(b"").message


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None])
def test_wrong_version(version: object) -> None:
    err = decode_error(toml(version=version))
    assert "unsupported version" in err.message


@pytest.mark.parametrize("path", [None, 3, ["a"]])
def test_missing_path(path: object) -> None:
    assert "no `path`" in decode_error(toml(path=path)).message


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "/",
        "..",
        "../x",
        "a/../../x",
        "a/..",
        ".",
        "./x",
        "x/",
        "a//b",
        "a\\b",
        "..\\x",
        "a\0b",
        "C:",
        "C:/x",
        "C:\\x",
        "c:x",
        "Z:data",
        "a/b",
        "sub/data.csv",
    ],
)
def test_unsafe_path(path: str) -> None:
    err = decode_error(toml(path=path))
    assert "unsafe path" in err.message
    assert repr(path) in err.message


@pytest.mark.parametrize(
    "oid",
    [
        None,
        123,
        "",
        OID[:-1],
        OID + "0",
        OID.upper(),
        "3F2A" + "0" * 28,
        "g" * 32,
        "0" * 40,
        SHA_OID + "0",
        " " + OID,
        [OID],
    ],
)
def test_malformed_oid(oid: object) -> None:
    assert "malformed oid" in decode_error(toml(oid=oid)).message


def test_oid_must_fit_the_repo_hash() -> None:
    assert decode(toml(oid=SHA_OID), source=SRC, algorithm="sha256").oid == SHA_OID
    assert decode(toml(oid=OID), source=SRC, algorithm="xxh128").oid == OID
    err = decode_error(toml(oid=SHA_OID))  # default: xxh128
    assert "records a sha256 oid, but this repo hashes with xxh128" in err.message
    assert err.hint is not None
    assert "core.hash" in err.hint
    with pytest.raises(PointerError, match="records a xxh128 oid, but this repo hashes with "
                       "sha256") as exc:
        decode(toml(oid=OID), source=SRC, algorithm="sha256")
    assert f"`{SRC}`" in exc.value.message


def test_load_checks_the_oid_against_the_repo_hash(tmp_path: Path) -> None:
    f = tmp_path / "x.dvl"
    f.write_bytes(toml(oid=SHA_OID))
    assert load(str(f), "sha256").oid == SHA_OID
    with pytest.raises(PointerError, match="this repo hashes with xxh128") as exc:
        load(str(f))
    assert str(f) in exc.value.message


def test_the_hash_is_recorded_only_when_not_the_default() -> None:
    """`hash = "sha256"` follows `kind`; an xxh128 pointer has no `hash` line, so pointers
    written before it existed are byte for byte what dvlite writes now, and a sha256 pointer
    without the line (written before it existed) reads by its oid's length."""
    assert b"hash" not in Pointer("m", OID, 1, "file").encode()
    sha = Pointer("m", SHA_OID, 1, "file").encode()
    assert sha.endswith(b'kind = "file"\nhash = "sha256"\n')
    old = toml(oid=SHA_OID)
    assert b"hash" not in old
    rewritten = decode(old, source=SRC, algorithm="sha256").encode()
    assert rewritten == Pointer("data", SHA_OID, 5, "file").encode()
    assert b'hash = "sha256"' in rewritten
    explicit = decode(toml(hash="xxh128"), source=SRC)  # the default, written out: accepted
    assert explicit.encode() == Pointer("data", OID, 5, "file").encode()
    assert explicit.extra == {}


@pytest.mark.parametrize(("recorded", "oid", "message"), [
    ("md5", OID, "records an unknown hash 'md5'"),
    (256, SHA_OID, "records an unknown hash 256"),
    ("sha256", OID, "malformed oid"),  # 32 digits cannot be a sha256
    ("xxh128", SHA_OID, "malformed oid"),
])
def test_a_recorded_hash_must_be_known_and_fit_the_oid(recorded: object, oid: str,
                                                       message: str) -> None:
    assert message in decode_error(toml(hash=recorded, oid=oid)).message


@pytest.mark.parametrize("size", [None, -1, True, False, 1.5, "3", [1]])
def test_bad_size(size: object) -> None:
    assert "bad size" in decode_error(toml(size=size)).message


def test_zero_size_is_fine() -> None:
    assert decode(toml(size=0), source=SRC).size == 0


@pytest.mark.parametrize("kind", [None, "folder", "File", "", 1, True])
def test_unknown_kind(kind: object) -> None:
    assert "unknown kind" in decode_error(toml(kind=kind)).message


@pytest.mark.parametrize("files", [None, -1, True, "3", 2.0])
def test_dir_without_valid_files(files: object) -> None:
    assert "files" in decode_error(toml(kind="dir", files=files)).message


@pytest.mark.parametrize("files", [0, 3])
def test_file_with_files(files: int) -> None:
    assert "file pointer with a `files` count" in decode_error(toml(files=files)).message


def test_dir_with_zero_files_is_fine() -> None:
    p = decode(toml(kind="dir", files=0, size=0), source=SRC)
    assert (p.kind, p.files) == ("dir", 0)


def test_size_limit() -> None:
    base = toml()
    exact = base + b"#" * (MAX_BYTES - len(base) - 1) + b"\n"
    assert len(exact) == MAX_BYTES
    assert decode(exact, source=SRC).path == "data"
    over = base + b"#" * (MAX_BYTES - len(base)) + b"\n"
    assert len(over) == MAX_BYTES + 1
    err = decode_error(over)
    assert "too big" in err.message
    assert str(MAX_BYTES + 1) in err.message
    assert MAX_BYTES == 64 * 1024


@given(unsafe_paths())
@example("C:data")
@example("../x")
def test_generated_unsafe_paths_are_rejected(path: str) -> None:
    with pytest.raises(PointerError) as exc:
        decode(toml(path=path), source=SRC)
    assert f"`{SRC}`" in exc.value.message


@pytest.mark.parametrize("name", [".git", ".GIT", ".git.", ".git ", ".dvlite", ".DVLite",
                                  "model.pkl.dvl"])
def test_names_dvlite_never_writes_data_to_are_refused(name: str) -> None:
    """`checkout --force` of a pointer named `.git` would replace the repo's history with data;
    one named like a pointer file would overwrite a pointer."""
    assert "never writes data to" in decode_error(toml(path=name)).message


@given(st.text(st.sampled_from(["a", ".", "/", "\\", ":", "C", "\0", "é"]), max_size=10))
@example("a:b")
def test_accepted_paths_stay_beside_the_pointer(path: str) -> None:
    p = try_decode(toml(path=path))
    if isinstance(p, PointerError):
        assert f"`{SRC}`" in p.message
        assert "unsafe path" in p.message
        return
    folder = "/repo/data"
    target = posixpath.normpath(data_path_for(folder + "/x.dvl", p))
    assert posixpath.dirname(target) == folder  # right beside the pointer
    assert "/" not in p.path
    assert "\\" not in p.path
    # on Windows too: no drive (``a:b`` is relative to drive a's cwd), nothing absolute
    assert ntpath.splitdrive(p.path)[0] == ""
    win = ntpath.normpath(ntpath.join("C:\\repo\\data", p.path))
    assert ntpath.dirname(win) == "C:\\repo\\data"


def try_decode(data: bytes) -> Pointer | PointerError:
    try:
        return decode(data, source=SRC)
    except PointerError as exc:
        return exc


# --- files on disk --------------------------------------------------------------------------


def test_load_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "model.pkl.dvl"
    good.write_bytes(FILE_POINTER)
    assert load(str(good)) == Pointer("model.pkl", OID, 12, "file")
    bad = tmp_path / "bad.dvl"
    bad.write_bytes(toml(oid="nope"))
    with pytest.raises(PointerError, match="malformed oid") as exc:
        load(str(bad))
    assert f"`{bad}`" in exc.value.message


def test_load_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(PointerError, match="does not exist") as exc:
        load(str(tmp_path / "gone.dvl"))
    assert str(tmp_path / "gone.dvl") in exc.value.message
    (tmp_path / "dir.dvl").mkdir()
    with pytest.raises(PointerError, match="is a folder") as exc:
        load(str(tmp_path / "dir.dvl"))
    assert str(tmp_path / "dir.dvl") in exc.value.message


def test_load_of_a_huge_file(tmp_path: Path) -> None:
    big = tmp_path / "big.dvl"
    big.write_bytes(toml() + b"#" * (2 * MAX_BYTES) + b"\n")
    with pytest.raises(PointerError, match="too big") as exc:
        load(str(big))
    assert str(big) in exc.value.message


def test_file_name_helpers() -> None:
    assert SUFFIX == ".dvl"
    assert pointer_file_for("data/images") == "data/images.dvl"
    p = Pointer("images", OID, 1, "dir", 1)
    assert data_path_for(os.path.join("/r", "data", "images.dvl"), p) == os.path.join(
        "/r", "data", "images"
    )
    assert data_path_for("images.dvl", p) == "images"
