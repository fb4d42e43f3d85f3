"""What a push and a pull cost against a real S3 server, counted in moto_server's own request
log (load-independent, unlike timings): one PUT per object after a listing that does not grow
with the objects, one GET per object and no HEAD before it; and a big file moves with memory
that stays flat, in parts, instead of being held whole."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.init import config_set
from dvlite.ops.sync import fetch, push
from tests.ops.support import cache_oids
from tests.remote.contract import configure, in_clone

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import TmpRepo
    from tests.remote.servers import Backend, S3Server

    Clone = Callable[[TmpRepo], TmpRepo]

FILES = 300  # more than a push checks one by one: it lists the remote instead
_MIB = 1 << 20


def requests_to(server: S3Server, backend: Backend) -> Counter[str]:
    """The requests moto served for the store's bucket, by method ("GET ?list-type=2" is a
    listing, "GET" a download)."""
    bucket = backend.root.split("/", 1)[0]
    counts: Counter[str] = Counter()
    for line in _log_so_far(server):
        request = line.partition('"')[2].split(" ")
        if len(request) < 2 or not request[1].startswith((f"/{bucket}/", f"/{bucket}?")):
            continue
        query = request[1].partition("?")[2]
        counts[request[0] + (" ?" + query.split("&")[0] if query else "")] += 1
    return counts


def _log_so_far(server: S3Server) -> list[str]:
    """The log's lines, once every request answered before this call is in it: moto writes a
    line after it answers, so a marker request's line is waited for."""
    marker = f"/moto-api/?marker={uuid.uuid4().hex}"
    with urllib.request.urlopen(server.endpoint + marker, timeout=10):
        pass
    deadline = time.monotonic() + 30
    while True:
        lines = server.log.read_text(errors="replace").splitlines()
        if any(marker in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def difference(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before[k] for k in after if after[k] != before[k]})


def make_origin(t: TmpRepo, backend: Backend, *, packs: bool) -> TmpRepo:
    """A repo tracking a folder of FILES small files, on an empty S3 remote."""
    configure(t, backend)
    if not packs:
        config_set(t.repo, "core.pack_size", "0")
        t.reopen()
    t.gen({"data": {f"f{i:03d}.txt": f"file {i}\n" for i in range(FILES)}})
    t.dvl_add("data")
    t.git_commit("data")
    return t


@pytest.fixture
def origin(tmp_repo: TmpRepo, s3_remote: Backend) -> TmpRepo:
    return make_origin(tmp_repo, s3_remote, packs=False)


@pytest.fixture
def packing(tmp_repo: TmpRepo, s3_remote: Backend) -> TmpRepo:
    return make_origin(tmp_repo, s3_remote, packs=True)


def test_a_push_sends_one_put_per_object_after_one_listing(
    origin: TmpRepo, s3_remote: Backend, moto_server: S3Server
) -> None:
    before = requests_to(moto_server, s3_remote)

    result = push(origin.repo)

    sent = difference(requests_to(moto_server, s3_remote), before)
    assert result.transferred == FILES + 1  # the files and the folder's manifest
    assert sent["PUT"] == FILES + 1
    # what the remote has: a sample folder, then the whole (empty) store, the packs and
    # recipes, and the manifest's own checks; never one request per object, nor one per
    # 2-hex folder (256)
    assert sent.total() - sent["PUT"] <= 14, sent
    assert {name.replace("/", "") for name in s3_remote.files()} == cache_oids(origin)


def test_a_fetch_sends_one_get_per_object_and_no_head(
    origin: TmpRepo, s3_remote: Backend, moto_server: S3Server, clone: Clone
) -> None:
    assert push(origin.repo).failed == {}
    other = in_clone(clone, origin, s3_remote)
    before = requests_to(moto_server, s3_remote)

    result = fetch(other.repo)

    asked = difference(requests_to(moto_server, s3_remote), before)
    assert result.failed == {}
    assert result.transferred == FILES + 1
    # and no HEAD: only a listing of the packs and one of the recipes (two requests each
    # while there are none: s3fs then lists the parent folder too)
    assert asked == Counter({"GET": FILES + 1, "GET ?list-type=2": 4}), asked


def test_a_push_of_many_small_objects_sends_one_pack(
    packing: TmpRepo, s3_remote: Backend, moto_server: S3Server
) -> None:
    before = requests_to(moto_server, s3_remote)

    result = push(packing.repo)

    sent = difference(requests_to(moto_server, s3_remote), before)
    assert result.failed == {}
    assert result.transferred == FILES + 1
    assert sent["PUT"] == 3, sent  # the pack, its index, then the folder's manifest
    assert sent.total() <= 3 + 14, sent
    names = s3_remote.files()
    assert sum(name.startswith("packs/") for name in names) == 2


def test_a_fetch_of_a_packed_folder_reads_the_pack_not_each_object(
    packing: TmpRepo, s3_remote: Backend, moto_server: S3Server, clone: Clone
) -> None:
    assert push(packing.repo).failed == {}
    other = in_clone(clone, packing, s3_remote)
    before = requests_to(moto_server, s3_remote)

    result = fetch(other.repo)

    asked = difference(requests_to(moto_server, s3_remote), before)
    assert result.failed == {}
    assert result.transferred == FILES + 1
    # the manifest, the packs' listing, the index, one ranged read of the pack (and the
    # recipes' listing for the manifest, whose size is not known)
    assert asked["GET"] <= 3, asked
    assert asked.total() <= 6, asked
    assert cache_oids(other) == cache_oids(packing)


# --- memory ----------------------------------------------------------------------------------

BIG = 256 * _MIB
PEAK_LIMIT = 200 * _MIB  # s3fs's defaults hold 10 parts of 50 MiB at once: about 600 MiB here
# Runs the command in a child of this small process and prints the child's peak RSS (KiB):
# Linux carries a process's peak into a child forked from it, so pytest's own would count.
_PEAK_OF = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss(root: Path, *args: str) -> int:
    """Run `dvlite ARGS` in ``root``; its peak resident set, in bytes."""
    out = subprocess.run([sys.executable, "-c", _PEAK_OF, sys.executable, "-m", "dvlite", *args],
                         cwd=root, capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    assert code == "0", out.stderr
    return int(kib) * 1024


@pytest.mark.slow
def test_a_big_file_moves_to_s3_and_back_in_bounded_memory(
    tmp_repo: TmpRepo, s3_remote: Backend, clone: Clone
) -> None:
    configure(tmp_repo, s3_remote)
    with (tmp_repo.root / "big.bin").open("wb") as f:
        for i in range(BIG // _MIB):
            f.write(i.to_bytes(4, "big") * (_MIB // 4))
    tmp_repo.dvl_add("big.bin")
    tmp_repo.git_commit("big")

    pushed = peak_rss(tmp_repo.root, "push")

    assert pushed < PEAK_LIMIT, f"push peaked at {pushed / _MIB:.0f} MiB"
    other = in_clone(clone, tmp_repo, s3_remote)
    pulled = peak_rss(other.root, "pull")
    assert pulled < PEAK_LIMIT, f"pull peaked at {pulled / _MIB:.0f} MiB"
    assert (other.root / "big.bin").read_bytes() == (tmp_repo.root / "big.bin").read_bytes()
