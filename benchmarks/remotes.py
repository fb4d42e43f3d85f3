"""The remotes pushed to and pulled from: a local folder, and the S3 API of a moto_server
on 127.0.0.1 that the benchmark starts and stops itself. Each push gets a fresh, empty store.

What a step stores is measured on both (bytes and objects in the store, before and after);
on S3 the tools go through a counting proxy (wire.py), so requests and the bytes each way are
counted too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from measure import Traffic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from wire import CountingProxy, RequestLog

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

    def usage(self, key: str) -> tuple[int, int]:
        """Bytes and objects in the store made for `key`."""
        ...

    def counters(self) -> tuple[int, int, int] | None:
        """Requests, bytes sent and bytes received so far; None where they are not counted."""
        ...

    def recent(self) -> list[str]:
        """The last requests made ("GET /bucket/key"), oldest first; [] where not counted."""
        ...


class Watch:
    """One step's traffic on one store: what changed between this and `done()`."""

    def __init__(self, remote: Remote, key: str) -> None:
        self.remote, self.key = remote, key
        self.before = remote.usage(key)  # first: the listing's own requests are not the step's
        self.counters = remote.counters()

    def done(self) -> Traffic:
        counters = self.remote.counters()  # before the listing below adds its requests
        stored, objects = self.remote.usage(self.key)
        traffic = Traffic(stored - self.before[0], stored, objects)
        if counters is None or self.counters is None:
            return traffic
        requests, sent, received = (now - then for now, then in zip(counters, self.counters,
                                                                      strict=True))
        recent = self.remote.recent()
        calls = tuple(recent[len(recent) - requests:]) if requests <= len(recent) else None
        return replace(traffic, requests=requests, sent=sent, received=received, calls=calls)


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

    def usage(self, key: str) -> tuple[int, int]:
        size = files = 0
        for folder, _, names in os.walk(self.root / key):
            files += len(names)
            size += sum(os.lstat(os.path.join(folder, name)).st_size for name in names)
        return size, files

    def counters(self) -> None:
        return None

    def recent(self) -> list[str]:
        return []


class S3Remote:
    name = "s3"
    repeat: int | None = 1  # moto_server takes ~150 requests/s: minutes a run, at its pace
    PREFIX = "store"

    def __init__(self, server: str, proxy: CountingProxy, log: RequestLog) -> None:
        self.server = server  # buckets, listings and resets go straight to moto_server
        self.endpoint = proxy.endpoint  # the tools go through the proxy
        self.proxy, self.log = proxy, log

    def fresh(self, key: str) -> dict[str, str]:
        bucket = key.lower()
        _request(f"{self.server}/{bucket}", "PUT")
        return {"url": f"s3://{bucket}/{self.PREFIX}", "endpoint": self.endpoint}

    def drop(self, key: str) -> None:
        _request(f"{self.server}/moto-api/reset", "POST")  # every bucket, and its memory

    def usage(self, key: str) -> tuple[int, int]:
        size = keys = 0
        query = {"list-type": "2", "prefix": f"{self.PREFIX}/"}
        while True:
            url = f"{self.server}/{key.lower()}?{urllib.parse.urlencode(query)}"
            with urllib.request.urlopen(url, timeout=300) as response:
                page = ET.fromstring(response.read())
            for element in page.iter():
                if element.tag.endswith("}Size"):
                    size += int(element.text or 0)
                    keys += 1
            token = next((e.text for e in page.iter() if e.tag.endswith(
                "}NextContinuationToken")), None)
            if not token:
                return size, keys
            query["continuation-token"] = token

    def counters(self) -> tuple[int, int, int]:
        requests = self.log.requests()
        sent, received = self.proxy.counts()
        return requests, sent, received

    def recent(self) -> list[str]:
        return list(self.log.recent)


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
