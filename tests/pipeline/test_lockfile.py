"""dvlite.lock: canonical sorted TOML, strict decoding naming the file, and changed()."""

from __future__ import annotations

import datetime
import os
import tomllib
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvlite.errors import PipelineError
from dvlite.pipeline.environment import Environment
from dvlite.pipeline.lockfile import (
    FILENAME,
    HEADER,
    Lockfile,
    OutLock,
    StageLock,
    changed,
    decode,
    dump,
    load,
)
from dvlite.pipeline.params import ParamRef
from dvlite.pipeline.stage import Out, Stage
from dvlite.storage.hashing import Oid

if TYPE_CHECKING:
    from pathlib import Path

OID1 = Oid("1" * 32)
OID2 = Oid("2" * 32)
OID3 = Oid("3" * 32)

EXPECTED = f'''\
# dvlite lock: written by `dvlite repro`; commit it with dvlite.toml
version = 1

[stages.prepare]
cmd = "python prepare.py"
deps = [
    {{ path = "data/raw", oid = "{OID1}" }},
    {{ path = "prepare.py", oid = "{OID2}" }},
]

[[stages.prepare.outs]]
path = "data/prepared"
oid = "{OID3}"
size = 10
kind = "dir"
files = 2

[[stages.prepare.outs]]
path = "metrics.json"
oid = "{OID1}"
size = 3
kind = "file"
cache = false

[stages.prepare.params]
"prepare.split" = 0.2

[stages.train]
cmd = [
    "python",
    "train.py",
]
deps = []
outs = []

[stages.train.params]
"other.json:seed" = 1

[stages.train.params.train]
a = 1
b = [
    1,
    2,
]
'''


def sample() -> Lockfile:
    return Lockfile({
        "train": StageLock(("python", "train.py"),
                           params={"train": {"b": [1, 2], "a": 1}, "other.json:seed": 1}),
        "prepare": StageLock(
            "python prepare.py",
            deps={"prepare.py": OID2, "data/raw": OID1},
            params={"prepare.split": 0.2},
            outs={"data/prepared": OutLock(OID3, 10, "dir", 2),
                  "metrics.json": OutLock(OID1, 3, cache=False)},
        ),
    })


def test_encoding_is_canonical_and_sorted() -> None:
    data = sample().encode()
    assert data.decode() == EXPECTED
    assert data.startswith(HEADER.encode())
    assert FILENAME == "dvlite.lock"


def test_decode_round_trip() -> None:
    assert decode(sample().encode(), source="dvlite.lock") == sample()


def test_dump_and_load_atomically(tmp_path: Path) -> None:
    path = str(tmp_path / "dvlite.lock")
    dump(path, sample())
    assert load(path) == sample()
    assert sorted(os.listdir(tmp_path)) == ["dvlite.lock"]  # no temp file left behind


def test_missing_lock_is_empty(tmp_path: Path) -> None:
    assert load(str(tmp_path / "dvlite.lock")) == Lockfile()


def test_load_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dvlite.lock").write_text("version = 2\n")
    with pytest.raises(PipelineError, match=r"dvlite\.lock` has unsupported version 2"):
        load(str(tmp_path / "dvlite.lock"))


def test_with_stage_and_without() -> None:
    lock = sample().with_stage("eval", StageLock("e"))
    assert sorted(lock.stages) == ["eval", "prepare", "train"]
    assert sorted(sample().stages) == ["prepare", "train"]  # unchanged
    assert sorted(lock.without(["train", "nope"]).stages) == ["eval", "prepare"]


def test_null_param_cannot_be_written() -> None:
    with pytest.raises(PipelineError, match=r"cannot write dvlite\.lock"):
        Lockfile({"a": StageLock("x", params={"k": None})}).encode()


