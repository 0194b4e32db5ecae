"""Limits hypercorn 0.18 does not enforce by itself, installed by the HTTP service.

- **WebSocket messages.** hypercorn checks ``websocket_max_message_size`` only after it
  has appended a chunk to its buffer, and after sending close 1009 it keeps reading and
  appending whatever the peer still sends, leaving the TCP connection open: a client
  can still make it buffer a 15 MB frame. Here a chunk that would pass the limit is
  never appended, and once 1009 is sent the connection fails (RFC 6455 §7.1.7: the
  TCP connection is closed), so no socket holds more than the limit. A frame wsproto
  cannot parse (a text frame that is not UTF-8) gets its close code (1007) too, where
  hypercorn dropped the connection without one.
- **Connections.** hypercorn accepts every TCP connection, and one whose peer closed
  it before a request stays open (its socket held) until the keep-alive timer fires.
  Past ``max_connections`` live ones, a new connection gets ``503 unavailable``
  (``Retry-After``) before anything is read from it, and is closed; a connection whose
  peer has gone is closed at once, and closing waits for a send in flight. An address
  opening connections faster than its rate (a token bucket per address) gets ``429
  rate_limited`` the same way: a flood of handshakes costs an accept and one write
  each, never a parse, a route or a WebSocket.

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
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import FrameTooLargeError, WebsocketBuffer, WSStream
from hypercorn.trio.tcp_server import TCPServer
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from perpd import ws_wire
from perpd.ratelimit import Buckets, address_key
from perpd.tarpit import Tarpit


def _refusal(status: bytes, code: str, message: str, retry_after_s: int) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, written before any read."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"retry-after: " + str(retry_after_s).encode() + b"\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


BUSY_RESPONSE = _refusal(
    b"503 Service Unavailable", "unavailable", "too many connections; retry shortly", 1
)
TOO_FAST_RESPONSE = _refusal(
    b"429 Too Many Requests",
    "rate_limited",
    "too many new connections from this address; retry in 1 s (keep connections open)",
    1,
)


class ConnectionGate:
    """Live TCP connections of one server, against its cap; new ones per address against
    ``per_address`` (None: not limited)."""

    def __init__(
        self,
        max_connections: int,
        *,
        per_address: Buckets | None = None,
        tarpit: Tarpit | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.tarpit = tarpit
        self.open = 0
        self.accepted = 0
        self.refused = 0
        self.refused_rate = 0

    def refusal(self, peer: str | None) -> bytes | None:
        """The response refusing a new connection from ``peer``, or None to serve it."""
        if self.open >= self.max_connections:
            self.refused += 1
            return BUSY_RESPONSE
        if self.per_address is not None and self.per_address.take(address_key(peer)):
            self.refused_rate += 1
            return TOO_FAST_RESPONSE
        self.accepted += 1
        return None

    def statistics(self) -> dict[str, int]:
        return {
            "open": self.open,
            "accepted": self.accepted,
            "refused": self.refused,
            "refused_rate": self.refused_rate,
        }


class _BoundedBuffer(WebsocketBuffer):
    """Refuses a chunk that would pass the limit before appending it."""

    def extend(self, event: Message[Any]) -> None:
        if self.length + len(event.data) > self.max_length:
            raise FrameTooLargeError()
        super().extend(event)


class BoundedWSStream(WSStream):
    """hypercorn's WebSocket stream, with its event loop replaced (hypercorn 0.18's, plus
    the two failures it lacks): a message over the limit, and a frame wsproto cannot
    parse (invalid UTF-8 in a text frame is 1007), each fail the connection: close
    frame with the code, then the connection is closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer = _BoundedBuffer(self.config.websocket_max_message_size)

    async def _send_wsproto_event(self, event: Any) -> None:
        if isinstance(event, CloseConnection):  # no event frame may follow the close
            wire = ws_wire.CURRENT.get()
            if wire is not None:
                wire.closing = True
        await super()._send_wsproto_event(event)

    async def _fail(self, code: int, reason: str | None = None) -> None:
        await self._send_wsproto_event(CloseConnection(code=code, reason=reason))
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def _handle_events(self) -> None:
        assert self.app_put is not None
        for event in self.connection.events():
            if isinstance(event, Message):
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._fail(CloseReason.MESSAGE_TOO_BIG)
                    return
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                elif self.connection.state == ConnectionState.OPEN:  # wsproto: parse failed
                    await self._fail(event.code, event.reason)
                    return
                await self.send(StreamClosed(stream_id=self.stream_id))
                return


class CappedTCPServer(TCPServer):
    async def run(self) -> None:
        # the connection's wire, seen by the tasks it spawns (its WebSocket's handler)
        self.wire = ws_wire.for_stream(self.stream, self.send_lock)
        ws_wire.CURRENT.set(self.wire)
        gate: ConnectionGate | None = getattr(self.config, "perpd_connections", None)
        if gate is None:
            await super().run()
            return
        refusal = gate.refusal(_peer_host(self.stream))
        if refusal is not None:
            if refusal is TOO_FAST_RESPONSE and gate.tarpit is not None:
                await gate.tarpit.hold()  # a flood of handshakes waits for its answers
            with trio.move_on_after(1):
                try:
                    await self.stream.send_all(refusal)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await self.stream.aclose()
            return
        gate.open += 1
        try:
            await super().run()
        finally:
            gate.open -= 1

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Closed):  # hypercorn's send_eof races a send in flight
            async with self.send_lock:  # (BusyResourceError when both close at once)
                await self._close()
            await self.protocol.handle(Closed())
            return
        if isinstance(event, RawData) and self.wire is not None and self.wire.active:
            if not await self.wire.send(event.data):  # in order with the hub's frames
                await self.protocol.handle(Closed())
            return
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone: hypercorn would keep the connection (its socket and its slot)
        # until the keep-alive timer fires, 75 s later; nothing is left to time out.
        await self.idle_task.stop()


def _peer_host(stream: Any) -> str | None:
    """The client's address of a plain or TLS trio stream (None if it is already gone)."""
    sock = getattr(stream, "socket", None)
    if sock is None:  # trio.SSLStream over a SocketStream
        sock = getattr(getattr(stream, "transport_stream", None), "socket", None)
    try:
        peer = sock.getpeername() if sock is not None else None
    except OSError:
        return None
    return peer[0] if isinstance(peer, tuple) else None


def install(config: HypercornConfig, gate: ConnectionGate) -> None:
    """Use the bounded classes (idempotent); ``config`` carries this server's gate."""
    config.perpd_connections = gate  # type: ignore[attr-defined]
    hypercorn.trio.run.TCPServer = CappedTCPServer  # type: ignore[misc]
    hypercorn.protocol.h11.WSStream = BoundedWSStream  # type: ignore[misc]
    hypercorn.protocol.h2.WSStream = BoundedWSStream  # type: ignore[misc]
