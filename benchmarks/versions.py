"""Issue 9's data: one large file committed version after version (W5, W6), and a folder of
many small files (W7).

- W5, big file edits: a random file, then 1 MiB overwritten in place, then 64 MiB
  appended, then 1% of its bytes inserted in the middle.
- W6, checkpoints: a checkpoint-like file (a 4 KiB header, then tensors of float-ish bytes),
  then nine more versions, each with a new header and a few tensors rewritten.
- W7, many small files: W4's generator with larger files, pushed, pulled, and one file pulled.

Like the other workloads, every byte comes from `random.Random(seed)`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from workloads import GIB, KIB, MIB, Workload, generate

if TYPE_CHECKING:
    from pathlib import Path

HEADER = 4 * KIB  # a checkpoint's header: its length (8 bytes), then JSON padded with spaces
# float-ish bytes: the top byte of each little-endian float32 (sign and exponent) mapped into
# the exponents of |x| in [2**-7, 2), as model weights mostly are; the other bytes stay random
_EXPONENT = bytes((0x3C | (byte & 0x03)) | (byte & 0x80) for byte in range(256))


@dataclass(frozen=True)
class Edit:
    """One change to the file before the next add and push."""

    row: str  # its rows in the table ("edit 1 MiB"); edits with the same row are summed
    kind: str  # overwrite | append | insert (amount: bytes) | tensors (amount: tensors)
    amount: int
    seed: int


@dataclass(frozen=True)
class Versions:
    name: str
    target: str  # the file, at the repo root
    size: int
    tensor: int  # 0: random bytes; else a checkpoint of size // tensor tensors of this size
    seed: int
    edits: tuple[Edit, ...]

    def describe(self) -> str:
        what = (f"{self.size // self.tensor} tensors of {self.tensor // MIB} MiB"
                if self.tensor else "random")
        steps = dict.fromkeys(edit.row + (f" ({edit.amount} tensors rewritten in each)"
                                          if edit.kind == "tensors" else "")
                              for edit in self.edits)
        return f"one {self.size / MIB:,.0f} MiB file ({what}), then " + ", ".join(steps)


def storage_workloads(*, quick: bool) -> dict[str, Versions | Workload]:
    """W5, W6 and W7, full size or `--quick` size."""
    big = 256 * MIB if quick else 2 * GIB
    checkpoint = 128 * MIB if quick else GIB
    tensor = 2 * MIB if quick else 4 * MIB
    files = 20_000 if quick else 200_000
    return {
        "W5": Versions("W5", "big.bin", big, 0, seed=5, edits=(
            Edit("edit 1 MiB", "overwrite", MIB, seed=51),
            Edit("append 64 MiB", "append", 64 * MIB, seed=52),
            Edit("insert 1%", "insert", 0, seed=53),  # amount: 1% of the file, set when applied
        )),
        "W6": Versions("W6", "model.ckpt", checkpoint, tensor, seed=6, edits=tuple(
            Edit("v2-10", "tensors", 4, seed=60 + version) for version in range(2, 11))),
        "W7": Workload("W7", "data", files, 1, 16 * KIB, files // 200, seed=7),
    }


def generate_first(versions: Versions, root: Path) -> Path:
    """The first version of the file under `root` (made, or reused when its stamp matches)."""
    if not versions.tensor:
        return generate(Workload(versions.name, versions.target, 1, versions.size,
                                 versions.size, 0, seed=versions.seed), root)
    stamp = root / "spec.json"
    spec = json.dumps(asdict(versions), sort_keys=True)
    if stamp.exists() and stamp.read_text() == spec:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(versions.seed)
    with (root / versions.target).open("wb") as out:
        out.write(_header(versions, 1))
        for _ in range(versions.size // versions.tensor):
            out.write(_floats(rng, versions.tensor))
    stamp.write_text(spec)
    return root


def apply_edit(versions: Versions, edit: Edit, path: Path, version: int) -> None:
    """Change the file at `path` into its next version; the same bytes every time."""
    rng = random.Random(edit.seed)
    size = path.stat().st_size
    if edit.kind == "overwrite":  # in place: same inode, new mtime
        with path.open("r+b") as f:
            f.seek(rng.randrange(size - edit.amount))
            f.write(rng.randbytes(edit.amount))
    elif edit.kind == "append":
        with path.open("ab") as f:
            f.write(rng.randbytes(edit.amount))
    elif edit.kind == "insert":  # a new file: the first half, 1% new bytes, the second half
        _insert(path, size // 2, rng.randbytes(size // 100))
    elif edit.kind == "tensors":  # a checkpoint saved again: new header, some tensors changed
        count = versions.size // versions.tensor
        with path.open("r+b") as f:
            f.write(_header(versions, version))
            for index in sorted(rng.sample(range(count), edit.amount)):
                f.seek(HEADER + index * versions.tensor)
                f.write(_floats(rng, versions.tensor))
    else:
        raise ValueError(f"unknown edit {edit.kind!r}")


def _insert(path: Path, offset: int, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with path.open("rb") as src, tmp.open("wb") as out:
        while offset:
            piece = src.read(min(offset, 16 * MIB))
            out.write(piece)
            offset -= len(piece)
        out.write(data)
        shutil.copyfileobj(src, out, 16 * MIB)
    os.replace(tmp, path)


def _header(versions: Versions, version: int) -> bytes:
    count = versions.size // versions.tensor
    meta = json.dumps({"format": "bench-checkpoint", "step": f"{version * 1000:08}",
                       "tensors": count, "dtype": "float32", "bytes": versions.tensor})
    body = meta.encode().ljust(HEADER - 8)
    return len(body).to_bytes(8, "little") + body


def _floats(rng: random.Random, size: int) -> bytes:
    data = bytearray(rng.randbytes(size))
    data[3::4] = data[3::4].translate(_EXPONENT)
    return bytes(data)
