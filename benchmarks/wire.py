"""Counting what the S3 rows cost: the tools talk to moto_server through a TCP proxy that
counts the bytes each way, and moto_server's log gives the requests.

The proxy counts bytes, not HTTP: headers are included, which is what a link to a real object
store carries too. The request count comes from the log moto_server writes, one line per
request answered.
"""

from __future__ import annotations

import collections
import contextlib
import re
import selectors
import socket
import threading
import time
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

LOOPBACK = "127.0.0.1"
BUFFER = 1 << 18
# werkzeug's access log: `127.0.0.1 - - [date] "GET /bucket/key?x HTTP/1.1" 200 -`
_REQUEST = re.compile(rb'\] "([A-Z]+) (/\S*) HTTP/')
RECENT = 100  # request lines kept, so a step with few requests can say which they were


class CountingProxy:
    """Forwards every connection to `upstream`, counting the bytes each way.

    One thread and a selector for all connections: the tools' requests to moto_server each
    come on a new connection (2,024 for a push of 2,000 objects), so threads per connection
    cost twice the CPU of this.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.sent = 0  # client to server
        self.received = 0  # server to client
        self._lock = threading.Lock()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.setblocking(False)
        self.endpoint = f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, events in self._selector.select(timeout=0.2):
                if key.fileobj is self._listener:
                    self._accept()
                    continue
                end: _End = key.data
                if events & selectors.EVENT_WRITE and not end.closed:
                    end.flush()
                if events & selectors.EVENT_READ and not end.closed:
                    self._read(end)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
            server = socket.create_connection(self.upstream)
        except OSError:
            return
        ends = _End(client, self._selector, up=True), _End(server, self._selector, up=False)
        ends[0].peer, ends[1].peer = ends[1], ends[0]
        for end in ends:
            end.sock.setblocking(False)
            end.update()

    def _read(self, end: _End) -> None:
        try:
            data = end.sock.recv(BUFFER)
        except BlockingIOError:
            return
        except OSError:
            end.close()
            return
        if not data:
            end.eof = True
            end.peer.flush()  # passes the end on once nothing is left to send
            end.update()
            return
        with self._lock:
            if end.up:
                self.sent += len(data)
            else:
                self.received += len(data)
        end.peer.pending = data
        end.peer.flush()
        end.update()


class _End:
    """One socket of a proxied connection: what is left to send to it, and whether its side
    has finished sending."""

    def __init__(self, sock: socket.socket, selector: selectors.BaseSelector, *,
                 up: bool) -> None:
        self.sock, self.selector, self.up = sock, selector, up
        self.peer: _End = self
        self.pending = b""
        self.eof = self.shut = self.closed = False
        self.events = 0

    def flush(self) -> None:
        """Send what is pending; once the peer has finished and all is sent, pass that on."""
        if self.pending:
            try:
                sent = self.sock.send(self.pending)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            self.pending = self.pending[sent:]
        if not self.pending and self.peer.eof and not self.shut:
            self.shut = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        if self.eof and self.peer.eof and not self.pending and not self.peer.pending:
            self.close()
            return
        self.update()
        self.peer.update()

    def update(self) -> None:
        """Read from this socket while the peer has nothing pending; write while we have."""
        if self.closed:
            return
        events = (0 if self.eof or self.peer.pending else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if self.pending else 0)
        if events == self.events:
            return
        if not self.events:
            self.selector.register(self.sock, events, self)
        elif events:
            self.selector.modify(self.sock, events, self)
        else:
            self.selector.unregister(self.sock)
        self.events = events

    def close(self) -> None:
        for end in (self, self.peer):
            if not end.closed:
                end.closed = True
                if end.events:
                    end.selector.unregister(end.sock)
                end.sock.close()


class RequestLog:
    """The S3 requests moto_server has logged, read on from where the last call stopped."""

    def __init__(self, log: Path, server: str) -> None:
        self.log, self.server = log, server
        self._offset = log.stat().st_size if log.exists() else 0
        self._count = 0
        self._marks = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT)

    def requests(self) -> int:
        """Requests answered so far (moto-api calls not counted). A marker request goes first
        and is waited for in the log, so every request answered before it is counted."""
        self._marks += 1
        marker = f"/moto-api/?mark={self._marks}"
        with urllib.request.urlopen(self.server + marker, timeout=30):
            pass
        deadline = time.monotonic() + 30
        while not self._read_to(marker.encode()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server never logged {marker}; see {self.log}")
            time.sleep(0.02)
        return self._count

    def _read_to(self, marker: bytes) -> bool:
        """Count the complete lines added since the last read; whether `marker` was among them."""
        with self.log.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        found = False
        for line in data[:end].splitlines():
            match = _REQUEST.search(line)
            if match and match.group(2) == marker:
                found = True
            elif match and not match.group(2).startswith(b"/moto-api"):
                self._count += 1
                self.recent.append(b" ".join(match.groups()).decode(errors="replace"))
        return found
