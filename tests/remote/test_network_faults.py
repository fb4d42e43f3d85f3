"""Network faults between dvlite and each real server: a TCP proxy (netproxy.py) in front of
moto (S3), Azurite, sshd, wsgidav and the HTTP server resets, truncates, stalls and
corrupts connections mid-transfer, or answers 503.

A transient fault is retried and the transfer completes; a persistent one fails within a
bounded time with an error naming the remote, leaves no partial object in the cache or on
the remote, and a rerun once the network is back finishes the job.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import RemoteError
from dvlite.ops.sync import fetch, pull, push
from tests.cli.support import assert_error, run_main
from tests.ops.support import cache_oids, snapshot, xxh
from tests.remote.contract import (
    assert_cache_clean,
    configure,
    in_clone,
    objects_of,
    origin_repo,
    publish,
    set_local,
)
from tests.remote.netproxy import ALWAYS, FaultProxy, fault_proxy
from tests.remote.servers import Backend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dvlite.ops.sync import SyncResult
    from tests.helpers import TmpRepo

    Clone = Callable[[TmpRepo], TmpRepo]

pytestmark = pytest.mark.usefixtures("no_backoff")

NETWORK = ("s3", "azure", "ssh", "webdav", "http")
WRITABLE = ("s3", "azure", "ssh", "webdav")
HTTP_BASED = ("s3", "azure", "webdav", "http")
TIMEOUT = 2  # seconds: the read timeout the stall tests give the remote
BOUNDED = 60.0  # seconds: a persistent fault ends the command well within this
AFTER = 3000  # bytes of a response let through before the fault: past any handshake's start
# webdav4 resumes a download cut mid-body with a range request: a fault on every connection
# after some body bytes is slow progress, not a failure; one inside the headers is a failure
PERSISTENT_AFTER = {"webdav": 200}
_ENDPOINT = re.compile(r"127\.0\.0\.1:(\d+)")


@pytest.fixture(params=NETWORK)
def backend(request: pytest.FixtureRequest) -> Backend:
    store: Backend = request.getfixturevalue(f"{request.param}_remote")
    return store


@pytest.fixture
def proxy(backend: Backend) -> Iterator[FaultProxy]:
    """A fault proxy in front of the backend's server."""
    texts = [backend.url, *backend.project.values(), *backend.secrets.values()]
    ports = {m.group(1) for text in texts for m in _ENDPOINT.finditer(text)}
    assert len(ports) == 1, ports
    with fault_proxy(int(ports.pop())) as made:
        yield made


def through(backend: Backend, proxy: FaultProxy) -> dict[str, str]:
    """The local settings that send the remote's traffic through the proxy."""
    def rewired(text: str) -> str:
        return _ENDPOINT.sub(f"127.0.0.1:{proxy.port}", text)

    settings = {"url": rewired(backend.url)}
    for option, value in {**backend.project, **backend.secrets}.items():
        if _ENDPOINT.search(value):
            settings[option] = rewired(value)
    return settings


def needs(backend: Backend, kinds: tuple[str, ...]) -> None:
    if backend.name not in kinds:
        pytest.skip(f"not a fault of {backend.name}")


@pytest.fixture
def downloader(backend: Backend, proxy: FaultProxy, tmp_repo: TmpRepo, clone: Clone) -> TmpRepo:
    """A clone, whose remote reaches the server through the proxy, of a repo whose data is
    on the remote."""
    origin_repo(tmp_repo, backend)
    publish(tmp_repo, backend)
    other = in_clone(clone, tmp_repo, backend)
    set_local(other, through(backend, proxy))
    return other


@pytest.fixture
def uploader(backend: Backend, proxy: FaultProxy, tmp_repo: TmpRepo) -> TmpRepo:
    """A repo with data to push, whose remote reaches the server through the proxy."""
    needs(backend, WRITABLE)
    origin_repo(tmp_repo, backend)
    set_local(tmp_repo, through(backend, proxy))
    return tmp_repo


