"""Limits hypercorn 0.18 does not enforce by itself, installed by the HTTP service.

- **WebSocket messages.** hypercorn checks ``websocket_max_message_size`` only after it
  has appended a chunk to its buffer, and after sending close 1009 it keeps reading and
  appending whatever the peer still sends, leaving the TCP connection open: a client
  can still make it buffer a 15 MB frame. Here a chunk that would pass the limit is
  never appended, and once 1009 is sent the connection fails (RFC 6455 §7.1.7: the
  TCP connection is closed), so no socket holds more than the limit.
- **Connections.** hypercorn accepts every TCP connection, and one whose peer closed
  it before a request stays open (its socket held) until the keep-alive timer fires.
  Past ``max_connections`` live ones, a new connection gets ``503 unavailable``
  (``Retry-After``) before anything is read from it, and is closed; a connection whose
  peer has gone is closed at once.

Both are subclasses of hypercorn's own classes, put in place of them by `install` (the
per-server numbers come from that server's hypercorn `Config`, so daemons in one process
do not share them); tests/test_hardening_ws.py checks them against the real server.
"""

from __future__ import annotations

import json
from typing import Any

import hypercorn.protocol.h2
import hypercorn.protocol.h11
import hypercorn.trio.run
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import FrameTooLargeError, WebsocketBuffer, WSStream
from hypercorn.trio.tcp_server import TCPServer
from wsproto.events import Message

_BUSY_BODY = json.dumps(
    {"error": {"code": "unavailable", "message": "too many connections; retry shortly"}}
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class ConnectionGate:
    """Live TCP connections of one server, against its cap."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0

    def statistics(self) -> dict[str, int]:
        return {"open": self.open, "refused": self.refused}


class _BoundedBuffer(WebsocketBuffer):
    """Refuses a chunk before appending it; once over, refuses everything after."""

    overflowed = False

    def extend(self, event: Message[Any]) -> None:
        if self.overflowed or self.length + len(event.data) > self.max_length:
            self.overflowed = True
            raise FrameTooLargeError()
        super().extend(event)


class BoundedWSStream(WSStream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer = _BoundedBuffer(self.config.websocket_max_message_size)

    async def _handle_events(self) -> None:
        await super()._handle_events()  # sends close 1009 on an oversized message
        if isinstance(self.buffer, _BoundedBuffer) and self.buffer.overflowed and not self.closed:
            await self.send(StreamClosed(stream_id=self.stream_id))  # fail the connection


class CappedTCPServer(TCPServer):
    async def run(self) -> None:
        gate: ConnectionGate | None = getattr(self.config, "perpd_connections", None)
        if gate is None:
            await super().run()
            return
        if gate.open >= gate.max_connections:
            gate.refused += 1
            with trio.move_on_after(1):
                try:
                    await self.stream.send_all(BUSY_RESPONSE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await self.stream.aclose()
            return
        gate.open += 1
        try:
            await super().run()
        finally:
            gate.open -= 1

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone: hypercorn would keep the connection (its socket and its slot)
        # until the keep-alive timer fires, 75 s later; nothing is left to time out.
        await self.idle_task.stop()


def install(config: HypercornConfig, gate: ConnectionGate) -> None:
    """Use the bounded classes (idempotent); ``config`` carries this server's gate."""
    config.perpd_connections = gate  # type: ignore[attr-defined]
    hypercorn.trio.run.TCPServer = CappedTCPServer  # type: ignore[misc]
    hypercorn.protocol.h11.WSStream = BoundedWSStream  # type: ignore[misc]
    hypercorn.protocol.h2.WSStream = BoundedWSStream  # type: ignore[misc]
