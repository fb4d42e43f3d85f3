"""The file-system watcher (storage/fsmonitor_daemon.py) and its client (storage/fsmonitor.py),
with real daemon processes: a status that asks it equals one that walks, it skips the walk
where it can say what changed, and it walks wherever it cannot."""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvlite.errors import DvliteError
from dvlite.fsutil import walk_records
from dvlite.ops.add import add, commit
from dvlite.ops.checkout import checkout
from dvlite.repo import Repo
from dvlite.storage import fsmonitor
from dvlite.storage.fsmonitor import patched
from dvlite.storage.hashing import Oid
from dvlite.storage.inotify import file_system, is_remote
from dvlite.storage.tree import Tree as Saved
from tests.fsmonitor_support import (
    WATCHING,
    Daemons,
    daemon_pids,
    daemons,
    oids,
    poll,
    under,
    walked_status,
    watched_status,
)
from tests.helpers import gen

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.helpers import TmpRepo, Tree

BASE: Tree = {"a": "1", "b": "22", "s": {"c": "333", "t": {"d": "4444"}}, "u": {"e": "5"}}


@pytest.fixture
def watchers() -> Iterator[Daemons]:
    with daemons() as found:
        yield found


@pytest.fixture
def data(tmp_repo: TmpRepo, watchers: Daemons) -> TmpRepo:
    """A repo tracking folder ``data`` (BASE), whose watcher is killed at teardown."""
    tmp_repo.gen({"data": BASE})
    tmp_repo.dvl_add("data")
    watchers.watch(str(tmp_repo.root))
    return tmp_repo


def settle(root: str) -> list[str]:
    """Status until it no longer walks (a watcher asked for the first time walks; one not
    running yet is started); the folders the last one listed."""
    seen = ["(not asked)"]
    for _ in range(4):
        _, seen = watched_status(root)
        if not under(seen, f"{root}/data"):
            return seen
        poll(lambda: fsmonitor.request(f"{root}/.dvlite/tmp", {"op": "status"}) is not None,
             "the watcher that status started")
    raise AssertionError(f"status still walks: {seen}")


def assert_same(root: str, path: str = "data") -> None:
    """Status and the scan's oid with the watcher equal those of a full walk."""
    assert watched_status(root)[0] == walked_status(root)
    watched, walked = oids(root, path)
    assert watched == walked


# --- equivalence ----------------------------------------------------------------------------

NAMES = ("a", "b", "n", "s")
KINDS = ("write", "append", "truncate", "chmod", "touch", "delete", "mkdir", "rmtree",
         "rename_file", "rename_dir", "move_out", "move_in", "file_to_dir", "dir_to_file",
         "hardlink", "save_over", "file_in")


class Workspace:
    """Operations on the tracked folder, each picking its paths among those it holds."""

    def __init__(self, data: Path, outside: Path) -> None:
        self.data, self.outside, self.moved = data, outside, 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.data.rglob("*") if p.is_file())

    def folders(self, root: bool = False) -> list[Path]:
        found = sorted(p for p in self.data.rglob("*") if p.is_dir())
        return [self.data, *found] if root else found

    def free(self, i: int, j: int) -> Path | None:
        """A path not taken, in one of the folders."""
        folders = self.folders(root=True)
        path = folders[i % len(folders)] / NAMES[j % len(NAMES)]
        return None if path.exists() else path

    def away(self) -> Path:
        self.moved += 1
        return self.outside / f"m{self.moved}"

    def apply(self, kind: str, i: int, j: int, payload: bytes) -> None:  # noqa: PLR0912
        files, folders = self.files(), self.folders()
        file = files[i % len(files)] if files else None
        folder = folders[i % len(folders)] if folders else None
        if kind == "write":
            target = file if j % 2 and file else self.free(i, j)
            if target is not None:
                target.write_bytes(payload)
        elif kind == "append" and file:
            with file.open("ab") as fh:
                fh.write(payload or b"+")
        elif kind == "truncate" and file:
            os.truncate(file, j % (file.stat().st_size + 1))
        elif kind == "chmod" and file:
            file.chmod(file.stat().st_mode ^ 0o100)
        elif kind == "touch" and file:  # the mtime alone
            st_ = file.stat()
            os.utime(file, ns=(st_.st_atime_ns, st_.st_mtime_ns + (j + 1) * 1_000_000_000))
        elif kind == "delete" and file:
            file.unlink()
        elif kind == "mkdir" and (target := self.free(i, j)):
            gen(target, {"f": payload, "g": {"h": "x"}})
        elif kind == "rmtree" and folder:
            shutil.rmtree(folder)
        elif kind == "rename_file" and file and (target := self.free(j, i)):
            file.rename(target)
        elif kind == "rename_dir" and folder and (target := self.free(j, i)) and \
                folder not in target.parents:
            folder.rename(target)
        elif kind == "move_out" and folder:
            folder.rename(self.away())
        elif kind == "move_in" and (target := self.free(i, j)):
            made = self.away()
            gen(made, {"in": payload, "deep": {"er": "y"}})
            made.rename(target)
        elif kind == "file_to_dir" and file:
            file.unlink()
            gen(file, {"x": payload})
        elif kind == "dir_to_file" and folder:
            if j % 2:
                shutil.rmtree(folder)
            else:  # (no event from inside it then)
                folder.rename(self.away())
            folder.write_bytes(payload)
        elif kind == "hardlink" and file and (target := self.free(j, i)):
            os.link(file, target)  # then a write through either changes both
        elif kind == "save_over" and file:  # as editors save: a new file renamed over it
            file.with_name(file.name + ".tmp").write_bytes(payload)
            file.with_name(file.name + ".tmp").rename(file)
        elif kind == "file_in" and (target := self.free(i, j)):
            made = self.away()
            made.write_bytes(payload)
            made.rename(target)


