"""The remotes pushed to and pulled from: a local folder, and the S3 API of a moto_server
on 127.0.0.1 that the benchmark starts and stops itself. Each push gets a fresh, empty store.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

LOOPBACK = "127.0.0.1"


class Remote(Protocol):
    name: str
    repeat: int | None  # runs per push and pull; None: as many as every other step

    def fresh(self, key: str) -> dict[str, str]:
        """A new empty store: `url` (and `endpoint`) for the tools' remote templates."""
        ...

    def drop(self, key: str) -> None:
        """Forget the store made for `key`."""
        ...


class LocalRemote:
    name = "local"
    repeat: int | None = None

    def __init__(self, root: Path) -> None:
        self.root = root

    def fresh(self, key: str) -> dict[str, str]:
        self.drop(key)
        (self.root / key).mkdir(parents=True)
        return {"url": str(self.root / key), "endpoint": ""}

    def drop(self, key: str) -> None:
        remove(self.root / key)


class S3Remote:
    name = "s3"
    repeat: int | None = 1  # moto_server takes ~150 requests/s: minutes a run, at its pace

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def fresh(self, key: str) -> dict[str, str]:
        bucket = key.lower()
        _request(f"{self.endpoint}/{bucket}", "PUT")
        return {"url": f"s3://{bucket}/store", "endpoint": self.endpoint}

    def drop(self, key: str) -> None:
        _request(f"{self.endpoint}/moto-api/reset", "POST")  # every bucket, and its memory


def _request(url: str, method: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30):
        pass


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[str | None]:
    """The endpoint of a moto_server on a free loopback port, or None if moto is missing."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        if not found:
            yield None
            return
        exe = Path(found)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    endpoint = f"http://{LOOPBACK}:{port}"
    with log.open("ab") as out:
        server = subprocess.Popen([str(exe), "-H", LOOPBACK, "-p", str(port)],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{endpoint}/moto-api/"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start; see {log}")
            time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _answers(url: str) -> bool:
    try:
        _request(url, "GET")
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def remove(path: Path) -> None:
    """Delete a file or folder, read-only cache folders included; nothing if absent."""
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
        subprocess.run(["rm", "-rf", str(path)], check=True)  # far faster than rmtree
    else:
        path.unlink(missing_ok=True)
