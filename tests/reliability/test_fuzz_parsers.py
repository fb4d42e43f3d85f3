"""Hostile bytes into every parser: whatever a pointer, manifest, ``dvlite.toml``,
``dvlite.lock``, run-cache entry, config file or params file holds, parsing it either works or
raises one of dvlite's own errors (which the CLI turns into one ``error:`` line), never another
exception (a traceback) and never a hang.

Three kinds of input for each parser: arbitrary bytes; structured documents (TOML or JSON
built from the keys the parser knows, with values of every type, path tricks and oids); and
valid documents with a few bytes flipped, inserted or cut. Each test runs ``FUZZ_EXAMPLES``
cases (six times the Hypothesis profile's count: 300 in CI, 3,000 with
``HYPOTHESIS_PROFILE=slow``); the pytest timeout catches a hang.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from dvlite import config as cfg
from dvlite import pointer as pointers
from dvlite.errors import DvliteError
from dvlite.pipeline import dag, runcache
from dvlite.pipeline import lockfile as lockfiles
from dvlite.pipeline import params as params_mod
from dvlite.pipeline import stage as stages_mod
from dvlite.storage.hashing import ALGORITHMS, hash_bytes
from dvlite.storage.manifest import Entry, Manifest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

FUZZ_EXAMPLES = settings().max_examples * 6
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SRC = "fuzzed"
XXH = hash_bytes(b"x")
SHA = hash_bytes(b"x", "sha256")

# --- building blocks ------------------------------------------------------------------------

# the keys the parsers look for, so that structured documents get past the first checks
KEYS = (
    "version", "path", "oid", "size", "files", "kind", "exec", "dvlite-manifest", "stages",
    "cmd", "deps", "outs", "params", "metrics", "plots", "wdir", "cache", "persist", "env",
    "python", "platform", "run", "core", "hash", "lock_timeout", "jobs", "autostage", "remote",
    "url", "dir", "link", "origin", "train", "lr", "a.b", "",
)
TRICKY_TEXT = (
    "..", "../x", "/etc/passwd", "a\\b", "C:x", "a\0b", "a//b", "./a", "a/", "~", "\u00e9",
    "e\u0301", "A.txt", "a.txt", "file", "dir", "sha256", "xxh128", "data", XXH, SHA, XXH.upper(),
    "${HOME}", "%s", "\n", " ",
)
scalars = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits: TOML readers accept them
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.dates(),
    st.times(),
)
keys = st.sampled_from(KEYS) | st.text(max_size=6)


def tables(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=12,
    )


json_scalars = scalars.filter(lambda v: not isinstance(v, datetime.date | datetime.time))
toml_values = tables(scalars)
json_values = tables(json_scalars)


def toml_text(doc: dict[str, Any]) -> str:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):  # tomli_w cannot write every value (e.g. 10**400)
        assume(False)
        raise AssertionError("unreachable") from None


def _as_table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"value": value}


toml_docs = st.dictionaries(keys, toml_values, max_size=7).map(toml_text)
json_docs = json_values.map(lambda v: json.dumps(v, allow_nan=True))


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with a few bytes flipped, inserted or removed."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        byte = draw(st.sampled_from(b'"\'[]{}=,.\\/\n\x00\xff0123456789abcdef-'))
        if op == "flip" and at < len(data):
            data[at] = byte
        elif op == "insert":
            data.insert(at, byte)
        elif op == "delete" and at < len(data):
            del data[at]
        elif op == "cut":
            del data[at:]
    return bytes(data)


def deep(head: str, opening: str, closing: str) -> bytes:
    """Nesting deep enough to exhaust Python's recursion limit (5,000 levels), small enough to
    fit in a pointer's 64 KiB."""
    depth = 5_000
    return (head + opening * depth + closing * depth).encode()


DEEP_TOML = deep("a = ", "[", "]")
DEEP_JSON = deep("", "[", "]")


def only_dvlite_errors(parse: Callable[[], object]) -> object:
    """Run ``parse``; its own errors are fine (they become one ``error:`` line), anything else
    fails the test with the traceback. Returns the result or the error."""
    try:
        result = parse()
    except DvliteError as exc:
        error = exc
    else:
        return result
    assert error.message.strip(), "an error without a message"
    return error


