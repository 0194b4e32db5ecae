"""The MCP resources, and the WebSocket watcher that says when they change.

``perpd://markets`` (prices, oracle health, funding curves) and ``perpd://positions``
(this agent's open positions) are read fresh from the venue on each read. One
`agents` WebSocket session, resumed without loss after any drop, tells subscribers
when to read again: a ``resource-updated`` event goes to every ``subscriptions/listen``
stream that named the URI (position events at once; market events coalesced to at most
one a second, since quotes and requests move the funding curve often). Clients on the
2025 protocol (``resources/subscribe``) get ``notifications/resources/updated`` on their
session instead (`LegacySubscribers`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.abc
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from agents import AgentError
from perpd.mcp.desk import Desk

log = logging.getLogger("perpd.mcp")

MARKETS_URI = "perpd://markets"
POSITIONS_URI = "perpd://positions"
POSITION_EVENTS = frozenset(
    {"position_opened", "position_closed", "liquidation", "funding_settled"}
)
MARKET_EVENTS = frozenset(
    {"funding_curve", "trade_request", "request_expired", "request_cancelled", "quote_accepted"}
)
MARKETS_EVERY_S = 1.0
RETRY_S = 5.0


class LegacySubscribers:
    """Sessions that asked ``resources/subscribe`` (2025-11-25 and earlier), per URI.

    `MCPServer` serves only ``subscriptions/listen``; these two handlers go on its
    low-level server (which then advertises ``resources.subscribe`` to such clients)."""

    def __init__(self) -> None:
        self.sessions: dict[str, set[Any]] = {}

    def install(self, server: MCPServer) -> None:
        lowlevel = server._lowlevel_server  # no public hook for the legacy methods
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self.subscribe)
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self.unsubscribe
        )

    async def subscribe(self, ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        self.sessions.setdefault(str(params.uri), set()).add(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        self.sessions.get(str(params.uri), set()).discard(ctx.session)
        return EmptyResult()

    async def updated(self, uri: str) -> None:
        for session in list(self.sessions.get(uri, ())):
            try:
                await session.send_resource_updated(uri)
            except Exception as exc:  # a closed session: forget it
                log.warning("resource update to a legacy session failed: %r", exc)
                self.sessions[uri].discard(session)


def register(server: MCPServer, desk: Desk) -> LegacySubscribers:
    """Add both resources to ``server``; the legacy subscribers they notify."""

    @server.resource(
        MARKETS_URI,
        name="markets",
        mime_type="application/json",
        description="The venue's markets: oracle prices and health, leverage, funding curves.",
    )
    async def markets() -> str:
        return json.dumps({"markets": await desk.market_views()})

    @server.resource(
        POSITIONS_URI,
        name="positions",
        mime_type="application/json",
        description="This agent's open positions, from its side.",
    )
    async def positions() -> str:
        return json.dumps({"positions": await desk.position_views()})

    legacy = LegacySubscribers()
    legacy.install(server)
    return legacy


async def watch(
    desk: Desk,
    bus: SubscriptionBus,
    legacy: LegacySubscribers,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Forward venue events as resource updates until cancelled. Started once the first
    subscription is live (or has failed: the tools work without it), so no event of the
    first tool call is missed; a refused or lost subscription is retried every few
    seconds, from the last event seen."""
    markets_dirty = anyio.Event()
    started = False
    since: int | None = None

    async def updated(uri: str) -> None:
        await bus.publish(ResourceUpdated(uri=uri))
        await legacy.updated(uri)

    async def coalesce_markets() -> None:
        nonlocal markets_dirty
        while True:
            await markets_dirty.wait()
            markets_dirty = anyio.Event()
            await updated(MARKETS_URI)
            await anyio.sleep(MARKETS_EVERY_S)

    async with anyio.create_task_group() as tg:
        tg.start_soon(coalesce_markets)
        while True:
            try:
                names = [m.market for m in await desk.client.markets()]
                async with desk.client.subscribe(names, since=since) as session:
                    if not started:
                        started = True
                        task_status.started()
                    async for event in session:
                        since = event.seq
                        if event.type in POSITION_EVENTS:
                            await updated(POSITIONS_URI)
                        if event.type in MARKET_EVENTS:
                            markets_dirty.set()
            except AgentError as exc:
                log.warning("venue events unavailable (%s); retrying in %.0f s", exc, RETRY_S)
            if not started:
                started = True
                task_status.started()
            await anyio.sleep(RETRY_S)
