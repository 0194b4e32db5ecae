"""`Session`: the WebSocket event stream (SPEC §6), resumed without loss after any drop.

One background task keeps one connection at a time: it authenticates, subscribes from
the last ``seq`` it has handed on (``since``), and feeds the events into a bounded
buffer that the agent reads with ``async for event in session``. When the connection
drops for any reason (network, daemon restart, close 1001, or the daemon closing a
client that fell too far behind with 1008 / 4000-range) it reconnects with jittered
exponential backoff and subscribes again from that ``seq``: the daemon replays what
was missed, and anything at or below the last ``seq`` is dropped, so every event
arrives exactly once and in order.

Only refusals that a retry cannot fix end the session: the daemon rejecting the
authentication or the subscription, a daemon without ``/ws``, or a message that breaks
the wire contract. Those are raised to the reader of the session.

Quotes can also be sent on the socket (`Session.quote`, `Session.replace`,
`Session.cancel`); the daemon answers each with ``quote_ack``, ``cancel_ack`` or
``error`` in the same stream, matched to its message by ``client_id`` (or in order, for
a daemon that does not echo it). A quote's or replace's ``client_id`` is also its
idempotency key (issue 13): the session makes a unique one unless the caller gives one.

``cancel_on_disconnect=True`` asks the daemon to cancel this agent's live quotes when
its last such socket goes; the session then pings every ``heartbeat_s`` (the daemon
closes a silent one), and every reconnect asks again.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketUpgradeError,
    aconnect_ws,
)

from agents._errors import (
    AgentError,
    ConnectionLost,
    ProtocolError,
    TransportError,
    error_from_wire,
)
from agents._models import Event, Position, TradeRequest, parse_event

if TYPE_CHECKING:
    from agents._client import Client

__all__ = ["Session", "SessionStatistics", "open_session"]

log = logging.getLogger("agents.ws")

# Close codes after which a reconnect is expected to work at once (SPEC §6: a client
# that falls behind is closed with 1008 or a 4000-range code and resumes with since).
_SLOW_CONSUMER = 1008


@dataclass(frozen=True)
class SessionStatistics:
    """What the session has done so far (trio's ``statistics()`` convention)."""

    connected: bool
    connects: int
    disconnects: int
    events: int
    duplicates_dropped: int
    last_seq: int | None
    last_close_code: int | None
    buffered: int


class _Fatal(Exception):
    """Wraps an error that no reconnect can fix; the session ends with ``error``."""

    def __init__(self, error: AgentError) -> None:
        super().__init__(str(error))
        self.error = error


class _Link:
    """One live connection and the quote answers it still owes.

    Each quote carries a ``client_id``; a daemon that echoes it (perpd does) gets its
    answers matched by id. Answers without one are matched first-in first-out, which
    the protocol allows because the daemon handles one connection's messages in order.
    """

    def __init__(self, ws: AsyncWebSocketSession) -> None:
        self.ws = ws
        self.waiters: dict[str, MemoryObjectSendStream[dict[str, Any] | AgentError]] = {}
        self.echoes_client_id = False
        self.next_ping = 0.0  # monotonic time of the next heartbeat (cancel-on-disconnect)

    def answer(self, reply: dict[str, Any]) -> bool:
        """Route ``reply`` to the quote it answers; False if it answers none."""
        client_id = reply.get("client_id")
        if isinstance(client_id, str) and client_id in self.waiters:
            self.echoes_client_id = True
            self._deliver(client_id, reply)
            return True
        if client_id is None and not self.echoes_client_id and self.waiters:
            self._deliver(next(iter(self.waiters)), reply)  # dicts keep insertion order
            return True
        return False

    def _deliver(self, client_id: str, reply: dict[str, Any] | AgentError) -> None:
        waiter = self.waiters.pop(client_id)
        try:
            waiter.send_nowait(reply)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.WouldBlock):
            pass  # the caller gave up (timeout or cancel): the answer is dropped
        waiter.close()

    def fail_all(self) -> None:
        for client_id in list(self.waiters):
            self._deliver(client_id, ConnectionLost("WebSocket connection lost before the answer"))