GOOD_STAGE = f'cmd = "x"\ndeps = [{{path = "a", oid = "{OID1}"}}]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = \n", r"`L` is not a valid lock file"),
        ("", r"`L` has unsupported version None"),
        ('version = "1"\n', r"unsupported version '1'"),
        ("version = 1\nextra = 1\n", r"`L` has unknown key `extra`"),
        ("version = 1\nstages = 1\n", r"`L`: `stages` must be a table"),
        ("version = 1\n[stages]\ns = 1\n", r"`L`, stage `s` is not a table"),
        ('version = 1\n[stages.s]\ncmd = "x"\nout = []\n', r"stage `s` has unknown key `out`"),
        ("version = 1\n[stages.s]\n", r"stage `s` has no valid `cmd`"),
        ('version = 1\n[stages.s]\ncmd = ""\n', r"no valid `cmd`"),
        ("version = 1\n[stages.s]\ncmd = []\n", r"no valid `cmd`"),
        ("version = 1\n[stages.s]\ncmd = [1]\n", r"no valid `cmd`"),
        ('version = 1\n[stages.s]\ncmd = "x"\ndeps = {}\n', r"`deps` must be a list of tables"),
        ('version = 1\n[stages.s]\ncmd = "x"\ndeps = [{path = "a"}]\n',
         r"each of `deps` must be a table of path, oid$"),
        ('version = 1\n[stages.s]\ncmd = "x"\ndeps = [{path = "a", oid = "zz"}]\n',
         r"stage `s`: dep `a` has a malformed oid 'zz'"),
        (f'version = 1\n[stages.s]\ncmd = "x"\ndeps = [{{path = "../a", oid = "{OID1}"}}]\n',
         r"`deps` has an unsafe path '\.\./a'"),
        (f'version = 1\n[stages.s]\ncmd = "x"\ndeps = [{{path = 1, oid = "{OID1}"}}]\n',
         r"`deps` has an unsafe path 1"),
        (f'version = 1\n[stages.s]\ncmd = "x"\ndeps = [{{path = "a", oid = "{OID1}"}}, '
         f'{{path = "a", oid = "{OID2}"}}]\n', r"`deps` lists `a` twice"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}"}}]\n',
         r"each of `outs` must be a table of path, oid, size, kind \(and optionally files, "
         r"cache\)"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}", '
         'size = -1, kind = "file"}]\n', r"out `a` has a bad size -1"),
        ('version = 1\n[stages.s]\ncmd = "x"\nouts = [{path = "a", oid = "q", size = 1, '
         'kind = "file"}]\n', r"out `a` has a malformed oid"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}", '
         'size = 1, kind = "link"}]\n', r"out `a` has an unknown kind 'link'"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}", '
         'size = 1, kind = "dir"}]\n', r"out `a`: `files` is a folder's file count"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}", '
         'size = 1, kind = "file", files = 1}]\n', r"out `a`: `files` is a folder's"),
        (f'version = 1\n[stages.s]\ncmd = "x"\nouts = [{{path = "a", oid = "{OID1}", '
         'size = 1, kind = "file", cache = true}]\n', r"`cache` is only ever written as false"),
        ('version = 1\n[stages.s]\ncmd = "x"\nwdir = "../up"\n', r"unsafe `wdir` '\.\./up'"),
        ('version = 1\n[stages.s]\ncmd = "x"\nenv = 1\n', r"`env` must be a table"),
        ('version = 1\n[stages.s]\ncmd = "x"\nenv = {python = "3"}\n',
         r"`env` needs `python` and `platform` strings"),
        ('version = 1\n[stages.s]\ncmd = "x"\nenv = {python = "3", platform = "p", '
         'files = {"/etc/x" = "1"}}\n', r"`env.files` must map safe paths to oids"),
        ('version = 1\n[stages.s]\ncmd = "x"\nenv = {python = "3", platform = "p", '
         'files = {"uv.lock" = "1"}}\n', r"env file `uv.lock` has a malformed oid"),
        ('version = 1\n[stages.s]\ncmd = "x"\nparams = 1\n', r"`params` must be a table"),
    ],
)
def test_strict_decoding_names_the_file(text: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        decode(text.encode(), source="L")


def test_decode_accepts_a_good_stage() -> None:
    lock = decode(f"version = 1\n[stages.s]\n{GOOD_STAGE}".encode(), source="L")
    assert lock.stages["s"] == StageLock("x", deps={"a": OID1})


def test_decode_not_utf8() -> None:
    with pytest.raises(PipelineError, match="`L` is not a valid lock file"):
        decode(b"version = 1\n# \xff\n", source="L")


def test_decode_checks_oids_for_the_repo_algorithm() -> None:
    text = f"version = 1\n[stages.s]\n{GOOD_STAGE}".encode()
    with pytest.raises(PipelineError, match="an oid of another hash than this repo's sha256"):
        decode(text, source="L", algorithm="sha256")


# --- property tests -----------------------------------------------------------------------

paths = st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=3).map("/".join)
oids = st.text("0123456789abcdef", min_size=32, max_size=32).map(Oid)
scalars = (
    st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.text(max_size=5)
    | st.floats(allow_nan=False) | st.dates()
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=6,
)
out_locks = st.one_of(
    st.builds(OutLock, oids, st.integers(0, 2**40), st.just("file"), st.none(), st.booleans()),
    st.builds(OutLock, oids, st.integers(0, 2**40), st.just("dir"), st.integers(0, 10**6),
              st.booleans()),
)
environments = st.none() | st.builds(
    Environment, st.text(max_size=6), st.text(max_size=6), st.dictionaries(paths, oids, max_size=2)
)
stage_locks = st.builds(
    StageLock,
    cmd=st.text(min_size=1, max_size=8) | st.lists(st.text(max_size=4), min_size=1,
                                                    max_size=3).map(tuple),
    deps=st.dictionaries(paths, oids, max_size=3),
    params=st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=3),
    outs=st.dictionaries(paths, out_locks, max_size=3),
    wdir=st.just(".") | paths,
    env=environments,
)
lockfiles = st.builds(Lockfile, st.dictionaries(st.text(min_size=1, max_size=6), stage_locks,
                                                max_size=3))


