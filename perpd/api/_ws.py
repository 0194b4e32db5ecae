"""``GET /ws`` (SPEC §6): authenticate, subscribe with ``since``, events in order, quotes.

Close codes: 1000 normal, 1001 the daemon is shutting down, 1008 the login failed (bad,
stale or replayed, no login within the deadline, anything else first, or the agent's
socket cap), 1009 a message over the size limit (the server closes it before buffering
more), 1011 an internal error, 4001 the client fell too far behind (reconnect and
subscribe with ``since`` = the last ``seq`` it received), 4002 a cancel-on-disconnect
socket sent nothing for ``heartbeat_timeout_s``. After login a refused message gets an
``error`` and the socket stays open.

Issue 13: ``cancel`` and ``replace`` act on the agent's quotes as the HTTP calls do; a
subscribe with ``cancel_on_disconnect`` makes the agent's live quotes die with its last
such socket (`perpd.cancel_on_disconnect`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import trio
from quart import Blueprint, Response, jsonify, websocket

from perpd import auth, engine_cancel, engine_quotes, ws_wire
from perpd.api._common import acting_agent, check_fields, text_field, venue
from perpd.api._limits import charge_agent, charge_invalid_of
from perpd.api._models import QuoteBody, ReplaceQuoteBody, WsCancel, fields_of
from perpd.api._quote_controls import submit_replace
from perpd.api._services import services
from perpd.api._trade import submit_quote
from perpd.errors import ApiError, InvalidRequest, Unauthorized
from perpd.hub import CLOSE_LAGGING, Hub, Session
from perpd.markets import get_market
from perpd.units import loads, parse_int
from perpd.ws_wire import text_frame

log = logging.getLogger(__name__)
bp = Blueprint("ws", __name__)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_NO_HEARTBEAT = 4002


def _error(exc: ApiError, **extra: Any) -> str:
    return json.dumps({"type": "error", **exc.body(), **extra})


def _internal() -> str:
    return _error(ApiError("internal error; the daemon logged it", code="internal"))


async def _send(text: str) -> None:
    """A message of this socket: by its wire once active (`perpd.ws_wire`: in
    order with the hub's frames, without quart's and hypercorn's layers), else quart's."""
    wire = ws_wire.CURRENT.get()
    if wire is None or not wire.active:
        await websocket.send(text)
    elif not wire.closing:  # after a close frame nothing is sent (RFC 6455 §5.5.1)
        await wire.send(text_frame(text.encode()))  # a broken one: hypercorn closes it


async def _receive_object() -> dict[str, Any]:
    data = loads(await websocket.receive())  # hypercorn refuses oversized ones (1009)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidRequest('messages are JSON objects with a "type"')
    return data


async def _authenticate(timeout_s: float) -> auth.Verified:
    """The login: a fresh signature of ``GET /ws``, spent here (single-use, SPEC §6)."""
    with trio.move_on_after(timeout_s):
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
        await venue().login(v)
        return replace(v, session=True)
    raise Unauthorized(f"no auth message within {timeout_s:g} s")


def _subscription(msg: dict[str, Any], default_since: int) -> tuple[frozenset[str], int, bool]:
    markets = msg.get("markets", [])
    if not isinstance(markets, list) or len(markets) > 16:
        raise InvalidRequest("markets must be a list of market names")
    names = frozenset(get_market(m).name for m in markets)
    since = parse_int(msg.get("since", default_since), "since", 0, 2**62)
    guard = msg.get("cancel_on_disconnect", False)
    if not isinstance(guard, bool):
        raise InvalidRequest("cancel_on_disconnect must be true or false")
    return names, since, guard


def _refuse_handshake(reason: str) -> Response:
    """503 to the upgrade request itself: nothing of this socket is ever buffered."""
    resp = jsonify({"error": {"code": "unavailable", "message": reason}})
    resp.status_code = 503
    resp.headers["Retry-After"] = "1"
    return resp


def closer(nursery: trio.Nursery) -> Callable[[int, str], Awaitable[None]]:
    """How a socket handler closes its socket: stop the handler's tasks (``nursery``),
    then send the close frame, shielded and bounded (shared by ``/ws`` and
    ``/ws/public``)."""

    async def close(code: int, reason: str) -> None:
        nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await websocket.close(code, reason)

    return close


async def close_on_shutdown(
    shutdown: trio.Event, close: Callable[[int, str], Awaitable[None]]
) -> None:
    """hypercorn's trio server does not close open sockets on shutdown: 1001 here."""
    await shutdown.wait()
    await close(CLOSE_GOING_AWAY, "server shutting down")


async def stream(hub: Hub, s: Session, since: int) -> None:
    """A subscribed socket's events: the catch-up from ``since``, then the live ones
    (the hub writes them to a `Wire` itself; this flushes what waits, or sends what
    the hub queued). Shared by ``/ws`` and ``/ws/public``."""
    await hub.catch_up(s, since, _send)
    if s.wire is not None:
        await s.wire.flush_forever()
    async for text in s.receive:
        await websocket.send(text)


async def cut_off_when_lagging(
    hub: Hub, s: Session, close: Callable[[int, str], Awaitable[None]]
) -> None:
    """4001 once the hub finds the socket too slow; it may resume from its cursor."""
    await s.lagging.wait()
    hub.cut_off += 1
    await close(CLOSE_LAGGING, f"too slow: resubscribe with since={s.cursor}")


@bp.websocket("/ws")
async def ws() -> Any:
    gate = services().sockets
    refusal = gate.admit()
    if refusal is not None:
        return _refuse_handshake(refusal)
    owner: str | None = None
    try:
        await websocket.accept()
        try:
            login = await _authenticate(gate.limits.auth_timeout_s)
            if not gate.login(login.agent_id):
                raise ApiError(
                    f"this agent already has {gate.limits.max_per_agent} sockets open",
                    code="rate_limited",
                )
            owner = login.agent_id
        except ApiError as exc:
            await websocket.send(_error(exc))
            await websocket.close(CLOSE_POLICY, exc.message[:120])
            return None
        except Exception:
            log.exception("socket login failed on a bug")
            await websocket.send(_internal())
            await websocket.close(CLOSE_INTERNAL, "internal error")
            return None
        await _serve(login)
        return None
    finally:
        gate.release(owner)


async def _serve(login: auth.Verified) -> None:
    """A logged-in socket: subscriptions, quotes and pings until it closes."""
    agent_id = login.agent_id
    shared = services()
    hub, shutdown = shared.hub, shared.shutdown
    await websocket.send(json.dumps({"type": "auth_ok", "seq": hub.dispatched}))
    default_since = hub.dispatched
    wire = ws_wire.CURRENT.get() if websocket.http_version == "1.1" else None
    if wire is not None:
        wire.activate()  # from here every write of this socket is ordered by its wire
    session: Session | None = None
    guarded = False  # this socket asked for cancel-on-disconnect
    heartbeat_s = shared.sockets.limits.heartbeat_timeout_s
    async with trio.open_nursery() as nursery:
        close = closer(nursery)

        nursery.start_soon(close_on_shutdown, shutdown, close)
        try:
            while True:
                msg: dict[str, Any] | None = None
                try:
                    with trio.move_on_after(heartbeat_s if guarded else math.inf):
                        msg = await _receive_object()
                    if msg is None:
                        await close(CLOSE_NO_HEARTBEAT, f"no message for {heartbeat_s:g} s")
                        continue
                    kind = msg["type"]
                    if kind == "subscribe":
                        if session is not None:
                            raise InvalidRequest("already subscribed")
                        markets, since, guarded = _subscription(msg, default_since)
                        session = Session(agent_id, markets, wire)
                        if guarded:
                            shared.cancel_on_disconnect.join(agent_id)
                        nursery.start_soon(stream, hub, session, since)
                        nursery.start_soon(cut_off_when_lagging, hub, session, close)
                    elif kind == "quote":
                        await _quote(login, msg)
                    elif kind == "replace":
                        await _replace(login, msg)
                    elif kind == "cancel":
                        await _cancel(login, msg)
                    elif kind == "ping":
                        await _send(json.dumps({"type": "pong", "ts": int(time.time())}))
                    else:
                        raise InvalidRequest(f"unknown message type {kind!r}")
                except ApiError as exc:
                    await _send(_error(exc, client_id=_client_id(msg)))
                    await _after_refusal(exc.status, agent_id)
                except Exception:
                    log.exception("socket message failed on a bug")
                    await _send(_internal())
                    await close(CLOSE_INTERNAL, "internal error")
        finally:
            if session is not None:
                hub.remove(session)
            if guarded and shared.cancel_on_disconnect.leave(agent_id):
                await _cancel_on_disconnect(agent_id)


async def _after_refusal(status: int, agent_id: str) -> None:
    """What a refused socket message costs, as over HTTP (docs/limits.md): a 400 costs
    the agent `invalid_call_cost` tokens, and after a 429 the socket is read no further
    for the tarpit's delay, so a loop of refused messages waits in its own TCP buffer
    instead of taking the trio thread from everyone."""
    if status == 400:
        charge_invalid_of(agent_id)
    elif status == 429:
        await services().limiter.tarpit.hold()


async def _cancel_on_disconnect(agent_id: str) -> None:
    """The agent's last cancel-on-disconnect socket is gone: cancel its live quotes in
    one unit (shielded: the socket's task is being cancelled), unless another such
    socket arrived before the unit ran."""
    guard = services().cancel_on_disconnect

    def unit(conn: Any, ctx: Any) -> int:
        if guard.guarded(agent_id):
            return 0
        return engine_cancel.cancel_all_of(conn, ctx, agent_id, "disconnect")

    with trio.CancelScope(shield=True), trio.move_on_after(10):
        try:
            guard.cancelled += await venue().mutate(unit, urgent=True)
        except Exception:  # the daemon may be stopping: the quotes then expire on time
            log.exception("cancel-on-disconnect of %s failed", agent_id)


def _client_id(msg: Any) -> Any:
    return msg.get("client_id") if isinstance(msg, dict) else None


def _body(login: auth.Verified, msg: dict[str, Any], model: Any) -> tuple[str, dict[str, Any]]:
    """A socket message as its HTTP body, for the socket's agent (its login, already
    spent, records no further signature). A string ``client_id`` is the idempotency key
    of what the message creates; any other one (legacy) is only echoed."""
    body = {k: v for k, v in msg.items() if k not in ("type", "client_id")}
    if isinstance(msg.get("client_id"), str) and "client_id" in fields_of(model)[1]:
        body["client_id"] = msg["client_id"]
    required, optional = fields_of(model)
    check_fields(body, required=required, optional=optional)
    agent_id = acting_agent(body, login.agent_id)
    charge_agent(agent_id)  # a socket action counts like a signed call
    return agent_id, body


async def _ack(msg: dict[str, Any], ack: dict[str, Any]) -> None:
    if "client_id" in msg:
        ack["client_id"] = msg["client_id"]
    await _send(json.dumps(ack))


async def _quote(login: auth.Verified, msg: dict[str, Any]) -> None:
    """A quote on the socket: the same checks as ``POST /trade/quote``; errors reach the
    caller's loop, which answers with an ``error`` message carrying the ``client_id``."""
    agent_id, body = _body(login, msg, QuoteBody)
    _, quote = await submit_quote(agent_id, body, login)
    await _ack(
        msg, {"type": "quote_ack", "quote_id": quote["quote_id"], "request_id": quote["request_id"]}
    )


async def _replace(login: auth.Verified, msg: dict[str, Any]) -> None:
    """``replace``: as ``POST /trade/quote/replace``; acked like a quote, naming the old."""
    agent_id, body = _body(login, msg, ReplaceQuoteBody)
    _, new = await submit_replace(agent_id, body, login)
    ack = {"type": "quote_ack", "quote_id": new["quote_id"], "request_id": new["request_id"]}
    await _ack(msg, ack | {"replaced_quote_id": new["replaced_quote_id"]})


async def _cancel(login: auth.Verified, msg: dict[str, Any]) -> None:
    """``cancel``: as ``POST /trade/quote/cancel``."""
    agent_id, body = _body(login, msg, WsCancel)
    quote_id = text_field(body, "quote_id")
    await venue().mutate(
        lambda conn, ctx: engine_quotes.cancel_quote(
            conn, ctx, agent_id=agent_id, quote_id=quote_id
        ),
        login,
        urgent=True,
    )
    await _ack(msg, {"type": "cancel_ack", "quote_id": quote_id})