operation = st.tuples(st.sampled_from(KINDS), st.integers(0, 30), st.integers(0, 30),
                      st.binary(max_size=6), st.booleans())


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operation, min_size=1, max_size=12))
def test_status_with_the_watcher_equals_a_walk(
        data: TmpRepo, tmp_path: Path,
        operations: list[tuple[str, int, int, bytes, bool]]) -> None:
    root = str(data.root)
    shutil.rmtree(data.root / "data")  # each example starts from the tracked content
    gen(data.root / "data", BASE)
    # a second link to `a`: a write or chmod through either is a change to both
    os.link(data.root / "data/a", data.root / "data/u/linked")
    outside = tmp_path / "outside"
    shutil.rmtree(outside, ignore_errors=True)
    outside.mkdir()
    settle(root)
    space = Workspace(data.root / "data", outside)
    for kind, i, j, payload, ask in operations:
        space.apply(kind, i, j, payload)
        if ask:  # at random points, so that tokens advance between operations
            assert_same(root)
    assert_same(root)
    seen = settle(root)  # and the watcher was asked: once settled, status lists nothing
    assert watched_status(root)[0] == walked_status(root)
    assert under(seen, f"{root}/data") == []


# --- the walk skipped -----------------------------------------------------------------------

def test_status_lists_only_what_changed(data: TmpRepo, watchers: Daemons) -> None:
    root = str(data.root)
    data.gen({"data": {f"s{k}": {"f": f"{k}", "g": {"h": "x"}} for k in range(4)}})
    data.dvl_add("data")
    watchers.start(root)
    first, seen = watched_status(root)
    assert first == []
    assert under(seen, f"{root}/data")  # the first question: unknown, walked
    report, seen = watched_status(root)
    assert (report, under(seen, f"{root}/data")) == ([], [])

    (data.root / "data/s2/g/h").write_text("changed")
    report, seen = watched_status(root)
    assert report == [("data", "modified", (), ("s2/g/h",), ())]
    assert under(seen, f"{root}/data") == []  # not even the folder that changed

    data.gen({"data": {"s9": {"new": "n", "deeper": {"new2": "m"}}}})
    report, seen = watched_status(root)
    assert report == [("data", "modified", ("s9/deeper/new2", "s9/new"), ("s2/g/h",), ())]
    assert under(seen, f"{root}/data") == [f"{root}/data/s9", f"{root}/data/s9/deeper"]


def test_a_status_that_starts_the_watcher_walks_then_the_next_skips(data: TmpRepo) -> None:
    root = str(data.root)
    tmp_dir = f"{root}/.dvlite/tmp"
    assert daemon_pids(tmp_dir) == []
    report, seen = watched_status(root)  # none answers: walked, and one started
    assert (report, bool(under(seen, f"{root}/data"))) == ([], True)
    poll(lambda: len(daemon_pids(tmp_dir)) == 1, "the started watcher")
    assert under(settle(root), f"{root}/data") == []
    with Repo(root) as off:  # core.fsmonitor off (the default): no watcher asked
        assert off.monitor is None


# --- fallbacks: each walks, and is right ----------------------------------------------------

