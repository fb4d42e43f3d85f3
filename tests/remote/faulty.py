"""A remote that misbehaves on purpose: an fsspec filesystem over a local folder, protocol
``faulty`` (URL ``faulty:///abs/path``), whose faults each test sets.

git-lfs proves its verification with magic contents a test server corrupts
(``t/t-batch-storage-corrupt.sh``); this does the same in-process. A test
registers the folder it serves (``faulty_remote(path)``) and gets a
``FaultyRemote`` to set rules on: corrupt or truncate the bytes served for an
oid, raise ``ConnectionError`` N times (or always) then succeed, raise
``PermissionError``, sleep before answering. Every call is counted and logged
per operation, so tests can also assert what the client asked for.

Operations (the names used in rules, counters and the log):

    exists      exists() and info(): one stat
    ls          ls()
    find        find()
    open        open() for reading
    read        reading the opened file: a fault here drops the connection mid-stream
    put_file    put_file(); a fault here leaves the bytes sent so far at the target
    mv, rm_file, makedirs

Paths are the wrapped folder's own absolute paths, so the listing names a
client sees are the real files' names.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

if TYPE_CHECKING:
    from collections.abc import Iterator

OPS = ("exists", "ls", "find", "open", "read", "put_file", "mv", "rm_file", "makedirs")
ALWAYS = -1
_HEX = frozenset("0123456789abcdef")


def oid_of(path: str) -> str | None:
    """The oid a ``.../xx/yyyy`` path stands for (cache or remote layout), else None."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) < 3:
        return None
    candidate = parts[1] + parts[2]
    if len(parts[1]) == 2 and len(candidate) == 32 and _HEX.issuperset(candidate):
        return candidate
    return None


@dataclass
class _Fault:
    op: str
    oid: str | None  # None: every call of the op
    exc: type[OSError]
    remaining: int  # ALWAYS, or how many more calls fail

    def matches(self, op: str, oid: str | None) -> bool:
        return self.op == op and (self.oid is None or self.oid == oid) and self.remaining != 0


