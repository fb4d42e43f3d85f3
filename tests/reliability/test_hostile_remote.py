"""A remote that serves an object whose bytes do not match its name, through `dvlite pull`
on the command line (tests/remote covers fetch, the ops-level pull on every backend, the API
and `get`): the error names the object and the remote, the bad bytes are discarded, the
workspace file is not written, and a rerun once the remote is repaired finishes the job."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from dvlite.ops import sync
from dvlite.ops.init import remote_add
from dvlite.storage.hashing import hash_bytes
from tests.cli.support import assert_cache_valid, assert_error, cache_objects, run_main

if TYPE_CHECKING:
    from tests.helpers import TmpRepo

GOOD = b"the model, as trained\n" * 20
OTHER = b"a file that arrives intact\n"


@pytest.mark.parametrize("damage", ["same length", "truncated", "empty", "other object"])
def test_pull_discards_bytes_that_do_not_match_their_name(
    tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str], damage: str,
) -> None:
    tmp_repo.gen({"model.bin": GOOD, "notes.txt": OTHER})
    tmp_repo.dvl_add("model.bin", "notes.txt")
    remote = tmp_repo.root.parent / "remote"
    remote_add(tmp_repo.repo, "store", str(remote), default=True)
    tmp_repo.reopen()
    assert sync.push(tmp_repo.repo).failed == {}
    cache = tmp_repo.root / ".dvlite" / "cache"
    shutil.rmtree(cache)  # as in a fresh clone
    (tmp_repo.root / "model.bin").unlink()
    (tmp_repo.root / "notes.txt").unlink()

    oid = hash_bytes(GOOD)
    served = remote / oid[:2] / oid[2:]
    served.chmod(0o644)
    served.write_bytes({"same length": b"X" + GOOD[1:], "truncated": GOOD[:-7], "empty": b"",
                        "other object": OTHER}[damage])

    result = run_main(capsys, "pull")
    line = assert_error(result, oid, "store", after_messages=True)
    assert "corrupt" in line
    assert oid not in cache_objects(cache)
    assert assert_cache_valid(cache) == 1  # notes.txt came through, nothing else stayed
    assert not (tmp_repo.root / "model.bin").exists()
    assert (tmp_repo.root / "notes.txt").read_bytes() == OTHER
    assert list((cache / "tmp").glob("*")) == []  # the bad bytes' temp file is gone too

    served.write_bytes(GOOD)  # repaired: the rerun brings the one object still missing
    again = run_main(capsys, "pull")
    assert again.code == 0, again
    assert (tmp_repo.root / "model.bin").read_bytes() == GOOD
    assert assert_cache_valid(cache) == 2
