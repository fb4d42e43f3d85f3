"""Coverage-guided fuzzing of every parser with atheris (libFuzzer): the first byte picks the
parser, the rest is its input; any exception but a DvliteError is a crash, reported with its
traceback and the input that caused it.

    python tests/reliability/atheris_target.py -atheris_runs=100000 CORPUS_DIR

test_fuzz_atheris.py runs it with a seed corpus of valid files. It found what Hypothesis's
structured inputs had not: PyYAML raising OverflowError on an escape like "\\UDDDDDDDD".
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import TYPE_CHECKING

import atheris

with atheris.instrument_imports():
    from dvlite import config, pointer
    from dvlite.errors import DvliteError
    from dvlite.pipeline import dag, lockfile, params, runcache, stage
    from dvlite.storage.manifest import Manifest

if TYPE_CHECKING:
    from collections.abc import Callable

_CONFIG = os.path.join(tempfile.mkdtemp(prefix="dvlite-atheris-"), "config.toml")


def _config(raw: bytes, algorithm: str) -> None:
    with open(_CONFIG, "wb") as f:
        f.write(raw)
    config.Config.load({"project": _CONFIG}, {}, strict=algorithm == "xxh128")


def _params(suffix: str) -> Callable[[bytes, str], None]:
    def parse(raw: bytes, algorithm: str) -> None:
        doc = params.parse_document(raw, "params" + suffix, where="fuzzed")
        for key in list(doc)[:3]:
            params.lookup(doc, str(key), source="fuzzed")

    return parse


PARSERS: tuple[Callable[[bytes, str], object], ...] = (
    lambda raw, algorithm: pointer.decode(raw, source="fuzzed", algorithm=algorithm),
    lambda raw, algorithm: Manifest.from_bytes(raw, source="fuzzed", algorithm=algorithm),
    lambda raw, _: dag.build(stage.parse_stages(raw.decode("utf-8", "replace"),
                                                source="fuzzed")),
    lambda raw, algorithm: lockfile.decode(raw, source="fuzzed", algorithm=algorithm),
    lambda raw, algorithm: (runcache.decode_entry(raw, source="fuzzed", algorithm=algorithm),
                            runcache.decode_index(raw, algorithm)),
    _config,
    _params(".toml"),
    _params(".json"),
    _params(".yaml"),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    parse = PARSERS[data[0] % len(PARSERS)]
    algorithm = "sha256" if data[0] >= 128 else "xxh128"
    with contextlib.suppress(DvliteError):  # its own errors are fine; anything else crashes
        parse(data[1:], algorithm)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