def with_short_timeout(t: TmpRepo, backend: Backend) -> None:
    set_local(t, {"timeout": str(TIMEOUT)})


def fails_cleanly(proxy: FaultProxy, action: Callable[[], SyncResult]) -> None:
    """Run a transfer under a persistent fault: the fault happened, the transfer ended within
    a bounded time, and what failed names the remote. (A backend that resumes a cut download
    with a range request may get through: then nothing failed, and the caller's checks of
    the bytes decide.)"""
    started = time.monotonic()
    try:
        result = action()
    except RemoteError as exc:
        reasons = [exc.message]
    else:
        reasons = list(result.failed.values())
    assert proxy.broken >= 1, "the fault never happened: the test proves nothing"
    assert time.monotonic() - started < BOUNDED
    assert all("remote `store`" in why for why in reasons), reasons


def assert_fetched_everything(other: TmpRepo, origin: TmpRepo) -> None:
    assert cache_oids(other) >= objects_of(origin)
    assert_cache_clean(other)


def assert_remote_holds(backend: Backend, oids: set[str]) -> None:
    assert_remote_sound(backend)
    assert {n.replace("/", "") for n in backend.files() if not n.startswith("tmp/")} == oids


def assert_remote_sound(backend: Backend) -> None:
    """Whatever the store holds is a whole object under its own name; no temp file is visible
    as an object."""
    for name in backend.files():
        if name.startswith("tmp/"):
            continue
        oid = name.replace("/", "")
        assert xxh(backend.read_object(oid)) == oid, name


# --- downloads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["reset", "truncate", "http503"])
def test_a_transient_fault_during_a_download_is_retried(
    fault: str, backend: Backend, proxy: FaultProxy, downloader: TmpRepo, tmp_repo: TmpRepo,
) -> None:
    if fault == "http503":
        needs(backend, HTTP_BASED)
    proxy.set(fault, after=AFTER, times=2)
    fetched = fetch(downloader.repo)
    assert proxy.broken >= 1, "the fault never happened: the test proves nothing"
    assert fetched.failed == {}
    assert_fetched_everything(downloader, tmp_repo)


@pytest.mark.parametrize("fault", ["reset", "truncate", "corrupt", "http503"])
def test_a_persistent_fault_during_a_download_fails_cleanly_and_a_rerun_finishes(
    fault: str, backend: Backend, proxy: FaultProxy, downloader: TmpRepo, tmp_repo: TmpRepo,
) -> None:
    if fault == "http503":
        needs(backend, HTTP_BASED)
    proxy.set(fault, after=PERSISTENT_AFTER.get(backend.name, AFTER), times=ALWAYS)
    fails_cleanly(proxy, lambda: fetch(downloader.repo))
    assert_cache_clean(downloader)  # nothing half-written, nothing corrupt

    proxy.heal()
    fetched, checked_out = pull(downloader.repo)
    assert fetched.failed == {}
    assert checked_out.missing == ()
    assert snapshot(downloader.root / "data") == snapshot(tmp_repo.root / "data")
    assert_fetched_everything(downloader, tmp_repo)


def test_a_stalled_download_times_out_and_a_rerun_finishes(
    backend: Backend, proxy: FaultProxy, downloader: TmpRepo, tmp_repo: TmpRepo,
) -> None:
    with_short_timeout(downloader, backend)
    proxy.set("stall", after=PERSISTENT_AFTER.get(backend.name, AFTER), times=ALWAYS)
    fails_cleanly(proxy, lambda: fetch(downloader.repo))
    assert_cache_clean(downloader)

    proxy.heal()
    fetched = fetch(downloader.repo)
    assert fetched.failed == {}
    assert_fetched_everything(downloader, tmp_repo)


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
def test_a_stalled_s3_request_is_tried_twice_before_it_fails(
    backend: Backend, proxy: FaultProxy, downloader: TmpRepo, tmp_repo: TmpRepo,
) -> None:
    """Each try of a stalled read waits out the whole timeout, under the transfer engine's
    own tries of each object: s3fs's default of 5 tries made that 20 timeouts per object."""
    direct = tmp_repo.repo.remote("store")  # straight to the server, not through the proxy
    where = direct.below("stall-probe")
    direct.put_bytes(where, b"x" * 10_000)
    with_short_timeout(downloader, backend)
    proxy.set("stall", after=AFTER, times=ALWAYS)
    with pytest.raises(RemoteError):
        downloader.repo.remote("store").read(where)
    assert proxy.broken == 2


