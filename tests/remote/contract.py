"""What every remote backend must do, checked through the real ops on real git repos.

`RemoteContract` is run once per backend by test_backends.py. Each test says
which backends it applies to with `@on(...)`: read-only backends (http) take
part in everything that only reads from the remote, after the test has filled
the folder their server serves by pushing to it as a folder remote.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from dvlite.errors import (
    MissingDependencyError,
    RemoteAuthError,
    RemoteError,
    RemoteUnavailableError,
)
from dvlite.ops.init import remote_add, remote_modify
from dvlite.ops.sync import RemoteStatusEntry, Scope, fetch, pull, push, remote_status
from tests.cli.support import run_main
from tests.ops.support import cache_oids, read_pointer, snapshot, xxh

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dvlite.ops.sync import SyncResult
    from tests.helpers import TmpRepo, Tree
    from tests.remote.servers import Backend

    Clone = Callable[[TmpRepo], TmpRepo]

WRITABLE = ("local", "memory", "s3", "azure", "ssh", "webdav")
ANY = (*WRITABLE, "http")
NETWORK = ("s3", "azure", "ssh", "webdav", "http")
WITH_CREDENTIALS = ("s3", "azure", "ssh", "webdav")

FAST = 10.0  # seconds: an unreachable remote fails well within this, it does not hang

BIG = bytes(range(256)) * 1200  # 300 KB: more than one read of every stream
DATA: Tree = {
    "data": {"a.csv": "x,y\n1,2\n", "empty.txt": "", "sub": {"c.bin": BIG, "d.txt": "deep\n"}},
    "model.bin": b"weights v1\n" * 500,
}
FILES_IN_DATA = 4
OBJECT = re.compile(r"[0-9a-f]{2}/[0-9a-f]{30}")


def on(*backends: str) -> Callable[[Any], Any]:
    """The backends a contract test runs on (read by pytest_generate_tests)."""

    def mark(test: Any) -> Any:
        test.backends = backends
        return test

    return mark


# --- setting repos up ---------------------------------------------------------------------------

def configure(t: TmpRepo, backend: Backend) -> None:
    """`remote add -d store URL` plus its options, as a user would; secrets go to the local
    config. A read-only backend also gets `filler`, the folder its server serves."""
    remote_add(t.repo, "store", backend.url, default=True)
    if backend.filler is not None:
        remote_add(t.repo, "filler", backend.filler)
    t.reopen()
    for option, raw in backend.project.items():
        remote_modify(t.repo, "store", option, raw)
    set_local(t, backend.secrets)


def set_local(t: TmpRepo, settings: Mapping[str, str]) -> None:
    """`remote modify --local store OPTION VALUE` for each setting (url included)."""
    for option, raw in settings.items():
        remote_modify(t.repo, "store", option, raw, level="local")
    t.reopen()


def origin_repo(t: TmpRepo, backend: Backend, tree: Tree = DATA) -> None:
    """A repo with the remote configured, tracking `data` and `model.bin`, committed."""
    configure(t, backend)
    t.gen(tree)
    t.dvl_add("data", "model.bin")
    t.git_commit("track data and model")


def publish(t: TmpRepo, backend: Backend, targets: Sequence[str] = ()) -> SyncResult:
    """Push to the backend; a read-only one is filled through the folder its server serves."""
    remote = "store" if backend.writable else "filler"
    result = push(t.repo, [t.path(p) for p in targets], remote=remote)
    assert result.failed == {}
    return result


def in_clone(clone: Clone, origin: TmpRepo, backend: Backend) -> TmpRepo:
    """A git clone of ``origin`` with this machine's credentials in its local config."""
    other = clone(origin)
    set_local(other, backend.secrets)
    return other


# --- independent looks at data and objects -----------------------------------------------------

def oid_of(t: TmpRepo, tracked: str) -> str:
    return str(read_pointer(t.root / f"{tracked}.dvl")["oid"])


def objects_of(t: TmpRepo) -> set[str]:
    """The oids of the committed data: the folder's manifest, its files, and model.bin."""
    files = snapshot(t.root / "data")
    return ({xxh(content) for content in files.values()}
            | {oid_of(t, "data"), xxh((t.root / "model.bin").read_bytes())})


def assert_store_holds(backend: Backend, oids: set[str]) -> None:
    """The store holds exactly these objects, each at <root>/<2 hex>/<30 hex> with bytes that
    hash to its oid, and nothing else: no temp file left under <root>/tmp."""
    files = backend.files()
    assert all(OBJECT.fullmatch(f) for f in files), files
    assert {f.replace("/", "") for f in files} == oids
    for oid in oids:
        assert xxh(backend.read_object(oid)) == oid


def assert_cache_clean(t: TmpRepo) -> None:
    """Every cached object hashes to its name, and no temp file is left behind."""
    root = t.root / ".dvlite" / "cache"
    for oid in cache_oids(t):
        assert xxh((root / oid[:2] / oid[2:]).read_bytes()) == oid
    tmp = root / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def assert_quiet(secret: str | None, *texts: str | None) -> None:
    if secret:
        for text in texts:
            assert secret not in (text or "")