def test_a_killed_watcher_is_walked_past_and_replaced(data: TmpRepo) -> None:
    root = str(data.root)
    tmp_dir = f"{root}/.dvlite/tmp"
    settle(root)
    [old] = daemon_pids(tmp_dir)
    os.kill(old, signal.SIGKILL)
    poll(lambda: daemon_pids(tmp_dir) != [old], "the watcher to die")
    (data.root / "data/a").write_text("after the kill")
    report, seen = watched_status(root)
    assert report == [("data", "modified", (), ("a",), ())] == walked_status(root)
    assert under(seen, f"{root}/data")
    new = Daemons.wait_running(tmp_dir)  # that status started another
    assert new != old
    assert under(settle(root), f"{root}/data") == []
    (data.root / "data/s/c").write_text("seen by the new one")
    report, seen = watched_status(root)
    assert report == [("data", "modified", (), ("a", "s/c"), ())]
    assert under(seen, f"{root}/data") == []


def test_a_stopped_watcher_times_out_and_the_status_walks(
        data: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(data.root)
    settle(root)
    [pid] = daemon_pids(f"{root}/.dvlite/tmp")
    monkeypatch.setattr(fsmonitor, "_ANSWER_TIMEOUT", 0.2)
    os.kill(pid, signal.SIGSTOP)
    try:
        (data.root / "data/u/e").write_text("while it sleeps")
        report, seen = watched_status(root)
        assert report == [("data", "modified", (), ("u/e",), ())] == walked_status(root)
        assert under(seen, f"{root}/data")
    finally:
        os.kill(pid, signal.SIGCONT)
    # the one that status started found this one running, and left
    poll(lambda: daemon_pids(f"{root}/.dvlite/tmp") == [pid], "the second watcher to leave")


def test_an_overflowed_event_queue_makes_status_walk_and_watch_anew(data: TmpRepo) -> None:
    root = str(data.root)
    settle(root)
    [pid] = daemon_pids(f"{root}/.dvlite/tmp")
    with open("/proc/sys/fs/inotify/max_queued_events") as fh:
        queued = int(fh.read())
    a, b = data.root / "data/a", data.root / "data/b"
    os.kill(pid, signal.SIGSTOP)
    try:
        for k in range(queued // 2 + 100):  # two events that differ, so none is merged
            os.utime(a, ns=(k, k))
            os.utime(b, ns=(k, k))
        a.write_text("lost in the overflow")  # (events the kernel dropped)
        gen(data.root / "data/made_then", {"f": "1"})
        (data.root / "data/u").rename(data.root / "data/u2")
    finally:
        os.kill(pid, signal.SIGCONT)
    expected = [("data", "modified", ("made_then/f", "u2/e"), ("a",), ("u/e",))]
    assert walked_status(root) == expected
    report, seen = watched_status(root)
    assert (report, bool(under(seen, f"{root}/data"))) == (expected, True)
    assert under(settle(root), f"{root}/data") == []
    # folders made or moved while events were lost are watched as well as the others
    (data.root / "data/made_then/f").write_text("22")
    (data.root / "data/u2/e").write_text("33")
    assert_same(root)
    report, _ = watched_status(root)
    assert report == [("data", "modified", ("made_then/f", "u2/e"), ("a",), ("u/e",))]


def test_a_tracked_folder_deleted_and_made_again(data: TmpRepo) -> None:
    root = str(data.root)
    settle(root)
    shutil.rmtree(data.root / "data")
    data.gen({"data": {"other": "content", "s": {"c": "333"}}})
    report, seen = watched_status(root)
    assert report == walked_status(root)
    assert report == [("data", "modified", ("other",), (), ("a", "b", "s/t/d", "u/e"))]
    assert under(seen, f"{root}/data")
    assert under(settle(root), f"{root}/data") == []


def test_a_parent_renamed_and_another_moved_in_its_place(tmp_repo: TmpRepo,
                                                          watchers: Daemons) -> None:
    root = str(tmp_repo.root)
    watchers.watch(root)
    tmp_repo.gen({"sub": {"data": BASE}, "other": {"data": {"a": "1", "z": "new"}}})
    tmp_repo.dvl_add("sub/data")
    report, seen = [], ["(not asked)"]
    for _ in range(4):  # until a status no longer walks
        report, seen = watched_status(root)
        if not under(seen, f"{root}/sub/data"):
            break
        Daemons.wait_running(f"{root}/.dvlite/tmp")
    assert (report, under(seen, f"{root}/sub/data")) == ([], [])
    shutil.copy(tmp_repo.root / "sub/data.dvl", tmp_repo.root / "other/data.dvl")
    (tmp_repo.root / "sub").rename(tmp_repo.root / "sub_old")
    (tmp_repo.root / "other").rename(tmp_repo.root / "sub")
    moved_in = ("sub/data", "modified", ("z",), (), ("b", "s/c", "s/t/d", "u/e"))
    report, seen = watched_status(root)
    assert report == walked_status(root)
    assert moved_in in report  # (and sub_old/data, tracked now by the pointer moved with it)
    assert under(seen, f"{root}/sub/data")
    (tmp_repo.root / "sub_old/data/a").write_text("not ours any more")  # watched no longer
    (tmp_repo.root / "sub/data/z").write_text("ours")
    report, _ = watched_status(root)
    assert report == walked_status(root)
    assert moved_in in report


def test_a_folder_holding_a_symlink_is_always_walked(data: TmpRepo) -> None:
    root = str(data.root)
    data.gen({"target.txt": "pointed at"})
    settle(root)
    os.symlink(data.root / "target.txt", data.root / "data/s/link")
    for _ in range(3):  # every status walks: the file pointed at raises no event in data
        report, seen = watched_status(root)
        assert report == walked_status(root) == [("data", "modified", ("s/link",), (), ())]
        assert under(seen, f"{root}/data")
    (data.root / "target.txt").write_text("changed where it points")
    report, seen = watched_status(root)
    assert report == walked_status(root)
    assert under(seen, f"{root}/data")
    described = fsmonitor.request(f"{root}/.dvlite/tmp", {"op": "status"})
    assert described is not None
    assert described["folders"] == {"data": "holds a symlink"}


def test_a_folder_holding_a_mount_point_is_always_walked(data: TmpRepo) -> None:
    root = str(data.root)
    settle(root)
    point = data.root / "data/u/mounted"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(point)], capture_output=True,
                      check=False).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        (point / "m").write_text("on another file system")
        for _ in range(2):  # a mount may be a network one, whose changes raise no event here
            report, seen = watched_status(root)
            assert report == walked_status(root) == [("data", "modified", ("u/mounted/m",),
                                                      (), ())]
            assert under(seen, f"{root}/data")
        described = fsmonitor.request(f"{root}/.dvlite/tmp", {"op": "status"})
        assert described is not None
        assert described["folders"] == {"data": "holds a mount point"}
    finally:
        subprocess.run(["umount", str(point)], check=True)