# --- pointers ---------------------------------------------------------------------------------

VALID_POINTER = pointers.Pointer("data", XXH, 5, "dir", 2, {"note": "kept"}).encode()
algorithms = st.sampled_from(ALGORITHMS)


@fuzz
@given(st.binary(max_size=2000) | toml_docs.map(str.encode) | mutated(VALID_POINTER), algorithms)
@example(DEEP_TOML, "xxh128")
@example(deep("a = ", "{b = ", "}"), "xxh128")
@example(b"version = 1\n" + b"x = [" * 3000, "xxh128")
def test_pointer_decode(data: bytes, algorithm: str) -> None:
    parsed = only_dvlite_errors(lambda: pointers.decode(data, source=SRC, algorithm=algorithm))
    if isinstance(parsed, pointers.Pointer):
        # what decodes re-encodes and decodes to the same thing (canonical and strict)
        assert pointers.decode(parsed.encode(), source=SRC, algorithm=algorithm) == parsed
    elif isinstance(parsed, DvliteError):
        assert f"`{SRC}`" in parsed.message  # names the file


# --- manifests --------------------------------------------------------------------------------

VALID_MANIFEST = Manifest.build([Entry("a/b.csv", XXH, 3), Entry("c", XXH, 0, True)]).to_bytes()
entry_dicts = st.fixed_dictionaries(
    {"path": st.sampled_from(TRICKY_TEXT) | st.text(max_size=8),
     "oid": st.sampled_from([XXH, SHA, "", "zz"]), "size": json_scalars,
     "exec": json_scalars},
)
manifest_docs = st.lists(entry_dicts | json_values, max_size=6).map(
    lambda files: json.dumps({"dvlite-manifest": 1, "files": files}, allow_nan=True)
)


@fuzz
@given(st.binary(max_size=2000) | json_docs.map(str.encode) | manifest_docs.map(str.encode)
       | mutated(VALID_MANIFEST), algorithms)
@example(DEEP_JSON, "xxh128")
@example(b'{"dvlite-manifest":1,"files":' + DEEP_JSON + b"}", "xxh128")
def test_manifest_from_bytes(data: bytes, algorithm: str) -> None:
    parsed = only_dvlite_errors(lambda: Manifest.from_bytes(data, source=SRC,
                                                            algorithm=algorithm))
    if isinstance(parsed, Manifest):
        assert Manifest.from_bytes(parsed.to_bytes(), source=SRC, algorithm=algorithm) == parsed


# --- dvlite.toml -----------------------------------------------------------------------------

stage_bodies = st.fixed_dictionaries(
    {},
    optional={k: toml_values | st.lists(st.sampled_from(TRICKY_TEXT), max_size=3)
              for k in ("cmd", "deps", "outs", "params", "metrics", "wdir")},
)
pipelines = st.dictionaries(st.sampled_from(["a", "b", "c", "x y", ""]), stage_bodies,
                            max_size=3).map(lambda s: toml_text({"stages": s}))


@fuzz
@given(st.text(max_size=2000) | toml_docs | pipelines)
@example(DEEP_TOML.decode())
@example('[stages.a]\ncmd = "x"\nouts = ["o"]\ndeps = ["o"]\n')
def test_parse_stages_and_build_the_graph(text: str) -> None:
    parsed = only_dvlite_errors(lambda: stages_mod.parse_stages(text, source=SRC))
    if isinstance(parsed, dict):
        only_dvlite_errors(lambda: dag.build(parsed))


# --- dvlite.lock and run-cache entries ----------------------------------------------------------

LOCK_STAGE = {"cmd": "python x.py",
              "deps": [{"path": "a", "oid": XXH}],
              "outs": [{"path": "m", "oid": XXH, "size": 1, "kind": "file"}],
              "params": {"lr": 0.1}}
