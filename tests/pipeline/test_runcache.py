"""The run cache's domain: canonical keys, entry and index codecs, lookups over an ObjectStore."""

from __future__ import annotations

import datetime
import math
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dvlite.errors import PipelineError
from dvlite.pipeline.environment import Environment
from dvlite.pipeline.lockfile import OutLock, StageLock, _same
from dvlite.pipeline.runcache import (
    KEEP,
    RunCache,
    cacheable,
    decode_entry,
    decode_index,
    encode_entry,
    encode_index,
    key_of,
    lock_key,
    merge,
    stage_key,
)
from dvlite.pipeline.stage import Out, Stage
from dvlite.storage.hashing import Oid, hash_bytes
from dvlite.storage.manifest import Entry, Manifest
from dvlite.storage.odb import ObjectStore

if TYPE_CHECKING:
    from pathlib import Path

ALG = "xxh128"

paths = st.from_regex(r"[a-z]{1,5}(/[a-z]{1,5}){0,2}", fullmatch=True)
oids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map(Oid)
scalars = (st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32)
           | st.text(max_size=4) | st.dates())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6)
cmds = st.text(min_size=1, max_size=8) | st.lists(st.text(min_size=1, max_size=4), min_size=1,
                                                   max_size=3).map(tuple)
wdirs = st.sampled_from([".", "sub", "a/b"])
inputs = st.fixed_dictionaries({
    "cmd": cmds,
    "wdir": wdirs,
    "deps": st.dictionaries(paths, oids, max_size=4),
    "params": st.dictionaries(st.from_regex(r"[a-z]{1,4}(\.[a-z]{1,3})?", fullmatch=True),
                              values, max_size=4),
    "outs": st.dictionaries(paths, st.booleans(), min_size=1, max_size=3),
})


def key(doc: dict[str, Any]) -> Oid | None:
    return key_of(doc["cmd"], doc["wdir"], doc["deps"], doc["params"], doc["outs"],
                  algorithm=ALG)


def reversed_order(value: Any) -> Any:
    """The same value with every mapping built in the opposite order."""
    if isinstance(value, dict):
        return {k: reversed_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_order(v) for v in value]
    return value


@given(inputs)
def test_same_inputs_in_any_order_give_one_key(doc: dict[str, Any]) -> None:
    again = {name: reversed_order(value) for name, value in reversed(list(doc.items()))}
    if isinstance(doc["cmd"], tuple):  # a list cmd from a lock decodes as a tuple, or not
        again["cmd"] = list(doc["cmd"])
    assert key(doc) is not None
    assert key(again) == key(doc)


@given(inputs, st.data())
def test_any_change_of_input_changes_the_key(doc: dict[str, Any], data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(["cmd", "wdir", "deps", "params", "outs"]))
    changed = dict(doc)
    if field == "cmd":
        new = data.draw(cmds)
        assume(type(new) is not type(doc["cmd"]) or new != doc["cmd"])
        changed["cmd"] = new
    elif field == "wdir":
        changed["wdir"] = data.draw(wdirs.filter(lambda w: w != doc["wdir"]))
    else:
        mapping = dict(doc[field])
        item = {"deps": oids, "params": values, "outs": st.booleans()}[field]
        how = data.draw(st.sampled_from(["add", "remove", "change"] if mapping else ["add"]))
        if how == "add":
            name = data.draw(paths.filter(lambda p: p not in mapping))
            mapping[name] = data.draw(item)
        elif how == "remove":
            del mapping[data.draw(st.sampled_from(sorted(mapping)))]
        else:
            name = data.draw(st.sampled_from(sorted(mapping)))
            new_value = data.draw(item)
            assume(not _same(new_value, mapping[name]))
            mapping[name] = new_value
        assume(not (field == "outs" and not mapping))
        changed[field] = mapping
    assert key(changed) != key(doc)