def _decode(text: str) -> Any:
    """A message as JSON with exact numbers; malformed JSON ends the session (it would
    come back on every replay)."""
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise _Fatal(ProtocolError(f"WebSocket message is not JSON: {text[:80]!r}")) from exc


class Session:
    """A resumable subscription; make one with `Client.subscribe` (an async context).

    Iterate it for typed `Event` objects. Reading is the only way events leave the
    buffer: an agent that stops reading for long is eventually closed by the daemon
    (too far behind) and transparently resumed, so nothing is lost, only delayed.
    """

    def __init__(
        self,
        client: Client,
        markets: Sequence[str],
        *,
        since: int | None = None,
        buffer: int = 1024,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        reply_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        keepalive_s: float | None = 20.0,
        cancel_on_disconnect: bool = False,
        heartbeat_s: float = 3.0,
    ) -> None:
        self.client = client
        self.markets = list(markets)
        self._last_seq = since
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._reply_timeout = reply_timeout
        self._handshake_timeout = handshake_timeout
        self._keepalive_s = keepalive_s
        self.cancel_on_disconnect = cancel_on_disconnect
        self._heartbeat_s = heartbeat_s
        self._tag = secrets.token_hex(4)  # this session's client ids are its own
        self._send: MemoryObjectSendStream[Event]
        self._recv: MemoryObjectReceiveStream[Event]
        self._send, self._recv = anyio.create_memory_object_stream[Event](buffer)
        self._link: _Link | None = None
        self._link_changed = anyio.Event()
        self._first_subscribed = anyio.Event()
        self._error: AgentError | None = None
        self._quote_ids = 0
        self._connects = self._disconnects = self._events = self._duplicates = 0
        self._last_close_code: int | None = None
        self._subscribed_at = 0.0

    # ------------------------------------------------------------ reading

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` the session resumes from: the last event it received."""
        return self._last_seq

    def statistics(self) -> SessionStatistics:
        return SessionStatistics(
            connected=self._link is not None,
            connects=self._connects,
            disconnects=self._disconnects,
            events=self._events,
            duplicates_dropped=self._duplicates,
            last_seq=self._last_seq,
            last_close_code=self._last_close_code,
            buffered=self._recv.statistics().current_buffer_used,
        )

    async def next_event(self) -> Event:
        """The next event; raises the session's fatal error once the stream has ended."""
        try:
            return await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._error or TransportError("the session is closed") from None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.next_event()

    # ------------------------------------------------------------ quoting

    async def quote(
        self,
        request: str | TradeRequest,
        *,
        funding_rate: int,
        collateral: int,
        valid_for: int = 10,
        client_id: str | None = None,
    ) -> str:
        """Quote on the socket; returns the ``quote_id`` from ``quote_ack``.

        Raises the `ApiError` of an ``error`` answer, or `ConnectionLost` if the
        connection dropped before the answer came (the quote may or may not exist:
        sending it again with the same ``client_id`` and terms returns it if it does).
        Waits for a connection if there is none. Several quotes may be in flight at
        once. Cancelling is safe: a late answer is matched and dropped.
        """
        fields = await self.client.quote_body(request, funding_rate, collateral, valid_for)
        reply = await self._ask("quote", fields, client_id)
        return _quote_id(reply)

    async def replace(
        self,
        quote_id: str,
        *,
        funding_rate: int,
        collateral: int,
        request: str | TradeRequest | None = None,
        valid_for: int = 10,
        client_id: str | None = None,
    ) -> str:
        """Replace a live quote on the socket (one unit on the daemon: the old one is
        cancelled and the new one live, or nothing changed); returns the new quote id."""
        fields = await self.client.replace_body(
            quote_id, funding_rate, collateral, request, valid_for
        )
        return _quote_id(await self._ask("replace", fields, client_id))

    async def cancel(self, quote_id: str) -> None:
        """Cancel a live quote on the socket; returns once ``cancel_ack`` came."""
        reply = await self._ask("cancel", {"quote_id": quote_id}, None)
        if reply.get("type") != "cancel_ack":
            raise ProtocolError(f"unexpected answer to a cancel: {reply!r}")

    async def _ask(
        self, kind: str, fields: dict[str, Any], client_id: str | None
    ) -> dict[str, Any]:
        """Send one message and wait for the answer matched to it by ``client_id``."""
        self._quote_ids += 1
        client_id = client_id or f"s{self._tag}-{self._quote_ids}"
        message = {"type": kind, "client_id": client_id, **fields}
        send, recv = anyio.create_memory_object_stream[dict[str, Any] | AgentError](1)
        with send, recv, anyio.fail_after(self._reply_timeout):
            link = await self._wait_link()
            link.waiters[client_id] = send
            try:
                await link.ws.send_text(json.dumps(message))
            except Exception as exc:  # the link is dying; its reader fails the waiter
                log.debug("quote send failed: %r", exc)
            reply = await recv.receive()
        if isinstance(reply, AgentError):
            raise reply
        if reply.get("type") == "error":
            raise error_from_wire(None, reply.get("error"))
        return reply

    async def _wait_link(self) -> _Link:
        while self._link is None:
            if self._error is not None:
                raise self._error
            await self._link_changed.wait()
        return self._link

    def _set_link(self, link: _Link | None) -> None:
        self._link = link
        self._link_changed.set()
        self._link_changed = anyio.Event()

    # ------------------------------------------------------------ connection loop

    async def run(self) -> None:
        """Keep a connection until cancelled or a fatal error; never raises on its own.

        Cancel-safe: cancelling closes the connection and the stream.
        """
        attempt = 0
        try:
            while True:
                events_before, connects_before = self._events, self._connects
                try:
                    await self._connect_once()
                except _Fatal as fatal:
                    self._error = fatal.error
                    return
                except Exception as exc:  # anything else: reconnect
                    found = _find_fatal(exc)
                    if found is not None:
                        self._error = found.error
                        return
                    log.info("WebSocket link to %s lost: %s", self.client.url, _describe(exc))
                # Back off harder only while links fail young: one that subscribed and
                # then delivered, or lived a while, resets the backoff.
                lived = time.monotonic() - self._subscribed_at > 1.0
                healthy = self._connects > connects_before and (
                    self._events > events_before or lived
                )
                attempt = 0 if healthy else attempt + 1
                await anyio.sleep(self._backoff(attempt))
        finally:
            self._set_link(None)
            self._first_subscribed.set()  # wake open_session if it still waits
            self._send.close()

    def _backoff(self, attempt: int) -> float:
        if attempt == 0:
            return self._backoff_initial * random.uniform(0.5, 1.0)
        delay = min(self._backoff_max, self._backoff_initial * 2**attempt)
        return delay * random.uniform(0.5, 1.0)

    async def _connect_once(self) -> None:
        """One connection: handshake, subscribe, then read until it ends."""
        ws: AsyncWebSocketSession
        try:
            async with aconnect_ws(
                "/ws",
                self.client.http,
                keepalive_ping_interval_seconds=self._keepalive_s,
                keepalive_ping_timeout_seconds=self._keepalive_s,
            ) as ws:
                link = _Link(ws)
                try:
                    await self._handshake(link)
                    self._connects += 1
                    self._subscribed_at = time.monotonic()
                    self._set_link(link)
                    self._first_subscribed.set()
                    await self._read(link)
                except WebSocketDisconnect as exc:
                    self._last_close_code = exc.code
                    raise
                finally:
                    if self._link is link:
                        self._disconnects += 1
                        self._set_link(None)
                    link.fail_all()
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            if status in (400, 401, 403, 404, 405, 426):
                raise _Fatal(
                    ProtocolError(f"{self.client.url}/ws refused the WebSocket upgrade: {status}")
                ) from exc
            raise

    async def _handshake(self, link: _Link) -> None:
        ws = link.ws
        await ws.send_text(json.dumps(self.client.signer.ws_auth()))
        with anyio.fail_after(self._handshake_timeout):
            reply = _decode(await ws.receive_text())
        if not isinstance(reply, dict):
            raise _Fatal(ProtocolError(f"expected auth_ok, got {reply!r}"))
        if reply.get("type") == "error":
            raise _Fatal(error_from_wire(None, reply.get("error")))
        seq = reply.get("seq")
        if reply.get("type") != "auth_ok" or isinstance(seq, bool) or not isinstance(seq, int):
            raise _Fatal(ProtocolError(f"expected auth_ok, got {reply!r}"))
        if self._last_seq is None:
            self._last_seq = seq
        subscribe: dict[str, Any] = {
            "type": "subscribe",
            "markets": self.markets,
            "since": self._last_seq,
        }
        if self.cancel_on_disconnect:
            subscribe["cancel_on_disconnect"] = True
        await ws.send_text(json.dumps(subscribe))

    async def _receive(self, link: _Link) -> str:
        """The next message. A cancel-on-disconnect socket owes the daemon a message
        every so often: a ping goes out whenever ``heartbeat_s`` passed since the last."""
        if not self.cancel_on_disconnect:
            return await link.ws.receive_text()
        while True:
            wait = link.next_ping - time.monotonic()
            if wait > 0:
                with anyio.move_on_after(wait):
                    return await link.ws.receive_text()
            await link.ws.send_text('{"type":"ping"}')
            link.next_ping = time.monotonic() + self._heartbeat_s

    async def _read(self, link: _Link) -> None:
        link.next_ping = time.monotonic() + self._heartbeat_s
        while True:
            message = _decode(await self._receive(link))
            if not isinstance(message, dict):
                raise _Fatal(ProtocolError(f"WebSocket message is not an object: {message!r}"))
            kind = message.get("type")
            if kind in ("quote_ack", "cancel_ack", "error"):
                if not link.answer(message):
                    # An error that answers no quote answers the subscription (the SDK
                    # sends nothing else): retrying the same subscription cannot help.
                    raise _Fatal(error_from_wire(None, message.get("error")))
                continue
            if "seq" not in message:  # not an event (say, a newer daemon's notice): skip
                log.debug("ignoring WebSocket message of type %r", kind)
                continue
            try:
                event = parse_event(message)
            except ProtocolError as exc:
                raise _Fatal(exc) from exc
            if self._last_seq is not None and event.seq <= self._last_seq:
                self._duplicates += 1
                continue
            position = getattr(event, "position", None)
            if isinstance(position, Position):  # what the next close consent names
                self.client.note_position(position)
            await self._send.send(event)
            self._last_seq = event.seq
            self._events += 1


def _quote_id(reply: dict[str, Any]) -> str:
    quote_id = reply.get("quote_id")
    if reply.get("type") != "quote_ack" or not isinstance(quote_id, str):
        raise ProtocolError(f"unexpected answer to a quote: {reply!r}")
    return quote_id


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _find_fatal(exc: BaseException) -> _Fatal | None:
    """A `_Fatal` anywhere in ``exc`` (httpx-ws wraps errors in exception groups)."""
    for leaf in _leaves(exc):
        if isinstance(leaf, _Fatal):
            return leaf
    return None


def _describe(exc: BaseException) -> str:
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, WebSocketDisconnect):
            return f"closed by the daemon ({leaf.code} {leaf.reason})".strip()
    return "; ".join(repr(leaf) for leaf in leaves)


@asynccontextmanager
async def open_session(
    client: Client, markets: Sequence[str], *, since: int | None = None, **options: Any
) -> AsyncIterator[Session]:
    """Connect, authenticate and subscribe; yield the `Session`; close it on exit.

    Entering waits for the first subscription (retrying transient failures for up to
    ``connect_timeout`` seconds, default 10), so an agent that enters and then creates
    a request is sure to see that request's events. Exceptions from the body come out
    as themselves, not wrapped in an exception group.
    """
    connect_timeout = options.pop("connect_timeout", 10.0)
    session = Session(client, markets, since=since, **options)
    body_error: BaseException | None = None
    try:
        async with session._recv, anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            try:
                with anyio.move_on_after(connect_timeout):
                    await session._first_subscribed.wait()
                if session._error is not None:
                    raise session._error
                if not session._first_subscribed.is_set():
                    raise TransportError(
                        f"no WebSocket subscription to {client.url} within {connect_timeout} s"
                    )
                yield session
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if body_error is not None and any(leaf is body_error for leaf in _leaves(group)):
            others = [
                leaf
                for leaf in _leaves(group)
                if leaf is not body_error and not isinstance(leaf, anyio.get_cancelled_exc_class())
            ]
            if not others:
                raise body_error from None
        raise