@given(lockfiles)
def test_round_trip_and_canonical_bytes(lock: Lockfile) -> None:
    data = lock.encode()
    again = decode(data, source="dvlite.lock")
    assert again == lock
    assert again.encode() == data
    # the same content inserted in another order gives the same bytes
    shuffled = Lockfile({
        name: StageLock(s.cmd, dict(reversed(list(s.deps.items()))), _reverse(s.params),
                        dict(reversed(list(s.outs.items()))), s.wdir, s.env)
        for name, s in reversed(list(lock.stages.items()))
    })
    assert shuffled.encode() == data
    assert list(tomllib.loads(data.decode()).get("stages", {})) == sorted(lock.stages)


def _reverse(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse(value[k]) for k in reversed(list(value))}
    return value


# --- changed() ----------------------------------------------------------------------------

STAGE = Stage(
    "train", "python train.py", deps=("train.py", "data"), outs=(Out("model.pkl"),),
    params=(ParamRef.parse("train.lr"), ParamRef.parse("p.json:seed")),
)
LOCK = StageLock(
    "python train.py",
    deps={"train.py": OID1, "data": OID2},
    params={"train.lr": 0.1, "p.json:seed": 1},
    outs={"model.pkl": OutLock(OID3, 5)},
)
DEPS = {"train.py": OID1, "data": OID2}
PARAMS: dict[str, Any] = {"train.lr": 0.1, "p.json:seed": 1}


def test_unchanged_stage_has_no_reasons() -> None:
    assert changed(STAGE, LOCK, DEPS, PARAMS) == ()


def test_no_lock_entry() -> None:
    assert changed(STAGE, None, DEPS, PARAMS) == ("no lock entry: never run",)


