"""Repos that share one cache folder (`cache.dir`): `gc` in one never deletes what another
references, and adds and gcs in both at once leave every repo whole.

The repo lock is per repo, so it cannot keep them apart. Each repo registers itself in the
cache (`<cache>/repos/`) and takes the cache lock shared; gc takes it exclusively and keeps
what every registered repo references (see docs/reliability.md)."""

from __future__ import annotations

import shutil
import time
import tomllib
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import cache_objects, xxh
from tests.helpers import gen, git, lock_held_elsewhere, run_dvlite
from tests.reliability.processes import (
    assert_clean_finish,
    assert_repo_sound,
    run_together,
    start,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def ok(args: list[str], cwd: Path) -> str:
    result = run_dvlite(args, cwd)
    assert result.returncode == 0, f"dvlite {' '.join(args)} in {cwd.name}: {result.stderr}"
    return result.stderr


def read_pointer_at(root: Path, rev: str, path: str) -> str:
    oid = tomllib.loads(git(root, "show", f"{rev}:{path}"))["oid"]
    assert isinstance(oid, str)
    return oid


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Repos `a` and `b` on one cache folder, each with data of its own, committed."""
    shared = tmp_path / "shared-cache"
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        git(root, "init", "-q")
        ok(["init"], root)
        ok(["config", "cache.dir", str(shared)], root)
        gen(root, {"data": {f"{name}{i}.txt": f"{name} {i}\n" for i in range(5)}})
        ok(["add", "data"], root)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"{name} data")
        roots.append(root)
    return roots[0], roots[1], shared


def test_gc_keeps_what_another_repo_on_the_cache_references(
    pair: tuple[Path, Path, Path],
) -> None:
    a, b, shared = pair
    b_committed = read_pointer_at(b, "HEAD", "data.dvl")
    (b / "data" / "b9.txt").write_text("added in b, not committed\n")
    ok(["add", "data"], b)
    (a / "data" / "a0.txt").unlink()
    ok(["add", "data"], a)

    ok(["gc", "--workspace", "--force"], a)  # `a` wants only its workspace kept

    after = set(cache_objects(shared))
    assert xxh("a 0\n") not in after  # `a`'s own garbage went
    assert read_pointer_at(a, "HEAD", "data.dvl") not in after
    assert xxh("added in b, not committed\n") in after  # `b`'s workspace stayed
    assert b_committed in after  # and so did `b`'s history
    assert xxh("b 0\n") in after
    ok(["gc", "--workspace", "--force"], b)
    for root in (a, b):
        assert_repo_sound(root, shared)


def test_a_repo_gone_from_the_cache_is_forgotten(pair: tuple[Path, Path, Path],
                                                 tmp_path: Path) -> None:
    """Once `b` is deleted, or points at another cache, gc in `a` collects what only `b`
    used, and forgets `b`."""
    a, b, shared = pair
    b_only = xxh("b 1\n")
    ok(["config", "cache.dir", str(tmp_path / "elsewhere")], b)
    ok(["gc", "--force"], a)
    assert b_only not in cache_objects(shared)
    assert [p.read_text().strip() for p in (shared / "repos").iterdir()] == [str(a)]

    ok(["config", "cache.dir", str(shared)], b)
    ok(["checkout"], b)  # registers again (its data is still in its workspace)
    ok(["add", "data"], b)
    shutil.rmtree(b)
    ok(["gc", "--force"], a)
    assert b_only not in cache_objects(shared)
    assert len(list((shared / "repos").iterdir())) == 1


def test_gc_refuses_when_it_cannot_tell_what_another_repo_references(
    pair: tuple[Path, Path, Path],
) -> None:
    a, b, shared = pair
    (b / "data.dvl").write_text("not a pointer\n")
    before = set(cache_objects(shared))
    result = run_dvlite(["gc", "--workspace", "--force"], a)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert str(b) in errors[0]
    assert "nothing was deleted" in errors[0]
    assert "Traceback" not in result.stderr
    assert set(cache_objects(shared)) == before


def test_adds_and_gcs_in_two_repos_at_once(pair: tuple[Path, Path, Path]) -> None:
    """Both repos add new data while both collect garbage, round after round: whatever
    order the locks give, no repo loses an object its pointers name."""
    a, b, shared = pair
    for number in range(3):
        for root in (a, b):
            gen(root, {f"r{number}": {f"{i}.bin": f"{root.name} {number} {i}\n" * 50
                                      for i in range(6)}})
            (root / "data" / f"{root.name}0.txt").write_text(f"round {number}\n")
        commands = [
            (a, ["add", f"r{number}"]), (b, ["add", f"r{number}"]),
            (a, ["gc", "--workspace", "--force"]), (b, ["gc", "--workspace", "--force"]),
            (a, ["add", "data"]), (b, ["add", "data"]),
        ]
        for result in run_together(commands):
            assert_clean_finish(result)
            assert result.code == 0, str(result)
    for root in (a, b):
        assert_repo_sound(root, shared)
        for number in range(3):
            assert (root / f"r{number}.dvl").exists()


def test_gc_waits_for_an_add_in_another_repo(pair: tuple[Path, Path, Path]) -> None:
    """The objects an add has stored but no pointer names yet are exactly what a gc would
    count as garbage: gc in `a` waits for the add in `b` to finish, then keeps its data.

    To have gc ask for the cache in the middle of the add, it is started first and held at
    `a`'s repo lock until the add is storing objects."""
    a, b, shared = pair
    gen(b, {"big": {f"f{i:04d}.txt": f"big file {i}\n" for i in range(2000)}})
    before = len(cache_objects(shared))
    with lock_held_elsewhere(str(a / ".dvlite" / "tmp" / "lock")) as holder:
        gc = start(["gc", "--workspace", "--force"], a)
        assert gc.stderr is not None
        assert gc.stderr.readline().startswith("waiting"), "gc should wait for `a`'s lock"
        adding = start(["add", "big"], b)
        try:
            deadline = time.monotonic() + 60
            while len(cache_objects(shared)) < before + 20:
                assert adding.poll() is None, "the add finished before gc could start"
                assert time.monotonic() < deadline, "the add never started storing"
                time.sleep(0.01)
            assert holder.stdin is not None
            holder.stdin.close()  # now gc goes for the cache, in the middle of the add
            _, add_err = adding.communicate(timeout=120)
            _, gc_err = gc.communicate(timeout=120)
        finally:
            for proc in (adding, gc):
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    assert adding.returncode == 0, add_err
    assert gc.returncode == 0, gc_err
    assert_repo_sound(b, shared)
    assert_repo_sound(a, shared)