def test_values_that_compare_equal_in_python_still_differ_in_the_key() -> None:
    base = {"cmd": "c", "wdir": ".", "deps": {}, "params": {}, "outs": {"o": True}}
    keys = {key({**base, "params": {"p": v}}) for v in (1, 1.0, True, "1", [1], (1,))}
    assert len(keys) == 5  # a tuple is the list a lock gives back
    assert key({**base, "cmd": "c"}) != key({**base, "cmd": ("c",)})


def test_a_value_without_canonical_form_has_no_key() -> None:
    doc = {"cmd": "c", "wdir": ".", "deps": {}, "outs": {"o": True}}
    assert key({**doc, "params": {"p": object()}}) is None
    assert key({**doc, "params": {"p": {1: "int key"}}}) is None
    assert key({**doc, "params": {"p": datetime.date(2024, 1, 2)}}) != key(
        {**doc, "params": {"p": "2024-01-02"}})


def stage(**kwargs: Any) -> Stage:
    fields: dict[str, Any] = {"name": "train", "cmd": "python train.py", "deps": ("train.py",),
                              "outs": (Out("model.bin"), Out("logs", cache=False)),
                              "metrics": ("metrics.json",)}
    return Stage(**{**fields, **kwargs})


def test_a_stage_and_its_lock_entry_have_one_key() -> None:
    deps = {"train.py": Oid("1" * 32)}
    params = {"train.lr": 0.1}
    outs = {"model.bin": OutLock(Oid("2" * 32), 3), "logs": OutLock(Oid("3" * 32), 3, cache=False),
            "metrics.json": OutLock(Oid("4" * 32), 3, cache=False)}
    lock = StageLock("python train.py", deps, params, outs, ".", Environment("3.12", "linux"))
    assert stage_key(stage(), deps, params, ALG) == lock_key(lock, ALG)
    # the name is not part of it; what is cached is
    assert stage_key(stage(name="other"), deps, params, ALG) == lock_key(lock, ALG)
    assert stage_key(stage(outs=(Out("model.bin"), Out("logs"))), deps, params, ALG) != \
        lock_key(lock, ALG)


def test_what_is_cacheable() -> None:
    assert cacheable(stage())
    assert not cacheable(stage(deps=()))  # nothing pins what it read
    assert not cacheable(stage(outs=(), metrics=()))  # nothing to restore
    assert not cacheable(stage(always_changed=True))


LOCK = StageLock(
    ("python", "train.py"), {"train.py": Oid("1" * 32)},
    {"train": {"lr": 0.1, "layers": [1, 2]}, "when": datetime.date(2024, 5, 1),
     "nan": math.inf},
    {"model.bin": OutLock(Oid("2" * 32), 10)}, "sub", Environment("3.12.1", "linux-x86_64"),
)


def test_entry_round_trips_and_is_canonical() -> None:
    data = encode_entry(LOCK)
    decoded = decode_entry(data, source="e", algorithm=ALG)
    assert decoded == LOCK
    assert encode_entry(decoded) == data
    assert data.startswith(b"# dvlite run-cache entry")


@pytest.mark.parametrize("data", [b"\xff", b"version = 2\n[run]\ncmd = 'x'\n",
                                  b"version = 1\nextra = 1\n[run]\ncmd = 'x'\n",
                                  b"version = 1\n[run]\ncmd = 'x'\nwho = 1\n"])
def test_a_bad_entry_is_an_error_naming_it(data: bytes) -> None:
    with pytest.raises(PipelineError, match="run-cache entry abc"):
        decode_entry(data, source="abc", algorithm=ALG)


def test_index_codec_and_merge() -> None:
    a, b, c = (Oid(ch * 32) for ch in "abc")
    assert decode_index(encode_index([a, b]), ALG) == [a, b]
    assert decode_index(b"# header\n" + a.encode() + b"\nnot an oid\n", ALG) is None
    assert decode_index(b"\xff\xfe", ALG) is None
    assert merge([a, b], [b, c]) == [a, b, c]  # only what is new to a side counts as newer
    many = [Oid(f"{i:032x}") for i in range(KEEP + 3)]
    assert merge([], many) == many[-KEEP:]


@pytest.fixture
def odb(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "cache"))