VALID_LOCK = tomli_w.dumps({"version": 1, "stages": {"train": LOCK_STAGE}}).encode()
lock_docs = st.dictionaries(
    st.sampled_from(["train", "a.b", ""]),
    st.fixed_dictionaries({}, optional=dict.fromkeys((*LOCK_STAGE, "wdir", "env"), toml_values)),
    max_size=3,
).map(lambda stages: toml_text({"version": 1, "stages": stages}))


@fuzz
@given(st.binary(max_size=2000) | toml_docs.map(str.encode) | lock_docs.map(str.encode)
       | mutated(VALID_LOCK), algorithms)
@example(DEEP_TOML, "xxh128")
def test_lockfile_decode(data: bytes, algorithm: str) -> None:
    parsed = only_dvlite_errors(lambda: lockfiles.decode(data, source=SRC, algorithm=algorithm))
    if isinstance(parsed, lockfiles.Lockfile):
        again = lockfiles.decode(parsed.encode(), source=SRC, algorithm=algorithm)
        assert again.encode() == parsed.encode()


VALID_ENTRY = tomli_w.dumps({"version": 1, "run": LOCK_STAGE}).encode()


@fuzz
@given(st.binary(max_size=2000) | mutated(VALID_ENTRY)
       | lock_docs.map(lambda t: t.replace("[stages.", "[run.").encode()), algorithms)
@example(DEEP_TOML, "xxh128")
def test_run_cache_entry_and_index_decode(data: bytes, algorithm: str) -> None:
    only_dvlite_errors(lambda: runcache.decode_entry(data, source=SRC, algorithm=algorithm))
    index = runcache.decode_index(data, algorithm)  # None means "not an index", never raises
    assert index is None or all(len(oid) in (32, 64) for oid in index)


# --- config files, values and the environment ----------------------------------------------------

config_docs = st.fixed_dictionaries(
    {},
    optional={"core": st.dictionaries(st.sampled_from(["hash", "lock_timeout", "jobs",
                                                       "autostage", "remote", "x"]),
                                      scalars | toml_values, max_size=4),
              "cache": st.dictionaries(st.sampled_from(["dir", "link"]), toml_values, max_size=2),
              "remote": st.dictionaries(st.sampled_from(["origin", "a.b"]),
                                        st.dictionaries(keys, toml_values, max_size=3),
                                        max_size=2)},
).map(toml_text)
env_values = st.dictionaries(
    st.sampled_from([cfg.env_name(k) for k in cfg.SCHEMA]),
    st.text(max_size=12) | st.sampled_from(["1e400", "9" * 400, "nan", "-inf", "0x10", "1_0"]),
    max_size=3,
)


@fuzz
@given(st.binary(max_size=1500) | toml_docs.map(str.encode) | config_docs.map(str.encode),
       env_values, st.booleans())
@example(b"[core]\nlock_timeout = " + b"9" * 400 + b"\n", {}, True)
@example(b"[core]\njobs = " + b"9" * 400 + b"\n", {}, True)
@example(DEEP_TOML, {}, True)
def test_config_load(tmp_path: Path, data: bytes, env: dict[str, str], strict: bool) -> None:
    project = tmp_path / "config.toml"
    project.write_bytes(data)
    paths = {"project": str(project), "local": str(tmp_path / "missing.toml")}
    loaded = only_dvlite_errors(lambda: cfg.Config.load(paths, env, strict=strict))
    if isinstance(loaded, cfg.Config):
        for key in cfg.SCHEMA:
            loaded.get(key)  # every value in effect passed validation
    elif not strict:  # a lenient load fails only on syntax: `dvlite config` can repair values
        assert isinstance(loaded, cfg.ConfigError)
        assert "cannot parse" in loaded.message


@fuzz
@given(st.sampled_from([*cfg.SCHEMA, "remote.a.url", "remote.a.secret", "nope", "core",
                        "remote.a", "remote..x", ".", ""]) | st.text(max_size=15),
       st.text(max_size=15) | st.sampled_from(["9" * 400, "1e400", "[1, 2]", "{a = 1}", "nan"]))
@example("core.lock_timeout", "9" * 400)
@example("core.jobs", "1e400")
def test_config_parse_value(key: str, raw: str) -> None:
    only_dvlite_errors(lambda: cfg.parse_value(key, raw))


