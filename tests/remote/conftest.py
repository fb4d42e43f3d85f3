"""Fixtures for the remote tests: real servers on 127.0.0.1, and one fresh store per test.

Servers are session-scoped, so each pytest-xdist worker starts its own set on
its own free ports and shares nothing with the other. A `*_remote` fixture
gives a test a new, empty store on one backend (a new bucket, container or
folder) as a `Backend`: the URL and options `dvlite remote add` / `remote
modify --local` take, and a direct view of the store to check or damage
objects. A server that cannot be started here skips its tests with the reason,
unless DVLITE_REMOTE_SERVERS=required (CI), where that is a failure.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from typing import TYPE_CHECKING

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from dvlite.repo import Repo
from tests.helpers import TmpRepo
from tests.remote import servers
from tests.remote.servers import LOOPBACK, Backend, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.remote.servers import (
        AzureServer,
        HttpServer,
        S3Server,
        SshServer,
        WebdavServer,
    )


def _clear_instance_caches() -> None:
    """fsspec keeps one filesystem per set of arguments (and its listing cache) per process;
    a test must not see another's."""
    for protocol in ("s3", "az", "sftp", "webdav", "http", "memory", "file"):
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except ImportError:
            continue
        if protocol == "webdav":  # its httpx pool has no finalizer: close it, or GC warns
            for fs in list(cls._cache.values()):
                fs.client.http.close()
        cls.clear_instance_cache()


@pytest.fixture(autouse=True)
def _fresh_fsspec_instances() -> Iterator[None]:
    _clear_instance_caches()
    yield
    _clear_instance_caches()


# --- servers, one set per worker -----------------------------------------------------------

@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with servers.moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A second moto_server, one that checks request signatures: for refusals only."""
    with servers.moto(tmp_path_factory.mktemp("moto-auth"), check_signatures=True) as server:
        yield server


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    with servers.azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with servers.sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def webdav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebdavServer]:
    with servers.wsgidav(tmp_path_factory.mktemp("wsgidav")) as server:
        yield server


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with servers.range_http(tmp_path_factory.mktemp("http")) as server:
        yield server


# --- one fresh store per test ----------------------------------------------------------------

def _name() -> str:
    return "dvlite-" + uuid.uuid4().hex[:16]  # a valid bucket, container and folder name


@pytest.fixture
def local_remote(tmp_path: Path) -> Backend:
    root = tmp_path / "remote-store"
    return Backend("local", str(root), fs=LocalFileSystem(), root=str(root))


@pytest.fixture
def memory_remote() -> Iterator[Backend]:
    name = _name()
    try:
        yield Backend("memory", f"memory://{name}/store", fs=MemoryFileSystem(),
                      root=f"/{name}/store")
    finally:
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs.clear()
        MemoryFileSystem.pseudo_dirs.append("")


@pytest.fixture
def s3_remote(moto_server: S3Server, request: pytest.FixtureRequest) -> Backend:
    import s3fs

    fs = s3fs.S3FileSystem(key=moto_server.key, secret=moto_server.secret,
                           endpoint_url=moto_server.endpoint, skip_instance_cache=True)
    bucket = _name()
    fs.mkdir(bucket)
    wrong = "wrong-secret-for-the-dvlite-key-0123456789"

    def bad_auth() -> dict[str, str]:  # a real key with the wrong secret, where it is checked
        checking: S3Server = request.getfixturevalue("moto_auth_server")
        return {"endpoint_url": checking.endpoint, "key": checking.key, "secret": wrong}

    return Backend(
        "s3", f"s3://{bucket}/store",
        project={"endpoint_url": moto_server.endpoint},
        secrets={"key": moto_server.key, "secret": moto_server.secret},
        fs=fs, root=f"{bucket}/store",
        unreachable={"endpoint_url": f"http://{LOOPBACK}:{closed_port()}"},
        bad_auth=bad_auth, bad_secret=wrong,
    )


@pytest.fixture
def azure_remote(azurite_server: AzureServer) -> Backend:
    import adlfs

    conn = azurite_server.connection_string
    fs = adlfs.AzureBlobFileSystem(connection_string=conn, skip_instance_cache=True)
    container = _name()
    fs.mkdir(container)
    wrong = base64.b64encode(b"not the account key of devstoreaccount1, 64 bytes long......")
    wrong_key = wrong.decode()
    return Backend(
        "azure", f"az://{container}/store",
        secrets={"connection_string": conn},
        fs=fs, root=f"{container}/store",
        unreachable={"connection_string": servers.azure_connection_string(closed_port())},
        bad_auth=lambda: {"connection_string": servers.azure_connection_string(
            azurite_server.port, wrong_key)},
        bad_secret=wrong_key,
    )


@pytest.fixture
def ssh_remote(sshd_server: SshServer) -> Backend:
    root = sshd_server.root / _name() / "store"
    where = f"{sshd_server.user}@{LOOPBACK}"
    wrong = "not-the-ssh-password-2718"  # offered after the unknown key; sshd takes neither
    return Backend(
        "ssh", f"ssh://{where}:{sshd_server.port}{root}",
        project={"client_keys": f'["{sshd_server.client_key}"]', "known_hosts": "none"},
        fs=LocalFileSystem(), root=str(root),  # the server's disk is this machine's
        unreachable={"url": f"ssh://{where}:{closed_port()}{root}"},
        bad_auth=lambda: {"client_keys": f'["{sshd_server.stranger_key}"]', "password": wrong},
        bad_secret=wrong,
    )


@pytest.fixture
def webdav_remote(webdav_server: WebdavServer) -> Backend:
    rel = f"{_name()}/store"
    wrong = "not-" + webdav_server.password
    return Backend(
        "webdav", f"webdav://{LOOPBACK}:{webdav_server.port}/{rel}",
        project={"user": webdav_server.user},
        secrets={"password": webdav_server.password},
        fs=LocalFileSystem(), root=str(webdav_server.root / rel),
        unreachable={"url": f"webdav://{LOOPBACK}:{closed_port()}/{rel}"},
        bad_auth=lambda: {"password": wrong}, bad_secret=wrong,
    )


@pytest.fixture
def http_remote(http_server: HttpServer) -> Backend:
    rel = f"{_name()}/store"
    folder = http_server.root / rel
    return Backend(
        "http", f"http://{LOOPBACK}:{http_server.port}/{rel}",
        fs=LocalFileSystem(), root=str(folder), filler=str(folder),
        unreachable={"url": f"http://{LOOPBACK}:{closed_port()}/{rel}"},
    )


# --- clones of a test's repo -------------------------------------------------------------------

@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Callable[[TmpRepo], TmpRepo]]:
    """``clone(tmp_repo)``: a git clone of the repo in a new folder, opened as a dvlite repo
    (its config.local.toml, the cache and the data are not in git, so it has none of them)."""
    made: list[TmpRepo] = []

    def make(origin: TmpRepo) -> TmpRepo:
        dest = tmp_path / f"clone{len(made) + 1}"
        subprocess.run(["git", "clone", "-q", str(origin.root), str(dest)], check=True)
        other = TmpRepo(dest, Repo.discover(str(dest)))
        made.append(other)
        return other

    yield make
    for other in made:
        other.close()
