"""Real storage servers on 127.0.0.1 for the remote tests, and what a test needs to use one.

Each server is a child process bound to 127.0.0.1 on a free port, with its
telemetry off, polled until it answers, and stopped (TERM, then KILL) when the
session ends. Its output goes to a log file that a failed start quotes. The
recipes are those of shared/REMOTES.md.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fsspec.implementations.local import LocalFileSystem

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from fsspec import AbstractFileSystem

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0  # seconds from spawn to the first good answer (Azurite on a busy CI: ~1 s)

# Read once, at import: the autouse `isolate` fixture removes DVLITE_* from the environment.
REQUIRED = os.environ.get("DVLITE_REMOTE_SERVERS", "") == "required"
CI_CACHE = Path(os.environ.get("DVLITE_CI_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dvlite-ci")
AZURITE = os.environ.get("DVLITE_AZURITE") or str(CI_CACHE / "node_modules/.bin/azurite-blob")
SSHD = os.environ.get("DVLITE_SSHD") or "/usr/sbin/sshd"


def unavailable(reason: str) -> None:
    """Skip the test for want of a server, or fail when CI promised every server."""
    if REQUIRED:
        pytest.fail(f"{reason} (DVLITE_REMOTE_SERVERS=required: .ci/run should install it)")
    pytest.skip(reason)


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; a server binds it right after)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A loopback port that refuses connections."""
    return free_port()


def can_connect(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


# Runs the server in place of itself (same pid) after asking Linux for a SIGTERM when its parent,
# the pytest process, dies, even by SIGKILL: no server outlives the run.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
os.execvp(sys.argv[1], sys.argv[1:])
"""


class Server:
    """A server child process, its log, and how to wait for it and stop it."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, *,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _DIE_WITH_PARENT, *argv], cwd=workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
            )

    def wait_ready(self, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it "
                                   f"was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within {timeout} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def running(server: Server, check: Callable[[], bool]) -> Iterator[Server]:
    try:
        server.wait_ready(check)
        yield server
    finally:
        server.stop()


# --- the servers --------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str
    log: Path  # one line per request it served: "GET /bucket/key?query HTTP/1.1" 200


@contextlib.contextmanager
def moto(workdir: Path, *, check_signatures: bool = False) -> Iterator[S3Server]:
    """moto_server. It accepts any key unless ``check_signatures``: then its first three calls,
    unsigned, make an IAM user and its key, and from then on a request must be signed with
    that key. (moto 5 miscomputes the signature of a query holding "/", such as a listing with
    a delimiter, so only a server for refusals checks them.)"""
    if not _importable("moto.server") or not _importable("s3fs"):
        unavailable("moto[server] and s3fs are not installed")
    port = free_port()
    exe = shutil.which("moto_server")
    argv = [exe] if exe else [sys.executable, "-m", "moto.server"]
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "3"} if check_signatures else {}
    server = Server("moto", [*argv, "-H", LOOPBACK, "-p", str(port)], workdir, env=env)
    endpoint = f"http://{LOOPBACK}:{port}"
    with running(server, lambda: http_ok(f"{endpoint}/moto-api/")):
        if check_signatures:
            key, secret = _iam_key(endpoint)
        else:
            key, secret = "dvlite-testing-key", "dvlite-testing-secret"
        yield S3Server(endpoint, key, secret, server.log)


def _iam_key(endpoint: str) -> tuple[str, str]:
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.create_user(UserName="dvlite")
    iam.put_user_policy(UserName="dvlite", PolicyName="all", PolicyDocument=json.dumps(policy))
    made = iam.create_access_key(UserName="dvlite")["AccessKey"]
    iam.close()
    return made["AccessKeyId"], made["SecretAccessKey"]


AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")  # Azurite's well-known development key, public by design


def azure_connection_string(port: int, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint=http://{LOOPBACK}:{port}/{AZURITE_ACCOUNT};")


@dataclass(frozen=True)
class AzureServer:
    port: int

    @property
    def connection_string(self) -> str:
        return azure_connection_string(self.port)


@contextlib.contextmanager
def azurite(workdir: Path) -> Iterator[AzureServer]:
    if not _importable("adlfs"):
        unavailable("adlfs is not installed")
    if not os.access(AZURITE, os.X_OK) or not shutil.which("node"):
        unavailable(f"Azurite is not installed at {AZURITE} (set DVLITE_AZURITE, or "
                    f"`npm install --prefix {CI_CACHE} azurite@3.35.0`)")
    port = free_port()
    argv = [AZURITE, "--blobHost", LOOPBACK, "--blobPort", str(port), "--disableTelemetry",
            "--skipApiVersionCheck", "--loose", "--silent", "--inMemoryPersistence"]
    with running(Server("azurite", argv, workdir), lambda: can_connect(port)):
        yield AzureServer(port)


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    client_key: Path  # authorized
    stranger_key: Path  # a valid key the server does not know
    root: Path  # a folder for stores (the server's own disk)


@contextlib.contextmanager
def sshd(workdir: Path) -> Iterator[SshServer]:
    """A throwaway OpenSSH sshd: its own host key, one authorized client key, sftp only."""
    if not _importable("sshfs"):
        unavailable("sshfs is not installed")
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        unavailable(f"OpenSSH's sshd is not installed at {SSHD} (apt-get install openssh-server)")
    try:  # sshd, run as root, insists on its privilege separation folder (Debian's init makes it)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    except OSError as exc:
        unavailable(f"cannot create /run/sshd for sshd: {exc}")
    keys = {}
    for name in ("host_key", "client_key", "stranger_key"):
        keys[name] = workdir / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(keys[name])], check=True, capture_output=True)
    shutil.copyfile(workdir / "client_key.pub", workdir / "authorized_keys")
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        f"ListenAddress {LOOPBACK}",
        f"HostKey {keys['host_key']}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "MaxStartups 100:30:200",
        "LogLevel ERROR",
        "",
    ]))
    root = workdir / "stores"
    root.mkdir()
    user = pwd.getpwuid(os.getuid()).pw_name
    server = Server("sshd", [SSHD, "-D", "-e", "-f", str(config)], workdir)
    with running(server, lambda: _ssh_banner(port)):
        yield SshServer(port, user, keys["client_key"], keys["stranger_key"], root)


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass(frozen=True)
class WebdavServer:
    port: int
    user: str
    password: str
    root: Path  # the folder it serves