def test_a_broken_network_is_one_error_line_on_the_command_line(
    backend: Backend, proxy: FaultProxy, downloader: TmpRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.set("reset", after=PERSISTENT_AFTER.get(backend.name, AFTER), times=ALWAYS)
    result = run_main(capsys, "-C", str(downloader.root), "fetch")
    assert_error(result, "remote `store`", after_messages=True)
    assert_cache_clean(downloader)


# --- uploads --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["s3"], indirect=True)
def test_uploads_to_s3_carry_no_checksum_header_of_their_body(
    backend: Backend, proxy: FaultProxy, uploader: TmpRepo,
) -> None:
    """botocore's default CRC32 of every body costs CPU that dvlite's own hashes make
    redundant, and many S3-compatible servers refuse its headers."""
    proxy.sent = bytearray()
    assert push(uploader.repo).failed == {}
    sent = bytes(proxy.sent).lower()
    assert sent.count(b"put /") >= len(objects_of(uploader))
    assert b"x-amz-checksum-" not in sent
    assert b"x-amz-sdk-checksum-algorithm" not in sent
    assert_remote_holds(backend, objects_of(uploader))


@pytest.mark.parametrize("fault", ["reset", "truncate", "http503"])
def test_a_transient_fault_during_an_upload_is_retried(
    fault: str, backend: Backend, proxy: FaultProxy, uploader: TmpRepo,
) -> None:
    if fault == "http503":
        needs(backend, HTTP_BASED)
    proxy.set(fault, after=AFTER, times=2, upload=fault != "http503")
    pushed = push(uploader.repo)
    assert proxy.broken >= 1
    assert pushed.failed == {}
    assert_remote_holds(backend, objects_of(uploader))


@pytest.mark.parametrize("fault", ["reset", "stall"])
def test_a_persistent_fault_during_an_upload_fails_cleanly_and_a_rerun_finishes(
    fault: str, backend: Backend, proxy: FaultProxy, uploader: TmpRepo,
) -> None:
    with_short_timeout(uploader, backend)
    proxy.set(fault, after=AFTER, times=ALWAYS, upload=True)
    fails_cleanly(proxy, lambda: push(uploader.repo))
    assert_remote_sound(backend)

    proxy.heal()
    pushed = push(uploader.repo)
    assert pushed.failed == {}
    assert_remote_holds(backend, objects_of(uploader))


def test_the_proxy_passes_traffic_untouched_when_healthy(
    backend: Backend, proxy: FaultProxy, downloader: TmpRepo, tmp_repo: TmpRepo,
) -> None:
    """The control: the same clone through the same proxy, no fault, fetches everything."""
    fetched = fetch(downloader.repo)
    assert fetched.failed == {}
    assert proxy.broken == 0
    assert_fetched_everything(downloader, tmp_repo)



@pytest.mark.parametrize("value", ['"soon"', "0", "-5", "true"])
def test_a_bad_timeout_is_an_error_naming_the_option(
    value: str, tmp_repo: TmpRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    configure(tmp_repo, Backend("local", str(tmp_path / "store")))
    set_local(tmp_repo, {"timeout": value})
    tmp_repo.gen({"a.txt": "a\n"})
    tmp_repo.dvl_add("a.txt")
    result = run_main(capsys, "-C", str(tmp_repo.root), "push")
    line = assert_error(result, "remote `store`", "timeout")
    assert "seconds" in line
    assert not (tmp_path / "store").exists()
