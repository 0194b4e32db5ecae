"""``GET /ws`` (SPEC §6): authenticate, subscribe with ``since``, events in order, quotes.

Close codes: 1000 normal, 1001 the daemon is shutting down, 1008 authentication
failed or the protocol was broken, 4001 the client fell too far behind (reconnect and
subscribe with ``since`` = the last ``seq`` it received).
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from quart import Blueprint, current_app, websocket

from perpd import auth
from perpd.api._common import acting_agent, check_fields, venue
from perpd.api._limits import charge_agent
from perpd.api._trade import QUOTE_OPTIONAL, QUOTE_REQUIRED, submit_quote
from perpd.errors import ApiError, InvalidRequest, Unauthorized
from perpd.markets import get_market
from perpd.nursery.event_hub import CLOSE_LAGGING, Hub, Session
from perpd.units import loads, parse_int

bp = Blueprint("ws", __name__)

AUTH_TIMEOUT_S = 10
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
MAX_MESSAGE = 16 * 1024


def _hub() -> Hub:
    return current_app.config["PERPD_HUB"]  # type: ignore[no-any-return]


def _error(exc: ApiError, **extra: Any) -> str:
    return json.dumps({"type": "error", **exc.body(), **extra})


async def _receive_object() -> dict[str, Any]:
    raw = await websocket.receive()
    if len(raw) > MAX_MESSAGE:
        raise InvalidRequest("message too large")
    data = loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidRequest('messages are JSON objects with a "type"')
    return data


async def _authenticate() -> str:
    with trio.move_on_after(AUTH_TIMEOUT_S):
        msg = await _receive_object()
        if msg["type"] != "auth":
            raise Unauthorized("the first message must be auth")
        ts = msg.get("timestamp")
        v = auth.verify(
            msg.get("agent_id") if isinstance(msg.get("agent_id"), str) else None,
            str(ts) if isinstance(ts, int) and not isinstance(ts, bool) else None,
            msg.get("signature") if isinstance(msg.get("signature"), str) else None,
            "GET",
            "/ws",
            b"",
            now_ms=venue().now_ms(),
        )
        return v.agent_id
    raise Unauthorized("no auth message within 10 s")


def _subscription(msg: dict[str, Any], default_since: int) -> tuple[frozenset[str], int]:
    markets = msg.get("markets", [])
    if not isinstance(markets, list) or len(markets) > 16:
        raise InvalidRequest("markets must be a list of market names")
    names = frozenset(get_market(m).name for m in markets)
    since = parse_int(msg.get("since", default_since), "since", 0, 2**62)
    return names, since


@bp.websocket("/ws")
async def ws() -> None:
    hub, shutdown = _hub(), current_app.config["PERPD_SHUTDOWN"]
    await websocket.accept()
    try:
        agent_id = await _authenticate()
    except ApiError as exc:
        await websocket.send(_error(exc))
        await websocket.close(CLOSE_POLICY, exc.message[:120])
        return
    await websocket.send(json.dumps({"type": "auth_ok", "seq": hub.dispatched}))
    default_since = hub.dispatched
    session: Session | None = None

    async with trio.open_nursery() as nursery:

        async def close(code: int, reason: str) -> None:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await websocket.close(code, reason)

        async def on_shutdown() -> None:
            await shutdown.wait()
            await close(CLOSE_GOING_AWAY, "server shutting down")

        async def pump(s: Session, since: int) -> None:
            await hub.catch_up(s, since, websocket.send)
            async for text in s.receive:
                await websocket.send(text)

        async def on_lagging(s: Session) -> None:
            await s.lagging.wait()
            hub.cut_off += 1
            await close(CLOSE_LAGGING, f"too slow: resubscribe with since={s.cursor}")

        nursery.start_soon(on_shutdown)
        try:
            while True:
                msg: dict[str, Any] | None = None
                try:
                    msg = await _receive_object()
                    kind = msg["type"]
                    if kind == "subscribe":
                        if session is not None:
                            raise InvalidRequest("already subscribed")
                        markets, since = _subscription(msg, default_since)
                        session = Session(agent_id, markets)
                        nursery.start_soon(pump, session, since)
                        nursery.start_soon(on_lagging, session)
                    elif kind == "quote":
                        await _quote(agent_id, msg)
                    elif kind == "ping":
                        await websocket.send(json.dumps({"type": "pong", "ts": int(time.time())}))
                    else:
                        raise InvalidRequest(f"unknown message type {kind!r}")
                except ApiError as exc:
                    await websocket.send(_error(exc, client_id=_client_id(msg)))
        finally:
            if session is not None:
                hub.remove(session)


def _client_id(msg: Any) -> Any:
    return msg.get("client_id") if isinstance(msg, dict) else None


async def _quote(agent_id: str, msg: dict[str, Any]) -> None:
    """A quote on the socket: the same checks as ``POST /trade/quote``; errors reach the
    caller's loop, which answers with an ``error`` message carrying the ``client_id``."""
    body = {k: v for k, v in msg.items() if k not in ("type", "client_id")}
    check_fields(body, required=QUOTE_REQUIRED, optional=QUOTE_OPTIONAL)
    acting_agent(body, agent_id)
    charge_agent(agent_id)  # d-limits: a socket quote counts like a signed call
    quote = await submit_quote(agent_id, body, None)
    ack = {"type": "quote_ack", "quote_id": quote.quote_id, "request_id": quote.request_id}
    if "client_id" in msg:
        ack["client_id"] = msg["client_id"]
    await websocket.send(json.dumps(ack))
