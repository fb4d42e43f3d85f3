"""A TCP proxy on 127.0.0.1 that sits between dvlite and a real storage server and breaks
the connections on purpose, the way a network does.

Every fault acts on the server → client stream of a connection (or, for uploads,
the client → server one), after ``after`` bytes of it have gone through, and only
on the first ``times`` connections that reach that point (``ALWAYS``: every
one); the others pass untouched, as after a transient outage. The faults:

    reset     RST to both ends: "connection reset by peer" mid-response
    truncate  a clean close (FIN) to the client: the body ends early
    stall     nothing more is forwarded, and the connection stays open: only a
              read timeout gets the client out
    corrupt   one byte (at offset ``after``) flipped, everything else forwarded
    refuse    RST as soon as the connection is accepted (``after`` is ignored)
    http503   the request is answered ``503 Service Unavailable`` by the proxy
              itself and the connection closed (HTTP backends only)

``broken`` counts the connections a fault hit, so a test can tell its fault
really happened.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

LOOPBACK = "127.0.0.1"
ALWAYS = -1
FAULTS = ("reset", "truncate", "stall", "corrupt", "refuse", "http503")
_CHUNK = 65536
_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
        b"Retry-After: 0\r\nConnection: close\r\n\r\n")


def _abort(sock: socket.socket) -> None:
    """Close with RST instead of FIN, as a crashed peer or a middlebox does. (The SHUT_RD
    wakes the thread blocked reading this socket: without it, close() would wait for it.)"""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    sock.close()


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target = (LOOPBACK, target_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self.fault: str | None = None
        self.after = 0
        self.upload = False
        self._budget = 0
        self.broken = 0
        self.sent: bytearray | None = None  # a bytearray: every byte clients send goes into it
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def set(self, fault: str, *, after: int = 0, times: int = ALWAYS, upload: bool = False,
            ) -> None:
        """Break connections from now on; ``upload`` puts the fault on the client → server
        stream instead (a request body cut short, or stalled, on its way up)."""
        assert fault in FAULTS, fault
        with self._lock:
            self.fault, self.after, self._budget, self.broken = fault, after, times, 0
            self.upload = upload

    def heal(self) -> None:
        """New connections pass untouched (a stalled one stays stalled until it is closed)."""
        with self._lock:
            self.fault = None

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _abort(sock)

    def _take(self) -> str | None:
        """The fault to apply now, if any budget is left; counts it as applied."""
        with self._lock:
            if self.fault is None or self._budget == 0:
                return None
            self._budget -= 1 if self._budget > 0 else 0
            self.broken += 1
            return self.fault

    def _armed(self) -> str | None:
        with self._lock:
            return self.fault if self._budget != 0 else None

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        armed = self._armed()
        if armed in ("refuse", "http503") and self._take() is not None:
            if armed == "http503":
                self._answer_503(client)
            else:
                _abort(client)
            return
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            _abort(client)
            return
        server.settimeout(None)
        with self._lock:
            self._sockets += [client, server]
        if armed in ("refuse", "http503"):
            armed = None
        up, down = (armed, None) if self.upload else (None, armed)
        upstream = threading.Thread(target=self._pump, args=(client, server, up, self.sent),
                                    daemon=True)
        upstream.start()
        self._pump(server, client, down)
        upstream.join()
        for sock in (client, server):  # closed here, not whenever the collector gets to them
            sock.close()

    def _answer_503(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                piece = client.recv(_CHUNK)
                if not piece:
                    break
                head += piece
            client.sendall(_503)
        client.close()

    def _pump(self, src: socket.socket, dst: socket.socket, armed: str | None,
              record: bytearray | None = None) -> None:
        """Forward ``src`` to ``dst``, breaking the stream as ``armed`` says once ``after`` bytes
        went through (if the fault's budget still allows it then), and adding what passes to
        ``record``."""
        sent = 0
        try:
            while piece := src.recv(_CHUNK):
                if record is not None:
                    record += piece
                if armed is not None and sent + len(piece) > self.after:
                    fault = self._take()
                    if fault is not None:
                        cut = self.after - sent
                        self._break(fault, src, dst, piece[:cut], piece[cut:])
                        return
                    armed = None  # the budget ran out meanwhile: this one passes
                dst.sendall(piece)
                sent += len(piece)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            _abort(dst)
            _abort(src)

    def _break(self, fault: str, src: socket.socket, dst: socket.socket,
               head: bytes, rest: bytes) -> None:
        dst.sendall(head)
        if fault == "corrupt":
            dst.sendall(bytes([rest[0] ^ 0xFF]) + rest[1:])
            self._pump(src, dst, None)
        elif fault == "stall":
            self._closed.wait()  # hold both ends open, forwarding nothing, until the test ends
        elif fault == "truncate":  # a clean end of both streams, too early
            for sock in (dst, src):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        else:  # reset
            _abort(dst)
            _abort(src)


@contextlib.contextmanager
def fault_proxy(target_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