class RemoteContract:
    """Run over every backend by a subclass; the `backend` fixture is one fresh store."""

    @on(*ANY)
    def test_push_then_pull_in_a_clone_restores_every_byte(
        self, backend: Backend, tmp_repo: TmpRepo, clone: Clone,
    ) -> None:
        origin_repo(tmp_repo, backend)
        expected = objects_of(tmp_repo)
        sent = publish(tmp_repo, backend)
        assert (sent.transferred, sent.skipped) == (len(expected), 0)
        assert_store_holds(backend, expected)

        other = in_clone(clone, tmp_repo, backend)
        assert not (other.root / "data").exists()
        fetched, checked_out = pull(other.repo)
        assert (fetched.transferred, fetched.skipped, fetched.failed) == (len(expected), 0, {})
        assert checked_out.missing == ()
        assert snapshot(other.root / "data") == snapshot(tmp_repo.root / "data")
        assert (other.root / "model.bin").read_bytes() == (tmp_repo.root / "model.bin").read_bytes()
        assert cache_oids(other) == expected
        assert_cache_clean(other)

    @on(*WRITABLE)
    def test_a_second_push_moves_nothing(self, backend: Backend, tmp_repo: TmpRepo) -> None:
        origin_repo(tmp_repo, backend)
        expected = objects_of(tmp_repo)
        publish(tmp_repo, backend)
        again = push(tmp_repo.repo)
        assert (again.transferred, again.skipped, again.failed) == (0, len(expected), {})
        assert again.not_in_cache == ()
        assert_store_holds(backend, expected)

    @on(*ANY)
    def test_pulling_one_file_inside_a_folder_fetches_only_that_object(
        self, backend: Backend, tmp_repo: TmpRepo, clone: Clone,
    ) -> None:
        origin_repo(tmp_repo, backend)
        publish(tmp_repo, backend)
        other = in_clone(clone, tmp_repo, backend)

        fetched, checked_out = pull(other.repo, [other.path("data/sub/c.bin")])
        assert fetched.failed == {}
        # the folder's manifest (to find the file's oid) and the file itself, nothing else
        assert cache_oids(other) == {oid_of(other, "data"), xxh(BIG)}
        assert fetched.transferred == 2
        assert checked_out.missing == ()
        assert (other.root / "data/sub/c.bin").read_bytes() == BIG
        assert not (other.root / "data/a.csv").exists()
        assert not (other.root / "model.bin").exists()

    @on(*ANY)
    def test_status_remote_lists_what_is_not_pushed(
        self, backend: Backend, tmp_repo: TmpRepo,
    ) -> None:
        origin_repo(tmp_repo, backend)
        data_objects = FILES_IN_DATA + 1  # and the manifest
        assert remote_status(tmp_repo.repo) == [
            RemoteStatusEntry("data", data_objects, data_objects),
            RemoteStatusEntry("model.bin", 1, 1),
        ]
        publish(tmp_repo, backend, ["model.bin"])
        assert remote_status(tmp_repo.repo) == [
            RemoteStatusEntry("data", data_objects, data_objects),
        ]
        assert remote_status(tmp_repo.repo, [tmp_repo.path("model.bin")]) == []
        publish(tmp_repo, backend)
        assert remote_status(tmp_repo.repo) == []

    @on(*WRITABLE)
    @pytest.mark.parametrize("wider", ["rev", "all_branches"])
    def test_a_wider_scope_pushes_an_older_commits_objects(
        self, backend: Backend, tmp_repo: TmpRepo, clone: Clone, wider: str,
    ) -> None:
        origin_repo(tmp_repo, backend)
        old = objects_of(tmp_repo)
        old_model = (tmp_repo.root / "model.bin").read_bytes()
        old_data = snapshot(tmp_repo.root / "data")
        if wider == "all_branches":
            tmp_repo.git("branch", "v1")
        tmp_repo.gen({"model.bin": b"weights v2\n" * 500, "data": {"a.csv": "x,y\n3,4\n"}})
        tmp_repo.dvl_add("data", "model.bin")
        tmp_repo.git_commit("data and model v2")
        new = objects_of(tmp_repo)
        only_old = old - new
        assert len(only_old) == 3  # model v1, a.csv v1, the folder's first manifest

        assert push(tmp_repo.repo).failed == {}  # the workspace only
        assert_store_holds(backend, new)
        scope = (Scope(revs=("HEAD~1",)) if wider == "rev" else Scope(all_branches=True))
        sent = push(tmp_repo.repo, scope=scope)
        assert (sent.transferred, sent.skipped, sent.failed) == (len(only_old), len(new), {})
        assert_store_holds(backend, old | new)

        other = in_clone(clone, tmp_repo, backend)
        other.git("checkout", "-q", "HEAD~1")
        fetched, checked_out = pull(other.repo)
        assert fetched.failed == {}
        assert checked_out.missing == ()
        assert (other.root / "model.bin").read_bytes() == old_model
        assert snapshot(other.root / "data") == old_data

    @on(*ANY)
    @pytest.mark.parametrize("damage", ["corrupt", "truncated"])
    def test_a_damaged_object_is_refused_and_never_cached(
        self, backend: Backend, tmp_repo: TmpRepo, clone: Clone, damage: str,
    ) -> None:
        origin_repo(tmp_repo, backend)
        publish(tmp_repo, backend)
        if damage == "corrupt":  # same length, other bytes: only the hash can tell
            victim, path, good = xxh(BIG), "data/sub/c.bin", BIG
            backend.overwrite_object(victim, b"rotten" + BIG[6:])
        else:  # an upload cut short
            good = (tmp_repo.root / "model.bin").read_bytes()
            victim, path = xxh(good), "model.bin"
            backend.overwrite_object(victim, good[: len(good) // 2])

        other = in_clone(clone, tmp_repo, backend)
        fetched, checked_out = pull(other.repo)
        assert set(fetched.failed) == {victim}
        why = fetched.failed[victim]
        assert victim in why
        assert "remote `store`" in why
        assert "corrupt" in why
        assert victim not in cache_oids(other)
        assert_cache_clean(other)
        assert not (other.root / path).exists()
        assert checked_out.missing != ()
        # every other object came through intact
        assert (other.root / "data/a.csv").read_text() == "x,y\n1,2\n"

        # once the remote's copy is repaired, a rerun fetches only what is still missing
        backend.overwrite_object(victim, good)
        again, checked_out = pull(other.repo)
        assert (again.transferred, again.failed) == (1, {})
        assert checked_out.missing == ()
        assert (other.root / path).read_bytes() == good

    @on(*NETWORK)
    def test_an_unreachable_remote_fails_fast(
        self, backend: Backend, tmp_repo: TmpRepo, clone: Clone,
    ) -> None:
        origin_repo(tmp_repo, backend)
        other = in_clone(clone, tmp_repo, backend)
        assert backend.unreachable is not None
        set_local(other, backend.unreachable)

        started = time.monotonic()
        with pytest.raises(RemoteUnavailableError) as info:
            remote_status(other.repo)
        assert time.monotonic() - started < FAST
        assert "cannot be reached" in info.value.message
        assert "remote `store`" in info.value.message

        started = time.monotonic()
        try:
            fetched = fetch(other.repo)
        except RemoteUnavailableError as exc:  # a backend that connects when opened (ssh)
            reasons = [exc.message]
        else:  # or each object failed, after its retries
            assert fetched.transferred == 0
            reasons = list(fetched.failed.values())
        assert time.monotonic() - started < FAST
        assert reasons
        assert all("cannot be reached" in why for why in reasons)
        assert cache_oids(other) == set()

        if backend.writable:  # the origin has the objects to send
            set_local(tmp_repo, backend.unreachable)
            started = time.monotonic()
            with pytest.raises(RemoteUnavailableError):
                push(tmp_repo.repo)
            assert time.monotonic() - started < FAST

    @on(*WITH_CREDENTIALS)
    def test_a_wrong_credential_is_refused_and_never_shown(
        self, backend: Backend, tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str],
    ) -> None:
        origin_repo(tmp_repo, backend)
        assert backend.bad_auth is not None
        set_local(tmp_repo, backend.bad_auth())

        with pytest.raises(RemoteAuthError) as info:
            push(tmp_repo.repo)
        assert "refused access" in info.value.message
        assert info.value.hint is not None
        assert "remote modify --local" in info.value.hint
        assert_quiet(backend.bad_secret, info.value.message, info.value.hint, str(info.value))

        result = run_main(capsys, "push")
        assert result.code == 1
        assert result.err.startswith("error: ")
        assert "refused access" in result.err
        assert_quiet(backend.bad_secret, result.out, result.err)

        with pytest.raises(RemoteAuthError) as info:
            remote_status(tmp_repo.repo)
        assert_quiet(backend.bad_secret, str(info.value))

    @on("http")
    def test_a_read_only_remote_refuses_push(self, backend: Backend, tmp_repo: TmpRepo) -> None:
        origin_repo(tmp_repo, backend)
        with pytest.raises(RemoteError, match="read-only"):  # said once, before any transfer
            push(tmp_repo.repo)
        assert backend.files() == []


def assert_missing_backend(t: TmpRepo, url: str, hint: str) -> None:
    """A remote whose backend is not installed fails with a `pip install` hint."""
    remote_add(t.repo, "odd", url, default=True)
    t.reopen()
    t.gen({"model.bin": b"weights"})
    t.dvl_add("model.bin")
    with pytest.raises(MissingDependencyError) as info:
        push(t.repo)
    assert info.value.hint is not None
    assert hint in info.value.hint
    assert "remote `odd`" in info.value.message
