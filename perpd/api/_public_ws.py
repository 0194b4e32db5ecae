"""``GET /ws/public``: the read-only stream of public events (issue 15), no login.

The frames of ``GET /ws`` (SPEC §6), through the same hub: the server greets with
``{"type":"hello","seq":LAST_SEQ}``; the client sends
``{"type":"subscribe","markets":[...],"since":SEQ}`` (markets default to all, since to
the hello's seq) and gets every public event after ``since`` of those markets, then
the live ones, in ``seq`` order, never skipping one, so a client that reconnects with
``since`` = the last seq it saw misses nothing. What is public is `perpd.public_events`:
only what the unsigned GETs already show. ``ping`` answers ``pong``; anything else is an
``error`` (the socket stays open). Close codes: 1001 shutting down, 1008 no subscribe
in time, 1011 internal error, 4001 too far behind (resubscribe with ``since``).
Sockets are capped in all and per address (`perpd.socket_limits.PublicGate`); over a
cap the upgrade itself is answered 503.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import trio
from quart import Blueprint, websocket

from perpd import ws_wire
from perpd.api._services import services
from perpd.api._ws import (
    _error,
    _internal,
    _receive_object,
    _refuse_handshake,
    _send,
    close_on_shutdown,
    closer,
    cut_off_when_lagging,
    stream,
)
from perpd.errors import ApiError, InvalidRequest
from perpd.hub import PublicSession
from perpd.markets import MARKETS, get_market
from perpd.ratelimit import address_key
from perpd.socket_limits import PublicGate
from perpd.units import parse_int

log = logging.getLogger(__name__)
bp = Blueprint("public_ws", __name__)

CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011


def _subscription(msg: dict[str, Any], default_since: int) -> tuple[frozenset[str], int]:
    """``subscribe``'s markets (default: all) and ``since`` (default: the hello's seq)."""
    unknown = set(msg) - {"type", "markets", "since"}
    if unknown:
        raise InvalidRequest(f"unknown field(s) in subscribe: {', '.join(sorted(unknown))}")
    markets = msg.get("markets", list(MARKETS))
    if not isinstance(markets, list) or len(markets) > 16:
        raise InvalidRequest("markets must be a list of market names")
    names = frozenset(get_market(m).name for m in markets)
    return names, parse_int(msg.get("since", default_since), "since", 0, 2**62)


@bp.websocket("/ws/public")
async def ws_public() -> Any:
    gate = services().public_sockets
    address = address_key(websocket.remote_addr)
    refusal = gate.admit(address)
    if refusal is not None:
        return _refuse_handshake(refusal)
    try:
        await websocket.accept()
        await _serve(gate)
        return None
    finally:
        gate.release(address)


async def _serve(gate: PublicGate) -> None:
    shared = services()
    hub, shutdown = shared.hub, shared.shutdown
    await websocket.send(json.dumps({"type": "hello", "seq": hub.dispatched}))
    default_since = hub.dispatched
    wire = ws_wire.CURRENT.get() if websocket.http_version == "1.1" else None
    if wire is not None:
        wire.activate()  # every write of this socket is ordered by its wire from here
    session: PublicSession | None = None
    async with trio.open_nursery() as nursery:
        close = closer(nursery)

        async def on_no_subscribe() -> None:
            await trio.sleep(gate.limits.subscribe_timeout_s)
            if session is None:
                await close(CLOSE_POLICY, "no subscribe in time")

        nursery.start_soon(close_on_shutdown, shutdown, close)
        nursery.start_soon(on_no_subscribe)
        try:
            while True:
                try:
                    msg = await _receive_object()
                    if msg["type"] == "subscribe":
                        if session is not None:
                            raise InvalidRequest("already subscribed")
                        markets, since = _subscription(msg, default_since)
                        session = PublicSession(markets, wire)
                        nursery.start_soon(stream, hub, session, since)
                        nursery.start_soon(cut_off_when_lagging, hub, session, close)
                    elif msg["type"] == "ping":
                        await _send(json.dumps({"type": "pong", "ts": int(time.time())}))
                    else:
                        raise InvalidRequest(
                            f"the public stream is read-only: unknown message {msg['type']!r} "
                            "(subscribe or ping)"
                        )
                except ApiError as exc:
                    await _send(_error(exc))
                except Exception:
                    log.exception("public socket message failed on a bug")
                    await _send(_internal())
                    await close(CLOSE_INTERNAL, "internal error")
        finally:
            if session is not None:
                hub.remove(session)