@dataclass
class FaultyRemote:
    """The rules and the record of one faulty remote (a local folder)."""

    root: str
    corrupted: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    faults: list[_Fault] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (op, oid or path)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"faulty://{self.root}"

    # --- rules ---------------------------------------------------------------------------

    def corrupt(self, oid: str) -> None:
        """Serve the object's bytes with one byte flipped."""
        self.corrupted.add(oid)

    def truncate(self, oid: str) -> None:
        """Serve only the first half of the object's bytes."""
        self.truncated.add(oid)

    def fail(self, op: str, times: int = ALWAYS, *, oid: str | None = None,
             exc: type[OSError] = ConnectionError) -> None:
        """Make ``op`` (on ``oid``, or on anything) raise ``exc`` ``times`` times, then work."""
        assert op in OPS, op
        with self._lock:
            self.faults.append(_Fault(op, oid, exc, times))

    def deny(self, op: str, *, oid: str | None = None) -> None:
        """Make ``op`` always raise PermissionError (as a server refusing credentials)."""
        self.fail(op, ALWAYS, oid=oid, exc=PermissionError)

    def hang(self, op: str, seconds: float) -> None:
        """Make every ``op`` take ``seconds`` longer (a slow server)."""
        assert op in OPS, op
        self.delays[op] = seconds

    def clear_faults(self) -> None:
        """Behave from now on; the counters and the log carry on."""
        with self._lock:
            self.corrupted.clear()
            self.truncated.clear()
            self.faults.clear()
            self.delays.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.log.clear()

    # --- what happened ----------------------------------------------------------------------

    def oids_of(self, op: str) -> list[str | None]:
        """The oid (or path) of every ``op`` call, in the order they were made."""
        with self._lock:
            return [what for name, what in self.log if name == op]

    def count(self, op: str, oid: str) -> int:
        return self.oids_of(op).count(oid)

    def stored(self) -> dict[str, bytes]:
        """oid → bytes of every object under its final name in the folder."""
        found = {}
        for prefix in Path(self.root).iterdir():
            if len(prefix.name) == 2 and prefix.is_dir():
                for obj in prefix.iterdir():
                    found[prefix.name + obj.name] = obj.read_bytes()
        return found

    def litter(self) -> list[str]:
        """Files left in the folder's ``tmp/`` (unfinished uploads)."""
        tmp = Path(self.root) / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []

    # --- used by the filesystem ---------------------------------------------------------------

    def _enter(self, op: str, what: str | None) -> None:
        """Record the call, sleep if the op is slow, raise if a fault says so."""
        with self._lock:
            self.calls[op] += 1
            self.log.append((op, what))
            delay = self.delays.get(op, 0.0)
            hit = next((f for f in self.faults if f.matches(op, what)), None)
            if hit is not None and hit.remaining > 0:
                hit.remaining -= 1
        if delay:
            time.sleep(delay)
        if hit is not None:
            raise hit.exc(f"faulty remote: injected {hit.exc.__name__} on {op} of {what}")

    def _served(self, oid: str | None, data: bytes) -> bytes:
        if oid in self.corrupted:
            return bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\x00"
        if oid in self.truncated:
            return data[: len(data) // 2]
        return data


_REMOTES: dict[str, FaultyRemote] = {}


def _remote_for(path: str) -> FaultyRemote:
    path = path.rstrip("/")
    best = max((root for root in _REMOTES if path == root or path.startswith(root + "/")),
               key=len, default=None)
    if best is None:
        raise RuntimeError(f"faulty remote: no test registered a folder holding {path}")
    return _REMOTES[best]


@contextlib.contextmanager
def faulty_remote(folder: Path) -> Iterator[FaultyRemote]:
    """Serve ``folder`` (created if needed) as ``faulty://<folder>`` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    remote = FaultyRemote(str(folder.resolve()))
    _REMOTES[remote.root] = remote
    try:
        yield remote
    finally:
        _REMOTES.pop(remote.root, None)


class _DroppingReader(io.RawIOBase):
    """The object's bytes, with the ``read`` rules applied to each read: a ConnectionError
    raised mid-stream, after the first chunk was delivered."""

    def __init__(self, remote: FaultyRemote, oid: str | None, data: bytes) -> None:
        self._remote = remote
        self._oid = oid
        self._data = io.BytesIO(data)
        self._reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._reads > 0:  # the first chunk always arrives: the drop is mid-stream
            self._remote._enter("read", self._oid)
        self._reads += 1
        chunk = self._data.read(max(1, min(len(view), 1 + len(self._data.getbuffer()) // 2)))
        view[: len(chunk)] = chunk
        return len(chunk)


class FaultyFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """fsspec filesystem ``faulty://`` over local folders registered with ``faulty_remote``."""

    protocol = "faulty"
    root_marker = "/"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.local = LocalFileSystem()

    def _path(self, path: str) -> str:
        return str(self._strip_protocol(path))

    def _call(self, op: str, path: str, oid: str | None = None) -> tuple[str, FaultyRemote]:
        local = self._path(path)
        remote = _remote_for(local)
        remote._enter(op, oid or oid_of(local) or local)
        return local, remote

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        local, _ = self._call("exists", path)
        return self.local.info(local)  # type: ignore[no-any-return]

    def exists(self, path: str, **kwargs: Any) -> bool:
        local, _ = self._call("exists", path)
        return os.path.exists(local)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        local, _ = self._call("ls", path)
        return self.local.ls(local, detail=detail)  # type: ignore[no-any-return]

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        local, _ = self._call("find", path)
        if not os.path.exists(local):
            raise FileNotFoundError(local)
        return self.local.find(local, maxdepth=maxdepth, withdirs=withdirs, detail=detail)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        local, _ = self._call("makedirs", path)
        os.makedirs(local, exist_ok=exist_ok)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.makedirs(path, exist_ok=True)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, **kwargs: Any) -> None:
        """Copy the local file ``lpath`` to ``rpath``; a fault strikes after half the bytes
        were written there, as a connection dropped mid-upload."""
        target = self._path(rpath)
        remote = _remote_for(target)
        oid = oid_of(target) or oid_of(str(lpath))
        data = Path(lpath).read_bytes()
        os.makedirs(os.path.dirname(target), exist_ok=True)  # as fsspec's put_file does
        try:
            remote._enter("put_file", oid or target)
        except ConnectionError:
            with open(target, "wb") as f:
                f.write(data[: len(data) // 2])
            raise
        with open(target, "wb") as f:
            f.write(data)

    def mv(self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None,
           **kwargs: Any) -> None:
        source = self._path(path1)
        target, _ = self._call("mv", path2)
        os.rename(source, target)

    def rm_file(self, path: str) -> None:
        local, _ = self._call("rm_file", path)
        os.unlink(local)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        shutil.copyfile(self._path(path1), self._path(path2))

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, autocommit: bool = True,
              cache_options: Any = None, **kwargs: Any) -> BinaryIO:
        if "r" not in mode:
            local = self._path(path)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            return open(local, mode)  # the caller closes it
        local, remote = self._call("open", path)
        oid = oid_of(local)
        with open(local, "rb") as f:
            data = f.read()
        served = remote._served(oid, data)
        return io.BufferedReader(_DroppingReader(remote, oid, served))  # type: ignore[return-value]

    def invalidate_cache(self, path: str | None = None) -> None:
        """Nothing is cached: every call reaches the folder."""


fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)