MOUNTS = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:50 / /mnt/team\\040data rw - nfs4 server:/export rw,vers=4.2
41 27 0:51 / /mnt/team rw - tmpfs none rw
42 41 0:52 / /mnt/team/remote rw - fuse.sshfs host:/x rw
43 41 0:53 / /mnt/team/remote rw - xfs /dev/sdb1 rw
"""


@pytest.mark.parametrize(("path", "kind", "remote"), [
    ("/home/me/repo/data", "ext4", False),
    ("/mnt/team data/repo/data", "nfs4", True),  # \040 is a space
    ("/mnt/team/repo", "tmpfs", False),
    ("/mnt/teamwork/repo", "ext4", False),  # a mount point is a whole name
    ("/mnt/team/remote/data", "xfs", False),  # of two mounts on one point, the last
    ("/mnt/team/remote", "xfs", False),
])
def test_the_file_system_of_a_path_is_read_from_the_mount_table(path: str, kind: str,
                                                                remote: bool) -> None:
    assert file_system(path, MOUNTS) == kind
    assert is_remote(kind) is remote
    assert all(map(is_remote, ("fuse.sshfs", "nfs", "cifs", "virtiofs")))


# --- what the watcher cannot see (found by these tests; fixed) ------------------------------

def test_a_folder_moved_out_and_a_file_made_in_its_place(data: TmpRepo, tmp_path: Path) -> None:
    root = str(data.root)
    settle(root)
    (data.root / "data/s").rename(tmp_path / "s_away")  # no event from inside s
    (data.root / "data/s").write_text("a file now")
    assert_same(root)
    assert watched_status(root)[0] == [("data", "modified", ("s",), (), ("s/c", "s/t/d"))]


def test_a_write_through_another_hard_link_in_the_folder(tmp_repo: TmpRepo,
                                                         watchers: Daemons) -> None:
    root = str(tmp_repo.root)
    watchers.watch(root)
    tmp_repo.gen({"data": BASE})
    os.link(tmp_repo.root / "data/a", tmp_repo.root / "data/u/linked")
    tmp_repo.dvl_add("data")
    settle(root)
    with open(tmp_repo.root / "data/a", "a") as fh:  # an event for `a` only
        fh.write("both")
    assert_same(root)
    assert watched_status(root)[0] == [("data", "modified", (), ("a", "u/linked"), ())]
    (tmp_repo.root / "data/u/linked").chmod(0o755)  # and one for `u/linked` only
    assert_same(root)


def test_patched_stats_the_other_links_of_a_changed_file(tmp_path: Path) -> None:
    gen(tmp_path, {"a": "1", "b": "2"})
    os.link(tmp_path / "a", tmp_path / "c")
    before = walk_records(str(tmp_path))
    (tmp_path / "a").write_text("11")
    saved = Saved(before, [Oid(f"oid-of-{r[0]}") for r in before])
    after = patched(saved, str(tmp_path), [("a", False)], allowed=())
    assert after is not None
    assert sorted(after[0]) == sorted(walk_records(str(tmp_path)))
    assert {r[0]: oid for r, oid in zip(*after, strict=True)} == {
        "a": None, "b": "oid-of-b", "c": None}  # c: stat'ed again, so hashed again


# --- a long path, and data safety -----------------------------------------------------------

def test_a_repo_deeper_than_a_socket_path_can_be(tmp_path: Path, watchers: Daemons,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(deep)], check=True)
    monkeypatch.chdir(deep)
    Repo.init(str(deep))[0].close()
    gen(deep, {"data": BASE})
    with Repo(str(deep)) as repo:
        add(repo, [str(deep / "data")])
    socket_path = os.path.join(watchers.watch(str(deep)), fsmonitor.SOCKET)
    assert len(os.fsencode(socket_path)) > 108
    watchers.start(str(deep))
    assert os.path.exists(socket_path)
    assert under(settle(str(deep)), str(deep / "data")) == []
    (deep / "data/b").write_text("seen")
    report, seen = watched_status(str(deep))
    assert (report, under(seen, str(deep / "data"))) == ([("data", "modified", (), ("b",), ())], [])


def test_commands_that_write_walk_past_a_change_the_watcher_cannot_see(data: TmpRepo) -> None:
    """A write through a memory map raises no event, so status (which trusts the watcher)
    misses it; checkout, add and commit walk, so they see it: a report may mislead, data is
    not lost."""
    root = str(data.root)
    settle(root)
    target = data.root / "data/s/t/d"
    mtime = target.stat().st_mtime_ns
    with open(target, "r+b") as fh, mmap.mmap(fh.fileno(), 0) as mapped:
        mapped[:4] = b"MMAP"
    poll(lambda: target.stat().st_mtime_ns != mtime, "the mapped write's mtime")
    report, seen = watched_status(root)
    assert (report, under(seen, f"{root}/data")) == ([], [])  # the blind spot this test documents
    assert walked_status(root) == [("data", "modified", (), ("s/t/d",), ())]
    with Repo(root, env=WATCHING) as repo, pytest.raises(DvliteError, match="data/s/t/d"):
        checkout(repo, [])
    assert target.read_bytes() == b"MMAP"
    pointer = (data.root / "data.dvl").read_bytes()
    with Repo(root, env=WATCHING) as repo:
        commit(repo, [])
    assert (data.root / "data.dvl").read_bytes() != pointer  # recorded the mapped bytes
    assert walked_status(root) == []


def test_a_token_from_before_a_folder_was_watched_anew_is_not_trusted(data: TmpRepo,
                                                                      watchers: Daemons) -> None:
    """Two statuses that overlap: A asks and walks the folder; the folder is moved away (its
    watch dropped, no change numbered) and made again; B asks first about the new one, then
    A saves its walk of the old one with its token. That token must not vouch for the new
    folder."""
    root = str(data.root)
    tmp_dir = watchers.watch(root)
    watchers.start(root)
    (data.root / "data").rename(data.root / "old")  # (not tracked: moved whole, so its
    gen(data.root / "data", {"x": "1"})  # files raise no event)
    ident = [(data.root / "data").stat().st_dev, (data.root / "data").stat().st_ino]
    a = fsmonitor.request(tmp_dir, {"op": "changes", "path": "data", "ident": ident,
                                    "token": None})
    assert a is not None
    assert a["paths"] is None  # the first question
    (data.root / "data").rename(data.root / "older")
    gen(data.root / "data", {"y": "2"})
    ident = [(data.root / "data").stat().st_dev, (data.root / "data").stat().st_ino]
    b = fsmonitor.request(tmp_dir, {"op": "changes", "path": "data", "ident": ident,
                                    "token": None})
    assert b is not None
    assert b["paths"] is None  # a new folder at the path: asked about for the first time
    late = fsmonitor.request(tmp_dir, {"op": "changes", "path": "data", "ident": ident,
                                       "token": a["token"]})
    assert late is not None
    assert late["paths"] is None  # A's token is about the folder moved away
    after = fsmonitor.request(tmp_dir, {"op": "changes", "path": "data", "ident": ident,
                                        "token": b["token"]})
    assert after is not None
    assert after["paths"] == []