def test_always_changed() -> None:
    stage = Stage(**{**_fields(STAGE), "always_changed": True})
    assert changed(stage, LOCK, DEPS, PARAMS) == ("always_changed is set",)
    assert changed(stage, None, DEPS, PARAMS) == ("always_changed is set",
                                                  "no lock entry: never run")


def _fields(stage: Stage) -> dict[str, Any]:
    return {f: getattr(stage, f) for f in stage.__slots__}


def test_cmd_changed_including_string_versus_list() -> None:
    assert changed(Stage(**{**_fields(STAGE), "cmd": "python train.py --fast"}), LOCK, DEPS,
                   PARAMS) == ("cmd changed",)
    assert changed(Stage(**{**_fields(STAGE), "cmd": ("python", "train.py")}), LOCK, DEPS,
                   PARAMS) == ("cmd changed",)


def test_wdir_changed() -> None:
    assert changed(Stage(**{**_fields(STAGE), "wdir": "sub"}), LOCK, DEPS, PARAMS) == (
        "wdir changed",
    )


def test_environment_is_recorded_and_compared(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("a")
    (tmp_path / "requirements-dev.txt").write_text("b")
    (tmp_path / "other.lock").write_text("c")
    env = Environment.current(str(tmp_path), "xxh128")
    assert sorted(env.files) == ["requirements-dev.txt", "uv.lock"]
    assert env.python.count(".") == 2
    assert env.differences(env) == []
    (tmp_path / "uv.lock").write_text("changed")
    (tmp_path / "requirements-dev.txt").unlink()
    (tmp_path / "poetry.lock").write_text("d")
    old = Environment("3.0.1", "plan9-mips", env.files)
    assert Environment.current(str(tmp_path), "xxh128").differences(old) == [
        f"python {env.python} (was 3.0.1)", f"platform {env.platform} (was plan9-mips)",
        "`poetry.lock` added", "`requirements-dev.txt` removed", "`uv.lock` changed",
    ]


def test_dep_changed_added_removed() -> None:
    stage = Stage(**{**_fields(STAGE), "deps": ("train.py", "extra.csv")})
    current = {"train.py": OID3, "extra.csv": OID1}
    assert changed(stage, LOCK, current, PARAMS) == (
        "dep `data` removed", "dep `extra.csv` added", "dep `train.py` changed",
    )


def test_missing_current_dep_counts_as_changed() -> None:
    assert changed(STAGE, LOCK, {"train.py": OID1}, PARAMS) == ("dep `data` changed",)


def test_param_changed_added_removed() -> None:
    stage = Stage(**{**_fields(STAGE), "params": (ParamRef.parse("train.lr"),
                                                    ParamRef.parse("train.bs"))})
    assert changed(stage, LOCK, DEPS, {"train.lr": 0.2, "train.bs": 8}) == (
        "param `p.json:seed` removed", "param `train.bs` added", "param `train.lr` changed",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, 1.0), (1, True), (0, False), ([1, 2], [2, 1]), ({"a": 1}, {"a": 1, "b": 2}),
     (datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 1)), ("1", 1)],
)
def test_param_type_or_value_change_is_a_change(old: object, new: object) -> None:
    lock = StageLock(LOCK.cmd, LOCK.deps, {**LOCK.params, "train.lr": old}, LOCK.outs)
    assert changed(STAGE, lock, DEPS, {**PARAMS, "train.lr": new}) == ("param `train.lr` changed",)


def test_param_equal_after_a_round_trip_is_unchanged() -> None:
    value = {"b": [1, (2, 3)], "a": {"x": 1.5}}
    lock = StageLock(LOCK.cmd, LOCK.deps, {**LOCK.params, "train.lr": value}, LOCK.outs)
    stored = decode(Lockfile({"train": lock}).encode(), source="L").stages["train"]
    assert changed(STAGE, stored, DEPS, {**PARAMS, "train.lr": value}) == ()
    assert changed(STAGE, stored, DEPS, {**PARAMS, "train.lr": float("nan")}) == (
        "param `train.lr` changed",
    )
