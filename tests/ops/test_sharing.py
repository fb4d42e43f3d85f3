"""How much chunks share: ``ls --json`` gives each big file's chunk count and the bytes it
shares with other files; ``status --remote`` says how many bytes a push would send once the
chunks the remote has (or that files share) are counted once. Expected numbers come from the
chunk lists, read as plain text."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.init import config_set, remote_add
from dvlite.ops.ls import ls
from dvlite.ops.sync import push as push_op
from dvlite.ops.sync import remote_status
from tests.cli.support import run_main
from tests.ops.support import cache_root, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

MIB = 1 << 20
BASE = random.Random(11).randbytes(12 * MIB)  # several chunks
LATE = 12 * MIB - 512 * 1024
EDITED = BASE[:LATE] + b"edit" * 1024 + BASE[LATE + 4096:]  # one page changed, near the end
OTHER = random.Random(12).randbytes(12 * MIB)


@pytest.fixture
def repo(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """Two versions of a big file, an unrelated big file, a small file and a folder of small
    files; big files travel as chunks, small ones in packs."""
    config_set(tmp_repo.repo, "core.chunk_min_size", "2000000")
    config_set(tmp_repo.repo, "core.pack_size", "3000")
    remote_add(tmp_repo.repo, "store", str(tmp_path / "remote"), default=True)
    tmp_repo.reopen()
    tmp_repo.gen({"v1.bin": BASE, "v2.bin": EDITED, "other.bin": OTHER, "notes.txt": "hi\n",
                  "small": {f"f{i:02d}": random.Random(i).randbytes(100 + i)
                            for i in range(20)}})
    tmp_repo.dvl_add("v1.bin", "v2.bin", "other.bin", "notes.txt", "small")
    return tmp_repo


def chunks_of(tmp_repo: TmpRepo, content: bytes) -> list[tuple[str, int]]:
    """(oid, size) of each chunk in the cached chunk list of ``content``."""
    oid = xxh(content)
    lines = (cache_root(tmp_repo) / "recipes" / oid[:2] / oid[2:]).read_text().splitlines()
    return [(c, int(n)) for c, n in (line.split() for line in lines[2:])]


def shared(mine: list[tuple[str, int]], *others: list[tuple[str, int]]) -> int:
    theirs = {c for other in others for c, _ in other}
    return sum(n for c, n in mine if c in theirs)


def test_ls_says_what_big_files_share(repo: TmpRepo) -> None:
    assert push_op(repo.repo).failed == {}
    v1, v2, other = (chunks_of(repo, c) for c in (BASE, EDITED, OTHER))
    assert 0 < shared(v1, v2) < len(BASE), "the versions share some chunks, not all"

    found = {e.path: e for e in ls(repo.repo, chunks=True)}

    assert (found["v1.bin"].chunks, found["v1.bin"].shared_bytes) == (len(v1), shared(v1, v2))
    assert (found["v2.bin"].chunks, found["v2.bin"].shared_bytes) == (len(v2), shared(v2, v1))
    assert (found["other.bin"].chunks, found["other.bin"].shared_bytes) == (len(other), 0)
    for path in ("notes.txt", "small"):  # no chunk list: below the chunking size
        assert (found[path].chunks, found[path].shared_bytes) == (None, None)
    assert all(e.chunks is None for e in ls(repo.repo)), "only when asked"


def test_ls_without_chunk_lists_in_the_cache(repo: TmpRepo) -> None:
    found = ls(repo.repo, chunks=True)  # nothing pushed: no chunk list made yet

    assert [(e.chunks, e.shared_bytes) for e in found] == [(None, None)] * len(found)


def test_ls_on_remote_sees_packed_and_chunked_objects(repo: TmpRepo) -> None:
    assert push_op(repo.repo).failed == {}

    inside = ls(repo.repo, "small", on_remote=True)
    whole = ls(repo.repo, on_remote=True)

    assert [e.on_remote for e in inside] == [True] * 20
    assert [e.on_remote for e in whole] == [True] * 5


def test_status_counts_bytes_a_push_sends(repo: TmpRepo) -> None:
    assert push_op(repo.repo, [repo.path("v1.bin")]).failed == {}
    v1 = chunks_of(repo, BASE)
    entries = {e.path: e for e in remote_status(repo.repo)}

    assert set(entries) == {"v2.bin", "other.bin", "notes.txt", "small"}
    assert (entries["other.bin"].size, entries["other.bin"].to_send) == (len(OTHER), len(OTHER))
    assert (entries["notes.txt"].size, entries["notes.txt"].to_send) == (3, 3)
    # v2's chunk list is made by the status itself: a push would reuse it
    v2 = chunks_of(repo, EDITED)
    assert entries["v2.bin"].size == len(EDITED)
    assert entries["v2.bin"].to_send == len(EDITED) - shared(v2, v1)
    assert 0 < entries["v2.bin"].to_send < len(EDITED) // 2
    small_files = sum(100 + i for i in range(20))
    assert entries["small"].size == entries["small"].to_send > small_files  # and its manifest
    assert (entries["small"].missing, entries["small"].total) == (21, 21)


def test_chunks_two_files_share_count_once(repo: TmpRepo) -> None:
    entries = {e.path: e for e in remote_status(repo.repo)}  # nothing pushed yet
    v1, v2 = chunks_of(repo, BASE), chunks_of(repo, EDITED)

    assert entries["v1.bin"].to_send + entries["v2.bin"].to_send == (
        len(BASE) + len(EDITED) - shared(v2, v1))
    assert entries["v1.bin"].size + entries["v2.bin"].size == len(BASE) + len(EDITED)


def test_cli_status_and_ls_show_sharing(repo: TmpRepo,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert push_op(repo.repo, [repo.path("v1.bin")]).failed == {}
    where = ("-C", str(repo.root))

    text = run_main(capsys, *where, "status", "--remote")
    as_json = run_main(capsys, *where, "status", "--remote", "--json")
    listed = run_main(capsys, *where, "ls", "--json")

    assert text.code == as_json.code == listed.code == 0
    assert "not on remote: v2.bin  (1 of 1 objects)" in text.out.splitlines()
    (summary,) = [line for line in text.err_lines if line.startswith("a push would send")]
    assert summary.endswith("not on the remote: chunks it has, or that files share, go up once")
    document = {e["path"]: e for e in json.loads(as_json.out)["not_on_remote"]}
    v1, v2 = chunks_of(repo, BASE), chunks_of(repo, EDITED)
    assert document["v2.bin"]["to_send"] == len(EDITED) - shared(v2, v1)
    assert document["v2.bin"]["size"] == len(EDITED)
    files = {e["path"]: e for e in json.loads(listed.out)}
    assert (files["v1.bin"]["chunks"], files["v1.bin"]["shared_bytes"]) == (
        len(v1), shared(v1, v2))
    assert files["small"]["chunks"] is None