def run_of(odb: ObjectStore, content: bytes, *, lr: float = 0.1) -> StageLock:
    """A lock entry whose outs (a file and a folder) are stored in ``odb``."""
    file_oid = odb.add_bytes(content)
    manifest = Manifest.build([Entry("part.txt", odb.add_bytes(content + b"!"), len(content) + 1)])
    folder = odb.add_bytes(manifest.to_bytes())
    outs = {"model.bin": OutLock(file_oid, len(content)),
            "parts": OutLock(folder, manifest.size, "dir", 1)}
    return StageLock("python train.py", {"train.py": Oid("1" * 32)}, {"lr": lr}, outs, ".",
                     Environment("3.12.1", "linux-x86_64"))


def test_save_then_find_the_newest_complete_run(odb: ObjectStore, tmp_path: Path) -> None:
    runs = RunCache(str(tmp_path / "cache" / "runs"), odb)
    first, second = run_of(odb, b"one"), run_of(odb, b"two")
    key = runs.save(first)
    assert key is not None
    assert runs.find(key) == first
    assert runs.save(second) == key  # same inputs, other outputs
    assert runs.find(key) == second
    runs.save(first)  # saved again: the newest once more
    assert runs.find(key) == first
    assert runs.stored_keys() == [key]
    assert len(runs.entry_oids(key)) == 2
    other = runs.save(run_of(odb, b"one", lr=0.2))
    assert other not in (None, key)
    assert sorted(runs.stored_keys()) == sorted([key, other])  # type: ignore[type-var]


def test_a_run_missing_an_object_is_not_found(odb: ObjectStore, tmp_path: Path) -> None:
    runs = RunCache(str(tmp_path / "runs"), odb)
    older, newer = run_of(odb, b"one"), run_of(odb, b"two")
    runs.save(older)
    key = runs.save(newer)
    assert key is not None
    odb.delete(hash_bytes(b"two!"))  # a file of the newer run's folder: the older one serves
    assert runs.find(key) == older
    odb.delete(older.outs["parts"].oid)  # its folder's manifest
    assert runs.find(key) is None
    assert [r.oid for r in runs.complete(key)] == []


def test_an_index_naming_another_keys_entry_restores_nothing(
    odb: ObjectStore, tmp_path: Path
) -> None:
    runs = RunCache(str(tmp_path / "runs"), odb)
    key_a = runs.save(run_of(odb, b"a", lr=0.1))
    key_b = runs.save(run_of(odb, b"b", lr=0.2))
    assert key_a is not None
    assert key_b is not None
    runs.add(key_a, runs.entry_oids(key_b), newest=True)  # a damaged or forged index
    assert runs.find(key_a) is not None  # its own entry still serves
    assert runs.find(key_a).outs["model.bin"].oid == hash_bytes(b"a")  # type: ignore[union-attr]
    (tmp_path / "runs" / key_b[:2] / key_b[2:]).write_text("garbage\n")
    assert runs.find(key_b) is None


toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False) | st.text(max_size=6) | st.dates()
                | st.datetimes(timezones=st.none() | st.timezones()) | st.times())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=6)


@given(st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), toml_values, max_size=4))
def test_an_entry_read_back_has_the_key_it_was_saved_under(params: dict[str, Any]) -> None:
    """A lookup keys the stage's current inputs; a read checks the decoded entry's: params
    must come back from TOML with the same canonical form, or no run would ever restore."""
    deps = {"train.py": Oid("1" * 32)}
    outs = {"model.bin": OutLock(Oid("2" * 32), 3), "logs": OutLock(Oid("3" * 32), 3, cache=False),
            "metrics.json": OutLock(Oid("4" * 32), 3, cache=False)}
    key = stage_key(stage(), deps, params, ALG)
    assume(key is not None)  # no key for what TOML cannot write back (a -00:16:08 offset)
    lock = StageLock("python train.py", deps, params, outs, ".", Environment("3.12", "linux"))
    decoded = decode_entry(encode_entry(lock), source="e", algorithm=ALG)
    assert lock_key(decoded, ALG) == key