@contextlib.contextmanager
def wsgidav(workdir: Path) -> Iterator[WebdavServer]:
    if not _importable("webdav4") or not _importable("wsgidav") or not _importable("cheroot"):
        unavailable("webdav4, wsgidav and cheroot are not all installed")
    port = free_port()
    root = workdir / "share"
    root.mkdir()
    user, password = "tester", "dav-secret-3141"
    config = workdir / "wsgidav.yaml"
    config.write_text("\n".join([
        f"host: {LOOPBACK}",
        f"port: {port}",
        "server: cheroot",
        f'provider_mapping: {{"/": "{root}"}}',
        "http_authenticator: {accept_basic: true, accept_digest: false, "
        "default_to_digest: false}",
        f'simple_dc: {{user_mapping: {{"*": {{"{user}": {{password: "{password}"}}}}}}}}',
        "verbose: 1",
        "",
    ]))
    exe = shutil.which("wsgidav")
    argv = [exe] if exe else [sys.executable, "-m", "wsgidav.server.server_cli"]
    server = Server("wsgidav", [*argv, "--config", str(config)], workdir)
    with running(server, lambda: http_ok(f"http://{LOOPBACK}:{port}/")):
        yield WebdavServer(port, user, password, root)


@dataclass(frozen=True)
class HttpServer:
    port: int
    root: Path  # the folder it serves, read-only to clients


@contextlib.contextmanager
def range_http(workdir: Path) -> Iterator[HttpServer]:
    if not _importable("RangeHTTPServer") or not _importable("aiohttp"):
        unavailable("rangehttpserver and aiohttp are not installed")
    port = free_port()
    root = workdir / "www"
    root.mkdir()
    server = Server("http", [sys.executable, "-m", "RangeHTTPServer", str(port), "--bind",
                             LOOPBACK], root)
    with running(server, lambda: http_ok(f"http://{LOOPBACK}:{port}/")):
        yield HttpServer(port, root)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# --- what a test gets -----------------------------------------------------------------------

@dataclass
class Backend:
    """One fresh, empty store on one backend: how dvlite reaches it, and a direct view of it.

    ``project`` options are safe to commit (`remote modify`); ``secrets`` go to
    config.local.toml (`remote modify --local`), so each clone sets them again.
    Values are what a user types: TOML literals or plain strings.
    """

    name: str
    url: str
    project: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # a direct view of the store, not through dvlite: its objects live at `root` in `fs`
    fs: AbstractFileSystem | None = None
    root: str = ""
    # read-only backends (http): a local folder the server serves, which a test fills by
    # pushing to it as a folder remote
    filler: str | None = None
    # settings that point at a closed loopback port; settings with a wrong credential and
    # that credential (which no message may show)
    unreachable: dict[str, str] | None = None
    bad_auth: Callable[[], dict[str, str]] | None = None  # called only by the test that uses it
    bad_secret: str | None = None

    @property
    def writable(self) -> bool:
        return self.filler is None

    def view(self) -> tuple[AbstractFileSystem, str]:
        assert self.fs is not None
        self.fs.invalidate_cache()
        return self.fs, self.root

    def files(self) -> list[str]:
        """Every file in the store, as a path relative to its root."""
        fs, root = self.view()
        try:
            found = fs.find(root)
        except FileNotFoundError:
            return []
        prefix = fs._strip_protocol(root).rstrip("/") + "/"
        return sorted(fs._strip_protocol(p).removeprefix(prefix) for p in found)

    def object_path(self, oid: str) -> str:
        return f"{self.root.rstrip('/')}/{oid[:2]}/{oid[2:]}"

    def read_object(self, oid: str) -> bytes:
        fs, _ = self.view()
        data: bytes = fs.cat_file(self.object_path(oid))
        return data

    def read(self, rel: str) -> bytes:
        """The bytes of any file of the store (a pack, a chunk list), by its path below the root."""
        fs, root = self.view()
        data: bytes = fs.cat_file(f"{root.rstrip('/')}/{rel}")
        return data

    def replace(self, rel: str, data: bytes) -> None:
        """Write any file of the store behind dvlite's back, whatever its permissions."""
        fs, root = self.view()
        fs.rm_file(f"{root.rstrip('/')}/{rel}")
        fs.pipe_file(f"{root.rstrip('/')}/{rel}", data)
        fs.invalidate_cache()

    def overwrite_object(self, oid: str, data: bytes) -> None:
        """Replace an object's bytes behind dvlite's back (bit rot, a bad upload)."""
        fs, _ = self.view()
        path = self.object_path(oid)
        if isinstance(fs, LocalFileSystem):  # objects may be read-only on disk
            os.chmod(path, 0o644)
        fs.pipe_file(path, data)
        fs.invalidate_cache()

