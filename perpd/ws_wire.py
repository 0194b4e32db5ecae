"""The fast lane of WebSocket event frames: one FIFO per connection, written at once.

py-spy on a 1,000-socket fan-out showed the send itself (the syscall) as a small part
of each socket's cost; the rest was trio's and hypercorn's machinery around it, paid per
socket per event: a task woken, quart's and hypercorn's ASGI layers, wsproto framing,
hypercorn's send lock, a shielded cancel scope and ``send_all``'s checkpoints. Here the
hub builds an event's frame once (server frames are unmasked, so one frame serves every
socket) and writes it to each socket's file descriptor straight away, without an
``await``, when nothing is queued before it; the rest (a full kernel buffer) is queued
in order and flushed by the session's task under hypercorn's send lock.

Every write of an upgraded HTTP/1.1 connection goes through its `Wire` (hypercorn's own,
routed here by `perpd.http_limits`), so a frame is never cut by another: bytes
queued come out before bytes written later, whoever writes them. TLS and HTTP/2
connections have no wire and take hypercorn's path.
"""

from __future__ import annotations

import os
import struct
from contextvars import ContextVar

import trio

PENDING_MAX = 1 << 20  # bytes a socket may have queued beyond its kernel buffer


def text_frame(payload: bytes) -> bytes:
    """A whole, final, unmasked text frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Wire:
    """One plain TCP connection's outgoing bytes, shared by hypercorn and the hub.

    Inactive (hypercorn writes as usual) until a WebSocket on it `activate`s it; from
    then on every write is ordered here.
    """

    def __init__(self, stream: trio.SocketStream, lock: trio.Lock) -> None:
        self._stream = stream
        self._lock = lock
        self._pending = bytearray()
        self._queued = trio.Event()
        self.active = False
        self.closing = False  # a close frame is on its way: no event frame may follow
        self.broken = False  # the peer is gone
        self.queued = 0  # the hub's frames waiting in _pending (not yet handed to send_all)

    def activate(self) -> None:
        self.active = True

    def offer(self, frame: bytes, max_queued: int) -> bool:
        """Write ``frame`` now, or queue it; False if the connection is closing or gone,
        or ``max_queued`` frames already wait (the caller cuts the socket off), never
        blocking. Only the hub's frames count: hypercorn's own are few and awaited."""
        if self.closing or self.broken:
            return False
        if self._pending:
            if self.queued >= max_queued or len(self._pending) + len(frame) > PENDING_MAX:
                return False
            self.queued += 1
        self._write(frame)
        return not self.broken

    def _write(self, data: bytes) -> None:
        # the descriptor is looked up each time: once hypercorn closed the connection it
        # is -1, never a number the kernel may have given to a newer connection
        fd = self._stream.socket.fileno()
        if fd < 0:
            self.broken = True
            return
        if not self._pending and not self._lock.locked():
            try:
                sent = os.write(fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:  # the peer is gone: hypercorn's reader sees it and closes
                self.broken = True
                return
            if sent == len(data):
                return
            data = data[sent:]
        self._pending += data
        self._queued.set()

    async def send(self, data: bytes) -> bool:
        """A write that waits for room, after everything queued before it; False if
        broken. Written at once, it returns without a checkpoint or the lock."""
        if not self.broken:
            self._write(data)
            if not self._pending:
                return True
        return await self.flush()

    async def flush(self) -> bool:
        """Write what is queued, under the connection's send lock; False if broken."""
        async with self._lock:
            while self._pending and not self.broken:
                chunk = bytes(self._pending)
                self._pending.clear()
                self.queued = 0
                try:
                    with trio.CancelScope(shield=True):
                        await self._stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.broken = True
            self._pending.clear()
        return not self.broken

    async def flush_forever(self) -> None:
        """The session's task: flush whatever the hub queued, until the wire breaks."""
        while True:
            await self._queued.wait()
            self._queued = trio.Event()
            if not await self.flush():
                return


# The plain connection the current task serves (set by the TCP server for its tasks).
CURRENT: ContextVar[Wire | None] = ContextVar("perpd_wire", default=None)


def for_stream(stream: object, lock: trio.Lock) -> Wire | None:
    """A wire for a plain TCP stream; None for TLS (its bytes are not the frames)."""
    return Wire(stream, lock) if isinstance(stream, trio.SocketStream) else None