@fuzz
@given(toml_docs | config_docs, st.sampled_from(["core.hash", "remote.a.url", "remote.a.b.c",
                                                "core", "cache.dir"]), st.booleans())
def test_config_set_and_unset_keep_a_readable_file(tmp_path: Path, text: str, key: str,
                                                   unset: bool) -> None:
    path = tmp_path / "config.local.toml"
    path.write_text(text)
    if unset:
        only_dvlite_errors(lambda: cfg.unset_value(str(path), key, private=True))
    else:
        only_dvlite_errors(lambda: cfg.set_value(str(path), key, "v", private=True))
    only_dvlite_errors(lambda: cfg.flatten(cfg.read_toml(str(path))))


# --- params files ---------------------------------------------------------------------------------

SUFFIX_DOCS = {".toml": toml_docs, ".json": json_docs,
               ".yaml": json_docs, ".yml": st.text(max_size=300)}
lookup_keys = st.sampled_from(["train", "train.lr", "a.b", "a.b.c", "lr", "value", "x"])
YAML_BOMB = b"a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + b"".join(
    f"{chr(99 + i)}: &{chr(99 + i)} [{', '.join([f'*{chr(98 + i)}'] * 9)}]\n".encode()
    for i in range(8)
)


@fuzz
@given(st.sampled_from(sorted(SUFFIX_DOCS)), st.data(), lookup_keys)
@example(".json", DEEP_JSON, "train")
@example(".yaml", DEEP_JSON, "train")  # JSON is YAML too
@example(".yaml", b'"DDDD\\UDDDDDDDD&', "train")  # atheris found: PyYAML's OverflowError
def test_params_parse_and_lookup(suffix: str, data: st.DataObject | bytes, key: str) -> None:
    raw = data if isinstance(data, bytes) else data.draw(
        st.binary(max_size=800) | SUFFIX_DOCS[suffix].map(lambda t: t.encode("utf-8", "replace"))
    )
    doc = only_dvlite_errors(lambda: params_mod.parse_document(raw, "p" + suffix, where=SRC))
    if isinstance(doc, dict):
        only_dvlite_errors(lambda: params_mod.lookup(doc, key, source=SRC))


@pytest.mark.parametrize(("raw", "refused"), [
    # a billion laughs: aliases nest nine-fold, nine times over (387 million values)
    (YAML_BOMB, "more than 1,000,000 values"),
    (b"a: &a [*a]\n", "nested more than 100 levels deep"),  # a list that contains itself
    (b"a: " + b"[" * 150 + b"]" * 150 + b"\n", "nested more than 100 levels deep"),
    (b"a: !!python/object/apply:os.system ['echo pwned']\n", "cannot parse"),  # no code
    (b"? [1, 2]\n: x\n", "cannot parse"),  # a key that is a list
    (b"a: !!set {x, y}\n", "unsupported value"),  # parses; refused when used
    (b"a: !!binary aGVsbG8=\n", "unsupported value"),
])
def test_hostile_yaml_params(raw: bytes, refused: str, tmp_path: Path) -> None:
    """YAML can expand a few hundred bytes into more values than memory holds, or into a list
    inside itself: every such file is refused with an error naming it, in about a second."""
    params = tmp_path / "params.yaml"
    params.write_bytes(raw)
    with pytest.raises(DvliteError) as exc:
        params_mod.read_params(str(tmp_path), [params_mod.ParamRef("params.yaml", "a")])
    assert refused in exc.value.message
    assert str(params) in exc.value.message


@fuzz
@given(st.text(max_size=30) | st.sampled_from(["a:b:c", ":x", "x:", "../p.toml:k", "/p.json:k",
                                                "p.txt:k", "p.toml:", "p.toml:.", "a..b"]))
def test_param_refs_in_a_stage(text: str) -> None:
    """A stage's ``params`` entries go through ``ParamRef.parse``: an odd one is named in a
    PipelineError, never a bare ValueError."""
    body = toml_text({"stages": {"s": {"cmd": "x", "params": [text]}}})
    only_dvlite_errors(lambda: stages_mod.parse_stages(body, source=SRC))

